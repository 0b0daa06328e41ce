//! [`MemoryStore`]: every store port in memory over one shared state, and
//! the other in-memory doubles, one file per slice of [`crate::ports`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::app::auth::hash_key;
use crate::domain::conversation::{StoredConversation, ThreadItem};
use crate::domain::event_endpoint::EventEndpoint;
use crate::domain::events::{Delivery, DeliveryJob, Event, StoredEvent};
use crate::domain::message::{Counts, Message, ParkedJob, Recipient, RecipientStatus, SendJob};
use crate::domain::patient::Patient;
use crate::domain::practice::Practice;
use crate::domain::template::QuickMessage;
use crate::ports::{IdempotencyRecord, OptOutChange, Transition};

mod appointments;
mod bulk;
mod conversations;
mod dead_letters;
mod events;
mod media;
mod messages;
mod opt_outs;
mod practices;
mod rate;
mod sending;
mod staff;
mod templates;

pub use self::events::{
    FixedResolver, MemoryEventQueue, PostedEvent, ScheduledJobs, ScriptedEventPoster,
};
pub use self::media::{MemoryCarrierMedia, MemoryMediaStorage};
pub use self::sending::{MemoryQueue, MemoryScheduler, Schedules, ScriptedCarrier};

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
    /// (practice, appointment id) → appointment.
    appointments: BTreeMap<(String, String), crate::domain::appointment::Appointment>,
    /// practice → (rules, version).
    reminder_rules: HashMap<String, (Vec<crate::domain::appointment::ReminderRule>, u64)>,
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
        if let Some(event) = crate::domain::events::for_transition(current, &next, now) {
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
/// the port-conformance suite in [`conformance`](crate::testing::conformance)
/// against both).
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
