//! What a warm instance remembers of what it read: one value per key,
//! trusted for a fixed time, at most a fixed number of keys. The API's key
//! lookups ([`crate::app::auth::Authenticator`]) and the dispatcher's
//! practices ([`crate::app::dispatch::PracticeCache`]) use it.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Values by key, each trusted for `ttl` after it was stored.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache trusting a value for `ttl`, holding at most
    /// `capacity` keys.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value stored under `key` less than `ttl` ago.
    pub async fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().await;
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    /// Stores `value` under `key` from now. A full cache first drops what
    /// has expired, and everything when nothing has.
    pub async fn insert(&self, key: String, value: V) {
        let mut entries = self.entries.lock().await;
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// The fresh value under `key`, or else what `load` reads (stored when
    /// it succeeds; a failure is not remembered).
    pub async fn get_or_load<E, F>(&self, key: &str, load: impl FnOnce() -> F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(key).await {
            return Ok(value);
        }
        let value = load().await?;
        self.insert(key.to_string(), value.clone()).await;
        Ok(value)
    }

    /// Applies `change` to every stored value, keeping when it was stored.
    pub async fn update_all(&self, mut change: impl FnMut(&mut V)) {
        for (value, _) in self.entries.lock().await.values_mut() {
            change(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_served_until_it_expires_then_read_again() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        let mut reads = 0;
        for _ in 0..3 {
            let v: Result<u32, ()> = cache
                .get_or_load("k", || {
                    reads += 1;
                    async { Ok(7) }
                })
                .await;
            assert_eq!(v, Ok(7));
        }
        assert_eq!(reads, 1);

        let expired = TtlCache::new(Duration::ZERO, 10);
        expired.insert("k".into(), 1).await;
        assert_eq!(expired.get("k").await, None);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_remembered() {
        let cache: TtlCache<u32> = TtlCache::new(Duration::from_secs(60), 10);
        let failed: Result<u32, &str> = cache.get_or_load("k", || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get("k").await, None);
    }

    #[tokio::test]
    async fn a_full_cache_makes_room() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.insert("a".into(), 1).await;
        cache.insert("b".into(), 2).await;
        // Replacing a key needs no room.
        cache.insert("b".into(), 3).await;
        assert_eq!(
            (cache.get("a").await, cache.get("b").await),
            (Some(1), Some(3))
        );
        // Nothing expired: everything goes, then the new key is stored.
        cache.insert("c".into(), 4).await;
        assert_eq!(cache.get("a").await, None);
        assert_eq!(cache.get("c").await, Some(4));
    }

    #[tokio::test]
    async fn update_all_changes_stored_values() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        cache.insert("a".into(), 1).await;
        cache.insert("b".into(), 2).await;
        cache.update_all(|v| *v *= 10).await;
        assert_eq!(
            (cache.get("a").await, cache.get("b").await),
            (Some(10), Some(20))
        );
    }
}
