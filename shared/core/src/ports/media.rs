//! Attachments of inbound texts: the copy queue, the carrier's files, our
//! storage and the links to it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::conversation::MediaCopyJob;
use crate::domain::error::StoreError;

/// The queue of attachments waiting to be copied from the carrier.
#[async_trait]
pub trait MediaQueue: Send + Sync {
    /// Enqueues copy jobs.
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError>;
}

/// Why a download of an inbound attachment from the carrier failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaFetchError {
    /// Trying again cannot help: the file is gone (404, 410), the carrier
    /// refused us (other 4xx), it is larger than we keep, or its link is not
    /// on the carrier's API host.
    Permanent(String),
    /// Worth another try later: 5xx, 429, a timeout, a connection failure.
    Retryable(String),
}

impl std::fmt::Display for MediaFetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaFetchError::Permanent(why) => write!(f, "permanent: {why}"),
            MediaFetchError::Retryable(why) => write!(f, "retryable: {why}"),
        }
    }
}

/// Downloads the attachments of inbound texts from the carrier, which keeps
/// them (behind its API credentials) for a limited time.
#[async_trait]
pub trait CarrierMedia: Send + Sync {
    /// The file behind `url`, a media link the carrier put in a callback.
    async fn download(&self, url: &str) -> Result<Vec<u8>, MediaFetchError>;
}

/// The deployment's own, private storage for copied attachments.
#[async_trait]
pub trait MediaStorage: Send + Sync {
    /// Stores `bytes` under `key` (replacing what is there: a retried copy
    /// writes the same object).
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
}

/// Time-limited links to stored attachments, for the API to hand out.
#[async_trait]
pub trait MediaLinks: Send + Sync {
    /// A URL anyone holding it can read the object at `key` with, until the
    /// returned instant (`expires_in` after `now`, when it is signed).
    async fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), StoreError>;
}

/// Where a retry's pause is set: the queue the record came from.
#[async_trait::async_trait]
pub trait RetryLater: Send + Sync {
    /// Makes the received record visible again in `seconds`.
    async fn retry_later(
        &self,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), crate::domain::error::StoreError>;
}
