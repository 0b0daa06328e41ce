//! Conversations (the Inbox) and their threads (Patient Chat).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::conversation::{
    Conversation, InboxFilter, MediaStatus, PatientRef, StoredConversation, ThreadItem,
};
use crate::domain::error::StoreError;
use crate::domain::message::{Recipient, SendJob};
use crate::domain::phone::PhoneNumber;

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
