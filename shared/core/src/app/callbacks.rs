//! Bandwidth Messaging v2 callbacks: delivery receipts, failures, and texts
//! patients send back (STOP, START, HELP).
//!
//! Duplicates and out-of-order callbacks are harmless: each status change is
//! one conditional write that only moves a recipient forward.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::messages::{Messages, SendMessageRequest};
use crate::domain::carrier_errors;
use crate::domain::error::{AppError, ErrorKind};
use crate::domain::keywords::{self, Keyword, DEFAULT_HELP_TEXT};
use crate::domain::message::{RecipientError, SendJob, Transition};
use crate::domain::patient::UndeliverableNumber;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Channel;
use crate::ports::{
    MessageStore, OptOutChange, OptOutStore, PracticeStore, SendQueue, SendScheduler, TemplateStore,
};

/// One event of a callback body (Bandwidth sends a JSON array of them).
#[derive(Debug, Clone, Deserialize)]
pub struct CarrierEvent {
    /// `message-delivered`, `message-failed`, `message-received`, ...
    #[serde(rename = "type")]
    pub kind: CarrierEventKind,
    /// When the event happened.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// Bandwidth's error code on `message-failed`.
    #[serde(default, rename = "errorCode")]
    pub error_code: Option<u16>,
    /// For inbound texts: the practice number it was sent to.
    #[serde(default)]
    pub to: Option<String>,
    /// The message the event is about.
    pub message: EventMessage,
}

/// What a callback event reports (Bandwidth's `type`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum CarrierEventKind {
    /// `message-delivered`: the handset got it.
    Delivered,
    /// `message-failed`: it will not be delivered.
    Failed,
    /// `message-received`: a patient texted the practice.
    Received,
    /// Any other type (`message-sending`...), not acted on.
    Other(String),
}

impl CarrierEventKind {
    /// Bandwidth's name for it.
    pub fn as_str(&self) -> &str {
        match self {
            CarrierEventKind::Delivered => "message-delivered",
            CarrierEventKind::Failed => "message-failed",
            CarrierEventKind::Received => "message-received",
            CarrierEventKind::Other(other) => other,
        }
    }
}

impl From<String> for CarrierEventKind {
    fn from(s: String) -> Self {
        match s.as_str() {
            "message-delivered" => CarrierEventKind::Delivered,
            "message-failed" => CarrierEventKind::Failed,
            "message-received" => CarrierEventKind::Received,
            _ => CarrierEventKind::Other(s),
        }
    }
}

impl std::fmt::Display for CarrierEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `message` object of a callback event.
#[derive(Debug, Clone, Deserialize)]
pub struct EventMessage {
    /// The carrier's message id.
    pub id: String,
    /// Our ids, as sent in the `tag`.
    #[serde(default)]
    pub tag: Option<String>,
    /// Sender (the patient, for inbound texts).
    #[serde(default)]
    pub from: Option<String>,
    /// Text (inbound texts).
    #[serde(default)]
    pub text: Option<String>,
}

/// What happened to each event, for the log and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Moved a recipient forward, or acted on a keyword.
    pub recorded: u32,
    /// Duplicate, out of order, or for a message or number we do not know.
    pub ignored: u32,
}

/// How many times a transition is retried when a concurrent write changed
/// the recipient between our read and our write.
const RACE_RETRIES: usize = 3;

/// Applies callback events.
pub async fn apply<S, Q, X>(
    messages: &Messages<S, S, Q, X>,
    events: &[CarrierEvent],
    now: DateTime<Utc>,
) -> Result<Applied, AppError>
where
    S: MessageStore + PracticeStore + OptOutStore + TemplateStore,
    Q: SendQueue,
    X: SendScheduler,
{
    let mut applied = Applied::default();
    for event in events {
        let acted = match &event.kind {
            CarrierEventKind::Delivered | CarrierEventKind::Failed => {
                status_callback(&messages.store, event, now).await?
            }
            CarrierEventKind::Received => inbound(messages, event, now).await?,
            CarrierEventKind::Other(other) => {
                tracing::info!(kind = other, "callback type not handled");
                false
            }
        };
        if acted {
            applied.recorded += 1;
        } else {
            applied.ignored += 1;
        }
    }
    Ok(applied)
}

async fn status_callback<S>(
    store: &S,
    event: &CarrierEvent,
    now: DateTime<Utc>,
) -> Result<bool, AppError>
where
    S: MessageStore + PracticeStore,
{
    let at = event.time.unwrap_or(now);
    let code = event.error_code.unwrap_or(0);
    let transition = if event.kind == CarrierEventKind::Delivered {
        Transition::Delivered {
            carrier_message_id: event.message.id.clone(),
            at,
        }
    } else {
        Transition::Failed {
            carrier_message_id: Some(event.message.id.clone()),
            error: RecipientError::from_carrier_code(code),
            at,
        }
    };
    let Some(job) = event.message.tag.as_deref().and_then(SendJob::from_tag) else {
        tracing::warn!(carrier_message_id = %event.message.id, "callback for a message we did not tag; ignored");
        return Ok(false);
    };
    for _ in 0..RACE_RETRIES {
        let Some(current) = store.get_recipient(&job).await? else {
            tracing::warn!(%job, "callback for an unknown recipient; ignored");
            return Ok(false);
        };
        if current.apply(&transition).is_none() {
            tracing::info!(%job, kind = %event.kind, status = current.status.as_str(), "callback changes nothing (duplicate, late or another carrier id)");
            return Ok(false);
        }
        if let Some(updated) = store.transition(&current, &transition).await? {
            tracing::info!(%job, status = updated.status.as_str(), "callback recorded");
            let info = carrier_errors::describe(code);
            if let (Transition::Failed { error, .. }, Some(patient_id), true) =
                (&transition, &updated.patient_id, info.undeliverable_number)
            {
                let mark = UndeliverableNumber {
                    phone: updated.to.clone(),
                    code: error.code.clone(),
                    title: error.title.clone(),
                    resolution: error.resolution.clone(),
                    since: at,
                };
                store
                    .mark_undeliverable(&job.practice_id, patient_id, &mark)
                    .await?;
                tracing::info!(%job, patient_id, "patient's number marked undeliverable");
            }
            return Ok(true);
        }
    }
    tracing::warn!(%job, "recipient kept changing; callback not recorded");
    Err(AppError::unavailable("busy; retry the callback"))
}

async fn inbound<S, Q, X>(
    messages: &Messages<S, S, Q, X>,
    event: &CarrierEvent,
    now: DateTime<Utc>,
) -> Result<bool, AppError>
where
    S: MessageStore + PracticeStore + OptOutStore + TemplateStore,
    Q: SendQueue,
    X: SendScheduler,
{
    let text = event.message.text.as_deref().unwrap_or_default();
    let Some(keyword) = keywords::classify(text) else {
        tracing::info!("inbound text is not a keyword; nothing to do");
        return Ok(false);
    };
    let parse = |n: Option<&str>| n.and_then(|n| PhoneNumber::parse(n).ok());
    let (Some(patient), Some(practice_number)) = (
        parse(event.message.from.as_deref()),
        parse(event.to.as_deref()),
    ) else {
        tracing::warn!("inbound text without usable numbers; ignored");
        return Ok(false);
    };
    let store = &messages.store;
    let Some(practice_id) = store.practice_for_number(practice_number.as_str()).await? else {
        tracing::warn!(number = %practice_number, "inbound text to a number no practice owns; ignored");
        return Ok(false);
    };
    match keyword {
        Keyword::OptOut | Keyword::OptIn => {
            let change = OptOutChange {
                practice_id: practice_id.clone(),
                phone: patient.to_string(),
                opted_out: keyword == Keyword::OptOut,
                keyword: text.trim().to_uppercase(),
                source: "sms".into(),
                at: event.time.unwrap_or(now),
            };
            store.record_opt_out(&change).await?;
            tracing::info!(
                practice_id,
                opted_out = change.opted_out,
                "opt-out recorded"
            );
            Ok(true)
        }
        Keyword::Help => {
            let Some(practice) = store.get_practice(&practice_id).await? else {
                return Ok(false);
            };
            let channel = if practice.channels.sms_alt.as_ref() == Some(&practice_number) {
                Channel::SmsAlt
            } else {
                Channel::SmsMain
            };
            let request = SendMessageRequest {
                to: Some(patient.to_string()),
                text: Some(
                    practice
                        .help_text
                        .clone()
                        .unwrap_or_else(|| DEFAULT_HELP_TEXT.to_string()),
                ),
                channel: Some(channel.as_str().to_string()),
                ..SendMessageRequest::default()
            };
            let value = serde_json::json!({"help_reply_to": event.message.id});
            // Keyed by the inbound message, so a redelivered callback replies once.
            let key = format!("help-{}", event.message.id);
            match messages
                .send_direct(&practice, request, &value, Some(&key), now)
                .await
            {
                Ok(_) => Ok(true),
                // An opted-out number gets no HELP reply either.
                Err(e) if e.code == "recipient_opted_out" => Ok(false),
                // A help text the practice cannot send (e.g. it uses a merge
                // field unknown for an inbound number) must not make the
                // carrier retry the callback forever.
                Err(e) if e.kind != ErrorKind::Unavailable => {
                    tracing::error!(practice_id, error = %e, "HELP reply could not be sent; fix the practice's help text");
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::messages::SendNowOnly;
    use crate::domain::message::RecipientStatus;
    use crate::domain::patient::Patient;
    use crate::testing::{queued_recipient, sample_practice, MemoryQueue, MemoryStore};

    fn messages(
        store: &MemoryStore,
    ) -> Messages<MemoryStore, MemoryStore, MemoryQueue, SendNowOnly> {
        Messages {
            practices: store.clone(),
            store: store.clone(),
            queue: MemoryQueue::default(),
            scheduler: SendNowOnly,
            queue_delay_max: chrono::Duration::zero(),
        }
    }

    fn event(kind: &str, id: &str, tag: &str, code: Option<u16>) -> CarrierEvent {
        serde_json::from_value(serde_json::json!({
            "type": kind, "time": "2026-11-26T15:00:01Z", "errorCode": code,
            "message": {"id": id, "tag": tag, "to": ["+14155550142"], "from": "+14155550100"}
        }))
        .unwrap()
    }

    fn inbound_event(from: &str, to: &str, text: &str) -> CarrierEvent {
        serde_json::from_value(serde_json::json!({
            "type": "message-received", "time": "2026-11-26T15:00:01Z", "to": to,
            "message": {"id": format!("in-{text}"), "from": from, "to": [to], "text": text, "direction": "in"}
        }))
        .unwrap()
    }

    async fn sent_recipient(store: &MemoryStore, patient_id: Option<&str>) -> SendJob {
        let mut r = queued_recipient();
        r.patient_id = patient_id.map(str::to_string);
        let job = store.insert_recipient(r).await;
        let current = store.recipient(&job).await.unwrap();
        let now = Utc::now();
        let claimed = store
            .transition(&current, &Transition::Claim { at: now })
            .await
            .unwrap()
            .unwrap();
        let sent = Transition::Sent {
            carrier_message_id: "c-1".into(),
            at: now,
        };
        store.transition(&claimed, &sent).await.unwrap().unwrap();
        job
    }

    #[tokio::test]
    async fn late_failure_never_overrides_delivery() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store, None).await;
        let tag = job.to_tag();
        let m = messages(&store);
        let a = apply(
            &m,
            &[event("message-delivered", "c-1", &tag, None)],
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(a.recorded, 1);
        let events = [
            event("message-delivered", "c-1", &tag, None),
            event("message-failed", "c-1", &tag, Some(4720)),
        ];
        let b = apply(&m, &events, Utc::now()).await.unwrap();
        assert_eq!(
            b,
            Applied {
                recorded: 0,
                ignored: 2
            }
        );
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Delivered
        );
    }

    #[tokio::test]
    async fn undeliverable_number_failure_marks_the_patient() {
        let store = MemoryStore::default();
        let patient = Patient {
            patient_id: "p-1".into(),
            first_name: "Ana".into(),
            last_name: None,
            phone: queued_recipient().to,
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient("demo", &patient).await.unwrap();
        let job = sent_recipient(&store, Some("p-1")).await;
        apply(
            &messages(&store),
            &[event("message-failed", "c-1", &job.to_tag(), Some(4720))],
            Utc::now(),
        )
        .await
        .unwrap();
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        assert_eq!(
            r.error.unwrap().title,
            "Carrier rejected as invalid destination address"
        );
        let mark = store
            .patient("demo", "p-1")
            .await
            .unwrap()
            .sms_undeliverable
            .unwrap();
        assert_eq!(mark.code, "4720");
    }

    #[tokio::test]
    async fn temporary_failure_does_not_mark_the_number() {
        let store = MemoryStore::default();
        let patient = Patient {
            patient_id: "p-1".into(),
            first_name: "Ana".into(),
            last_name: None,
            phone: queued_recipient().to,
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient("demo", &patient).await.unwrap();
        let job = sent_recipient(&store, Some("p-1")).await;
        apply(
            &messages(&store),
            &[event("message-failed", "c-1", &job.to_tag(), Some(5620))],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(store
            .patient("demo", "p-1")
            .await
            .unwrap()
            .sms_undeliverable
            .is_none());
    }

    #[tokio::test]
    async fn callback_with_unknown_carrier_id_or_tag_changes_nothing() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store, None).await;
        let events = [
            event("message-delivered", "someone-else", &job.to_tag(), None),
            event("message-delivered", "c-1", "garbage", None),
            event("message-delivered", "c-1", "demo/nope/00001", None),
        ];
        let a = apply(&messages(&store), &events, Utc::now()).await.unwrap();
        assert_eq!(
            a,
            Applied {
                recorded: 0,
                ignored: 3
            }
        );
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Sent
        );
    }

    #[tokio::test]
    async fn stop_and_start_are_recorded_with_an_audit_trail() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let patient = "+14155550142";
        apply(
            &m,
            &[inbound_event(patient, "+14155550100", " stop ")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(store.is_opted_out("demo", patient).await.unwrap());
        apply(
            &m,
            &[inbound_event(patient, "+14155550100", "Start")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(!store.is_opted_out("demo", patient).await.unwrap());
        let audit = store.opt_audit().await;
        assert_eq!(audit.len(), 2);
        assert_eq!(
            (audit[0].opted_out, audit[0].keyword.as_str()),
            (true, "STOP")
        );
        assert_eq!(
            (audit[1].opted_out, audit[1].source.as_str()),
            (false, "sms")
        );
    }

    #[tokio::test]
    async fn keyword_to_a_number_no_practice_owns_is_ignored() {
        let store = MemoryStore::default();
        let a = apply(
            &messages(&store),
            &[inbound_event("+14155550142", "+14155550999", "STOP")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(a.ignored, 1);
    }

    #[tokio::test]
    async fn help_replies_with_the_practice_help_text_once() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let help = inbound_event("+14155550142", "+14155550100", "HELP");
        apply(&m, std::slice::from_ref(&help), Utc::now())
            .await
            .unwrap();
        apply(&m, &[help], Utc::now()).await.unwrap();
        let jobs = m.queue.jobs.lock().await.clone();
        assert_eq!(jobs.len(), 1, "a redelivered HELP is answered once");
        let r = store.recipient(&jobs[0]).await.unwrap();
        assert_eq!(r.to.as_str(), "+14155550142");
        assert!(r.text.starts_with("Bright Smiles Dental:"), "{}", r.text);
        assert!(r.text.contains("+14155550100"));
    }

    #[tokio::test]
    async fn opted_out_number_gets_no_help_reply() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        apply(
            &m,
            &[inbound_event("+14155550142", "+14155550100", "STOP")],
            Utc::now(),
        )
        .await
        .unwrap();
        apply(
            &m,
            &[inbound_event("+14155550142", "+14155550100", "HELP")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(m.queue.jobs.lock().await.is_empty());
    }
}
