//! What the direct message tests share.

use chrono::{DateTime, Utc};

use super::{Messages, SendMessageRequest};
use crate::testing::{MemoryQueue, MemoryScheduler, MemoryStore};

pub(super) fn service(
    store: &MemoryStore,
    queue: MemoryQueue,
) -> Messages<MemoryStore, MemoryStore, MemoryQueue, MemoryScheduler> {
    scheduling(store, queue, MemoryScheduler::default())
}

pub(super) fn scheduling(
    store: &MemoryStore,
    queue: MemoryQueue,
    scheduler: MemoryScheduler,
) -> Messages<MemoryStore, MemoryStore, MemoryQueue, MemoryScheduler> {
    Messages {
        practices: store.clone(),
        store: store.clone(),
        queue,
        scheduler,
        queue_delay_max: crate::domain::limits::SQS_MAX_DELAY,
    }
}

pub(super) fn now() -> DateTime<Utc> {
    "2026-12-01T14:00:00Z".parse().unwrap()
}

pub(super) fn request(to: &str, text: &str) -> (SendMessageRequest, serde_json::Value) {
    let value = serde_json::json!({"to": to, "text": text});
    (serde_json::from_value(value.clone()).unwrap(), value)
}
