//! The small traits the application layer needs from the outside world.
//! Adapters in `the adapters crate (`messaging_adapters`)` implement them for DynamoDB, SQS and the
//! carrier's HTTP API; unit tests implement them in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::conversation::{
    Conversation, InboxFilter, MediaCopyJob, MediaStatus, PatientRef, StoredConversation,
    ThreadItem,
};
use crate::domain::error::StoreError;
pub use crate::domain::message::Transition;
use crate::domain::message::{
    BulkStatus, Message, MessageType, ParkedJob, Recipient, RecipientStatus, SendJob,
};
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::domain::template::QuickMessage;

/// Practices, their API keys and their patients.
#[async_trait]
pub trait PracticeStore: Send + Sync {
    /// The practice an API key (by its SHA-256 hex digest) belongs to.
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError>;
    /// A practice by id.
    async fn get_practice(&self, practice_id: &str) -> Result<Option<Practice>, StoreError>;
    /// Creates or replaces a practice's settings.
    async fn put_practice(&self, practice: &Practice) -> Result<(), StoreError>;
    /// Makes `key_hash` the practice's only API key.
    async fn set_api_key(&self, practice_id: &str, key_hash: &str) -> Result<(), StoreError>;
    /// Creates or replaces a patient.
    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError>;
    /// A patient by the office's id.
    /// A page of the practice's patients in id order, after the id `after`;
    /// also the id to continue after, if DynamoDB has more.
    async fn list_patients(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Patient>, Option<String>), StoreError>;
    /// Marks a patient's number as unable to receive texts, if the patient
    /// still has that number.
    async fn mark_undeliverable(
        &self,
        practice_id: &str,
        patient_id: &str,
        mark: &UndeliverableNumber,
    ) -> Result<(), StoreError>;
    /// A patient by the office's id.
    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError>;
}

/// A remembered answer to a POST carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Owner.
    pub practice_id: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of the method, path and canonical JSON body.
    pub request_hash: String,
    /// The HTTP status first answered.
    pub status: u16,
    /// The body first answered.
    pub response_body: String,
    /// Forgotten after this instant (24 h).
    pub expires_at: DateTime<Utc>,
    /// Stored with a message that was not yet handed over to the queue (or
    /// a schedule): a replay hands it over again before answering, so an
    /// accepted answer is never replayed for a message that was never
    /// queued. Cleared once the hand-over succeeded.
    #[serde(default)]
    pub pending: bool,
}

/// How storing a new message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored, together with the idempotency record if any.
    Created,
    /// Another request with the same idempotency key won the race; nothing stored.
    IdempotencyKeyTaken,
}

/// Messages, recipients and idempotency records.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a new message, its recipients and (when given) the idempotency
    /// record, all or nothing.
    async fn create_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError>;
    /// Removes what `create_message` stored; used when the send queue refused
    /// the message so that the refused request leaves nothing behind.
    async fn remove_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;
    /// A message and all its recipients.
    async fn get_message(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<(Message, Vec<Recipient>)>, StoreError>;
    /// One recipient.
    async fn get_recipient(&self, job: &SendJob) -> Result<Option<Recipient>, StoreError>;
    /// Marks the idempotency record for `key` no longer pending (its
    /// message is on the queue or scheduled). Nothing when there is none.
    async fn settle_idempotency(&self, practice_id: &str, key: &str) -> Result<(), StoreError>;
    /// The remembered answer for an idempotency key, if not expired at `now`.
    async fn get_idempotency(
        &self,
        practice_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Applies `transition` to `current` (as last read) and stores the result
    /// together with the message's counts, in one conditional write: refused
    /// (`None`) when the transition does not move `current` forward or the
    /// recipient changed since it was read. Events the change causes are
    /// stamped `now`.
    async fn transition(
        &self,
        current: &Recipient,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<Option<Recipient>, StoreError>;
    /// One page of the tracking list, newest first: messages whose tracking
    /// key lies in `[low, high]` (see [`tracking_key`]) in `index`.
    async fn communications(
        &self,
        practice_id: &str,
        index: &TrackingIndex,
        low: &str,
        high: &str,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

/// Which index partition of the tracking list to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingIndex {
    /// Every message of the practice.
    All,
    /// Messages of one type currently in one status.
    TypeStatus(MessageType, String),
}

/// Sort key of a message in the tracking indexes: its tracking time then its
/// id, so keys are unique and sort by time.
pub fn tracking_key(message: &Message) -> String {
    format!(
        "{}#{}",
        crate::domain::clock::to_api_time(&message.tracking_time()),
        message.id
    )
}

/// Opt-outs (STOP/START) per practice and number, with their audit trail.
#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Whether `phone` has opted out of this practice's texts.
    async fn is_opted_out(&self, practice_id: &str, phone: &str) -> Result<bool, StoreError>;
    /// Records an opt-out (`true`) or opt-in and its audit entry, atomically;
    /// the event a change of state causes is stamped `change.at`.
    async fn record_opt_out(&self, change: &OptOutChange) -> Result<(), StoreError>;
    /// Which of `phones` (E.164) are opted out of this practice's texts:
    /// reads only those numbers' records (a bulk's audience, a page of
    /// patients), never the practice's whole opt-out list.
    async fn opted_out_among(
        &self,
        practice_id: &str,
        phones: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError>;
    /// The practice that owns a sending number.
    async fn practice_for_number(&self, number: &str) -> Result<Option<String>, StoreError>;
}

/// One opt-out or opt-in, as kept in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutChange {
    /// Practice.
    pub practice_id: String,
    /// The patient's number, E.164.
    pub phone: String,
    /// `true` = opted out.
    pub opted_out: bool,
    /// What the patient texted (`STOP`), or who changed it.
    pub keyword: String,
    /// Where it came from (`sms`).
    pub source: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The queue the dispatcher consumes.
/// Jobs taken off the send dead-letter queue, kept until the repair
/// command requeues or drops them.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Keeps `parked` (one per job: parking the same job again replaces it).
    async fn park(&self, parked: &ParkedJob) -> Result<(), StoreError>;
    /// Up to `limit` parked jobs, oldest first.
    async fn parked(&self, limit: u32) -> Result<Vec<ParkedJob>, StoreError>;
    /// Forgets the parked `job`.
    async fn unpark(&self, job: &SendJob) -> Result<(), StoreError>;
}

#[async_trait]
pub trait SendQueue: Send + Sync {
    /// Enqueues sends (batched by the adapter).
    async fn enqueue(&self, jobs: &[SendJob]) -> Result<(), StoreError>;
    /// Enqueues sends, each visible after its own delay in seconds (at most
    /// 900): a bulk wave spaced to the sending number's pace.
    async fn enqueue_wave(&self, jobs: &[(SendJob, u32)]) -> Result<(), StoreError>;
    /// Enqueues one send to become visible after `delay_seconds` (at most 900).
    async fn enqueue_delayed(&self, job: &SendJob, delay_seconds: u32) -> Result<(), StoreError>;
    /// Makes a received queue message visible again after `delay_seconds`.
    async fn retry_later(&self, receipt_handle: &str, delay_seconds: u32)
        -> Result<(), StoreError>;
}

/// A text ready for the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundText {
    /// Sending number, E.164.
    pub from: String,
    /// Destination, E.164.
    pub to: String,
    /// What the patient gets.
    pub text: String,
    /// Our ids, echoed back in callbacks.
    pub tag: String,
}

/// What the carrier said to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierOutcome {
    /// Accepted for delivery (any 2xx): never sent again.
    Accepted {
        /// The carrier's message id; empty when the answer could not be
        /// read (the delivery callback, matched by tag, brings it).
        carrier_message_id: String,
    },
    /// Refused for good (HTTP 4xx other than 429).
    Rejected {
        /// HTTP status.
        status: u16,
        /// The carrier's description.
        detail: String,
    },
    /// The carrier said it did not take it (5xx, 429), or the request never
    /// reached it (no connection): safe to try again later.
    Retryable {
        /// What happened, for the record.
        reason: String,
    },
    /// The request was sent but no answer came (timeout, connection dropped
    /// before the status line): the carrier may have taken it. Never resent
    /// blindly; its delivery report, matched by tag, settles it.
    Unconfirmed {
        /// What happened, for the record.
        reason: String,
    },
}

/// Sends texts through a carrier.
#[async_trait]
pub trait Carrier: Send + Sync {
    /// Submits one text.
    async fn send(&self, text: &OutboundText) -> CarrierOutcome;
}

/// Saved Quick Messages of a practice.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Creates or replaces a template.
    async fn put_template(
        &self,
        practice_id: &str,
        template: &QuickMessage,
    ) -> Result<(), StoreError>;
    /// A template by id.
    async fn get_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<Option<QuickMessage>, StoreError>;
    /// Deletes a template; `false` when there was none.
    async fn delete_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<bool, StoreError>;
    /// A page of templates in id order, after the position `after` (an id).
    /// Returns the page and the position to continue from, if any.
    async fn list_templates(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<QuickMessage>, Option<String>), StoreError>;
}

/// One-time schedules that put a send on the queue at a given time
/// (EventBridge Scheduler `at()` schedules on AWS).
#[async_trait]
pub trait SendScheduler: Send + Sync {
    /// Creates, or replaces, the schedule `name` to enqueue `job` at `at`.
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        job: &SendJob,
    ) -> Result<(), StoreError>;
    /// Deletes the schedule `name`; a schedule that no longer exists is fine.
    async fn unschedule(&self, name: &str) -> Result<(), StoreError>;
}

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

/// What bulk messages need beyond [`MessageStore`]: storing hundreds of
/// recipients cheaply, reading the message without its recipients, paging
/// recipients, and the pump's conditional progress.
#[async_trait]
pub trait BulkStore: Send + Sync {
    /// The practice's patients with these ids (those that exist), read in
    /// batches.
    async fn get_patients(
        &self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<Patient>, StoreError>;
    /// Stores a bulk message: its recipients in batches first, then the
    /// message and the idempotency record together. The message is what
    /// makes the bulk exist; should the idempotency key be taken, the
    /// recipients written are removed again.
    async fn create_bulk(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError>;
    /// The message alone, read consistently.
    async fn get_message_only(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError>;
    /// A page of a message's recipients in order, after recipient id
    /// `after`, only those in `status` when given; also the recipient id to
    /// continue after when more may follow.
    async fn recipients_page(
        &self,
        practice_id: &str,
        message_id: &str,
        status: Option<RecipientStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Recipient>, Option<String>), StoreError>;
    /// Records a pump run: `released` recipients are now on the queue and
    /// `next_pump` is the live pump job — only if the live pump is still
    /// `pump` and the bulk is not canceled. `Ok(false)` otherwise.
    async fn advance_pump(
        &self,
        practice_id: &str,
        message_id: &str,
        pump: &str,
        released: u32,
        next_pump: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Marks the bulk canceled and stops its pump (idempotent).
    async fn stop_bulk(
        &self,
        practice_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Applies one transition to several recipients of the same message
    /// (at most 99) and their message's counts, all or nothing: `Ok(false)`
    /// when any of them changed since read. Recipients the transition does
    /// not move are left out by the caller. Events are stamped `now`.
    async fn transition_many(
        &self,
        current: &[Recipient],
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Sets a bulk's stored status (and, when `sent_at` is given and none is
    /// stored, when sending began) if it is still `from`. `Ok(false)` otherwise.
    async fn set_bulk_status(
        &self,
        practice_id: &str,
        message_id: &str,
        from: BulkStatus,
        to: BulkStatus,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// The practice's bulks whose stored status is `sending`.
    async fn sending_bulks(&self, practice_id: &str) -> Result<Vec<Message>, StoreError>;
}

/// Where a conversation sorts in the Inbox: the time of its newest text (to
/// the millisecond) then its number, so positions are unique and sort by
/// time. An Inbox page continues after the last position it returned.
pub fn inbox_key(conversation: &Conversation) -> String {
    format!(
        "{}#{}",
        crate::domain::clock::to_api_time(&conversation.last_activity_at),
        conversation.phone.as_str()
    )
}

/// How saving a conversation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveConversation {
    /// Stored (with its new thread entry, if one was given).
    Saved,
    /// The conversation changed since it was read (or, for a new one, it was
    /// created meanwhile): nothing stored; read again and decide again.
    Conflict,
    /// The thread already holds an entry with this entry's id (a redelivered
    /// callback or send job): nothing stored.
    DuplicateEntry,
}

/// Conversations (the Inbox) and their threads (Patient Chat).
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The practice's conversation with `phone`, if there is one.
    async fn get_conversation(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Option<StoredConversation>, StoreError>;

    /// Stores `conversation` (as `version + 1` of what was read), with
    /// `patients`, and `entry` when given, all or nothing: only if the stored
    /// conversation still has `conversation.version` (or, when `created`,
    /// does not exist yet), and only if the thread has no entry with
    /// `entry`'s id. An entry is found by its [`ThreadItem::position`] (its
    /// time and id), so a redelivered callback or send job must record the
    /// same time as the first delivery did (the carrier's time, the time
    /// sending began as stored on the recipient).
    ///
    /// When both conditions fail, the answer is
    /// [`SaveConversation::DuplicateEntry`]: the entry is already recorded,
    /// whatever else changed. The event an inbound entry causes is stamped
    /// `now`.
    async fn save_conversation(
        &self,
        practice_id: &str,
        conversation: &Conversation,
        created: bool,
        patients: &[PatientRef],
        entry: Option<&ThreadItem>,
        now: DateTime<Utc>,
    ) -> Result<SaveConversation, StoreError>;

    /// A page of the Inbox, newest activity first ([`inbox_key`] descending),
    /// after the position `after`; also the position to continue after, if
    /// there is more.
    async fn list_conversations(
        &self,
        practice_id: &str,
        filter: &InboxFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredConversation>, Option<String>), StoreError>;

    /// A page of a thread, newest first, after the position `after`
    /// ([`ThreadItem::position`]); also the position to continue after.
    async fn thread(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<ThreadItem>, Option<String>), StoreError>;

    /// The practice's patients whose number is `phone`, in patient-id order,
    /// read consistently (a patient whose number just changed is listed under
    /// the new number only).
    async fn patients_with_phone(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Vec<PatientRef>, StoreError>;

    /// The recipients behind outbound thread entries (`None` where one is
    /// gone), in the order asked: their live status for the thread.
    async fn recipients(&self, jobs: &[SendJob]) -> Result<Vec<Option<Recipient>>, StoreError>;

    /// Records where the copy of an inbound text's `index`-th attachment
    /// stands. Changes nothing when the entry or attachment is not there.
    async fn set_media_status(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        position: &str,
        index: usize,
        status: MediaStatus,
    ) -> Result<(), StoreError>;
}

/// The queue of attachments waiting to be copied from the carrier.
#[async_trait]
pub trait MediaQueue: Send + Sync {
    /// Enqueues copy jobs.
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError>;
}

/// Why a download of an inbound attachment from the carrier failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaFetchError {
    /// Trying again cannot help: the file is gone (404, 410), the carrier
    /// refused us (other 4xx), it is larger than we keep, or its link is not
    /// on the carrier's API host.
    Permanent(String),
    /// Worth another try later: 5xx, 429, a timeout, a connection failure.
    Retryable(String),
}

impl std::fmt::Display for MediaFetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaFetchError::Permanent(why) => write!(f, "permanent: {why}"),
            MediaFetchError::Retryable(why) => write!(f, "retryable: {why}"),
        }
    }
}

/// Downloads the attachments of inbound texts from the carrier, which keeps
/// them (behind its API credentials) for a limited time.
#[async_trait]
pub trait CarrierMedia: Send + Sync {
    /// The file behind `url`, a media link the carrier put in a callback.
    async fn download(&self, url: &str) -> Result<Vec<u8>, MediaFetchError>;
}

/// The deployment's own, private storage for copied attachments.
#[async_trait]
pub trait MediaStorage: Send + Sync {
    /// Stores `bytes` under `key` (replacing what is there: a retried copy
    /// writes the same object).
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
}

/// Time-limited links to stored attachments, for the API to hand out.
#[async_trait]
pub trait MediaLinks: Send + Sync {
    /// A URL anyone holding it can read the object at `key` with, until the
    /// returned instant (`expires_in` after `now`, when it is signed).
    async fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), StoreError>;
}

/// How creating an event endpoint went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateEndpoint {
    /// Stored, with the idempotency record if any.
    Created,
    /// The practice already has [`MAX_ENDPOINTS`](crate::domain::webhook::MAX_ENDPOINTS).
    LimitReached,
    /// Another request with the same idempotency key won the race.
    IdempotencyKeyTaken,
}

/// Which events a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<crate::domain::events::EventType>,
    /// Only events in this delivery state.
    pub delivery: Option<crate::domain::events::EventDelivery>,
}

/// Event endpoints and the events recorded for them. Events themselves are
/// written by the other stores, in the same write as the change that causes
/// them (see [`crate::domain::events`]); this port reads them and tracks
/// their deliveries.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a new endpoint (and the idempotency record, when given) unless
    /// the practice already has the most it may. An idempotency record
    /// expired at `endpoint.created_at` may be replaced.
    async fn create_endpoint(
        &self,
        endpoint: &crate::domain::webhook::EventEndpoint,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateEndpoint, StoreError>;
    /// The practice's endpoints, oldest first.
    async fn endpoints(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::webhook::EventEndpoint>, StoreError>;
    /// One endpoint.
    async fn get_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<crate::domain::webhook::EventEndpoint>, StoreError>;
    /// Replaces a stored endpoint (a rotation, a disable); `false` when it
    /// is gone.
    async fn replace_endpoint(
        &self,
        endpoint: &crate::domain::webhook::EventEndpoint,
    ) -> Result<bool, StoreError>;
    /// Deletes an endpoint; `false` when there was none.
    async fn delete_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, StoreError>;
    /// An event with its deliveries, read consistently.
    async fn get_event(
        &self,
        practice_id: &str,
        event_id: &str,
    ) -> Result<Option<crate::domain::events::StoredEvent>, StoreError>;
    /// A page of events, newest first, with ids above `floor` (where the
    /// retention period starts), after the id `after`; also the id to
    /// continue after when more may follow.
    async fn list_events(
        &self,
        practice_id: &str,
        filter: &EventFilter,
        floor: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<crate::domain::events::StoredEvent>, Option<String>), StoreError>;
    /// Starts delivery round `round` (the stored round + 1) with these
    /// deliveries, replacing the previous round's: only if the stored round
    /// is still `round - 1` (and, for round 1, no round was started).
    async fn start_round(
        &self,
        practice_id: &str,
        event_id: &str,
        round: u32,
        deliveries: &[crate::domain::events::Delivery],
    ) -> Result<bool, StoreError>;
    /// Marks `job`'s attempt under way: only if the delivery is in `job`'s
    /// round and waits for exactly this attempt, or this attempt began
    /// before `stale_before` and never recorded an outcome.
    async fn claim_attempt(
        &self,
        job: &crate::domain::events::DeliveryJob,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records the outcome of `job`'s attempt as `delivery` (its new state):
    /// only if that attempt is still the one under way.
    async fn record_attempt(
        &self,
        job: &crate::domain::events::DeliveryJob,
        delivery: &crate::domain::events::Delivery,
    ) -> Result<bool, StoreError>;
}

/// The queue of delivery attempts.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Enqueues attempts, each visible after its delay in seconds (at most 900).
    async fn enqueue(
        &self,
        jobs: &[(crate::domain::events::DeliveryJob, u32)],
    ) -> Result<(), StoreError>;
    /// Puts an attempt on the queue at `at` (beyond the queue's own delays:
    /// a one-time schedule).
    async fn enqueue_at(
        &self,
        job: &crate::domain::events::DeliveryJob,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// POSTs a signed event to an office's endpoint.
#[async_trait]
pub trait WebhookClient: Send + Sync {
    /// One attempt: no redirects followed, at most
    /// [`DELIVERY_TIMEOUT`](crate::domain::webhook::DELIVERY_TIMEOUT), only
    /// to addresses `policy` allows (checked again at connection time).
    async fn post(
        &self,
        url: &crate::domain::webhook::EndpointUrl,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> crate::domain::events::AttemptResult;
}

/// Resolves host names (to check an endpoint's addresses when it is created).
#[async_trait]
pub trait HostResolver: Send + Sync {
    /// The addresses `host` resolves to.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::IpAddr>, String>;
}

/// How creating a staff account went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffCreated {
    /// Stored, with its sign-in name taken.
    Created,
    /// Another account (of any practice) already signs in with that name;
    /// nothing stored.
    UserTaken,
}

/// Staff accounts, their sessions and the failed sign-ins per user name.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Stores a new account and takes its sign-in name, both or neither.
    async fn create_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<StaffCreated, StoreError>;
    /// Replaces an existing account's name, role or password hash (its
    /// sign-in name stays). `false` when there is no such account.
    async fn update_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<bool, StoreError>;
    /// The account that signs in with `user` (normalised).
    async fn staff_for_user(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError>;
    /// One of the practice's accounts.
    async fn get_staff(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError>;
    /// Every account of the practice (a practice has a handful), by id.
    async fn list_staff(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::staff::StaffMember>, StoreError>;
    /// Deletes an account, frees its sign-in name and ends its sessions.
    /// `false` when there was no such account.
    async fn delete_staff(&self, practice_id: &str, staff_id: &str) -> Result<bool, StoreError>;
    /// Stores a new session.
    async fn create_session(
        &self,
        session: &crate::domain::staff::Session,
    ) -> Result<(), StoreError>;
    /// The session stored under a token's digest, if any (expired ones
    /// included: the caller checks `expires_at`, as TTL deletion lags).
    async fn get_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::domain::staff::Session>, StoreError>;
    /// Deletes a session (nothing when there is none).
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of a staff member (their password changed).
    async fn delete_sessions_of(&self, practice_id: &str, staff_id: &str)
        -> Result<(), StoreError>;
    /// The failed sign-ins counted for `user` (any string tried, normalised).
    async fn login_failures(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::LoginFailures>, StoreError>;
    /// Counts one more failure for `user` at `now`: one more in the current
    /// window, or the first of a new one when the window is over (or there
    /// was none). Answers the count after it.
    async fn record_login_failure(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::staff::LoginFailures, StoreError>;
    /// Forgets `user`'s failures (a successful sign-in).
    async fn clear_login_failures(&self, user: &str) -> Result<(), StoreError>;
}
