//! The rolling-window rate caps and the buckets behind them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;

/// The rolling-window rate caps the dispatcher applies before each carrier
/// submission: a practice's bulk cap (key `bulk`) and each sending number's
/// throughput (key `number#{e164}`). Implemented for every [`RateStore`] by
/// `crate::app::rate_cap`.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one submission from the practice's bucket `key` at `now`, at most
    /// `cap` per rolling `window`: `None` when taken (submit now), or the
    /// instant capacity returns (nothing was taken; ask again then).
    async fn try_take(
        &self,
        practice_id: &str,
        key: &str,
        now: DateTime<Utc>,
        cap: u32,
        window: chrono::Duration,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Storage of rate buckets with optimistic concurrency: the write succeeds
/// only if the bucket's `count` is still the one read.
#[async_trait]
pub trait RateStore: Send + Sync {
    /// The bucket `key` of a practice, read consistently, and its stored
    /// `count` (`None` when no bucket is stored yet; the bucket is then empty).
    async fn read_bucket(
        &self,
        practice_id: &str,
        key: &str,
    ) -> Result<(crate::domain::rate_limit::RateBucket, Option<u64>), StoreError>;
    /// Stores `new` if the stored `count` is still `expected_count` (`None`:
    /// no bucket stored). `Ok(false)` when another writer got there first.
    async fn write_bucket(
        &self,
        practice_id: &str,
        key: &str,
        new: &crate::domain::rate_limit::RateBucket,
        expected_count: Option<u64>,
    ) -> Result<bool, StoreError>;
}
