//! What the conversation tests share: fixed numbers and instants.

use chrono::{DateTime, Utc};

use super::{Conversation, InboundEntry};
use crate::domain::phone::PhoneNumber;

pub(super) fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

pub(super) fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("test number")
}

pub(super) fn patient() -> PhoneNumber {
    phone("+14155550142")
}

pub(super) fn inbound(id: &str, text: &str, at: &str) -> InboundEntry {
    InboundEntry::new(id, patient(), phone("+14155550100"), text, utc(at), vec![])
}

pub(super) fn conversation() -> Conversation {
    Conversation::new(patient(), utc("2026-12-01T14:00:00Z"))
}

pub(super) fn last_text(c: &Conversation) -> &str {
    c.last_message.as_ref().map_or("", |m| m.text.as_str())
}
