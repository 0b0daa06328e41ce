//! Bandwidth Messaging v2 callbacks: delivery receipts, failures, and texts
//! patients send back — every one kept in its conversation, with STOP,
//! START and HELP acted on and the after-hours reply sent.
//!
//! Duplicates and out-of-order callbacks are harmless: each status change is
//! one conditional write that only moves a recipient forward.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::appointments;
use crate::app::conversations::{self, Recorded};
use crate::app::messages::{Messages, SendMessageRequest};
use crate::domain::aws_errors;
use crate::domain::carrier::CarrierKind;
use crate::domain::carrier_errors;
use crate::domain::conversation::{
    InboundEntry, InboundIntent, MediaCopyJob, MediaItem, OutboundKind, ThreadItem,
};
use crate::domain::error::{AppError, ErrorKind};
use crate::domain::keywords::{Keyword, DEFAULT_HELP_TEXT};
use crate::domain::message::{RecipientError, SendJob, Transition};
use crate::domain::patient::UndeliverableNumber;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Practice};
use crate::ports::{
    AppointmentStore, ConversationStore, MediaQueue, MessageStore, OptOutChange, OptOutStore,
    PracticeStore, SendQueue, SendScheduler, TemplateStore,
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
    /// Which carrier reported it: Bandwidth's callbacks are read as they
    /// come; AWS's events are mapped into this shape (`app::aws_sms`).
    #[serde(skip)]
    pub carrier: CarrierKind,
    /// AWS's outcome of a failure (its event type, `TEXT_INVALID`…), where
    /// Bandwidth gives `errorCode`.
    #[serde(skip)]
    pub aws_outcome: Option<String>,
}

impl CarrierEvent {
    /// The catalog's explanation of a failure event, and whether it means
    /// the patient's number cannot receive texts.
    pub fn failure(&self) -> (RecipientError, bool) {
        match self.carrier {
            CarrierKind::Bandwidth => {
                let code = self.error_code.unwrap_or(0);
                (
                    RecipientError::from_carrier_code(code),
                    carrier_errors::describe(code).undeliverable_number,
                )
            }
            CarrierKind::Aws => {
                let code = self.aws_outcome.as_deref().unwrap_or("TEXT_UNKNOWN");
                (
                    RecipientError::from_aws_code(code),
                    aws_errors::describe(code).undeliverable_number,
                )
            }
        }
    }
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
    /// Links to an MMS's attachments (on the carrier's media API).
    #[serde(default)]
    pub media: Vec<String>,
    /// The messaging application the message belongs to.
    #[serde(default, rename = "applicationId")]
    pub application_id: Option<String>,
    /// Recipients (for an outbound message, the patient).
    #[serde(default)]
    pub to: Vec<String>,
}

/// Splits callback events into those of the deployment's messaging
/// application `application_id` and the count of the others (no
/// `applicationId`, or another one), which are not believed.
pub fn of_application(events: Vec<CarrierEvent>, application_id: &str) -> (Vec<CarrierEvent>, u32) {
    let mut foreign = 0;
    let believed = events
        .into_iter()
        .filter(|e| {
            let ours = e.message.application_id.as_deref() == Some(application_id);
            if !ours {
                foreign += 1;
                tracing::warn!(kind = %e.kind, carrier_message_id = %e.message.id, "callback of another messaging application; ignored");
            }
            ours
        })
        .collect();
    (believed, foreign)
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
pub async fn apply<S, Q, X, M>(
    messages: &Messages<S, S, Q, X>,
    media: &M,
    events: &[CarrierEvent],
    now: DateTime<Utc>,
) -> Result<Applied, AppError>
where
    S: MessageStore
        + PracticeStore
        + OptOutStore
        + TemplateStore
        + ConversationStore
        + AppointmentStore,
    Q: SendQueue,
    X: SendScheduler,
    M: MediaQueue,
{
    let mut applied = Applied::default();
    for event in events {
        let acted = match &event.kind {
            CarrierEventKind::Delivered | CarrierEventKind::Failed => {
                status_callback(&messages.store, event, now).await?
            }
            CarrierEventKind::Received => inbound(messages, media, event, now).await?,
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
    let (failure, undeliverable_number) = event.failure();
    let transition = if event.kind == CarrierEventKind::Delivered {
        Transition::Delivered {
            carrier_message_id: event.message.id.clone(),
            at,
        }
    } else {
        Transition::Failed {
            carrier_message_id: Some(event.message.id.clone()),
            error: failure,
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
        // Believed only when its numbers are the tagged recipient's: the
        // patient's number, and the practice number it was sent from.
        let number = |n: Option<&str>| n.and_then(|n| PhoneNumber::parse(n).ok());
        let patient = number(event.to.as_deref())
            .or_else(|| number(event.message.to.first().map(String::as_str)));
        let sender = number(event.message.from.as_deref());
        if patient.as_ref() != Some(&current.to) || sender.as_ref() != Some(&current.from) {
            tracing::warn!(%job, "callback's numbers are not the tagged recipient's; ignored");
            return Ok(false);
        }
        if current.apply(&transition).is_none() {
            tracing::info!(%job, kind = %event.kind, status = current.status.as_str(), "callback changes nothing (duplicate, late or another carrier id)");
            return Ok(false);
        }
        if let Some(updated) = store.transition(&current, &transition, now).await? {
            tracing::info!(%job, status = updated.status.as_str(), "callback recorded");
            if let (Transition::Failed { error, .. }, Some(patient_id), true) =
                (&transition, &updated.patient_id, undeliverable_number)
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

async fn inbound<S, Q, X, M>(
    messages: &Messages<S, S, Q, X>,
    media: &M,
    event: &CarrierEvent,
    now: DateTime<Utc>,
) -> Result<bool, AppError>
where
    S: MessageStore
        + PracticeStore
        + OptOutStore
        + TemplateStore
        + ConversationStore
        + AppointmentStore,
    Q: SendQueue,
    X: SendScheduler,
    M: MediaQueue,
{
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
    let Some(practice) = store.get_practice(&practice_id).await? else {
        return Ok(false);
    };
    let text = event.message.text.as_deref().unwrap_or_default();
    let at = event.time.unwrap_or(now);
    let attachments = event
        .message
        .media
        .iter()
        .enumerate()
        .map(|(i, url)| {
            MediaItem::new(
                url.clone(),
                media_type_of(url),
                media_storage_key(&practice_id, &patient, &event.message.id, i, url),
            )
        })
        .collect();
    let mut entry = InboundEntry::new(
        event.message.id.clone(),
        patient.clone(),
        practice_number.clone(),
        text,
        at,
        attachments,
    );
    // A yes to "Reply C to confirm" confirms by itself: kept in the
    // thread as such, for nobody to read or answer.
    let confirms = entry.keyword.is_none()
        && !appointments::confirm::answered(store, &practice_id, &patient, text, at, now)
            .await?
            .is_empty();
    if confirms {
        entry.intent = Some(InboundIntent::Confirm);
    }

    // The keyword's effect first: each is idempotent, so a callback
    // redelivered after a failure further down repeats it harmlessly.
    let reply = |text: String, key: String| {
        keyword_reply(
            messages,
            &practice,
            &patient,
            &practice_number,
            text,
            key,
            now,
        )
    };
    match entry.keyword {
        Some(keyword @ (Keyword::OptOut | Keyword::OptIn)) => {
            let opted_out = keyword == Keyword::OptOut;
            let was = store.is_opted_out(&practice_id, patient.as_str()).await?;
            let change = OptOutChange {
                practice_id: practice_id.clone(),
                phone: patient.to_string(),
                opted_out,
                keyword: text.trim().to_uppercase(),
                source: "sms".into(),
                at,
            };
            store.record_opt_out(&change).await?;
            tracing::info!(practice_id, opted_out, "opt-out recorded");
            // Confirmed once: a second STOP in a row changes nothing and
            // gets no second text.
            if was != opted_out {
                let confirmation = if opted_out {
                    opt_out_confirmation(&practice.name)
                } else {
                    opt_in_confirmation(&practice.name)
                };
                reply(confirmation, format!("confirm-{}", event.message.id)).await?;
            }
        }
        // HELP is answered after the text is recorded (below): at most once
        // a day per number, which the conversation remembers.
        Some(Keyword::Help) | None => {}
    }

    // Then the text itself, in its conversation; a redelivery adds nothing.
    let recorded = conversations::record_inbound(store, &practice_id, &entry, now).await?;
    let position = ThreadItem::Inbound(entry.clone()).position();
    let jobs: Vec<MediaCopyJob> = entry
        .media
        .iter()
        .enumerate()
        .map(|(index, item)| MediaCopyJob {
            practice_id: practice_id.clone(),
            phone: patient.clone(),
            position: position.clone(),
            index,
            carrier_url: item.carrier_url.clone(),
            storage_key: item.storage_key.clone(),
            content_type: item.content_type.clone(),
        })
        .collect();
    if !jobs.is_empty() {
        // Also for a redelivery: an earlier attempt may have died before
        // this, and copying twice writes the same object twice.
        media.enqueue_media(&jobs).await?;
    }
    if confirms {
        let confirmed =
            appointments::confirm::confirm(store, &practice_id, &patient, text, at, now).await?;
        acknowledge(
            messages,
            &practice,
            &patient,
            &practice_number,
            &confirmed,
            &event.message.id,
            now,
        )
        .await?;
        return Ok(matches!(recorded, Recorded::New(_)));
    }
    let Recorded::New(conversation) = recorded else {
        tracing::info!(
            practice_id,
            "inbound text already recorded (redelivered callback)"
        );
        return Ok(false);
    };
    tracing::info!(practice_id, conversation = %conversation.id, keyword = ?entry.keyword, media = entry.media.len(), "inbound text recorded");

    if entry.keyword == Some(Keyword::Help) {
        if conversations::claim_help_reply(store, &practice_id, &patient, now).await? {
            let help = practice
                .help_text
                .clone()
                .unwrap_or_else(|| DEFAULT_HELP_TEXT.to_string());
            // Keyed by the inbound message, so a redelivered callback replies once.
            reply(help, format!("help-{}", event.message.id)).await?;
        } else {
            tracing::info!(
                practice_id,
                "HELP already answered for this number in the last 24 hours"
            );
        }
        return Ok(true);
    }

    // The after-hours reply: claimed on the conversation before it is sent,
    // so of two texts arriving together only one gets it.
    let opted_out = store.is_opted_out(&practice_id, patient.as_str()).await?;
    if conversations::claim_auto_reply(
        store,
        &practice,
        &patient,
        entry.keyword,
        opted_out || entry.opt_out_intent,
        now,
    )
    .await?
    {
        let request = SendMessageRequest {
            to: Some(patient.to_string()),
            text: Some(practice.auto_reply.text.clone()),
            channel: Some(channel_of(&practice, &practice_number).as_str().to_string()),
            origin: Some(OutboundKind::AutoReply),
            ..SendMessageRequest::default()
        };
        let value = serde_json::json!({"auto_reply_to": event.message.id});
        let key = format!("auto-{}", event.message.id);
        match messages
            .send_direct(&practice, request, &value, Some(&key), now)
            .await
        {
            Ok(_) => tracing::info!(practice_id, "after-hours reply sent"),
            Err(e) if e.kind != ErrorKind::Unavailable => {
                tracing::error!(practice_id, error = %e, "after-hours reply could not be sent; check the practice's auto_reply text");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The one short text acknowledging a confirmation, naming each
/// appointment's date and time; keyed by the reply, so sent once.
async fn acknowledge<S, Q, X>(
    messages: &Messages<S, S, Q, X>,
    practice: &Practice,
    patient: &PhoneNumber,
    practice_number: &PhoneNumber,
    confirmed: &[crate::domain::appointment::Appointment],
    reply_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError>
where
    S: MessageStore + PracticeStore + OptOutStore + TemplateStore,
    Q: SendQueue,
    X: SendScheduler,
{
    if confirmed.is_empty() {
        return Ok(());
    }
    let named: Vec<&crate::domain::appointment::Appointment> = confirmed.iter().collect();
    let request = SendMessageRequest {
        to: Some(patient.to_string()),
        text: Some(crate::domain::appointment::wording::acknowledgment(
            practice, &named,
        )),
        channel: Some(channel_of(practice, practice_number).as_str().to_string()),
        origin: Some(OutboundKind::Acknowledgment),
        ..SendMessageRequest::default()
    };
    let key = format!("ack-{reply_id}");
    let value = serde_json::json!({"acknowledges": reply_id});
    match messages
        .send_direct(practice, request, &value, Some(&key), now)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind != ErrorKind::Unavailable => {
            tracing::error!(practice_id = %practice.practice_id, error = %e, "acknowledgment could not be sent");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The practice number's channel.
fn channel_of(practice: &Practice, number: &PhoneNumber) -> Channel {
    if practice.channels.sms_alt.as_ref() == Some(number) {
        Channel::SmsAlt
    } else {
        Channel::SmsMain
    }
}

/// Sends the answer to a keyword from the number the patient texted. The
/// only kind of text an opted-out number still gets.
async fn keyword_reply<S, Q, X>(
    messages: &Messages<S, S, Q, X>,
    practice: &Practice,
    patient: &PhoneNumber,
    practice_number: &PhoneNumber,
    text: String,
    key: String,
    now: DateTime<Utc>,
) -> Result<(), AppError>
where
    S: MessageStore + PracticeStore + OptOutStore + TemplateStore,
    Q: SendQueue,
    X: SendScheduler,
{
    let request = SendMessageRequest {
        to: Some(patient.to_string()),
        text: Some(text),
        channel: Some(channel_of(practice, practice_number).as_str().to_string()),
        origin: Some(OutboundKind::KeywordReply),
        ..SendMessageRequest::default()
    };
    let value = serde_json::json!({"keyword_reply": key});
    match messages
        .send_direct(practice, request, &value, Some(&key), now)
        .await
    {
        Ok(_) => Ok(()),
        // A text the practice cannot send (e.g. a help text with a merge
        // field unknown for an inbound number) must not make the carrier
        // retry the callback forever.
        Err(e) if e.kind != ErrorKind::Unavailable => {
            tracing::error!(practice_id = %practice.practice_id, error = %e, "keyword reply could not be sent; fix the practice's help text");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The confirmation of STOP: who, that nothing more will come, how to resume.
pub fn opt_out_confirmation(practice_name: &str) -> String {
    format!("{practice_name}: you are unsubscribed and will receive no more texts from us. Reply START to resubscribe.")
}

/// The confirmation of START.
pub fn opt_in_confirmation(practice_name: &str) -> String {
    format!("{practice_name}: you are subscribed again to texts from us. Reply STOP to unsubscribe, HELP for help.")
}

/// A media type from an attachment's file name (Bandwidth's callback gives
/// only the link); the copy keeps what the carrier serves.
fn media_type_of(url: &str) -> String {
    let ext = url
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "amr" => "audio/amr",
        "vcf" => "text/vcard",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
    .to_string()
}

/// Where an attachment's copy is kept: under the practice, the number and
/// the carrier's message id, so a retried copy writes the same object and
/// nothing of one practice sits under another's prefix.
fn media_storage_key(
    practice_id: &str,
    patient: &PhoneNumber,
    carrier_message_id: &str,
    index: usize,
    url: &str,
) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let file = url.rsplit('/').next().unwrap_or("file");
    format!(
        "{}/{}/{}/{index}-{}",
        safe(practice_id),
        patient.as_str().trim_start_matches('+'),
        safe(carrier_message_id),
        safe(file)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::messages::SendNowOnly;
    use crate::domain::message::{Recipient, RecipientStatus};
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
            .transition(&current, &Transition::Claim { at: now }, now)
            .await
            .unwrap()
            .unwrap();
        let sent = Transition::Sent {
            carrier_message_id: "c-1".into(),
            at: now,
        };
        store
            .transition(&claimed, &sent, now)
            .await
            .unwrap()
            .unwrap();
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
            &MemoryQueue::default(),
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
        let b = apply(&m, &MemoryQueue::default(), &events, Utc::now())
            .await
            .unwrap();
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
            &MemoryQueue::default(),
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
            &MemoryQueue::default(),
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
        let a = apply(
            &messages(&store),
            &MemoryQueue::default(),
            &events,
            Utc::now(),
        )
        .await
        .unwrap();
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
            &MemoryQueue::default(),
            &[inbound_event(patient, "+14155550100", " stop ")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(store.is_opted_out("demo", patient).await.unwrap());
        apply(
            &m,
            &MemoryQueue::default(),
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
            &MemoryQueue::default(),
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
        apply(
            &m,
            &MemoryQueue::default(),
            std::slice::from_ref(&help),
            Utc::now(),
        )
        .await
        .unwrap();
        apply(&m, &MemoryQueue::default(), &[help], Utc::now())
            .await
            .unwrap();
        let jobs = m.queue.jobs.lock().await.clone();
        assert_eq!(jobs.len(), 1, "a redelivered HELP is answered once");
        let r = store.recipient(&jobs[0]).await.unwrap();
        assert_eq!(r.to.as_str(), "+14155550142");
        assert!(r.text.starts_with("Bright Smiles Dental:"), "{}", r.text);
        assert!(r.text.contains("+14155550100"));
    }

    fn inbound_with(id: &str, from: &str, text: &str, media: &[&str]) -> CarrierEvent {
        serde_json::from_value(serde_json::json!({
            "type": "message-received", "time": "2026-11-26T15:00:01Z", "to": "+14155550100",
            "message": {"id": id, "from": from, "to": ["+14155550100"], "text": text,
                        "direction": "in", "media": media}
        }))
        .unwrap()
    }

    async fn queued_texts(
        store: &MemoryStore,
        m: &Messages<MemoryStore, MemoryStore, MemoryQueue, SendNowOnly>,
    ) -> Vec<Recipient> {
        let mut out = Vec::new();
        for job in m.queue.jobs.lock().await.iter() {
            out.push(store.recipient(job).await.unwrap());
        }
        out
    }

    async fn send(
        m: &Messages<MemoryStore, MemoryStore, MemoryQueue, SendNowOnly>,
        events: &[CarrierEvent],
    ) -> Applied {
        apply(m, &MemoryQueue::default(), events, Utc::now())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn opt_out_and_opt_in_are_confirmed_once_and_help_still_reaches_an_opted_out_number() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let patient = "+14155550142";
        send(&m, &[inbound_with("in-1", patient, "STOP", &[])]).await;
        let texts = queued_texts(&store, &m).await;
        assert_eq!(texts.len(), 1, "one confirmation");
        assert_eq!(texts[0].to.as_str(), patient);
        assert_eq!(texts[0].origin, Some(OutboundKind::KeywordReply));
        assert!(
            texts[0].text.contains(&sample_practice("demo").name)
                && texts[0].text.contains("START")
        );
        // A second STOP changes nothing and gets no second confirmation.
        send(&m, &[inbound_with("in-2", patient, "stop", &[])]).await;
        assert_eq!(queued_texts(&store, &m).await.len(), 1);
        // HELP is answered even now; an ordinary text is refused.
        send(&m, &[inbound_with("in-3", patient, "HELP", &[])]).await;
        assert_eq!(queued_texts(&store, &m).await.len(), 2);
        let request = SendMessageRequest {
            to: Some(patient.into()),
            text: Some("Hi".into()),
            ..SendMessageRequest::default()
        };
        let e = m
            .send_direct(
                &sample_practice("demo"),
                request,
                &serde_json::json!({}),
                None,
                Utc::now(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "recipient_opted_out");
        send(&m, &[inbound_with("in-4", patient, "START", &[])]).await;
        let texts = queued_texts(&store, &m).await;
        assert_eq!(texts.len(), 3);
        assert!(
            texts[2].text.contains("STOP"),
            "the opt-in confirmation says how to stop"
        );
        // A redelivered STOP callback sends nothing again.
        send(&m, &[inbound_with("in-1", patient, "STOP", &[])]).await;
        assert_eq!(queued_texts(&store, &m).await.len(), 3);
    }

    #[tokio::test]
    async fn every_inbound_text_is_kept_in_its_conversation_once() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let patient = PhoneNumber::parse("+14155550142").unwrap();
        let a = send(
            &m,
            &[inbound_with(
                "in-9",
                patient.as_str(),
                "Can I come at 3 instead?",
                &[],
            )],
        )
        .await;
        assert_eq!(a.recorded, 1);
        let redelivered = send(
            &m,
            &[inbound_with(
                "in-9",
                patient.as_str(),
                "Can I come at 3 instead?",
                &[],
            )],
        )
        .await;
        assert_eq!(redelivered.recorded, 0);
        let c = store
            .get_conversation("demo", &patient)
            .await
            .unwrap()
            .unwrap()
            .conversation;
        assert_eq!((c.unread_count, c.awaiting_reply()), (1, true));
        let (thread, _) = store.thread("demo", &patient, 10, None).await.unwrap();
        assert_eq!(thread.len(), 1);
        // Not a keyword: nothing is sent back (no after-hours reply is set).
        assert!(m.queue.jobs.lock().await.is_empty());
        // A text to a number no practice owns starts no conversation.
        let mut stray = inbound_with("in-10", "+14155550143", "hello", &[]);
        stray.to = Some("+14155550999".into());
        assert_eq!(send(&m, &[stray]).await.recorded, 0);
        let other = PhoneNumber::parse("+14155550143").unwrap();
        assert!(store
            .get_conversation("demo", &other)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn pictures_are_queued_for_copying_under_the_practice() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let media = MemoryQueue::default();
        let url = "https://messaging.bandwidth.com/api/v2/users/99/media/in-5/0/card.jpg";
        let event = inbound_with("in-5", "+14155550142", "", &[url]);
        apply(&m, &media, std::slice::from_ref(&event), Utc::now())
            .await
            .unwrap();
        let jobs = media.media.lock().await.clone();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].carrier_url.as_str(), jobs[0].content_type.as_str()),
            (url, "image/jpeg")
        );
        assert!(
            jobs[0]
                .storage_key
                .starts_with("demo/14155550142/in-5/0-card.jpg"),
            "{}",
            jobs[0].storage_key
        );
        let patient = PhoneNumber::parse("+14155550142").unwrap();
        let (thread, _) = store.thread("demo", &patient, 10, None).await.unwrap();
        let ThreadItem::Inbound(entry) = &thread[0] else {
            panic!("inbound expected")
        };
        assert_eq!(
            entry.media[0].status,
            crate::domain::conversation::MediaStatus::Copying
        );
        assert_eq!(jobs[0].position, thread[0].position());
    }

    #[tokio::test]
    async fn help_is_answered_at_most_once_a_day_per_number() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let now = Utc::now();
        let help = |id: &str, from: &str| inbound_with(id, from, "HELP", &[]);
        let media = MemoryQueue::default();
        apply(&m, &media, &[help("h1", "+14155550142")], now)
            .await
            .unwrap();
        apply(
            &m,
            &media,
            &[help("h2", "+14155550142")],
            now + chrono::Duration::hours(23),
        )
        .await
        .unwrap();
        assert_eq!(queued_texts(&store, &m).await.len(), 1, "once in 24 hours");
        // Another number is answered; the first again a day later.
        apply(&m, &media, &[help("h3", "+14155550143")], now)
            .await
            .unwrap();
        apply(
            &m,
            &media,
            &[help("h4", "+14155550142")],
            now + chrono::Duration::hours(25),
        )
        .await
        .unwrap();
        let texts = queued_texts(&store, &m).await;
        assert_eq!(texts.len(), 3);
        assert!(texts
            .iter()
            .all(|t| t.origin == Some(OutboundKind::KeywordReply)));
    }

    fn after_hours_practice() -> crate::domain::practice::Practice {
        let mut practice = sample_practice("demo");
        practice.auto_reply.enabled = true;
        practice.auto_reply.text =
            "{practice_name} is closed; we will answer in the morning.".into();
        // Closed every day: every text is after hours.
        practice.auto_reply.office_hours = serde_json::from_value(serde_json::json!({
            "mon": null, "tue": null, "wed": null, "thu": null, "fri": null, "sat": null, "sun": null
        })).unwrap();
        practice
    }

    #[tokio::test]
    async fn an_after_hours_text_gets_the_reply_once_and_never_for_keywords_or_stop_requests() {
        let store = MemoryStore::default();
        store.add_practice(after_hours_practice(), "key").await;
        let m = messages(&store);
        send(
            &m,
            &[inbound_with(
                "in-1",
                "+14155550142",
                "Is my crown ready?",
                &[],
            )],
        )
        .await;
        let texts = queued_texts(&store, &m).await;
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].origin, Some(OutboundKind::AutoReply));
        assert!(texts[0].text.starts_with(&sample_practice("demo").name));
        send(&m, &[inbound_with("in-2", "+14155550142", "Hello?", &[])]).await;
        assert_eq!(queued_texts(&store, &m).await.len(), 1, "once in 12 hours");
        // Another number: a keyword gets only its own answer, a request to
        // stop gets nothing.
        send(&m, &[inbound_with("in-3", "+14155550143", "HELP", &[])]).await;
        send(
            &m,
            &[inbound_with(
                "in-4",
                "+14155550144",
                "please stop texting me",
                &[],
            )],
        )
        .await;
        let texts = queued_texts(&store, &m).await;
        assert_eq!(texts.len(), 2);
        assert_eq!(texts[1].origin, Some(OutboundKind::KeywordReply));
        // The auto reply does not answer the patient: still awaiting a reply.
        let c = store
            .get_conversation("demo", &PhoneNumber::parse("+14155550142").unwrap())
            .await
            .unwrap()
            .unwrap()
            .conversation;
        assert!(c.awaiting_reply());
    }

    #[tokio::test]
    async fn a_status_callback_whose_numbers_are_not_the_recipients_is_ignored() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store, None).await;
        let tag = job.to_tag();
        let m = messages(&store);
        let forged = |to: &str, from: &str| -> CarrierEvent {
            serde_json::from_value(serde_json::json!({
                "type": "message-failed", "time": "2026-11-26T15:00:01Z", "errorCode": 4720, "to": to,
                "message": {"id": "c-1", "tag": tag, "to": [to], "from": from}
            }))
            .unwrap()
        };
        for event in [
            forged("+14155550199", "+14155550100"),
            forged("+14155550142", "+14155550177"),
        ] {
            let a = apply(&m, &MemoryQueue::default(), &[event], Utc::now())
                .await
                .unwrap();
            assert_eq!((a.recorded, a.ignored), (0, 1));
        }
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Sent
        );
        let genuine = forged("+14155550142", "+14155550100");
        let a = apply(&m, &MemoryQueue::default(), &[genuine], Utc::now())
            .await
            .unwrap();
        assert_eq!(a.recorded, 1);
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Failed
        );
    }

    #[test]
    fn only_the_deployments_application_is_believed() {
        let with = |app: Option<&str>| -> CarrierEvent {
            let mut message = serde_json::json!({"id": "c-1", "tag": "t"});
            if let Some(app) = app {
                message["applicationId"] = serde_json::json!(app);
            }
            serde_json::from_value(
                serde_json::json!({"type": "message-delivered", "message": message}),
            )
            .unwrap()
        };
        let (believed, foreign) = of_application(
            vec![
                with(Some("ours")),
                with(Some("theirs")),
                with(None),
                with(Some("ours")),
            ],
            "ours",
        );
        assert_eq!((believed.len(), foreign), (2, 2));
    }
}
