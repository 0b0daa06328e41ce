//! Pictures and files patients text in (MMS): copied from the carrier, which
//! keeps them 48 hours behind its API credentials, into the deployment's own
//! storage, and handed out as time-limited links.
//!
//! The webhook records the inbound text at once, its attachments `copying`,
//! and queues one [`MediaCopyJob`] per attachment; the copy never holds up
//! the text. [`MediaCopier::copy`] runs one job (download, store, mark
//! `ready`); a permanent failure, or a retryable one on the last attempt,
//! marks the attachment `failed`, so the thread always ends up saying what
//! happened. Reading the thread turns each ready attachment's storage key
//! into a fresh link ([`link_media`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::conversation::{MediaCopyJob, MediaStatus, ThreadEntry};
use crate::domain::error::{AppError, StoreError};
use crate::domain::limits::SQS_MAX_DELAY_SECONDS;
use crate::ports::{CarrierMedia, ConversationStore, MediaFetchError, MediaLinks, MediaStorage};

/// Attempts at one copy before the attachment is marked failed (the media
/// queue's `maxReceiveCount` is the same, so only a job whose failure could
/// not even be recorded reaches the dead-letter queue).
pub const MAX_COPY_ATTEMPTS: u32 = 5;

/// Pause before the first retry of a copy; doubled for each further one
/// (10, 20, 40, 80 s: the last attempt runs about 2.5 minutes after the first).
pub const COPY_RETRY_BASE_SECONDS: u32 = 10;

/// How long a link the thread hands out works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How one attempt at a copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCopied {
    /// Stored and marked `ready`.
    Ready,
    /// Marked `failed`: trying again cannot help, or this was the last attempt.
    Failed {
        /// Why, for the log.
        reason: String,
    },
    /// Try again after this many seconds.
    RetryAfter {
        /// Delay before the next attempt.
        seconds: u32,
        /// What went wrong, for the log.
        reason: String,
    },
}

/// Copies attachments from the carrier into storage.
pub struct MediaCopier<S, C, M> {
    /// Where the thread (and each attachment's status) is.
    pub store: S,
    /// The carrier's media API.
    pub carrier: C,
    /// The deployment's storage.
    pub storage: M,
    /// Attempts before giving up ([`MAX_COPY_ATTEMPTS`]).
    pub max_attempts: u32,
}

/// The pause after failed attempt `attempt` (1-based).
pub fn retry_delay(attempt: u32) -> u32 {
    COPY_RETRY_BASE_SECONDS
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(SQS_MAX_DELAY_SECONDS)
}

impl<S: ConversationStore, C: CarrierMedia, M: MediaStorage> MediaCopier<S, C, M> {
    /// One attempt (`attempt`, 1-based: the queue's receive count) at
    /// copying `job`.
    ///
    /// # Errors
    ///
    /// The attachment's status could not be recorded; the job should come
    /// back (what was stored is overwritten by the retry).
    pub async fn copy(&self, job: &MediaCopyJob, attempt: u32) -> Result<MediaCopied, StoreError> {
        let last = attempt >= self.max_attempts;
        let failure = match self.carrier.download(&job.carrier_url).await {
            Ok(bytes) => {
                match self
                    .storage
                    .put(&job.storage_key, &job.content_type, bytes)
                    .await
                {
                    Ok(()) => {
                        self.mark(job, MediaStatus::Ready).await?;
                        return Ok(MediaCopied::Ready);
                    }
                    Err(e) => MediaFetchError::Retryable(e.to_string()),
                }
            }
            Err(e) => e,
        };
        match failure {
            MediaFetchError::Retryable(reason) if !last => Ok(MediaCopied::RetryAfter {
                seconds: retry_delay(attempt),
                reason,
            }),
            MediaFetchError::Retryable(reason) => {
                self.mark(job, MediaStatus::Failed).await?;
                Ok(MediaCopied::Failed {
                    reason: format!("gave up after {attempt} attempts: {reason}"),
                })
            }
            MediaFetchError::Permanent(reason) => {
                self.mark(job, MediaStatus::Failed).await?;
                Ok(MediaCopied::Failed { reason })
            }
        }
    }

    async fn mark(&self, job: &MediaCopyJob, status: MediaStatus) -> Result<(), StoreError> {
        self.store
            .set_media_status(
                &job.practice_id,
                &job.phone,
                &job.position,
                job.index,
                status,
            )
            .await
    }
}

/// Gives every ready attachment in `entries` a fresh link valid for
/// `lifetime` from `now` (and its expiry); the others keep `url` and
/// `expires_at` null.
///
/// # Errors
///
/// 503 when a link cannot be made (the signer's credentials are unavailable).
pub async fn link_media<L: MediaLinks + ?Sized>(
    links: &L,
    entries: &mut [ThreadEntry],
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for media in entries.iter_mut().flat_map(|e| e.media.iter_mut()) {
        (media.url, media.expires_at) = if media.status == MediaStatus::Ready {
            let (url, expires_at) = links
                .presigned_get(&media.storage_key, lifetime, now)
                .await?;
            (Some(url), Some(expires_at))
        } else {
            (None, None)
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::{InboundEntry, MediaItem, ThreadItem};
    use crate::domain::phone::PhoneNumber;
    use crate::ports::ConversationStore;
    use crate::testing::{MemoryCarrierMedia, MemoryMediaStorage, MemoryStore};
    use chrono::{DateTime, Utc};

    const URL: &str = "https://messaging.bandwidth.com/api/v2/users/99/media/m1/0/a.png";

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+14155550142").expect("phone")
    }

    fn at() -> DateTime<Utc> {
        "2026-12-01T15:00:00Z".parse().expect("time")
    }

    /// An inbound text with two attachments, recorded in the store; the
    /// job for its first one.
    async fn recorded(store: &MemoryStore) -> MediaCopyJob {
        let entry = InboundEntry::new(
            "m1",
            phone(),
            PhoneNumber::parse("+14155550100").expect("phone"),
            "",
            at(),
            vec![
                MediaItem::new(URL, "image/png", "media/p1/m1/0.png"),
                MediaItem::new(format!("{URL}2"), "image/jpeg", "media/p1/m1/1.jpg"),
            ],
        );
        let item = ThreadItem::Inbound(entry);
        let conversation = crate::domain::conversation::Conversation::new(phone(), at());
        store
            .save_conversation("p1", &conversation, true, &[], Some(&item), at())
            .await
            .expect("save");
        MediaCopyJob {
            practice_id: "p1".into(),
            phone: phone(),
            position: item.position(),
            index: 0,
            carrier_url: URL.into(),
            storage_key: "media/p1/m1/0.png".into(),
            content_type: "image/png".into(),
        }
    }

    async fn statuses(store: &MemoryStore) -> Vec<MediaStatus> {
        let (items, _) = store
            .thread("p1", &phone(), 10, None)
            .await
            .expect("thread");
        match &items[0] {
            ThreadItem::Inbound(e) => e.media.iter().map(|m| m.status).collect(),
            ThreadItem::Outbound(_) => panic!("not inbound"),
        }
    }

    fn copier(
        store: &MemoryStore,
        carrier: &MemoryCarrierMedia,
        storage: &MemoryMediaStorage,
    ) -> MediaCopier<MemoryStore, MemoryCarrierMedia, MemoryMediaStorage> {
        MediaCopier {
            store: store.clone(),
            carrier: carrier.clone(),
            storage: storage.clone(),
            max_attempts: MAX_COPY_ATTEMPTS,
        }
    }

    #[tokio::test]
    async fn a_copy_stores_the_file_under_its_key_and_marks_only_that_attachment_ready() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add(URL, b"\x89PNG picture").await;
        let storage = MemoryMediaStorage::default();

        let outcome = copier(&store, &carrier, &storage).copy(&job, 1).await;
        assert_eq!(outcome.expect("copy"), MediaCopied::Ready);
        assert_eq!(
            storage.object("media/p1/m1/0.png").await,
            Some(("image/png".to_string(), b"\x89PNG picture".to_vec()))
        );
        assert_eq!(
            statuses(&store).await,
            [MediaStatus::Ready, MediaStatus::Copying]
        );
    }

    #[tokio::test]
    async fn a_redelivered_job_copies_again_to_the_same_object() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add(URL, b"picture").await;
        let storage = MemoryMediaStorage::default();
        let c = copier(&store, &carrier, &storage);
        assert_eq!(c.copy(&job, 1).await.expect("copy"), MediaCopied::Ready);
        assert_eq!(c.copy(&job, 1).await.expect("copy"), MediaCopied::Ready);
        assert_eq!(storage.count().await, 1);
        assert_eq!(
            statuses(&store).await,
            [MediaStatus::Ready, MediaStatus::Copying]
        );
    }

    #[tokio::test]
    async fn a_gone_file_fails_at_once() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default(); // knows no file: 404
        let storage = MemoryMediaStorage::default();
        let outcome = copier(&store, &carrier, &storage)
            .copy(&job, 1)
            .await
            .expect("copy");
        assert!(
            matches!(&outcome, MediaCopied::Failed { reason } if reason.contains("404")),
            "{outcome:?}"
        );
        assert_eq!(storage.count().await, 0);
        assert_eq!(
            statuses(&store).await,
            [MediaStatus::Failed, MediaStatus::Copying]
        );
    }

    #[tokio::test]
    async fn carrier_trouble_is_retried_with_growing_pauses_then_marked_failed() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add(URL, b"picture").await;
        carrier.fail_next(u32::MAX).await;
        let storage = MemoryMediaStorage::default();
        let c = copier(&store, &carrier, &storage);
        let mut pauses = Vec::new();
        for attempt in 1..MAX_COPY_ATTEMPTS {
            match c.copy(&job, attempt).await.expect("copy") {
                MediaCopied::RetryAfter { seconds, reason } => {
                    assert!(reason.contains("503"), "{reason}");
                    pauses.push(seconds);
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
            assert_eq!(
                statuses(&store).await,
                [MediaStatus::Copying, MediaStatus::Copying],
                "still copying while retries are left"
            );
        }
        assert_eq!(pauses, [10, 20, 40, 80]);
        let last = c.copy(&job, MAX_COPY_ATTEMPTS).await.expect("copy");
        assert!(
            matches!(&last, MediaCopied::Failed { reason } if reason.starts_with("gave up after 5 attempts")),
            "{last:?}"
        );
        assert_eq!(
            statuses(&store).await,
            [MediaStatus::Failed, MediaStatus::Copying]
        );
    }

    #[tokio::test]
    async fn a_transient_failure_then_success_ends_ready() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add(URL, b"picture").await;
        carrier.fail_next(1).await;
        let storage = MemoryMediaStorage::default();
        let c = copier(&store, &carrier, &storage);
        assert!(matches!(
            c.copy(&job, 1).await.expect("copy"),
            MediaCopied::RetryAfter { seconds: 10, .. }
        ));
        assert_eq!(c.copy(&job, 2).await.expect("copy"), MediaCopied::Ready);
        assert_eq!(
            statuses(&store).await,
            [MediaStatus::Ready, MediaStatus::Copying]
        );
    }

    #[tokio::test]
    async fn storage_trouble_is_retried_like_carrier_trouble() {
        let store = MemoryStore::default();
        let job = recorded(&store).await;
        let carrier = MemoryCarrierMedia::default();
        carrier.add(URL, b"picture").await;
        let storage = MemoryMediaStorage::refusing();
        let c = copier(&store, &carrier, &storage);
        assert!(matches!(
            c.copy(&job, 2).await.expect("copy"),
            MediaCopied::RetryAfter { seconds: 20, .. }
        ));
        assert_eq!(statuses(&store).await[0], MediaStatus::Copying);
        assert!(matches!(
            c.copy(&job, 5).await.expect("copy"),
            MediaCopied::Failed { .. }
        ));
        assert_eq!(statuses(&store).await[0], MediaStatus::Failed);
    }

    #[test]
    fn retry_pauses_double_and_stay_within_the_queue_delay() {
        assert_eq!(
            (1..=5).map(retry_delay).collect::<Vec<_>>(),
            [10, 20, 40, 80, 160]
        );
        assert_eq!(retry_delay(40), SQS_MAX_DELAY_SECONDS);
    }

    fn view(status: MediaStatus, key: &str) -> crate::domain::conversation::MediaView {
        let mut item = MediaItem::new(URL, "image/png", key);
        item.status = status;
        item.view()
    }

    #[tokio::test]
    async fn the_thread_links_ready_attachments_only_with_fresh_urls() {
        let mut entry = InboundEntry::new("m1", phone(), phone(), "look", at(), Vec::new()).view();
        entry.media = vec![
            view(MediaStatus::Ready, "media/p1/m1/0.png"),
            view(MediaStatus::Copying, "media/p1/m1/1.png"),
            view(MediaStatus::Failed, "media/p1/m1/2.png"),
        ];
        let mut entries = vec![entry];
        let links = MemoryMediaStorage::default();
        link_media(&links, &mut entries, LINK_LIFETIME, at())
            .await
            .expect("links");
        let json = serde_json::to_value(&entries[0].media).expect("json");
        let first = &json[0];
        assert_eq!(
            first["url"].as_str().expect("url"),
            "memory://media/p1/m1/0.png?expires_in=900"
        );
        assert!(first["expires_at"].is_string(), "{first}");
        assert_eq!(first["status"], "ready");
        assert_eq!(first["content_type"], "image/png");
        for (item, status) in json.as_array().expect("array")[1..]
            .iter()
            .zip(["copying", "failed"])
        {
            assert_eq!(
                item,
                &serde_json::json!({"url": null, "content_type": "image/png", "status": status, "expires_at": null})
            );
        }
        assert!(
            json.as_array()
                .expect("array")
                .iter()
                .all(|m| m.get("storage_key").is_none()),
            "the storage key is never shown"
        );
    }

    #[tokio::test]
    async fn a_link_that_cannot_be_made_is_a_503() {
        let mut entry = InboundEntry::new("m1", phone(), phone(), "", at(), Vec::new()).view();
        entry.media = vec![view(MediaStatus::Ready, "k")];
        let links = MemoryMediaStorage::refusing();
        let e = link_media(&links, &mut [entry], LINK_LIFETIME, at())
            .await
            .expect_err("refused");
        assert_eq!(e.kind, crate::domain::error::ErrorKind::Unavailable);
    }
}
