//! `POST /v1/messages`: check the request, resolve the recipient and the
//! text, store the message, hand it to the queue or a schedule.

use chrono::{DateTime, Utc};

use super::{new_message_id, Answer, Messages, SendMessageRequest};
use crate::app::idempotency::{IdempotentPost, Opening};
use crate::app::sending::{invalid_text, parse_optional_send_at, resolve_channel, resolve_text};
use crate::domain::conversation::OutboundKind;
use crate::domain::error::AppError;
use crate::domain::merge::{self, MergeData};
use crate::domain::message::{
    Counts, Message, MessageType, MessageView, Recipient, RecipientStatus, SendJob,
};
use crate::domain::patient::validate_id;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Practice};
use crate::domain::quiet_hours::next_allowed;
use crate::domain::text::{self, TextStats};
use crate::ports::{
    CreateOutcome, IdempotencyRecord, MessageStore, OptOutStore, PracticeStore, SendQueue,
    SendScheduler, TemplateStore,
};

impl<
        P: PracticeStore + OptOutStore + TemplateStore,
        M: MessageStore,
        Q: SendQueue,
        S: SendScheduler,
    > Messages<P, M, Q, S>
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
        let post = IdempotentPost::new(
            &practice.practice_id,
            "POST /v1/messages",
            request_value,
            idempotency_key,
        );
        match post.open(&self.store, now).await? {
            Opening::Fresh => {}
            Opening::Replay(answer) => return Ok(answer),
            Opening::Pending { key, answer } => {
                self.finish_hand_over(practice, key, &answer.body, now)
                    .await?;
                return Ok(answer);
            }
        }
        let draft = self.draft(practice, request, now).await?;
        let (message, recipients) = direct_message(practice, draft, now);
        self.store_and_hand_over(practice, &post, message, recipients, now)
            .await
    }

    /// Checks the request and resolves what it names: when to send, the
    /// channel, the text (or Quick Message), the recipient with the text
    /// rendered for them, and that the number may be texted.
    async fn draft(
        &self,
        practice: &Practice,
        mut request: SendMessageRequest,
        now: DateTime<Utc>,
    ) -> Result<DirectDraft, AppError> {
        let message_type = requested_type(request.message_type.as_deref())?;
        let send_at = parse_optional_send_at(request.send_at.as_deref(), now)?;
        let (channel, from) = resolve_channel(practice, request.channel.as_deref())?;
        let allowed = match message_type {
            MessageType::ReviewRequest | MessageType::ScheduleInvitation => {
                merge::link_message_fields()
            }
            _ => merge::MERGE_FIELDS.to_vec(),
        };
        let (raw_text, template_id) = resolve_text(
            &self.practices,
            &practice.practice_id,
            request.text.take(),
            request.template_id.take(),
            &allowed,
        )
        .await?;
        let (patient_id, to, text) = self
            .recipient_and_text(practice, &request, &raw_text)
            .await?;
        text::validate_text(&text).map_err(invalid_text)?;
        let stats = text::analyze(&text);
        self.check_not_opted_out(practice, request.origin, &to, patient_id.is_some())
            .await?;
        Ok(DirectDraft {
            message_type,
            appointment_ids: Vec::new(),
            send_at,
            channel,
            from,
            template_id,
            patient_id,
            to,
            text,
            stats,
            origin: request.origin,
        })
    }

    /// Who the message goes to and its text rendered for them: a synced
    /// patient (their number and names), or an ad-hoc `to` (with the names
    /// the request gives, if any).
    async fn recipient_and_text(
        &self,
        practice: &Practice,
        request: &SendMessageRequest,
        raw_text: &str,
    ) -> Result<(Option<String>, PhoneNumber, String), AppError> {
        let practice_phone = practice.channels.sms_main.to_string();
        // The links as stored now: the caller's practice may be a copy up
        // to a minute old, and a link just set must work at once.
        let links = if merge::uses_any(raw_text, &merge::LINK_FIELDS) {
            self.practices
                .get_practice(&practice.practice_id)
                .await?
                .map_or_else(|| practice.links.clone(), |p| p.links)
        } else {
            practice.links.clone()
        };
        match (&request.patient_id, &request.to) {
            (Some(_), Some(_)) => Err(AppError::invalid(
                "invalid_field",
                "give either patient_id or to, not both",
            )
            .at("to")),
            (None, None) => Err(
                AppError::invalid("invalid_field", "patient_id or to is required").at("patient_id"),
            ),
            (Some(patient_id), None) => {
                validate_id(patient_id, "patient_id")?;
                if request.first_name.is_some() || request.last_name.is_some() {
                    return Err(AppError::invalid(
                        "invalid_field",
                        "first_name and last_name go with an ad-hoc 'to'; a patient's own names are used",
                    )
                    .at("first_name"));
                }
                let patient = self
                    .practices
                    .get_patient(&practice.practice_id, patient_id)
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
                    review_link: links.review.as_deref(),
                    schedule_link: links.schedule.as_deref(),
                    ..MergeData::default()
                };
                let rendered = merge::render(raw_text, &data)?;
                Ok((Some(patient_id.clone()), patient.phone, rendered))
            }
            (None, Some(to)) => {
                for (name, field) in [
                    (&request.first_name, "first_name"),
                    (&request.last_name, "last_name"),
                ] {
                    if let Some(name) = name {
                        crate::domain::limits::check_name(name, field)?;
                    }
                }
                let phone = PhoneNumber::parse(to)
                    .map_err(|e| AppError::invalid("invalid_phone", format!("to {e}")).at("to"))?;
                let data = MergeData {
                    first_name: request.first_name.as_deref(),
                    last_name: request.last_name.as_deref(),
                    practice_name: Some(&practice.name),
                    practice_phone: Some(&practice_phone),
                    review_link: links.review.as_deref(),
                    schedule_link: links.schedule.as_deref(),
                    ..MergeData::default()
                };
                let rendered = merge::render(raw_text, &data)?;
                Ok((None, phone, rendered))
            }
        }
    }

    /// 422 `recipient_opted_out` when the number replied STOP, naming the
    /// field it came from. The answer to STOP/START/HELP is the one text an
    /// opted-out number may still get (carriers require the confirmation).
    async fn check_not_opted_out(
        &self,
        practice: &Practice,
        origin: Option<OutboundKind>,
        to: &PhoneNumber,
        to_patient: bool,
    ) -> Result<(), AppError> {
        if origin != Some(OutboundKind::KeywordReply)
            && self
                .practices
                .is_opted_out(&practice.practice_id, to.as_str())
                .await?
        {
            let field = if to_patient { "patient_id" } else { "to" };
            return Err(AppError::invalid(
                "recipient_opted_out",
                "this number replied STOP to the practice; it receives no texts until it replies START",
            )
            .at(field));
        }
        Ok(())
    }

    /// Stores the message with its recipient and (pending) idempotency
    /// record, hands it over, and settles the record: 202 with the message
    /// resource, or the answer of a concurrent request with the same key
    /// that was stored first.
    pub(super) async fn store_and_hand_over(
        &self,
        practice: &Practice,
        post: &IdempotentPost<'_>,
        message: Message,
        recipients: [Recipient; 1],
        now: DateTime<Utc>,
    ) -> Result<Answer, AppError> {
        let body = serde_json::to_string(&MessageView::new(&message, &recipients))
            .map_err(|e| AppError::unavailable(format!("could not encode the answer: {e}")))?;
        // Pending until the message is on the queue (or scheduled): should
        // this function die in between, or fail to undo, a retry with the
        // same key hands it over before answering 202 again.
        let record = post
            .record(202, &body, now)
            .map(|r| IdempotencyRecord { pending: true, ..r });

        match self
            .store
            .create_message(&message, &recipients, record.as_ref())
            .await?
        {
            CreateOutcome::Created => {}
            CreateOutcome::IdempotencyKeyTaken => {
                // A concurrent request with the same key won; answer as it did.
                return post.winner(&self.store, now).await;
            }
        }

        self.hand_over(&message, &recipients, record.as_ref(), now)
            .await?;
        if let Some(key) = post.key() {
            // On the queue now; a failure here only means a retry hands it
            // over once more, which the dispatcher's claim makes harmless.
            if let Err(e) = self
                .store
                .settle_idempotency(&practice.practice_id, key)
                .await
            {
                tracing::warn!(error = %e, message_id = %message.id, "idempotency record left pending");
            }
        }
        tracing::info!(message_id = %message.id, practice_id = %practice.practice_id, "direct message accepted");
        Ok(Answer { status: 202, body })
    }

    /// Puts a just-stored message's send on the queue, or arranges it for
    /// its time. Not queued (or scheduled) means not accepted: the record
    /// is taken back so the refused request leaves nothing behind, and 503
    /// says so.
    async fn hand_over(
        &self,
        message: &Message,
        recipients: &[Recipient],
        record: Option<&IdempotencyRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let jobs: Vec<SendJob> = recipients.iter().map(Recipient::job).collect();
        let handed_over = match recipients[0].not_before {
            None => self.queue.enqueue(&jobs).await,
            Some(due) => self.plan(&message.id, due, &jobs[0], now).await,
        };
        if let Err(e) = handed_over {
            tracing::error!(error = %e, message_id = %message.id, "enqueue failed; removing the message");
            if let Err(undo) = self.store.remove_message(message, recipients, record).await {
                tracing::error!(error = %undo, message_id = %message.id, "could not remove unqueued message");
            }
            return Err(AppError::unavailable(
                "The message could not be queued or scheduled; nothing was stored or sent. Retry shortly.",
            ));
        }
        Ok(())
    }

    /// A retry found its idempotency record still pending: the first
    /// request stored the message but may never have handed it over. Hands
    /// over what is still waiting (queued, or scheduled) — a job that is
    /// on the queue twice is sent once, the dispatcher claims it — and
    /// settles the record.
    pub(super) async fn finish_hand_over(
        &self,
        practice: &Practice,
        key: &str,
        answer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let message_id = serde_json::from_str::<serde_json::Value>(answer)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .ok_or_else(|| AppError::unavailable("the remembered answer has no message id"))?;
        let Some((message, recipients)) = self
            .store
            .get_message(&practice.practice_id, &message_id)
            .await?
        else {
            return Err(AppError::unavailable(
                "The first request with this Idempotency-Key is still being handled; retry shortly.",
            ));
        };
        for r in &recipients {
            match (r.status, r.not_before) {
                (RecipientStatus::Queued, _) => self.queue.enqueue(&[r.job()]).await?,
                (RecipientStatus::Scheduled, Some(due)) => {
                    self.plan(&message.id, due, &r.job(), now).await?;
                }
                _ => {}
            }
        }
        self.store
            .settle_idempotency(&practice.practice_id, key)
            .await?;
        tracing::info!(message_id = %message.id, "pending message handed over on a retry");
        Ok(())
    }
}

/// The type `POST /v1/messages` asks for: a direct message, a review
/// request or a schedule invitation (manual reminders have their own route).
fn requested_type(value: Option<&str>) -> Result<MessageType, AppError> {
    match value.map(MessageType::parse) {
        None => Ok(MessageType::DirectMessage),
        Some(Some(
            t @ (MessageType::DirectMessage
            | MessageType::ReviewRequest
            | MessageType::ScheduleInvitation),
        )) => Ok(t),
        Some(_) => Err(AppError::invalid(
            "invalid_field",
            "type must be direct_message, review_request or schedule_invitation (a reminder of an appointment is sent with POST /v1/appointments/{id}/reminders)",
        )
        .at("type")),
    }
}

/// A direct message as the request asks for it, checked and resolved.
pub(crate) struct DirectDraft {
    pub(crate) message_type: MessageType,
    pub(crate) appointment_ids: Vec<String>,
    pub(crate) send_at: Option<DateTime<Utc>>,
    pub(crate) channel: Channel,
    pub(crate) from: PhoneNumber,
    pub(crate) template_id: Option<String>,
    pub(crate) patient_id: Option<String>,
    pub(crate) to: PhoneNumber,
    /// Rendered for the recipient and checked.
    pub(crate) text: String,
    pub(crate) stats: TextStats,
    pub(crate) origin: Option<OutboundKind>,
}

/// The message and its one recipient as they are stored: scheduled when
/// the request has a `send_at`, else queued.
pub(crate) fn direct_message(
    practice: &Practice,
    draft: DirectDraft,
    now: DateTime<Utc>,
) -> (Message, [Recipient; 1]) {
    // A scheduled send waits for quiet hours too; a send "now" by staff does not.
    let not_before = draft
        .send_at
        .map(|t| next_allowed(t, practice.timezone.tz(), practice.quiet_hours.as_ref()));
    let initial = if draft.send_at.is_some() {
        RecipientStatus::Scheduled
    } else {
        RecipientStatus::Queued
    };
    let message = Message {
        id: new_message_id(),
        practice_id: practice.practice_id.clone(),
        message_type: draft.message_type,
        channel: draft.channel,
        from: draft.from.clone(),
        text: draft.text.clone(),
        template_id: draft.template_id,
        encoding: draft.stats.encoding,
        segments: draft.stats.segments,
        send_at: draft.send_at,
        created_at: now,
        target_count: 1,
        status: initial.into(),
        counts: Counts::of([initial].iter()),
        sent_at: None,
        bulk: None,
        appointment_ids: draft.appointment_ids.clone(),
    };
    let recipient = Recipient {
        practice_id: practice.practice_id.clone(),
        message_id: message.id.clone(),
        recipient_id: super::FIRST_RECIPIENT.into(),
        patient_id: draft.patient_id,
        to: draft.to,
        from: draft.from,
        text: draft.text,
        status: initial,
        not_before,
        carrier_message_id: None,
        sent_at: None,
        delivered_at: None,
        error: None,
        skip_reason: None,
        attempts: 0,
        claimed_at: None,
        message_type: draft.message_type,
        origin: draft.origin,
        version: 0,
        appointment_ids: draft.appointment_ids,
    };
    (message, [recipient])
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::ports::{OptOutChange, OptOutStore};
    use crate::testing::{sample_practice, MemoryQueue, MemoryStore};

    #[tokio::test]
    async fn a_review_request_uses_the_link_as_stored_now_and_other_types_are_refused() {
        let store = MemoryStore::default();
        let cached = sample_practice("demo");
        let mut stored = cached.clone();
        stored.links.review = Some("https://g.page/r/bright/review".into());
        store.put_practice(&stored).await.unwrap();
        let value = serde_json::json!({"type": "review_request", "to": "+14155550142", "text": "Thanks! {review_link}"});
        let req: SendMessageRequest = serde_json::from_value(value.clone()).unwrap();
        let answer = service(&store, MemoryQueue::default())
            .send_direct(&cached, req, &value, None, now())
            .await
            .unwrap();
        let view: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(view["type"], "review_request");
        let (_, recipients) = store
            .get_message("demo", view["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recipients[0].text, "Thanks! https://g.page/r/bright/review");
        // Not set at all: refused, naming the field.
        store.put_practice(&cached).await.unwrap();
        let req: SendMessageRequest = serde_json::from_value(value.clone()).unwrap();
        let e = service(&store, MemoryQueue::default())
            .send_direct(&cached, req, &value, None, now())
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_merge_data", Some("review_link"))
        );
        // A link in a direct message, and a type of its own route: refused.
        for (body, code, field) in [
            (
                serde_json::json!({"to": "+14155550142", "text": "{review_link}"}),
                "unknown_merge_field",
                "text",
            ),
            (
                serde_json::json!({"type": "manual_reminder", "to": "+14155550142", "text": "Hi"}),
                "invalid_field",
                "type",
            ),
        ] {
            let req: SendMessageRequest = serde_json::from_value(body.clone()).unwrap();
            let e = service(&store, MemoryQueue::default())
                .send_direct(&cached, req, &body, None, now())
                .await
                .unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (code, Some(field)), "{body}");
        }
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
            .send_direct(&sample_practice("demo"), req, &value, Some("k"), now())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(store.message_count().await, 0, "nothing left behind");
        assert!(
            store
                .get_idempotency("demo", "k", now())
                .await
                .unwrap()
                .is_none(),
            "refusal not remembered"
        );
    }

    #[tokio::test]
    async fn a_message_neither_queued_nor_undone_is_handed_over_by_the_retry() {
        let store = MemoryStore::default();
        let practice = sample_practice("demo");
        let (req, value) = request("+14155550142", "Hi");
        // The queue refuses and the undo fails: the message and a pending
        // record stay behind, and the client is told to retry.
        store.fail_undo(true).await;
        let refusing = MemoryQueue {
            refuse: true,
            ..MemoryQueue::default()
        };
        let e = service(&store, refusing)
            .send_direct(&practice, req.clone(), &value, Some("k"), now())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        store.fail_undo(false).await;
        let rec = store
            .get_idempotency("demo", "k", now())
            .await
            .unwrap()
            .unwrap();
        assert!(rec.pending, "answer remembered, hand-over not done");

        // The retry with the same key: the message goes on the queue, then
        // the first answer is replayed; a further retry queues nothing more.
        let queue = MemoryQueue::default();
        let svc = service(&store, queue.clone());
        let first = svc
            .send_direct(&practice, req.clone(), &value, Some("k"), now())
            .await
            .unwrap();
        assert_eq!(first.status, 202);
        assert_eq!(first.body, rec.response_body);
        assert_eq!(queue.jobs.lock().await.len(), 1, "handed over on the retry");
        assert!(
            !store
                .get_idempotency("demo", "k", now())
                .await
                .unwrap()
                .unwrap()
                .pending
        );
        let again = svc
            .send_direct(&practice, req, &value, Some("k"), now())
            .await
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(queue.jobs.lock().await.len(), 1);
        assert_eq!(store.message_count().await, 1);
    }

    #[tokio::test]
    async fn accepted_message_is_queued_once_per_idempotency_key() {
        let store = MemoryStore::default();
        let queue = MemoryQueue::default();
        let svc = service(&store, queue.clone());
        let practice = sample_practice("demo");
        let (req, value) = request("4155550142", "Hi");
        let first = svc
            .send_direct(&practice, req.clone(), &value, Some("k"), now())
            .await
            .unwrap();
        let again = svc
            .send_direct(&practice, req, &value, Some("k"), now())
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
                at: now(),
            })
            .await
            .unwrap();
        let (req, value) = request("(415) 555-0142", "Hi");
        let e = service(&store, MemoryQueue::default())
            .send_direct(&sample_practice("demo"), req, &value, None, now())
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("recipient_opted_out", Some("to"))
        );
        assert_eq!(store.message_count().await, 0);
    }
}
