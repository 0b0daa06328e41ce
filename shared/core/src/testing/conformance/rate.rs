//! Rate buckets.

use super::{phone, Store};
use crate::domain::rate_limit::RateBucket;

/// A rate bucket is written only if its `count` is still the one read (or
/// it is still absent); buckets are per practice and key.
pub async fn rate_bucket_writes_are_conditioned_on_the_count<S: Store>(
    store: S,
    practice_id: &str,
) {
    let number_key = format!("number#{}", phone());
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (RateBucket::default(), None)
    );
    let one = RateBucket {
        count: 1,
        slots: vec![1_700_000_000_000],
    };
    let two = RateBucket {
        count: 2,
        slots: vec![1_700_000_000_000, 1_700_000_001_000],
    };
    assert!(!store
        .write_bucket(practice_id, "bulk", &one, Some(0))
        .await
        .unwrap());
    assert!(store
        .write_bucket(practice_id, "bulk", &one, None)
        .await
        .unwrap());
    assert!(
        !store
            .write_bucket(practice_id, "bulk", &one, None)
            .await
            .unwrap(),
        "another writer created it first"
    );
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (one.clone(), Some(1))
    );
    assert!(!store
        .write_bucket(practice_id, "bulk", &two, Some(0))
        .await
        .unwrap());
    assert!(store
        .write_bucket(practice_id, "bulk", &two, Some(1))
        .await
        .unwrap());
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (two, Some(2))
    );

    assert_eq!(
        store.read_bucket(practice_id, &number_key).await.unwrap(),
        (RateBucket::default(), None)
    );
    assert!(store
        .write_bucket(practice_id, &number_key, &one, None)
        .await
        .unwrap());
    assert_eq!(
        store.read_bucket(practice_id, &number_key).await.unwrap(),
        (one, Some(1))
    );
    assert_eq!(
        store
            .read_bucket(&format!("{practice_id}-other"), "bulk")
            .await
            .unwrap(),
        (RateBucket::default(), None)
    );
}
