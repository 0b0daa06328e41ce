//! Events for the office's software: what happened (a patient replied, a
//! message was delivered or failed, a bulk completed, a number opted out or
//! back in), recorded in the same write as the change itself (an outbox),
//! and delivered to the practice's endpoints per Standard Webhooks 1.0.
//!
//! Which state change causes which event is decided here, once: both
//! stores call [`for_transition`], [`received`], [`opt_change`] and
//! [`bulk_completed`] inside the write that makes the change.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::clock::to_api_time;
use super::conversation::{ConversationId, InboundEntry};
use super::error::AppError;
use super::keywords::Keyword;
use super::message::{MessageType, Recipient, RecipientStatus};
use super::phone::PhoneNumber;

mod delivery;

pub use delivery::{
    AttemptResult, Delivery, DeliveryJob, DeliveryState, EventDelivery, RetrySchedule, StoredEvent,
    RETRY_DELAYS_SECONDS, STALE_ATTEMPT,
};

/// The kinds of events an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventType {
    /// A patient texted the practice.
    MessageReceived,
    /// The carrier reported a message delivered to the handset.
    MessageDelivered,
    /// A message will not be delivered (with the catalog's explanation).
    MessageFailed,
    /// Every recipient of a bulk message reached a final status.
    BulkCompleted,
    /// A number opted out of the practice's texts (STOP, or staff).
    ContactOptedOut,
    /// A number opted back in (START).
    ContactOptedIn,
    /// A patient confirmed an appointment by replying yes to its reminder.
    AppointmentConfirmed,
}

impl EventType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [EventType; 7] = [
        EventType::MessageReceived,
        EventType::MessageDelivered,
        EventType::MessageFailed,
        EventType::BulkCompleted,
        EventType::ContactOptedOut,
        EventType::ContactOptedIn,
        EventType::AppointmentConfirmed,
    ];

    /// The name on the wire (`message.received`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageReceived => "message.received",
            EventType::MessageDelivered => "message.delivered",
            EventType::MessageFailed => "message.failed",
            EventType::BulkCompleted => "bulk.completed",
            EventType::ContactOptedOut => "contact.opted_out",
            EventType::ContactOptedIn => "contact.opted_in",
            EventType::AppointmentConfirmed => "appointment.confirmed",
        }
    }

    /// Reads a type name.
    ///
    /// # Errors
    ///
    /// 422 `invalid_event_type` naming the known types.
    pub fn parse(name: &str) -> Result<Self, AppError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                AppError::invalid(
                    "invalid_event_type",
                    format!(
                        "unknown event type {name:?}; known types: {}",
                        known.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for EventType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).map_err(|e| e.message)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> Self {
        t.as_str().to_string()
    }
}

/// One event, as recorded with the change that caused it. `payload` is the
/// exact body every delivery attempt sends, so retries and redeliveries
/// carry the same bytes (and the same `webhook-id`, the event's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_` + a time-ordered UUID (newest sorts last).
    pub id: String,
    /// Owner.
    pub practice_id: String,
    /// What happened.
    pub event_type: EventType,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// `{"type","timestamp","data"}`, serialised once.
    pub payload: String,
}

impl Event {
    /// A new event of `event_type` at `at` with `data`.
    pub fn new(
        practice_id: &str,
        event_type: EventType,
        at: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        let payload = serde_json::json!({
            "type": event_type.as_str(),
            "timestamp": to_api_time(&at),
            "data": data,
        })
        .to_string();
        Event {
            id: new_event_id(at),
            practice_id: practice_id.to_string(),
            event_type,
            created_at: at,
            payload,
        }
    }

    /// The body as JSON (for the API's event list).
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// A time-ordered event id for an event created at `at`: `evt_` and the 32
/// hex digits of a UUID v7 (its first 48 bits are `at` in milliseconds), so
/// ids sort by time — what the event list pages by. Ids made by one process
/// for the same millisecond also sort in creation order.
pub fn new_event_id(at: DateTime<Utc>) -> String {
    // The 12 bits after the time count up within one millisecond (from a
    // random start), so one process's ids for the same `at` keep their order.
    static LAST: std::sync::Mutex<(u64, u16)> = std::sync::Mutex::new((u64::MAX, 0));
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..10]);
    let counter = {
        let mut last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = if last.0 == ms {
            (ms, last.1.saturating_add(1).min(0x0fff))
        } else {
            (ms, u16::from_be_bytes([random[0], random[1]]) & 0x03ff)
        };
        last.1
    };
    random[..2].copy_from_slice(&counter.to_be_bytes());
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid();
    format!("evt_{}", id.simple())
}

/// The smallest event id of an event created at or after `at`: where a
/// listing of "the last 30 days" starts.
pub fn event_id_floor(at: DateTime<Utc>) -> String {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    format!("evt_{ms:012x}")
}

/// Checks the shape of an event id from a URL (what [`new_event_id`] makes).
///
/// # Errors
///
/// 404 `event_not_found`: a malformed id names no event.
pub fn validate_event_id(id: &str) -> Result<(), AppError> {
    let ok = id
        .strip_prefix("evt_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(AppError::not_found(
            "event_not_found",
            format!("no event {id}"),
        ))
    }
}

/// The event a recipient's change causes, if any: `message.delivered` when
/// it becomes delivered, `message.failed` (with the catalog's code, title
/// and resolution) when it becomes failed.
pub fn for_transition(before: &Recipient, after: &Recipient, at: DateTime<Utc>) -> Option<Event> {
    if before.status == after.status {
        return None;
    }
    let event_type = match after.status {
        RecipientStatus::Delivered => EventType::MessageDelivered,
        RecipientStatus::Failed => EventType::MessageFailed,
        _ => return None,
    };
    let mut data = serde_json::json!({
        "message_id": after.message_id,
        "recipient_id": after.recipient_id,
        "bulk_id": (after.message_type == MessageType::BulkMessage).then(|| after.message_id.clone()),
        "patient_id": after.patient_id,
        "phone": after.to.as_str(),
        "from": after.from.as_str(),
        "conversation_id": ConversationId::from_phone(&after.to).to_string(),
        "status": after.status.as_str(),
    });
    if let (false, Some(map)) = (after.appointment_ids.is_empty(), data.as_object_mut()) {
        map.insert(
            "appointment_ids".into(),
            serde_json::json!(after.appointment_ids),
        );
    }
    if let (Some(error), Some(map)) = (&after.error, data.as_object_mut()) {
        map.insert(
            "error".into(),
            serde_json::json!({
                "code": error.code,
                "title": error.title,
                "description": error.description,
                "resolution": error.resolution,
                "permanent": error.permanent,
            }),
        );
    }
    Some(Event::new(&after.practice_id, event_type, at, data))
}

/// `message.received` for an inbound text recorded in its conversation.
pub fn received(practice_id: &str, entry: &InboundEntry, at: DateTime<Utc>) -> Event {
    let keyword = entry.keyword.map(|k| match k {
        Keyword::OptOut => "opt_out",
        Keyword::OptIn => "opt_in",
        Keyword::Help => "help",
    });
    let data = serde_json::json!({
        "message_id": entry.carrier_message_id,
        "conversation_id": ConversationId::from_phone(&entry.from).to_string(),
        "phone": entry.from.as_str(),
        "to": entry.to.as_str(),
        "text": entry.text,
        "received_at": to_api_time(&entry.at),
        "keyword": keyword,
        "opt_out_intent": entry.opt_out_intent,
        "media_count": entry.media.len(),
    });
    Event::new(practice_id, EventType::MessageReceived, at, data)
}

/// `contact.opted_out` or `contact.opted_in` for a number whose opt-out
/// state changed (`source`: `sms`, `staff`, `carrier`).
pub fn opt_change(
    practice_id: &str,
    phone: &str,
    opted_out: bool,
    source: &str,
    at: DateTime<Utc>,
) -> Event {
    let event_type = if opted_out {
        EventType::ContactOptedOut
    } else {
        EventType::ContactOptedIn
    };
    let conversation_id = PhoneNumber::parse(phone)
        .ok()
        .map(|p| ConversationId::from_phone(&p).to_string());
    let data = serde_json::json!({
        "phone": phone,
        "conversation_id": conversation_id,
        "source": source,
    });
    Event::new(practice_id, event_type, at, data)
}

/// `bulk.completed` when every recipient of a bulk reached a final status.
pub fn bulk_completed(practice_id: &str, bulk_id: &str, at: DateTime<Utc>) -> Event {
    let data = serde_json::json!({ "bulk_id": bulk_id, "message_id": bulk_id });
    Event::new(practice_id, EventType::BulkCompleted, at, data)
}

/// `appointment.confirmed` for an appointment a patient confirmed by reply.
pub fn appointment_confirmed(
    practice_id: &str,
    appointment_id: &str,
    patient_id: &str,
    confirmed_at: DateTime<Utc>,
) -> Event {
    let data = serde_json::json!({
        "appointment_id": appointment_id,
        "patient_id": patient_id,
        "confirmed_at": to_api_time(&confirmed_at),
    });
    Event::new(
        practice_id,
        EventType::AppointmentConfirmed,
        confirmed_at,
        data,
    )
}

/// How long events are kept and listed.
pub const EVENT_RETENTION: Duration = Duration::days(30);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::message::RecipientError;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    fn recipient(status: RecipientStatus) -> Recipient {
        Recipient {
            practice_id: "p1".into(),
            message_id: "m1".into(),
            recipient_id: "00001".into(),
            patient_id: Some("pat-1".into()),
            to: PhoneNumber::parse("+14155550142").unwrap(),
            from: PhoneNumber::parse("+14155550100").unwrap(),
            text: "Your cleaning is tomorrow".into(),
            status,
            not_before: None,
            carrier_message_id: None,
            sent_at: None,
            delivered_at: None,
            error: None,
            skip_reason: None,
            attempts: 0,
            claimed_at: None,
            message_type: MessageType::DirectMessage,
            origin: None,
            version: 0,
            appointment_ids: Vec::new(),
        }
    }

    #[test]
    fn event_ids_sort_by_creation_and_the_floor_sorts_before_them() {
        let at: DateTime<Utc> = "2026-11-26T15:00:00.250Z".parse().unwrap();
        let ids: Vec<String> = (0..50).map(|_| new_event_id(at)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(
            ids, sorted,
            "creation order is id order within a millisecond"
        );
        assert!(event_id_floor(at) <= ids[0]);
        assert!(event_id_floor(at - Duration::milliseconds(1)) < ids[0]);
        assert!(event_id_floor(at + Duration::milliseconds(1)) > ids[49]);
        let later = new_event_id(at + Duration::milliseconds(1));
        assert!(later > ids[49], "a later instant sorts after");
        validate_event_id(&ids[0]).unwrap();
        assert!(validate_event_id("evt_0").is_err());
        assert!(validate_event_id("msg_0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn only_delivered_and_failed_changes_make_events() {
        let queued = recipient(RecipientStatus::Queued);
        let sending = recipient(RecipientStatus::Sending);
        assert!(for_transition(&queued, &sending, at()).is_none());
        assert!(for_transition(&sending, &sending, at()).is_none());
        let mut sent = recipient(RecipientStatus::Sent);
        let delivered = recipient(RecipientStatus::Delivered);
        let e = for_transition(&sent, &delivered, at()).unwrap();
        assert_eq!(e.event_type, EventType::MessageDelivered);
        let body = e.payload_json();
        assert_eq!(body["type"], "message.delivered");
        assert_eq!(body["data"]["message_id"], "m1");
        assert_eq!(body["data"]["conversation_id"], "c14155550142");
        assert_eq!(body["data"]["bulk_id"], serde_json::Value::Null);
        assert_eq!(body["timestamp"], "2026-12-01T15:00:00.000Z");

        sent.status = RecipientStatus::Sent;
        let mut failed = recipient(RecipientStatus::Failed);
        failed.error = Some(RecipientError::from_carrier_code(4720));
        let e = for_transition(&sent, &failed, at()).unwrap();
        let body = e.payload_json();
        assert_eq!(body["type"], "message.failed");
        assert_eq!(body["data"]["error"]["code"], "4720");
        assert!(!body["data"]["error"]["title"].as_str().unwrap().is_empty());
        assert!(!body["data"]["error"]["resolution"]
            .as_str()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn event_types_round_trip_and_unknown_ones_are_named() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
        }
        let e = EventType::parse("message.sent").unwrap_err();
        assert_eq!(e.code, "invalid_event_type");
        assert!(e.message.contains("message.received"));
    }
}
