//! Bandwidth Messaging v2 callbacks: delivery receipts and failures.
//! Duplicates and out-of-order callbacks are harmless because each is one
//! conditional write that only moves a recipient forward.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::error::StoreError;
use crate::domain::message::{RecipientError, SendJob};
use crate::ports::{MessageStore, Transition};

/// One event of a callback body (Bandwidth sends a JSON array of them).
#[derive(Debug, Clone, Deserialize)]
pub struct CarrierEvent {
    /// `message-delivered`, `message-failed`, `message-received`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// Bandwidth's error code on `message-failed`.
    #[serde(default, rename = "errorCode")]
    pub error_code: Option<u16>,
    /// The message the event is about.
    pub message: EventMessage,
}

/// The `message` object of a callback event.
#[derive(Debug, Clone, Deserialize)]
pub struct EventMessage {
    /// The carrier's message id.
    pub id: String,
    /// Our ids, as sent in the `tag`.
    #[serde(default)]
    pub tag: Option<String>,
}

/// What happened to each event, for the log and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Moved a recipient forward.
    pub recorded: u32,
    /// Duplicate, out of order, or for a message we do not know.
    pub ignored: u32,
}

/// Records delivery and failure callbacks; other event types are ignored.
pub async fn apply<M: MessageStore>(
    store: &M,
    events: &[CarrierEvent],
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    for event in events {
        let at = event.time.unwrap_or(now);
        let transition = match event.kind.as_str() {
            "message-delivered" => Transition::Delivered {
                carrier_message_id: event.message.id.clone(),
                at,
            },
            "message-failed" => Transition::Failed {
                carrier_message_id: Some(event.message.id.clone()),
                error: RecipientError::from_carrier_code(event.error_code.unwrap_or(0)),
                at,
            },
            other => {
                tracing::info!(kind = other, "callback type not handled");
                applied.ignored += 1;
                continue;
            }
        };
        let Some(job) = event.message.tag.as_deref().and_then(SendJob::from_tag) else {
            tracing::warn!(carrier_message_id = %event.message.id, "callback for a message we did not tag; ignored");
            applied.ignored += 1;
            continue;
        };
        match store.transition(&job, &transition).await? {
            Some(r) => {
                tracing::info!(%job, status = r.status.as_str(), "callback recorded");
                applied.recorded += 1;
            }
            None => {
                tracing::info!(%job, kind = %event.kind, "callback changes nothing (duplicate, late or unknown)");
                applied.ignored += 1;
            }
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::memory::{queued_recipient, MemoryStore};
    use crate::domain::message::RecipientStatus;

    fn event(kind: &str, id: &str, tag: &str, code: Option<u16>) -> CarrierEvent {
        serde_json::from_value(serde_json::json!({
            "type": kind, "time": "2026-11-26T15:00:01Z", "errorCode": code,
            "message": {"id": id, "tag": tag, "to": ["+14155550100"], "from": "+14155550199"}
        }))
        .unwrap()
    }

    async fn sent_recipient(store: &MemoryStore) -> SendJob {
        let job = store.insert_recipient(queued_recipient()).await;
        let now = Utc::now();
        store
            .transition(&job, &Transition::Claim { at: now })
            .await
            .unwrap()
            .unwrap();
        store
            .transition(
                &job,
                &Transition::Sent {
                    carrier_message_id: "c-1".into(),
                    at: now,
                },
            )
            .await
            .unwrap()
            .unwrap();
        job
    }

    #[tokio::test]
    async fn late_failure_never_overrides_delivery() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store).await;
        let tag = job.to_tag();
        let a = apply(
            &store,
            &[event("message-delivered", "c-1", &tag, None)],
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(a.recorded, 1);
        let b = apply(
            &store,
            &[
                event("message-delivered", "c-1", &tag, None),
                event("message-failed", "c-1", &tag, Some(4720)),
            ],
            Utc::now(),
        )
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
    async fn failure_callback_records_the_catalog_entry() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store).await;
        apply(
            &store,
            &[event("message-failed", "c-1", &job.to_tag(), Some(4720))],
            Utc::now(),
        )
        .await
        .unwrap();
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        let e = r.error.unwrap();
        assert_eq!(e.code, "4720");
        assert_eq!(e.title, "Carrier rejected as invalid destination address");
    }

    #[tokio::test]
    async fn callback_with_unknown_carrier_id_or_tag_changes_nothing() {
        let store = MemoryStore::default();
        let job = sent_recipient(&store).await;
        let a = apply(
            &store,
            &[
                event("message-delivered", "someone-else", &job.to_tag(), None),
                event("message-delivered", "c-1", "garbage", None),
                event("message-delivered", "c-1", "demo/nope/00001", None),
            ],
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
}
