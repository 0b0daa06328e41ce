//! What bulk messages need beyond the message store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::messages::{CreateOutcome, IdempotencyRecord};
use crate::domain::error::StoreError;
use crate::domain::message::{BulkStatus, Message, Recipient, RecipientStatus, Transition};
use crate::domain::patient::Patient;

/// What bulk messages need beyond [`MessageStore`](super::MessageStore):
/// storing hundreds of recipients cheaply, reading the message without its
/// recipients, paging recipients, and the pump's conditional progress.
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
