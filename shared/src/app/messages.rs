//! Direct messages: accept, store, enqueue; read back.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::idempotency;
use crate::app::templates;
use crate::domain::error::AppError;
use crate::domain::merge::{self, MergeData};
use crate::domain::message::{
    Counts, Message, MessageType, MessageView, Recipient, RecipientStatus, SendJob,
};
use crate::domain::patient::validate_id;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Practice};
use crate::domain::text::{self, InvalidText};
use crate::ports::{
    CreateOutcome, MessageStore, OptOutStore, PracticeStore, SendQueue, TemplateStore,
};

/// Body of `POST /v1/messages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// A synced patient, or...
    #[serde(default)]
    pub patient_id: Option<String>,
    /// ...an ad-hoc number.
    #[serde(default)]
    pub to: Option<String>,
    /// Merge data for an ad-hoc `to`.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Merge data for an ad-hoc `to`.
    #[serde(default)]
    pub last_name: Option<String>,
    /// The text, with optional merge fields, or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a saved Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
}

/// An answer to return as-is: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// Everything the messages use cases need.
pub struct Messages<P, M, Q> {
    /// Practices and patients.
    pub practices: P,
    /// Messages and recipients.
    pub store: M,
    /// The send queue.
    pub queue: Q,
}

fn invalid_text(e: InvalidText) -> AppError {
    AppError::invalid("invalid_text", e.to_string()).at("text")
}

/// A new, time-ordered message id.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl<P: PracticeStore + OptOutStore + TemplateStore, M: MessageStore, Q: SendQueue>
    Messages<P, M, Q>
{
    /// `POST /v1/messages`: validates, stores the message and its recipient
    /// (with the idempotency record, atomically), enqueues the send, and
    /// answers 202 with the message resource.
    pub async fn send_direct(
        &self,
        practice: &Practice,
        request: SendMessageRequest,
        request_value: &serde_json::Value,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Answer, AppError> {
        let hash = idempotency::request_hash("POST /v1/messages", request_value);
        if let Some(key) = idempotency_key {
            idempotency::validate_key(key)?;
            if let Some(rec) = self
                .store
                .get_idempotency(&practice.practice_id, key)
                .await?
            {
                let (status, body) = idempotency::replay(&rec, &hash)?;
                return Ok(Answer { status, body });
            }
        }

        let channel = match request.channel.as_deref() {
            None => Channel::SmsMain,
            Some(c) => Channel::parse(c).ok_or_else(|| {
                AppError::invalid("invalid_field", "channel must be sms_main or sms_alt")
                    .at("channel")
            })?,
        };
        let from = practice.channels.number(channel).cloned().ok_or_else(|| {
            AppError::invalid(
                "channel_unavailable",
                format!(
                    "the practice has no {} number; choose another channel",
                    channel.as_str()
                ),
            )
            .at("channel")
        })?;
        let (raw_text, template_id) = match (request.text, request.template_id) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    "give either text or template_id, not both",
                )
                .at("template_id"))
            }
            (None, None) => {
                return Err(
                    AppError::invalid("invalid_text", "text or template_id is required").at("text"),
                )
            }
            (Some(text), None) => (text, None),
            (None, Some(id)) => {
                let template =
                    templates::load_for_send(&self.practices, &practice.practice_id, &id).await?;
                (template.body, Some(template.id))
            }
        };
        let text_field = if template_id.is_some() {
            "template_id"
        } else {
            "text"
        };
        text::validate_text(&raw_text).map_err(invalid_text)?;
        merge::check_fields(&raw_text, text_field)?;

        let practice_phone = practice.channels.sms_main.to_string();
        let (patient_id, to, rendered) = match (request.patient_id, request.to) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    "give either patient_id or to, not both",
                )
                .at("to"))
            }
            (None, None) => {
                return Err(
                    AppError::invalid("invalid_field", "patient_id or to is required")
                        .at("patient_id"),
                )
            }
            (Some(patient_id), None) => {
                validate_id(&patient_id, "patient_id")?;
                if request.first_name.is_some() || request.last_name.is_some() {
                    return Err(AppError::invalid(
                        "invalid_field",
                        "first_name and last_name go with an ad-hoc 'to'; a patient's own names are used",
                    )
                    .at("first_name"));
                }
                let patient = self
                    .practices
                    .get_patient(&practice.practice_id, &patient_id)
                    .await?
                    .ok_or_else(|| {
                        AppError::not_found("patient_not_found", format!("no patient {patient_id}"))
                            .at("patient_id")
                    })?;
                let data = MergeData {
                    first_name: Some(&patient.first_name),
                    last_name: patient.last_name.as_deref(),
                    practice_name: Some(&practice.name),
                    practice_phone: Some(&practice_phone),
                };
                let rendered = merge::render(&raw_text, &data)?;
                (Some(patient_id), patient.phone, rendered)
            }
            (None, Some(to)) => {
                let phone = PhoneNumber::parse(&to)
                    .map_err(|e| AppError::invalid("invalid_phone", format!("to {e}")).at("to"))?;
                let data = MergeData {
                    first_name: request.first_name.as_deref(),
                    last_name: request.last_name.as_deref(),
                    practice_name: Some(&practice.name),
                    practice_phone: Some(&practice_phone),
                };
                let rendered = merge::render(&raw_text, &data)?;
                (None, phone, rendered)
            }
        };
        text::validate_text(&rendered).map_err(invalid_text)?;
        let stats = text::analyze(&rendered);
        if self
            .practices
            .is_opted_out(&practice.practice_id, to.as_str())
            .await?
        {
            let field = if patient_id.is_some() {
                "patient_id"
            } else {
                "to"
            };
            return Err(AppError::invalid(
                "recipient_opted_out",
                "this number replied STOP to the practice; it receives no texts until it replies START",
            )
            .at(field));
        }

        let message = Message {
            id: new_message_id(),
            practice_id: practice.practice_id.clone(),
            message_type: MessageType::DirectMessage,
            channel,
            from: from.clone(),
            text: rendered.clone(),
            template_id,
            encoding: stats.encoding,
            segments: stats.segments,
            send_at: None,
            created_at: now,
            target_count: 1,
            status: RecipientStatus::Queued.as_str().to_string(),
            counts: Counts::of([RecipientStatus::Queued].iter()),
            sent_at: None,
        };
        let recipient = Recipient {
            practice_id: practice.practice_id.clone(),
            message_id: message.id.clone(),
            recipient_id: "00001".into(),
            patient_id,
            to,
            from,
            text: rendered,
            status: RecipientStatus::Queued,
            not_before: None,
            carrier_message_id: None,
            sent_at: None,
            delivered_at: None,
            error: None,
            skip_reason: None,
            attempts: 0,
            claimed_at: None,
            message_type: MessageType::DirectMessage,
            version: 0,
        };
        let recipients = [recipient];
        let body = serde_json::to_string(&MessageView::new(&message, &recipients))
            .map_err(|e| AppError::unavailable(format!("could not encode the answer: {e}")))?;
        let record = idempotency_key
            .map(|k| idempotency::record(&practice.practice_id, k, &hash, 202, &body, now));

        match self
            .store
            .create_message(&message, &recipients, record.as_ref())
            .await?
        {
            CreateOutcome::Created => {}
            CreateOutcome::IdempotencyKeyTaken => {
                // A concurrent request with the same key won; answer as it did.
                let key = idempotency_key.unwrap_or_default();
                let rec = self
                    .store
                    .get_idempotency(&practice.practice_id, key)
                    .await?
                    .ok_or_else(|| {
                        AppError::conflict("idempotency_key_reused", "retry the request")
                    })?;
                let (status, body) = idempotency::replay(&rec, &hash)?;
                return Ok(Answer { status, body });
            }
        }

        let jobs: Vec<SendJob> = recipients
            .iter()
            .map(|r| SendJob {
                practice_id: r.practice_id.clone(),
                message_id: r.message_id.clone(),
                recipient_id: r.recipient_id.clone(),
            })
            .collect();
        if let Err(e) = self.queue.enqueue(&jobs).await {
            // Not queued means not accepted: take the record back so the
            // refused request leaves nothing behind, and say so.
            tracing::error!(error = %e, message_id = %message.id, "enqueue failed; removing the message");
            if let Err(undo) = self
                .store
                .remove_message(&message, &recipients, record.as_ref())
                .await
            {
                tracing::error!(error = %undo, message_id = %message.id, "could not remove unqueued message");
            }
            return Err(AppError::unavailable(
                "The message could not be queued; nothing was sent. Retry shortly.",
            ));
        }
        tracing::info!(message_id = %message.id, practice_id = %practice.practice_id, "direct message accepted");
        Ok(Answer { status: 202, body })
    }

    /// `GET /v1/messages/{id}`: the message with its recipients; 404 when it
    /// does not exist for this practice.
    pub async fn get(
        &self,
        practice: &Practice,
        message_id: &str,
    ) -> Result<MessageView, AppError> {
        let not_found =
            || AppError::not_found("message_not_found", format!("no message {message_id}"));
        if message_id.is_empty() || message_id.len() > 64 {
            return Err(not_found());
        }
        let (message, recipients) = self
            .store
            .get_message(&practice.practice_id, message_id)
            .await?
            .ok_or_else(not_found)?;
        Ok(MessageView::new(&message, &recipients))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::memory::{sample_practice, MemoryQueue, MemoryStore};
    use crate::domain::error::ErrorKind;
    use crate::ports::{OptOutChange, OptOutStore};

    fn service(
        store: &MemoryStore,
        queue: MemoryQueue,
    ) -> Messages<MemoryStore, MemoryStore, MemoryQueue> {
        Messages {
            practices: store.clone(),
            store: store.clone(),
            queue,
        }
    }

    fn request(to: &str, text: &str) -> (SendMessageRequest, serde_json::Value) {
        let value = serde_json::json!({"to": to, "text": text});
        (serde_json::from_value(value.clone()).unwrap(), value)
    }

    #[tokio::test]
    async fn unqueued_message_is_removed_and_refused() {
        let store = MemoryStore::default();
        let queue = MemoryQueue {
            refuse: true,
            ..MemoryQueue::default()
        };
        let (req, value) = request("+14155550142", "Hi");
        let e = service(&store, queue)
            .send_direct(&sample_practice("demo"), req, &value, Some("k"), Utc::now())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(store.message_count().await, 0, "nothing left behind");
        assert!(
            store.get_idempotency("demo", "k").await.unwrap().is_none(),
            "refusal not remembered"
        );
    }

    #[tokio::test]
    async fn accepted_message_is_queued_once_per_idempotency_key() {
        let store = MemoryStore::default();
        let queue = MemoryQueue::default();
        let svc = service(&store, queue.clone());
        let practice = sample_practice("demo");
        let (req, value) = request("4155550142", "Hi");
        let first = svc
            .send_direct(&practice, req.clone(), &value, Some("k"), Utc::now())
            .await
            .unwrap();
        let again = svc
            .send_direct(&practice, req, &value, Some("k"), Utc::now())
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(first.status, 202);
        assert_eq!(queue.jobs.lock().await.len(), 1);
        assert_eq!(store.message_count().await, 1);
    }

    #[tokio::test]
    async fn opted_out_number_is_refused() {
        let store = MemoryStore::default();
        store
            .record_opt_out(&OptOutChange {
                practice_id: "demo".into(),
                phone: "+14155550142".into(),
                opted_out: true,
                keyword: "STOP".into(),
                source: "sms".into(),
                at: Utc::now(),
            })
            .await
            .unwrap();
        let (req, value) = request("(415) 555-0142", "Hi");
        let e = service(&store, MemoryQueue::default())
            .send_direct(&sample_practice("demo"), req, &value, None, Utc::now())
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("recipient_opted_out", Some("to"))
        );
        assert_eq!(store.message_count().await, 0);
    }
}
