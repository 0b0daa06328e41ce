//! What the bulk tests share: a practice with patients, the use cases over
//! in-memory ports, a clock the test moves, and what the tests read back.

use std::sync::{Arc, Mutex as StdMutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{BulkMessages, BulkRequest};
use crate::domain::bulk::{PumpJob, QueuedJob};
use crate::domain::error::AppError;
use crate::domain::message::SendJob;
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::ports::{BulkStore, Clock, PracticeStore};
use crate::testing::{MemoryQueue, MemoryScheduler, MemoryStore};

pub const T0: &str = "2026-12-01T15:00:00Z";

/// A clock the test moves.
#[derive(Clone)]
pub struct TestClock(pub Arc<StdMutex<DateTime<Utc>>>);
impl TestClock {
    pub fn new() -> Self {
        Self(Arc::new(StdMutex::new(T0.parse().unwrap())))
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub fn phone(i: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1415555{:04}", 2000 + i)).unwrap()
}

pub async fn setup(practice: &Practice, patients: u32) -> MemoryStore {
    let store = MemoryStore::default();
    store.add_practice(practice.clone(), "key").await;
    for i in 0..patients {
        let p = Patient {
            patient_id: format!("p-{i:03}"),
            first_name: format!("Pat{i}"),
            last_name: (i % 2 == 0).then(|| "Diaz".to_string()),
            phone: phone(i),
            // ages 20, 21, ... on 2026-12-01
            birth_date: Some(NaiveDate::from_ymd_opt(2006 - i as i32, 1, 1).unwrap()),
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient(&practice.practice_id, &p).await.unwrap();
    }
    store
}

pub fn bulk_app(
    store: &MemoryStore,
    queue: &MemoryQueue,
) -> BulkMessages<MemoryStore, MemoryQueue, MemoryScheduler> {
    BulkMessages {
        store: store.clone(),
        queue: queue.clone(),
        scheduler: MemoryScheduler::default(),
        queue_delay_max: Duration::seconds(900),
        per_second: 1,
    }
}

pub async fn accept(
    app: &BulkMessages<MemoryStore, MemoryQueue, MemoryScheduler>,
    practice: &Practice,
    body: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, AppError> {
    let request: BulkRequest = serde_json::from_value(body.clone()).unwrap();
    let answer = app.accept(practice, request, &body, None, now).await?;
    assert_eq!(answer.status, 202);
    Ok(serde_json::from_str(&answer.body).unwrap())
}

pub fn ids(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("p-{i:03}")).collect()
}

pub async fn stored_messages(store: &MemoryStore, practice: &Practice) -> usize {
    store
        .sending_bulks(&practice.practice_id)
        .await
        .unwrap()
        .len()
}

/// The pump job among queued jobs (panics on a recipient's send).
pub fn as_pump(job: SendJob) -> PumpJob {
    match QueuedJob::from(job) {
        QueuedJob::Pump(pump) => pump,
        other => panic!("{other:?} is not a pump job"),
    }
}

/// Whether a queued job is a bulk's pump.
pub fn is_pump(job: &SendJob) -> bool {
    matches!(QueuedJob::from(job.clone()), QueuedJob::Pump(_))
}

pub async fn sent_times(
    store: &MemoryStore,
    practice_id: &str,
    message_id: &str,
) -> Vec<DateTime<Utc>> {
    let (all, _) = store
        .recipients_page(practice_id, message_id, None, 10_000, None)
        .await
        .unwrap();
    let mut t: Vec<_> = all.iter().filter_map(|r| r.sent_at).collect();
    t.sort();
    t
}

pub fn max_in_window(times: &[DateTime<Utc>], window: Duration) -> usize {
    times
        .iter()
        .map(|a| {
            times
                .iter()
                .filter(|b| **b >= *a && **b < *a + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}
