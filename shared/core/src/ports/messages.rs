//! Messages, recipients, idempotency records and the tracking list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::error::StoreError;
use crate::domain::message::{Message, MessageType, Recipient, SendJob, Tab, Transition};

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
    /// Every message of the practice listed in one tab.
    All(Tab),
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
