//! What the conversation use case tests share.

use chrono::{DateTime, TimeZone, Utc};

use crate::app::messages::{Messages, SendNowOnly};
use crate::domain::conversation::InboundEntry;
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::ports::PracticeStore;
use crate::testing::{MemoryQueue, MemoryStore};

pub(super) fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 15, minute, 0).unwrap()
}

pub(super) fn phone(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n).unwrap()
}

pub(super) fn text(id: &str, from: &str, body: &str, minute: u32) -> InboundEntry {
    InboundEntry::new(
        id,
        phone(from),
        phone("+14155550100"),
        body,
        at(minute),
        Vec::new(),
    )
}

pub(super) async fn patient(store: &MemoryStore, id: &str, number: &str) {
    let p = Patient {
        patient_id: id.into(),
        first_name: format!("Pat-{id}"),
        last_name: None,
        phone: phone(number),
        birth_date: None,
        sms_opted_out: false,
        sms_undeliverable: None,
    };
    store.put_patient("p1", &p).await.unwrap();
}

pub(super) fn messages(
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
