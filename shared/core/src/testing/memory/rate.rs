//! Rate buckets, in memory.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::ports::RateStore;

use super::MemoryStore;

#[async_trait]
impl RateStore for MemoryStore {
    async fn read_bucket(
        &self,
        practice_id: &str,
        key: &str,
    ) -> Result<(crate::domain::rate_limit::RateBucket, Option<u64>), StoreError> {
        let s = self.0.lock().await;
        let b = s
            .buckets
            .get(&(practice_id.to_string(), key.to_string()))
            .cloned();
        let count = b.as_ref().map(|b| b.count);
        Ok((b.unwrap_or_default(), count))
    }
    async fn write_bucket(
        &self,
        practice_id: &str,
        key: &str,
        new: &crate::domain::rate_limit::RateBucket,
        expected_count: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let k = (practice_id.to_string(), key.to_string());
        if s.buckets.get(&k).map(|b| b.count) != expected_count {
            return Ok(false);
        }
        s.buckets.insert(k, new.clone());
        Ok(true)
    }
}
