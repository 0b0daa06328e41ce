//! In-memory ports for unit tests of the use cases (compiled only for tests).
//! Adapters are tested against the emulator; these only stand in for them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::app::auth::hash_key;
use crate::domain::clock::Clock;
use crate::domain::error::StoreError;
use crate::domain::message::{Message, Recipient, RecipientStatus, SendJob};
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channels, Practice};
use crate::ports::*;

#[derive(Default)]
struct State {
    practices: HashMap<String, Practice>,
    keys: HashMap<String, String>,
    patients: HashMap<(String, String), Patient>,
    messages: HashMap<(String, String), Message>,
    recipients: HashMap<(String, String, String), Recipient>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
}

#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

fn rkey(job: &SendJob) -> (String, String, String) {
    (
        job.practice_id.clone(),
        job.message_id.clone(),
        job.recipient_id.clone(),
    )
}

impl MemoryStore {
    pub async fn add_practice(&self, p: Practice, key: &str) {
        let mut s = self.0.lock().await;
        s.keys.insert(hash_key(key), p.practice_id.clone());
        s.practices.insert(p.practice_id.clone(), p);
    }

    pub async fn insert_recipient(&self, r: Recipient) -> SendJob {
        let job = SendJob {
            practice_id: r.practice_id.clone(),
            message_id: r.message_id.clone(),
            recipient_id: r.recipient_id.clone(),
        };
        self.0.lock().await.recipients.insert(rkey(&job), r);
        job
    }

    pub async fn recipient(&self, job: &SendJob) -> Option<Recipient> {
        self.0.lock().await.recipients.get(&rkey(job)).cloned()
    }

    pub async fn message_count(&self) -> usize {
        self.0.lock().await.messages.len()
    }
}

#[async_trait]
impl PracticeStore for MemoryStore {
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.keys
            .get(key_hash)
            .and_then(|id| s.practices.get(id))
            .cloned())
    }
    async fn get_practice(&self, practice_id: &str) -> Result<Option<Practice>, StoreError> {
        Ok(self.0.lock().await.practices.get(practice_id).cloned())
    }
    async fn put_practice(&self, practice: &Practice) -> Result<(), StoreError> {
        self.0
            .lock()
            .await
            .practices
            .insert(practice.practice_id.clone(), practice.clone());
        Ok(())
    }
    async fn set_api_key(&self, practice_id: &str, key_hash: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        s.keys.retain(|_, p| p != practice_id);
        s.keys.insert(key_hash.to_string(), practice_id.to_string());
        Ok(())
    }
    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError> {
        self.0.lock().await.patients.insert(
            (practice_id.to_string(), patient.patient_id.clone()),
            patient.clone(),
        );
        Ok(())
    }
    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .patients
            .get(&(practice_id.to_string(), patient_id.to_string()))
            .cloned())
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn create_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut s = self.0.lock().await;
        if let Some(rec) = idempotency {
            let k = (rec.practice_id.clone(), rec.key.clone());
            if s.idempotency
                .get(&k)
                .is_some_and(|r| r.expires_at > message.created_at)
            {
                return Ok(CreateOutcome::IdempotencyKeyTaken);
            }
            s.idempotency.insert(k, rec.clone());
        }
        s.messages.insert(
            (message.practice_id.clone(), message.id.clone()),
            message.clone(),
        );
        for r in recipients {
            s.recipients.insert(
                (
                    r.practice_id.clone(),
                    r.message_id.clone(),
                    r.recipient_id.clone(),
                ),
                r.clone(),
            );
        }
        Ok(CreateOutcome::Created)
    }
    async fn remove_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        s.messages
            .remove(&(message.practice_id.clone(), message.id.clone()));
        for r in recipients {
            s.recipients.remove(&(
                r.practice_id.clone(),
                r.message_id.clone(),
                r.recipient_id.clone(),
            ));
        }
        if let Some(rec) = idempotency {
            s.idempotency
                .remove(&(rec.practice_id.clone(), rec.key.clone()));
        }
        Ok(())
    }
    async fn get_message(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<(Message, Vec<Recipient>)>, StoreError> {
        let s = self.0.lock().await;
        let Some(m) = s
            .messages
            .get(&(practice_id.to_string(), message_id.to_string()))
        else {
            return Ok(None);
        };
        let mut rs: Vec<Recipient> = s
            .recipients
            .values()
            .filter(|r| r.practice_id == practice_id && r.message_id == message_id)
            .cloned()
            .collect();
        rs.sort_by(|a, b| a.recipient_id.cmp(&b.recipient_id));
        Ok(Some((m.clone(), rs)))
    }
    async fn get_recipient(&self, job: &SendJob) -> Result<Option<Recipient>, StoreError> {
        Ok(self.recipient(job).await)
    }
    async fn get_idempotency(
        &self,
        practice_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .idempotency
            .get(&(practice_id.to_string(), key.to_string()))
            .cloned())
    }
    async fn transition(
        &self,
        job: &SendJob,
        t: &Transition,
    ) -> Result<Option<Recipient>, StoreError> {
        let mut s = self.0.lock().await;
        let Some(r) = s.recipients.get_mut(&rkey(job)) else {
            return Ok(None);
        };
        let id_matches =
            |r: &Recipient, cid: &str| r.carrier_message_id.as_deref().is_none_or(|c| c == cid);
        let ok = match t {
            Transition::Claim { .. } => r.status.can_move_to(RecipientStatus::Sending),
            Transition::Release { .. } => r.status == RecipientStatus::Sending,
            Transition::Sent { .. } => r.status.can_move_to(RecipientStatus::Sent),
            Transition::Delivered {
                carrier_message_id, ..
            } => {
                r.status.can_move_to(RecipientStatus::Delivered)
                    && id_matches(r, carrier_message_id)
            }
            Transition::Failed {
                carrier_message_id, ..
            } => {
                r.status.can_move_to(RecipientStatus::Failed)
                    && carrier_message_id
                        .as_deref()
                        .is_none_or(|c| id_matches(r, c))
            }
        };
        if !ok {
            return Ok(None);
        }
        match t {
            Transition::Claim { at } => {
                r.status = RecipientStatus::Sending;
                r.claimed_at = Some(*at);
                r.attempts += 1;
            }
            Transition::Release { .. } => {
                r.status = RecipientStatus::Queued;
                r.claimed_at = None;
            }
            Transition::Sent {
                carrier_message_id,
                at,
            } => {
                r.status = RecipientStatus::Sent;
                r.carrier_message_id = Some(carrier_message_id.clone());
                r.sent_at = Some(*at);
            }
            Transition::Delivered {
                carrier_message_id,
                at,
            } => {
                r.status = RecipientStatus::Delivered;
                r.delivered_at = Some(*at);
                r.carrier_message_id
                    .get_or_insert(carrier_message_id.clone());
                r.sent_at.get_or_insert(*at);
            }
            Transition::Failed {
                carrier_message_id,
                error,
                ..
            } => {
                r.status = RecipientStatus::Failed;
                r.error = Some(error.clone());
                if let Some(c) = carrier_message_id {
                    r.carrier_message_id.get_or_insert(c.clone());
                }
            }
        }
        Ok(Some(r.clone()))
    }
}

/// Records enqueued jobs; can be told to refuse.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    pub jobs: Arc<Mutex<Vec<SendJob>>>,
    pub refuse: bool,
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
}

/// A carrier that answers from a script, then accepts.
#[derive(Clone, Default)]
pub struct ScriptedCarrier {
    script: Arc<Mutex<VecDeque<CarrierOutcome>>>,
    calls: Arc<Mutex<u32>>,
}

impl ScriptedCarrier {
    pub fn accepting() -> Self {
        Self::default()
    }
    pub fn with(outcomes: Vec<CarrierOutcome>) -> Self {
        Self {
            script: Arc::new(Mutex::new(outcomes.into())),
            calls: Arc::default(),
        }
    }
    pub async fn calls(&self) -> u32 {
        *self.calls.lock().await
    }
}

#[async_trait]
impl Carrier for ScriptedCarrier {
    async fn send(&self, _text: &OutboundText) -> CarrierOutcome {
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

/// A clock stopped at one instant.
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    pub fn at(rfc3339: &str) -> Self {
        Self(rfc3339.parse().expect("test time"))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

pub fn sample_practice(id: &str) -> Practice {
    Practice {
        practice_id: id.to_string(),
        name: "Bright Smiles Dental".into(),
        timezone: "America/New_York".into(),
        channels: Channels {
            sms_main: PhoneNumber::parse("+14155550100").expect("valid"),
            sms_alt: None,
        },
        hourly_cap: 250,
        cap_window_seconds: 3600,
        max_bulk_recipients: 1000,
        quiet_hours: None,
    }
}

pub fn queued_recipient() -> Recipient {
    Recipient {
        practice_id: "demo".into(),
        message_id: "m-1".into(),
        recipient_id: "00001".into(),
        patient_id: None,
        to: PhoneNumber::parse("+14155550142").expect("valid"),
        from: PhoneNumber::parse("+14155550100").expect("valid"),
        text: "Hi".into(),
        status: RecipientStatus::Queued,
        not_before: None,
        carrier_message_id: None,
        sent_at: None,
        delivered_at: None,
        error: None,
        skip_reason: None,
        attempts: 0,
        claimed_at: None,
    }
}
