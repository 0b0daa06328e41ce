//! The media-queue consumer: one [`MediaCopier::copy`] per record. The
//! record's `ApproximateReceiveCount` is the attempt; a copy to retry comes
//! back after its pause (its visibility changed, reported as a partial
//! batch failure), the others are deleted.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use super::batch::each_record;
use super::StartError;
use crate::config::{FromEnv, MediaCopierConfig};
use messaging_adapters::bandwidth::Bandwidth;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::s3::S3Media;
use messaging_adapters::sqs::SqsMediaQueue;
use messaging_core::app::media::{MediaCopied, MediaCopier, MAX_COPY_ATTEMPTS};
use messaging_core::domain::conversation::MediaCopyJob;
use messaging_core::ports::{CarrierMedia, ConversationStore, MediaStorage, RetryLater};

/// The media copier function.
pub struct MediaCopierFn<S = DynamoStore, C = Bandwidth, M = S3Media, Q = SqsMediaQueue> {
    copier: MediaCopier<S, C, M>,
    queue: Q,
}

impl MediaCopierFn {
    /// Reads [`MediaCopierConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(MediaCopierConfig::from_env()?, crate::config::aws()?).await
    }

    /// Builds the clients for `config`.
    pub async fn new(
        config: MediaCopierConfig,
        aws: messaging_adapters::aws::SdkConfig,
    ) -> Result<Self, StartError> {
        let password = config.carrier.password.resolve(&aws).await?;
        Ok(Self {
            copier: MediaCopier {
                store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
                carrier: Bandwidth::new(config.carrier.bandwidth(password))
                    .map_err(StartError::CarrierClient)?,
                storage: S3Media::new(&aws, config.media_bucket),
                max_attempts: MAX_COPY_ATTEMPTS,
            },
            queue: SqsMediaQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                config.media_queue_url.as_str(),
            ),
        })
    }
}

impl<S, C, M, Q> MediaCopierFn<S, C, M, Q>
where
    S: ConversationStore,
    C: CarrierMedia,
    M: MediaStorage,
    Q: RetryLater,
{
    /// A copier over any ports (tests).
    pub fn with(copier: MediaCopier<S, C, M>, queue: Q) -> Self {
        Self { copier, queue }
    }

    /// Handles one batch of queue records.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        each_record(&event.records, |r| self.handle_record(r)).await
    }

    /// Copies one record's job; `true` when the record should come back.
    async fn handle_record(&self, record: &SqsMessage) -> bool {
        let id = record.message_id.as_deref().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let job: MediaCopyJob = match serde_json::from_str(body) {
            Ok(job) => job,
            Err(e) => {
                // Not something we enqueued; retrying cannot fix it.
                tracing::error!(message_id = %id, error = %e, "unreadable media job dropped");
                return false;
            }
        };
        let attempt = attempt(record);
        let key = job.storage_key.as_str();
        match self.copier.copy(&job, attempt).await {
            Ok(MediaCopied::Ready) => {
                tracing::info!(key, attempt, "media copied");
                false
            }
            Ok(MediaCopied::Failed { reason }) => {
                tracing::warn!(key, attempt, reason, "media copy failed for good");
                false
            }
            Ok(MediaCopied::RetryAfter { seconds, reason }) => {
                tracing::info!(key, attempt, seconds, reason, "media copy will be retried");
                if let Some(handle) = record.receipt_handle.as_deref() {
                    if let Err(e) = self.queue.retry_later(handle, seconds).await {
                        tracing::warn!(error = %e, "could not set retry delay; default visibility applies");
                    }
                }
                true
            }
            Err(e) => {
                tracing::error!(key, attempt, error = %e, "media status not recorded; will be redelivered");
                true
            }
        }
    }
}

/// The record's delivery count (1 on first delivery).
fn attempt(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::domain::conversation::{
        Conversation, InboundEntry, MediaItem, MediaStatus, ThreadItem,
    };
    use messaging_core::domain::error::StoreError;
    use messaging_core::domain::phone::PhoneNumber;
    use messaging_core::testing::{MemoryCarrierMedia, MemoryMediaStorage, MemoryStore};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Delays(Arc<Mutex<Vec<(String, u32)>>>);

    #[async_trait::async_trait]
    impl RetryLater for Delays {
        async fn retry_later(&self, handle: &str, seconds: u32) -> Result<(), StoreError> {
            self.0.lock().unwrap().push((handle.to_string(), seconds));
            Ok(())
        }
    }

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+14155550142").unwrap()
    }

    /// A recorded inbound text with attachments at `urls`; a job per attachment.
    async fn recorded(store: &MemoryStore, urls: &[&str]) -> Vec<MediaCopyJob> {
        let at = "2026-12-01T15:00:00Z".parse().unwrap();
        let media = urls
            .iter()
            .enumerate()
            .map(|(i, u)| MediaItem::new(*u, "image/png", format!("media/p1/m1/{i}.png")))
            .collect();
        let entry = InboundEntry::new("m1", phone(), phone(), "", at, media);
        let item = ThreadItem::Inbound(entry);
        store
            .save_conversation(
                "p1",
                &Conversation::new(phone(), at),
                true,
                &[],
                Some(&item),
                at,
            )
            .await
            .unwrap();
        urls.iter()
            .enumerate()
            .map(|(i, u)| MediaCopyJob {
                practice_id: "p1".into(),
                phone: phone(),
                position: item.position(),
                index: i,
                carrier_url: (*u).into(),
                storage_key: format!("media/p1/m1/{i}.png"),
                content_type: "image/png".into(),
            })
            .collect()
    }

    fn record(id: &str, body: &str, receive_count: u32) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.receipt_handle = Some(format!("handle-{id}"));
        r.body = Some(body.into());
        r.attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        r
    }

    async fn statuses(store: &MemoryStore) -> Vec<MediaStatus> {
        let (items, _) = store.thread("p1", &phone(), 10, None).await.unwrap();
        match &items[0] {
            ThreadItem::Inbound(e) => e.media.iter().map(|m| m.status).collect(),
            ThreadItem::Outbound(_) => panic!("not inbound"),
        }
    }

    #[tokio::test]
    async fn only_retries_come_back_and_the_fifth_attempt_marks_failed() {
        let store = MemoryStore::default();
        let jobs = recorded(
            &store,
            &["https://c/ok", "https://c/busy", "https://c/gone"],
        )
        .await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add("https://c/ok", b"one").await;
        carrier.add("https://c/busy", b"two").await;
        let storage = MemoryMediaStorage::default();
        let delays = Delays::default();
        let f = MediaCopierFn::with(
            MediaCopier {
                store: store.clone(),
                carrier: carrier.clone(),
                storage: storage.clone(),
                max_attempts: MAX_COPY_ATTEMPTS,
            },
            delays.clone(),
        );
        let body = |i: usize| serde_json::to_string(&jobs[i]).unwrap();

        let mut event = SqsEvent::default();
        event.records = vec![
            record("a", &body(0), 1),
            record("junk", "{not json", 1),
            record("c", &body(2), 1),
        ];
        let response = f.handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            statuses(&store).await,
            [
                MediaStatus::Ready,
                MediaStatus::Copying,
                MediaStatus::Failed
            ]
        );
        assert_eq!(storage.object("media/p1/m1/0.png").await.unwrap().1, b"one");

        // The busy one: retried with the pause for its attempt, then given up.
        carrier.fail_next(u32::MAX).await;
        let mut event = SqsEvent::default();
        event.records = vec![record("b", &body(1), 3)];
        let response = f.handle(event).await;
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(*delays.0.lock().unwrap(), [("handle-b".to_string(), 40)]);
        assert_eq!(statuses(&store).await[1], MediaStatus::Copying);

        let mut event = SqsEvent::default();
        event.records = vec![record("b", &body(1), 5)];
        let response = f.handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(statuses(&store).await[1], MediaStatus::Failed);
    }

    #[test]
    fn the_attempt_is_the_receive_count() {
        assert_eq!(attempt(&record("a", "", 4)), 4);
        let mut r = record("a", "", 1);
        r.attributes.clear();
        assert_eq!(attempt(&r), 1);
    }
}
