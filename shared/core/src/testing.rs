//! In-memory ports for unit tests of the use cases (feature `testing`).
//! Adapters are tested against the emulator; these only stand in for them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::app::auth::hash_key;
use crate::domain::conversation::{
    Conversation, InboxFilter, MediaCopyJob, MediaStatus, PatientRef, StoredConversation,
    ThreadItem,
};
use crate::domain::error::StoreError;
use crate::domain::events::{self, Delivery, DeliveryJob, DeliveryState, Event, StoredEvent};
use crate::domain::message::{
    bulk_completes, BulkStatus, Counts, Message, MessageType, ParkedJob, Recipient,
    RecipientStatus, SendJob,
};
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channels, Practice};
use crate::domain::template::QuickMessage;
use crate::domain::webhook::{EventEndpoint, MAX_ENDPOINTS};
use crate::ports::*;

pub mod conformance;

#[derive(Default)]
struct State {
    parked: Vec<ParkedJob>,
    practices: HashMap<String, Practice>,
    keys: HashMap<String, String>,
    patients: HashMap<(String, String), Patient>,
    messages: HashMap<(String, String), Message>,
    recipients: HashMap<(String, String, String), Recipient>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    opt_outs: HashMap<(String, String), bool>,
    templates: HashMap<(String, String), QuickMessage>,
    opt_audit: Vec<OptOutChange>,
    buckets: HashMap<(String, String), crate::domain::rate_limit::RateBucket>,
    /// (practice, phone) → conversation.
    conversations: HashMap<(String, String), StoredConversation>,
    /// (practice, phone) → position → entry.
    threads: HashMap<(String, String), BTreeMap<String, ThreadItem>>,
    /// (practice, event id) → event: the outbox.
    events: BTreeMap<(String, String), StoredEvent>,
    /// (practice, endpoint id) → endpoint.
    endpoints: BTreeMap<(String, String), EventEndpoint>,
    /// (practice, staff id) → account.
    staff: BTreeMap<(String, String), crate::domain::staff::StaffMember>,
    /// Sign-in name → (practice, staff id).
    staff_users: HashMap<String, (String, String)>,
    /// Token digest → session.
    sessions: HashMap<String, crate::domain::staff::Session>,
    /// Failure key → failed sign-ins.
    login_failures: HashMap<String, crate::domain::staff::LoginFailures>,
    /// Fault injection: `remove_message` fails (an undo that cannot happen).
    fail_remove: bool,
    /// Fault injection: `settle_idempotency` fails.
    fail_settle: bool,
}

impl State {
    /// The delivery `job` is about, if its event is still in `job`'s round.
    fn delivery_in_round(&mut self, job: &DeliveryJob) -> Option<&mut Delivery> {
        let stored = self
            .events
            .get_mut(&(job.practice_id.clone(), job.event_id.clone()))?;
        if stored.round != job.round {
            return None;
        }
        stored
            .deliveries
            .iter_mut()
            .flatten()
            .find(|d| d.endpoint_id == job.endpoint_id)
    }

    /// Records an event in the write that causes it (DynamoDB: one more
    /// `Put` in the same transaction).
    fn record_event(&mut self, event: Event) {
        self.events.insert(
            (event.practice_id.clone(), event.id.clone()),
            StoredEvent {
                event,
                deliveries: None,
                round: 0,
            },
        );
    }

    /// Stores `current.apply(t)` if the stored recipient is still at
    /// `current`'s version, and moves the message's counts with it (DynamoDB:
    /// one transaction of a versioned put and a counts update).
    fn move_recipient(
        &mut self,
        current: &Recipient,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> Option<Recipient> {
        let next = current.apply(t)?;
        let k = rkey(&current.job());
        if self
            .recipients
            .get(&k)
            .is_none_or(|stored| stored.version != current.version)
        {
            return None;
        }
        self.recipients.insert(k, next.clone());
        if let Some(event) = events::for_transition(current, &next, now) {
            self.record_event(event);
        }
        if let Some(m) = self
            .messages
            .get_mut(&(current.practice_id.clone(), current.message_id.clone()))
        {
            let mut statuses: Vec<RecipientStatus> = Vec::new();
            for st in RecipientStatus::ALL {
                for _ in 0..m.counts.get(st) {
                    statuses.push(st);
                }
            }
            if let Some(pos) = statuses.iter().position(|st| *st == current.status) {
                statuses[pos] = next.status;
            }
            m.counts = Counts::of(statuses.iter());
        }
        Some(next)
    }
}

/// Every store port in memory, behaving as `DynamoStore` does (checked by
/// the port-conformance suite in [`conformance`] against both).
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
    /// Makes `remove_message` and `settle_idempotency` fail (`true`) or work.
    pub async fn fail_undo(&self, fail: bool) {
        let mut s = self.0.lock().await;
        s.fail_remove = fail;
        s.fail_settle = fail;
    }

    pub async fn add_practice(&self, p: Practice, key: &str) {
        let mut s = self.0.lock().await;
        s.keys.insert(hash_key(key), p.practice_id.clone());
        s.practices.insert(p.practice_id.clone(), p);
    }

    pub async fn insert_recipient(&self, r: Recipient) -> SendJob {
        let job = r.job();
        self.0.lock().await.recipients.insert(rkey(&job), r);
        job
    }

    pub async fn recipient(&self, job: &SendJob) -> Option<Recipient> {
        self.0.lock().await.recipients.get(&rkey(job)).cloned()
    }

    pub async fn opt_audit(&self) -> Vec<OptOutChange> {
        self.0.lock().await.opt_audit.clone()
    }

    pub async fn patient(&self, practice_id: &str, patient_id: &str) -> Option<Patient> {
        self.0
            .lock()
            .await
            .patients
            .get(&(practice_id.to_string(), patient_id.to_string()))
            .cloned()
    }

    pub async fn template_count(&self) -> usize {
        self.0.lock().await.templates.len()
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
        let mut s = self.0.lock().await;
        let numbers = |p: &Practice| {
            [
                Some(p.channels.sms_main.clone()),
                p.channels.sms_alt.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
        };
        let mine = numbers(practice);
        if let Some(taken) = s
            .practices
            .values()
            .filter(|other| other.practice_id != practice.practice_id)
            .flat_map(numbers)
            .find(|n| mine.contains(n))
        {
            return Err(StoreError::new(
                "store practice",
                format!("the sending number {taken} belongs to another practice; a practice never takes over another's number"),
            ));
        }
        s.practices
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
    async fn list_patients(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Patient>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<Patient> = s
            .patients
            .iter()
            .filter(|((p, id), _)| p == practice_id && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, p)| p.clone())
            .collect();
        all.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = if more {
            all.last().map(|p| p.patient_id.clone())
        } else {
            None
        };
        Ok((all, next))
    }
    async fn mark_undeliverable(
        &self,
        practice_id: &str,
        patient_id: &str,
        mark: &UndeliverableNumber,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if let Some(p) = s
            .patients
            .get_mut(&(practice_id.to_string(), patient_id.to_string()))
        {
            if p.phone == mark.phone {
                p.sms_undeliverable = Some(mark.clone());
            }
        }
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
            // As DynamoDB's condition: free only if absent or expired before now.
            if s.idempotency
                .get(&k)
                .is_some_and(|r| r.expires_at >= message.created_at)
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
    async fn settle_idempotency(&self, practice_id: &str, key: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if s.fail_settle {
            return Err(StoreError::new("settle idempotency", "store unavailable"));
        }
        if let Some(rec) = s
            .idempotency
            .get_mut(&(practice_id.to_string(), key.to_string()))
        {
            rec.pending = false;
        }
        Ok(())
    }
    async fn remove_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if s.fail_remove {
            return Err(StoreError::new("remove message", "store unavailable"));
        }
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
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // As DynamoDB's adapter: an expired record (TTL deletion lags) is absent.
        Ok(self
            .0
            .lock()
            .await
            .idempotency
            .get(&(practice_id.to_string(), key.to_string()))
            .filter(|r| r.expires_at > now)
            .cloned())
    }
    async fn transition(
        &self,
        current: &Recipient,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> Result<Option<Recipient>, StoreError> {
        let mut s = self.0.lock().await;
        let Some(next) = s.move_recipient(current, t, now) else {
            return Ok(None);
        };
        // What DynamoDB's adapter writes to the message with the recipient.
        let mut completed = None;
        if let Some(m) = s
            .messages
            .get_mut(&(current.practice_id.clone(), current.message_id.clone()))
        {
            if let Transition::Reschedule { send_at, .. } = t {
                m.send_at = Some(*send_at);
            }
            match m.message_type {
                MessageType::DirectMessage => {
                    m.status = next.status.into();
                    if let (Transition::Claim { at }, 0) = (t, current.attempts) {
                        m.sent_at = Some(*at);
                    }
                }
                // Then, after a final status, the one completing update.
                MessageType::BulkMessage => {
                    if next.status.is_final() && bulk_completes(m.status.as_str(), &m.counts) {
                        m.status = BulkStatus::Completed.into();
                        completed = Some(events::bulk_completed(&m.practice_id, &m.id, now));
                    }
                }
            }
        }
        if let Some(event) = completed {
            s.record_event(event);
        }
        Ok(Some(next))
    }

    async fn communications(
        &self,
        practice_id: &str,
        index: &TrackingIndex,
        low: &str,
        high: &str,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<(String, Message)> = s
            .messages
            .values()
            .filter(|m| m.practice_id == practice_id)
            .filter(|m| match index {
                TrackingIndex::All => true,
                TrackingIndex::TypeStatus(t, st) => m.message_type == *t && m.status.as_str() == st,
            })
            .map(|m| (tracking_key(m), m.clone()))
            .filter(|(k, _)| k.as_str() >= low && k.as_str() <= high)
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|(_, m)| m)
            .collect())
    }
}

#[async_trait]
impl OptOutStore for MemoryStore {
    async fn is_opted_out(&self, practice_id: &str, phone: &str) -> Result<bool, StoreError> {
        let s = self.0.lock().await;
        Ok(s.opt_outs
            .get(&(practice_id.to_string(), phone.to_string()))
            .copied()
            .unwrap_or(false))
    }
    async fn record_opt_out(&self, change: &OptOutChange) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        let was = s
            .opt_outs
            .insert(
                (change.practice_id.clone(), change.phone.clone()),
                change.opted_out,
            )
            .unwrap_or(false);
        if was != change.opted_out {
            s.record_event(events::opt_change(
                &change.practice_id,
                &change.phone,
                change.opted_out,
                &change.source,
                change.at,
            ));
        }
        s.opt_audit.push(change.clone());
        Ok(())
    }
    async fn opted_out_among(
        &self,
        practice_id: &str,
        phones: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let s = self.0.lock().await;
        Ok(phones
            .iter()
            .filter(|phone| {
                s.opt_outs
                    .get(&(practice_id.to_string(), (*phone).clone()))
                    .copied()
                    .unwrap_or(false)
            })
            .cloned()
            .collect())
    }
    async fn practice_for_number(&self, number: &str) -> Result<Option<String>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.practices
            .values()
            .find(|p| {
                p.channels.sms_main.as_str() == number
                    || p.channels
                        .sms_alt
                        .as_ref()
                        .is_some_and(|a| a.as_str() == number)
            })
            .map(|p| p.practice_id.clone()))
    }
}

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn put_template(
        &self,
        practice_id: &str,
        template: &QuickMessage,
    ) -> Result<(), StoreError> {
        self.0.lock().await.templates.insert(
            (practice_id.to_string(), template.id.clone()),
            template.clone(),
        );
        Ok(())
    }
    async fn get_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<Option<QuickMessage>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.templates
            .get(&(practice_id.to_string(), template_id.to_string()))
            .cloned())
    }
    async fn delete_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        Ok(s.templates
            .remove(&(practice_id.to_string(), template_id.to_string()))
            .is_some())
    }
    async fn list_templates(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<QuickMessage>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<QuickMessage> = s
            .templates
            .iter()
            .filter(|((p, id), _)| p == practice_id && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, t)| t.clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = more.then(|| all.last().map(|t| t.id.clone())).flatten();
        Ok((all, next))
    }
}

#[async_trait]
impl DeadLetterStore for MemoryStore {
    async fn park(&self, parked: &ParkedJob) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        s.parked.retain(|p| p.job != parked.job);
        s.parked.push(parked.clone());
        Ok(())
    }
    async fn parked(&self, limit: u32) -> Result<Vec<ParkedJob>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.parked.iter().take(limit as usize).cloned().collect())
    }
    async fn unpark(&self, job: &SendJob) -> Result<(), StoreError> {
        self.0.lock().await.parked.retain(|p| &p.job != job);
        Ok(())
    }
}

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
impl MediaQueue for MemoryQueue {
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::new("enqueue media", "queue unavailable"));
        }
        self.media.lock().await.extend_from_slice(jobs);
        Ok(())
    }
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
        timezone: "America/New_York".parse().unwrap(),
        channels: Channels {
            sms_main: PhoneNumber::parse("+14155550100").expect("valid"),
            sms_alt: None,
        },
        hourly_cap: 250,
        cap_window_seconds: 3600,
        max_bulk_recipients: 1000,
        quiet_hours: None,
        help_text: None,
        auto_reply: Default::default(),
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
        message_type: MessageType::DirectMessage,
        origin: None,
        version: 0,
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

#[async_trait]
impl BulkStore for MemoryStore {
    async fn get_patients(
        &self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<Patient>, StoreError> {
        let s = self.0.lock().await;
        Ok(patient_ids
            .iter()
            .filter_map(|id| {
                s.patients
                    .get(&(practice_id.to_string(), id.clone()))
                    .cloned()
            })
            .collect())
    }
    async fn create_bulk(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_message(message, recipients, idempotency).await
    }
    async fn get_message_only(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.messages
            .get(&(practice_id.to_string(), message_id.to_string()))
            .cloned())
    }
    async fn recipients_page(
        &self,
        practice_id: &str,
        message_id: &str,
        status: Option<RecipientStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Recipient>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<Recipient> = s
            .recipients
            .values()
            .filter(|r| r.practice_id == practice_id && r.message_id == message_id)
            .filter(|r| after.is_none_or(|a| r.recipient_id.as_str() > a))
            .filter(|r| status.is_none_or(|st| r.status == st))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.recipient_id.cmp(&b.recipient_id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = more
            .then(|| all.last().map(|r| r.recipient_id.clone()))
            .flatten();
        Ok((all, next))
    }
    async fn advance_pump(
        &self,
        practice_id: &str,
        message_id: &str,
        pump: &str,
        released: u32,
        next_pump: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(b) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
            .and_then(|m| m.bulk.as_mut())
        else {
            return Ok(false);
        };
        if b.pump.as_deref() != Some(pump) || b.canceled_at.is_some() {
            return Ok(false);
        }
        b.released = released;
        b.pump = next_pump.map(str::to_string);
        Ok(true)
    }
    async fn stop_bulk(
        &self,
        practice_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        let Some(b) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
            .and_then(|m| m.bulk.as_mut())
        else {
            return Err(StoreError::new("cancel bulk", "no such bulk message"));
        };
        b.canceled_at.get_or_insert(at);
        b.pump = None;
        Ok(())
    }
    async fn transition_many(
        &self,
        current: &[Recipient],
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        for r in current {
            let stored = s.recipients.get(&rkey(&r.job()));
            if stored.is_none_or(|x| x.version != r.version) || r.apply(transition).is_none() {
                return Ok(false);
            }
        }
        // Recipients and the message's counts only, in one transaction on
        // DynamoDB: no status or time of the message changes.
        for r in current {
            s.move_recipient(r, transition, now);
        }
        Ok(true)
    }
    async fn set_bulk_status(
        &self,
        practice_id: &str,
        message_id: &str,
        from: crate::domain::message::BulkStatus,
        to: crate::domain::message::BulkStatus,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(m) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
        else {
            return Ok(false);
        };
        if m.status != from.as_str() || (sent_at.is_some() && m.sent_at.is_some()) {
            return Ok(false);
        }
        m.status = to.into();
        if sent_at.is_some() {
            m.sent_at = sent_at;
        }
        Ok(true)
    }
    async fn sending_bulks(&self, practice_id: &str) -> Result<Vec<Message>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.messages
            .values()
            .filter(|m| {
                m.practice_id == practice_id
                    && m.message_type == MessageType::BulkMessage
                    && m.status == BulkStatus::Sending.as_str()
            })
            .cloned()
            .collect())
    }
}

fn ckey(practice_id: &str, phone: &PhoneNumber) -> (String, String) {
    (practice_id.to_string(), phone.as_str().to_string())
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn get_conversation(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Option<StoredConversation>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.conversations.get(&ckey(practice_id, phone)).cloned())
    }

    async fn save_conversation(
        &self,
        practice_id: &str,
        conversation: &Conversation,
        created: bool,
        patients: &[PatientRef],
        entry: Option<&ThreadItem>,
        now: DateTime<Utc>,
    ) -> Result<SaveConversation, StoreError> {
        let mut s = self.0.lock().await;
        let k = ckey(practice_id, &conversation.phone);
        // As DynamoDB's transaction: the entry's condition is looked at first.
        if let Some(entry) = entry {
            if s.threads
                .get(&k)
                .is_some_and(|t| t.contains_key(&entry.position()))
            {
                return Ok(SaveConversation::DuplicateEntry);
            }
        }
        let stored_version = s.conversations.get(&k).map(|c| c.conversation.version);
        let expected = if created {
            None
        } else {
            Some(conversation.version)
        };
        if stored_version != expected {
            return Ok(SaveConversation::Conflict);
        }
        let mut next = conversation.clone();
        next.version = conversation.version + 1;
        s.conversations.insert(
            k.clone(),
            StoredConversation {
                conversation: next,
                patients: patients.to_vec(),
            },
        );
        if let Some(entry) = entry {
            s.threads
                .entry(k)
                .or_default()
                .insert(entry.position(), entry.clone());
            if let ThreadItem::Inbound(inbound) = entry {
                s.record_event(events::received(practice_id, inbound, now));
            }
        }
        Ok(SaveConversation::Saved)
    }

    async fn list_conversations(
        &self,
        practice_id: &str,
        filter: &InboxFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredConversation>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<(String, StoredConversation)> = s
            .conversations
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, c)| (inbox_key(&c.conversation), c))
            .filter(|(k, c)| {
                let c = &c.conversation;
                filter.status.is_none_or(|st| c.status == st)
                    && (!filter.unread_only || c.unread_count > 0)
                    && filter
                        .assignee
                        .as_ref()
                        .is_none_or(|a| c.assignee.as_ref() == Some(a))
                    && after.is_none_or(|after| k.as_str() < after)
            })
            .map(|(k, c)| (k, c.clone()))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = more.then(|| found.last().map(|(k, _)| k.clone())).flatten();
        Ok((found.into_iter().map(|(_, c)| c).collect(), next))
    }

    async fn thread(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<ThreadItem>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let Some(thread) = s.threads.get(&ckey(practice_id, phone)) else {
            return Ok((Vec::new(), None));
        };
        let mut found: Vec<(&String, &ThreadItem)> = thread
            .iter()
            .rev()
            .filter(|(p, _)| after.is_none_or(|a| p.as_str() < a))
            .take(limit as usize + 1)
            .collect();
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = more
            .then(|| found.last().map(|(p, _)| (*p).clone()))
            .flatten();
        Ok((found.into_iter().map(|(_, e)| e.clone()).collect(), next))
    }

    async fn patients_with_phone(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Vec<PatientRef>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<PatientRef> = s
            .patients
            .iter()
            .filter(|((p, _), patient)| p == practice_id && &patient.phone == phone)
            .map(|(_, patient)| PatientRef {
                patient_id: patient.patient_id.clone(),
                first_name: patient.first_name.clone(),
                last_name: patient.last_name.clone(),
            })
            .collect();
        // DynamoDB lists them by sort key: the number, then the patient id.
        found.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        Ok(found)
    }

    async fn recipients(&self, jobs: &[SendJob]) -> Result<Vec<Option<Recipient>>, StoreError> {
        let s = self.0.lock().await;
        Ok(jobs
            .iter()
            .map(|job| s.recipients.get(&rkey(job)).cloned())
            .collect())
    }

    async fn set_media_status(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        position: &str,
        index: usize,
        status: MediaStatus,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if let Some(ThreadItem::Inbound(entry)) = s
            .threads
            .get_mut(&ckey(practice_id, phone))
            .and_then(|t| t.get_mut(position))
        {
            if let Some(media) = entry.media.get_mut(index) {
                media.status = status;
            }
        }
        Ok(())
    }
}

impl MemoryStore {
    /// Every event recorded, oldest first.
    pub async fn events(&self) -> Vec<StoredEvent> {
        let s = self.0.lock().await;
        let mut all: Vec<StoredEvent> = s.events.values().cloned().collect();
        all.sort_by(|a, b| a.event.id.cmp(&b.event.id));
        all
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn create_endpoint(
        &self,
        endpoint: &EventEndpoint,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateEndpoint, StoreError> {
        let mut s = self.0.lock().await;
        if let Some(rec) = idempotency {
            let k = (rec.practice_id.clone(), rec.key.clone());
            if s.idempotency
                .get(&k)
                .is_some_and(|r| r.expires_at > endpoint.created_at)
            {
                return Ok(CreateEndpoint::IdempotencyKeyTaken);
            }
        }
        let count = s
            .endpoints
            .keys()
            .filter(|(p, _)| *p == endpoint.practice_id)
            .count();
        if count >= MAX_ENDPOINTS {
            return Ok(CreateEndpoint::LimitReached);
        }
        s.endpoints.insert(
            (endpoint.practice_id.clone(), endpoint.id.clone()),
            endpoint.clone(),
        );
        if let Some(rec) = idempotency {
            s.idempotency
                .insert((rec.practice_id.clone(), rec.key.clone()), rec.clone());
        }
        Ok(CreateEndpoint::Created)
    }

    async fn endpoints(&self, practice_id: &str) -> Result<Vec<EventEndpoint>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.endpoints
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<EventEndpoint>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.endpoints
            .get(&(practice_id.to_string(), endpoint_id.to_string()))
            .cloned())
    }

    async fn replace_endpoint(&self, endpoint: &EventEndpoint) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let k = (endpoint.practice_id.clone(), endpoint.id.clone());
        match s.endpoints.get_mut(&k) {
            Some(stored) => {
                *stored = endpoint.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        Ok(s.endpoints
            .remove(&(practice_id.to_string(), endpoint_id.to_string()))
            .is_some())
    }

    async fn get_event(
        &self,
        practice_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.events
            .get(&(practice_id.to_string(), event_id.to_string()))
            .cloned())
    }

    async fn list_events(
        &self,
        practice_id: &str,
        filter: &EventFilter,
        floor: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        // As DynamoDB reads it: a page of `limit` ids, newest first, then
        // the filter, so a page may hold fewer than `limit`.
        let page: Vec<&StoredEvent> = s
            .events
            .iter()
            .rev()
            .filter(|((p, id), _)| {
                p == practice_id && id.as_str() > floor && after.is_none_or(|a| id.as_str() < a)
            })
            .map(|(_, e)| e)
            .take(limit as usize + 1)
            .collect();
        let more = page.len() > limit as usize;
        let page = &page[..page.len().min(limit as usize)];
        let next = more
            .then(|| page.last().map(|e| e.event.id.clone()))
            .flatten();
        let items = page
            .iter()
            .filter(|e| filter.event_type.is_none_or(|t| e.event.event_type == t))
            .filter(|e| filter.delivery.is_none_or(|d| e.delivery() == d))
            .map(|e| (*e).clone())
            .collect();
        Ok((items, next))
    }

    async fn start_round(
        &self,
        practice_id: &str,
        event_id: &str,
        round: u32,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(stored) = s
            .events
            .get_mut(&(practice_id.to_string(), event_id.to_string()))
        else {
            return Ok(false);
        };
        if stored.round + 1 != round {
            return Ok(false);
        }
        stored.round = round;
        stored.deliveries = Some(deliveries.to_vec());
        Ok(true)
    }

    async fn claim_attempt(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(d) = s.delivery_in_round(job) else {
            return Ok(false);
        };
        let waiting = d.state == DeliveryState::Pending && d.attempts + 1 == job.attempt;
        let stale = d.state == DeliveryState::Sending
            && d.attempts == job.attempt
            && d.claimed_at.is_some_and(|c| c < stale_before);
        if !(waiting || stale) {
            return Ok(false);
        }
        d.state = DeliveryState::Sending;
        d.attempts = job.attempt;
        d.claimed_at = Some(now);
        Ok(true)
    }

    async fn record_attempt(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(d) = s.delivery_in_round(job) else {
            return Ok(false);
        };
        if d.state != DeliveryState::Sending || d.attempts != job.attempt {
            return Ok(false);
        }
        *d = delivery.clone();
        Ok(true)
    }
}

/// Jobs put on one-time schedules, with their times.
pub type ScheduledJobs = Arc<std::sync::Mutex<Vec<(DeliveryJob, DateTime<Utc>)>>>;

/// One request an endpoint got: URL, headers, body.
pub type WebhookRequest = (String, Vec<(String, String)>, String);

/// The event queue in memory: jobs with their delays, and those scheduled.
#[derive(Clone, Default)]
pub struct MemoryEventQueue {
    /// Enqueued jobs with their delays in seconds.
    pub queued: Arc<std::sync::Mutex<Vec<(DeliveryJob, u32)>>>,
    /// Jobs put on one-time schedules, with their times.
    pub scheduled: ScheduledJobs,
    /// When set, enqueueing fails (a queue outage).
    pub fail: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryEventQueue {
    /// Takes every queued job.
    pub fn take(&self) -> Vec<(DeliveryJob, u32)> {
        std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl EventQueue for MemoryEventQueue {
    async fn enqueue(&self, jobs: &[(DeliveryJob, u32)]) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("enqueue deliveries", "queue unavailable"));
        }
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(jobs.iter().cloned());
        Ok(())
    }

    async fn enqueue_at(&self, job: &DeliveryJob, at: DateTime<Utc>) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new(
                "schedule delivery",
                "scheduler unavailable",
            ));
        }
        self.scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((job.clone(), at));
        Ok(())
    }
}

/// An endpoint in memory: answers from a script (then 200), records every
/// request it got.
#[derive(Clone, Default)]
pub struct ScriptedWebhooks {
    /// Results to give, in order; 200 once empty.
    pub script: Arc<std::sync::Mutex<VecDeque<crate::domain::events::AttemptResult>>>,
    /// (url, headers, body) of every request.
    pub requests: Arc<std::sync::Mutex<Vec<WebhookRequest>>>,
}

impl ScriptedWebhooks {
    /// Answers `results` to the next requests.
    pub fn answer(&self, results: impl IntoIterator<Item = crate::domain::events::AttemptResult>) {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(results);
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<WebhookRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl WebhookClient for ScriptedWebhooks {
    async fn post(
        &self,
        url: &crate::domain::webhook::EndpointUrl,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> crate::domain::events::AttemptResult {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                url.url.to_string(),
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect(),
                body.to_string(),
            ));
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(crate::domain::events::AttemptResult::Status(200))
    }
}

/// Name resolution from a fixed table.
#[derive(Clone, Default)]
pub struct FixedResolver(pub HashMap<String, Vec<std::net::IpAddr>>);

#[async_trait]
impl HostResolver for FixedResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<std::net::IpAddr>, String> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| format!("{host} is not known"))
    }
}

#[async_trait]
impl StaffStore for MemoryStore {
    async fn create_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<StaffCreated, StoreError> {
        let mut s = self.0.lock().await;
        let key = (staff.practice_id.clone(), staff.staff_id.clone());
        if s.staff_users.contains_key(&staff.user) || s.staff.contains_key(&key) {
            return Ok(StaffCreated::UserTaken);
        }
        s.staff_users.insert(staff.user.clone(), key.clone());
        s.staff.insert(key, staff.clone());
        Ok(StaffCreated::Created)
    }

    async fn update_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let key = (staff.practice_id.clone(), staff.staff_id.clone());
        match s.staff.get_mut(&key) {
            Some(stored) => {
                let user = stored.user.clone();
                *stored = staff.clone();
                stored.user = user;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn staff_for_user(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.staff_users
            .get(user)
            .and_then(|k| s.staff.get(k))
            .cloned())
    }

    async fn get_staff(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .staff
            .get(&(practice_id.to_string(), staff_id.to_string()))
            .cloned())
    }

    async fn list_staff(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::staff::StaffMember>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .staff
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn delete_staff(&self, practice_id: &str, staff_id: &str) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(removed) = s
            .staff
            .remove(&(practice_id.to_string(), staff_id.to_string()))
        else {
            return Ok(false);
        };
        s.staff_users.remove(&removed.user);
        s.sessions
            .retain(|_, v| !(v.practice_id == practice_id && v.staff_id == staff_id));
        Ok(true)
    }

    async fn create_session(
        &self,
        session: &crate::domain::staff::Session,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .await
            .sessions
            .insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn get_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::domain::staff::Session>, StoreError> {
        Ok(self.0.lock().await.sessions.get(token_hash).cloned())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.0.lock().await.sessions.remove(token_hash);
        Ok(())
    }

    async fn delete_sessions_of(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .await
            .sessions
            .retain(|_, v| !(v.practice_id == practice_id && v.staff_id == staff_id));
        Ok(())
    }

    async fn login_failures(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::LoginFailures>, StoreError> {
        Ok(self.0.lock().await.login_failures.get(user).copied())
    }

    async fn record_login_failure(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::staff::LoginFailures, StoreError> {
        let mut s = self.0.lock().await;
        let entry = s.login_failures.entry(user.to_string()).or_insert(
            crate::domain::staff::LoginFailures {
                failures: 0,
                window_started_at: now,
            },
        );
        if now >= entry.window_ends_at() {
            *entry = crate::domain::staff::LoginFailures {
                failures: 0,
                window_started_at: now,
            };
        }
        entry.failures += 1;
        Ok(*entry)
    }

    async fn clear_login_failures(&self, user: &str) -> Result<(), StoreError> {
        self.0.lock().await.login_failures.remove(user);
        Ok(())
    }
}
