//! The media queue, the carrier's media API and our storage, in memory.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::domain::conversation::MediaCopyJob;
use crate::domain::error::StoreError;
use crate::ports::{CarrierMedia, MediaFetchError, MediaLinks, MediaQueue, MediaStorage};

use super::MemoryQueue;

#[async_trait]
impl MediaQueue for MemoryQueue {
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("enqueue media", "queue unavailable"));
        }
        self.media.lock().await.extend_from_slice(jobs);
        Ok(())
    }
}

/// The carrier's media API in memory: files by URL; an unknown URL is a
/// 404 (permanent), and it can be told to answer the next downloads with a
/// 503 (retryable), like the simulator's `media_failures`.
#[derive(Clone, Default)]
pub struct MemoryCarrierMedia {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    failures: Arc<Mutex<u32>>,
    /// Every URL asked for, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl MemoryCarrierMedia {
    /// Serves `bytes` at `url`.
    pub async fn add(&self, url: &str, bytes: &[u8]) {
        self.files
            .lock()
            .await
            .insert(url.to_string(), bytes.to_vec());
    }

    /// Answers the next `times` downloads with a 503.
    pub async fn fail_next(&self, times: u32) {
        *self.failures.lock().await = times;
    }
}

#[async_trait]
impl CarrierMedia for MemoryCarrierMedia {
    async fn download(&self, url: &str) -> Result<Vec<u8>, MediaFetchError> {
        self.requests.lock().await.push(url.to_string());
        let mut failures = self.failures.lock().await;
        if *failures > 0 {
            *failures -= 1;
            return Err(MediaFetchError::Retryable("HTTP 503".into()));
        }
        self.files
            .lock()
            .await
            .get(url)
            .cloned()
            .ok_or_else(|| MediaFetchError::Permanent("HTTP 404: no such media".into()))
    }
}

/// A stored object: its content type and bytes.
type StoredObject = (String, Vec<u8>);

/// Object storage in memory: `(content type, bytes)` by key; links are
/// `memory://{key}?expires_in={seconds}`. Can be told to refuse.
#[derive(Clone, Default)]
pub struct MemoryMediaStorage {
    objects: Arc<Mutex<HashMap<String, StoredObject>>>,
    /// Refuse every put and every link.
    pub refuse: bool,
}

impl MemoryMediaStorage {
    /// A storage that refuses everything.
    pub fn refusing() -> Self {
        Self {
            refuse: true,
            ..Self::default()
        }
    }

    /// The object stored under `key`: its content type and bytes.
    pub async fn object(&self, key: &str) -> Option<StoredObject> {
        self.objects.lock().await.get(key).cloned()
    }

    /// How many objects are stored.
    pub async fn count(&self) -> usize {
        self.objects.lock().await.len()
    }
}

#[async_trait]
impl MediaStorage for MemoryMediaStorage {
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("store media", "storage unavailable"));
        }
        self.objects
            .lock()
            .await
            .insert(key.to_string(), (content_type.to_string(), bytes));
        Ok(())
    }
}

#[async_trait]
impl MediaLinks for MemoryMediaStorage {
    async fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        if self.refuse {
            return Err(StoreError::new("sign media link", "no credentials"));
        }
        let expires_at = now
            + chrono::Duration::from_std(expires_in)
                .map_err(|e| StoreError::new("sign media link", e))?;
        Ok((
            format!("memory://{key}?expires_in={}", expires_in.as_secs()),
            expires_at,
        ))
    }
}
