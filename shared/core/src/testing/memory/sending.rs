//! The send queue, a scripted carrier and the send schedules, in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::domain::conversation::MediaCopyJob;
use crate::domain::error::StoreError;
use crate::domain::message::SendJob;
use crate::ports::{Carrier, CarrierOutcome, OutboundText, SendQueue, SendScheduler};

/// Records enqueued jobs; can be told to refuse.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    pub jobs: Arc<Mutex<Vec<SendJob>>>,
    pub delayed: Arc<Mutex<Vec<(SendJob, u32)>>>,
    pub refuse: bool,
    /// Attachments waiting to be copied.
    pub media: Arc<Mutex<Vec<MediaCopyJob>>>,
}

#[async_trait]
impl SendQueue for MemoryQueue {
    async fn enqueue(&self, jobs: &[SendJob]) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("enqueue sends", "queue unavailable"));
        }
        self.jobs.lock().await.extend_from_slice(jobs);
        Ok(())
    }
    async fn retry_later(
        &self,
        _receipt_handle: &str,
        _delay_seconds: u32,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn enqueue_wave(&self, jobs: &[(SendJob, u32)]) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("enqueue sends", "queue unavailable"));
        }
        self.delayed.lock().await.extend_from_slice(jobs);
        Ok(())
    }
    async fn enqueue_delayed(&self, job: &SendJob, delay_seconds: u32) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("enqueue sends", "queue unavailable"));
        }
        self.delayed.lock().await.push((job.clone(), delay_seconds));
        Ok(())
    }
}

/// A carrier that answers from a script, then accepts.
#[derive(Clone, Default)]
pub struct ScriptedCarrier {
    script: Arc<Mutex<VecDeque<CarrierOutcome>>>,
    calls: Arc<Mutex<u32>>,
    texts: Arc<Mutex<Vec<OutboundText>>>,
}

impl ScriptedCarrier {
    pub fn accepting() -> Self {
        Self::default()
    }
    pub fn with(outcomes: Vec<CarrierOutcome>) -> Self {
        Self {
            script: Arc::new(Mutex::new(outcomes.into())),
            calls: Arc::default(),
            texts: Arc::default(),
        }
    }
    pub async fn calls(&self) -> u32 {
        *self.calls.lock().await
    }
    /// Every text submitted, in order.
    pub async fn texts(&self) -> Vec<OutboundText> {
        self.texts.lock().await.clone()
    }
}

#[async_trait]
impl Carrier for ScriptedCarrier {
    async fn send(&self, text: &OutboundText) -> CarrierOutcome {
        self.texts.lock().await.push(text.clone());
        let mut calls = self.calls.lock().await;
        *calls += 1;
        self.script
            .lock()
            .await
            .pop_front()
            .unwrap_or_else(|| CarrierOutcome::Accepted {
                carrier_message_id: format!("carrier-{calls}"),
            })
    }
}

/// Schedule name → (fire time, job).
pub type Schedules = Arc<Mutex<HashMap<String, (DateTime<Utc>, SendJob)>>>;

/// Records schedules; can be told to fail.
#[derive(Clone, Default)]
pub struct MemoryScheduler {
    pub schedules: Schedules,
    pub fail: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl SendScheduler for MemoryScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        job: &SendJob,
    ) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("create schedule", "scheduler unavailable"));
        }
        self.schedules
            .lock()
            .await
            .insert(name.to_string(), (at, job.clone()));
        Ok(())
    }
    async fn unschedule(&self, name: &str) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("delete schedule", "scheduler unavailable"));
        }
        self.schedules.lock().await.remove(name);
        Ok(())
    }
}
