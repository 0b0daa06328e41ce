//! What AWS End User Messaging SMS reports, read into the carrier callbacks
//! that [`callbacks::apply`] acts on — one set of rules for both carriers:
//! status only moves forward, duplicates and late reports are harmless,
//! STOP/START/HELP, conversations, after-hours replies and events behave
//! exactly as with Bandwidth.
//!
//! Two kinds of report arrive, each one SNS notification's `Message`:
//!
//! - a configuration-set event (`eventType`, `messageId`, the numbers, and
//!   the `context` we sent with the text, which carries our `tag`);
//! - a two-way inbound text (`originationNumber`, `destinationNumber`,
//!   `messageBody`, `inboundMessageId`). AWS receives no MMS: inbound texts
//!   carry no pictures.
//!
//! Opt-outs: the numbers run with self-managed opt-outs, so AWS neither
//! answers nor records STOP and HELP; our opt-out record decides, as with
//! Bandwidth. AWS's own opt-out list can still hold a number (added outside
//! this system): a send it refuses for that is recorded here as an opt-out
//! (`dispatch`), and a START texted to us takes the number off AWS's list
//! first ([`apply`]), so the confirmation and later texts go through.

use chrono::{DateTime, TimeZone as _, Utc};
use serde::Deserialize;

use crate::app::callbacks::{self, Applied, CarrierEvent, CarrierEventKind, EventMessage};
use crate::app::messages::Messages;
use crate::domain::carrier::CarrierKind;
use crate::domain::conversation::MediaCopyJob;
use crate::domain::error::{AppError, StoreError};
use crate::domain::keywords::{classify, Keyword};
use crate::ports::{
    AppointmentStore, CarrierOptOuts, ConversationStore, MediaQueue, MessageStore, OptOutStore,
    PracticeStore, SendQueue, SendScheduler, TemplateStore,
};

/// The key of our tag in a text's `Context` (echoed in its events' `context`).
pub const TAG_CONTEXT_KEY: &str = "tag";

/// A configuration-set event, as AWS publishes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryEvent {
    event_type: String,
    #[serde(default)]
    event_timestamp: Option<i64>,
    /// Absent on old event versions: taken as final.
    #[serde(default)]
    is_final: Option<bool>,
    #[serde(default)]
    origination_phone_number: Option<String>,
    #[serde(default)]
    destination_phone_number: Option<String>,
    message_id: String,
    #[serde(default)]
    context: std::collections::HashMap<String, String>,
}

/// A two-way inbound text, as AWS publishes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundText {
    origination_number: String,
    destination_number: String,
    #[serde(default)]
    message_body: String,
    inbound_message_id: String,
}

/// Reads one report (an SNS notification's `Message`, published at
/// `published_at`) into a carrier callback. `Err` names what is wrong with
/// a report that is neither kind.
pub fn read(message: &str, published_at: Option<DateTime<Utc>>) -> Result<CarrierEvent, String> {
    let value: serde_json::Value =
        serde_json::from_str(message).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("eventType").is_some() {
        let event: DeliveryEvent = serde_json::from_value(value)
            .map_err(|e| format!("not an AWS End User Messaging event: {e}"))?;
        return Ok(delivery(event));
    }
    if value.get("inboundMessageId").is_some() {
        let text: InboundText = serde_json::from_value(value)
            .map_err(|e| format!("not an AWS End User Messaging inbound text: {e}"))?;
        return Ok(inbound(text, published_at));
    }
    Err("neither an AWS End User Messaging event nor an inbound text".into())
}

/// What an event type does to a recipient: delivered, failed with that
/// outcome, or nothing (a step on the way, or not about a text).
fn kind_of(event_type: &str, is_final: bool) -> CarrierEventKind {
    match event_type {
        "TEXT_DELIVERED" => CarrierEventKind::Delivered,
        // Accepted by the patient's carrier; where AWS gets no handset
        // receipt (depending on the country) it is the final word.
        "TEXT_SUCCESSFUL" if is_final => CarrierEventKind::Delivered,
        "TEXT_SUCCESSFUL" | "TEXT_PENDING" | "TEXT_QUEUED" | "TEXT_SENT" => {
            CarrierEventKind::Other(event_type.to_string())
        }
        // A failure AWS may still retry is not the last word.
        failure if failure.starts_with("TEXT_") && is_final => CarrierEventKind::Failed,
        other => CarrierEventKind::Other(other.to_string()),
    }
}

fn delivery(event: DeliveryEvent) -> CarrierEvent {
    let kind = kind_of(&event.event_type, event.is_final.unwrap_or(true));
    let failed = kind == CarrierEventKind::Failed;
    CarrierEvent {
        kind,
        time: event
            .event_timestamp
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        error_code: None,
        to: event.destination_phone_number.clone(),
        message: EventMessage {
            id: event.message_id,
            tag: event.context.get(TAG_CONTEXT_KEY).cloned(),
            from: event.origination_phone_number,
            text: None,
            media: Vec::new(),
            application_id: None,
            to: event.destination_phone_number.into_iter().collect(),
        },
        carrier: CarrierKind::Aws,
        aws_outcome: failed.then_some(event.event_type),
    }
}

fn inbound(text: InboundText, published_at: Option<DateTime<Utc>>) -> CarrierEvent {
    CarrierEvent {
        kind: CarrierEventKind::Received,
        time: published_at,
        error_code: None,
        to: Some(text.destination_number.clone()),
        message: EventMessage {
            id: text.inbound_message_id,
            tag: None,
            from: Some(text.origination_number),
            text: Some(text.message_body),
            media: Vec::new(),
            application_id: None,
            to: vec![text.destination_number],
        },
        carrier: CarrierKind::Aws,
        aws_outcome: None,
    }
}

/// Applies AWS's reports as [`callbacks::apply`] applies Bandwidth's, after
/// taking each number that texted START off AWS's own opt-out list (so the
/// confirmation is not refused; done again harmlessly on a redelivery).
pub async fn apply<S, Q, X, O>(
    messages: &Messages<S, S, Q, X>,
    carrier_opt_outs: &O,
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
    O: CarrierOptOuts,
{
    for event in events {
        let opts_in = event.kind == CarrierEventKind::Received
            && classify(event.message.text.as_deref().unwrap_or_default()) == Some(Keyword::OptIn);
        if let (true, Some(from)) = (opts_in, event.message.from.as_deref()) {
            carrier_opt_outs.remove_opt_out(from).await?;
        }
    }
    callbacks::apply(messages, &NoAttachments, events, now).await
}

/// AWS End User Messaging receives no MMS, so its inbound texts never have
/// attachments to copy; a copy job would be a bug, refused loudly.
struct NoAttachments;

#[async_trait::async_trait]
impl MediaQueue for NoAttachments {
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        Err(StoreError::new(
            "queue attachments",
            "AWS End User Messaging SMS texts carry no attachments",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::messages::SendNowOnly;
    use crate::domain::message::RecipientStatus;
    use crate::domain::phone::PhoneNumber;
    use crate::testing::{queued_recipient, sample_practice, MemoryQueue, MemoryStore};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct OptOutList(Arc<Mutex<Vec<String>>>);

    #[async_trait::async_trait]
    impl CarrierOptOuts for OptOutList {
        async fn remove_opt_out(&self, phone: &str) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(phone.to_string());
            Ok(())
        }
    }

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

    /// An event as AWS documents it, about the text tagged `tag`.
    fn event(event_type: &str, is_final: bool, tag: &str, to: &str, from: &str) -> String {
        serde_json::json!({
            "eventType": event_type, "eventVersion": "1.0", "eventTimestamp": 1_764_169_201_000_i64,
            "isFinal": is_final, "originationPhoneNumber": from, "destinationPhoneNumber": to,
            "isoCountryCode": "US", "messageId": "aws-1", "messageRequestTimestamp": 1_764_169_200_000_i64,
            "messageEncoding": "GSM", "messageType": "TRANSACTIONAL", "messageStatus": "X",
            "messageStatusDescription": "…", "context": {"tag": tag},
            "totalMessageParts": 1, "totalMessagePrice": 0.00581, "totalCarrierFee": 0.003
        })
        .to_string()
    }

    fn inbound_text(id: &str, from: &str, to: &str, body: &str) -> CarrierEvent {
        let message = serde_json::json!({
            "originationNumber": from, "destinationNumber": to, "messageKeyword": "KEYWORD_X",
            "messageBody": body, "inboundMessageId": id, "previousPublishedMessageId": "p-1"
        });
        read(&message.to_string(), Some(Utc::now())).unwrap()
    }

    #[test]
    fn event_types_map_to_delivered_failed_or_nothing() {
        let read_kind = |t: &str, f: bool| {
            read(&event(t, f, "t", "+14155550142", "+14155550100"), None).unwrap()
        };
        assert_eq!(
            read_kind("TEXT_DELIVERED", true).kind,
            CarrierEventKind::Delivered
        );
        assert_eq!(
            read_kind("TEXT_SUCCESSFUL", true).kind,
            CarrierEventKind::Delivered
        );
        for step in [
            ("TEXT_SUCCESSFUL", false),
            ("TEXT_PENDING", false),
            ("TEXT_QUEUED", false),
            ("TEXT_CARRIER_UNREACHABLE", false),
            ("MEDIA_DELIVERED", true),
        ] {
            assert!(
                matches!(read_kind(step.0, step.1).kind, CarrierEventKind::Other(_)),
                "{step:?}"
            );
        }
        let failed = read_kind("TEXT_INVALID", true);
        assert_eq!(failed.kind, CarrierEventKind::Failed);
        let (error, undeliverable) = failed.failure();
        assert_eq!(
            (error.code.as_str(), error.carrier.as_str(), undeliverable),
            ("TEXT_INVALID", "aws", true)
        );
        assert_eq!(failed.message.tag.as_deref(), Some("t"));
        assert_eq!(failed.time.unwrap().timestamp_millis(), 1_764_169_201_000);
        assert!(read("{\"hello\": 1}", None).is_err());
        assert!(read("not json", None).is_err());
    }

    #[tokio::test]
    async fn a_failure_event_fails_the_tagged_recipient_once_with_awss_explanation() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let mut r = queued_recipient();
        r.status = RecipientStatus::Sent;
        r.carrier_message_id = Some("aws-1".into());
        let job = store.insert_recipient(r.clone()).await;
        let m = messages(&store);
        let list = OptOutList::default();
        let failed = read(
            &event(
                "TEXT_SPAM",
                true,
                &job.to_tag(),
                r.to.as_str(),
                r.from.as_str(),
            ),
            None,
        )
        .unwrap();
        // Late, duplicated, and a delivery report arriving after the failure.
        let delivered = read(
            &event(
                "TEXT_DELIVERED",
                true,
                &job.to_tag(),
                r.to.as_str(),
                r.from.as_str(),
            ),
            None,
        )
        .unwrap();
        let a = apply(&m, &list, &[failed.clone(), failed, delivered], Utc::now())
            .await
            .unwrap();
        assert_eq!((a.recorded, a.ignored), (1, 2));
        let stored = store.get_recipient(&job).await.unwrap().unwrap();
        assert_eq!(stored.status, RecipientStatus::Failed);
        let e = stored.error.unwrap();
        assert_eq!(
            (e.code.as_str(), e.carrier.as_str(), e.title.as_str()),
            ("TEXT_SPAM", "aws", "Carrier rejected as spam")
        );
    }

    #[tokio::test]
    async fn an_event_whose_numbers_are_not_the_tagged_recipients_is_not_believed() {
        let store = MemoryStore::default();
        let mut r = queued_recipient();
        r.status = RecipientStatus::Sent;
        let job = store.insert_recipient(r.clone()).await;
        let forged = read(
            &event(
                "TEXT_INVALID",
                true,
                &job.to_tag(),
                "+14155550199",
                r.from.as_str(),
            ),
            None,
        )
        .unwrap();
        let a = apply(
            &messages(&store),
            &OptOutList::default(),
            &[forged],
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!((a.recorded, a.ignored), (0, 1));
        assert_eq!(
            store.get_recipient(&job).await.unwrap().unwrap().status,
            RecipientStatus::Sent
        );
    }

    #[tokio::test]
    async fn stop_start_and_help_from_aws_behave_as_with_bandwidth() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let m = messages(&store);
        let list = OptOutList::default();
        let patient = "+14155550142";
        apply(
            &m,
            &list,
            &[inbound_text("in-1", patient, "+14155550100", "STOP")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(store.is_opted_out("demo", patient).await.unwrap());
        assert!(
            list.0.lock().unwrap().is_empty(),
            "STOP leaves AWS's list alone"
        );
        apply(
            &m,
            &list,
            &[inbound_text("in-2", patient, "+14155550100", "HELP")],
            Utc::now(),
        )
        .await
        .unwrap();
        apply(
            &m,
            &list,
            &[inbound_text("in-3", patient, "+14155550100", " start ")],
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(!store.is_opted_out("demo", patient).await.unwrap());
        assert_eq!(
            *list.0.lock().unwrap(),
            vec![patient.to_string()],
            "START clears AWS's list first"
        );
        // The STOP confirmation, the HELP reply and the START confirmation.
        assert_eq!(m.queue.jobs.lock().await.len(), 3);
        let (thread, _) = store
            .thread("demo", &PhoneNumber::parse(patient).unwrap(), 10, None)
            .await
            .unwrap();
        assert_eq!(thread.len(), 3);
    }
}
