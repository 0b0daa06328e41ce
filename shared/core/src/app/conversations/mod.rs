//! Two-way texting: every text a patient sends is kept in the conversation
//! with that number (the Inbox), next to everything the practice sent to it
//! (Patient Chat), and the office reads, answers and sorts them.
//!
//! A conversation is changed by reading it, applying one rule of
//! [`Conversation`] and writing it back only over the version read, together
//! with the thread entry that caused the change (written only if new). So a
//! redelivered callback or send job adds nothing, and concurrent inbound
//! texts and replies never lose an update to the unread count or the
//! "awaiting reply" state: the loser of a race reads again and reapplies.

mod inbox;
mod patch;
mod record;
mod reply;
#[cfg(test)]
mod test_support;

use crate::domain::conversation::{
    Conversation, ConversationId, ConversationView, PatientRef, StoredConversation,
};
use crate::domain::error::AppError;
use crate::domain::practice::Practice;
use crate::ports::{ConversationStore, OptOutStore};

pub use inbox::{get, list, thread, InboxQuery};
pub use patch::{patch, ConversationPatch};
pub use record::{
    claim_auto_reply, claim_help_reply, record_inbound, record_outbound, refresh_patients, Recorded,
};
pub use reply::{reply, ReplyRequest};

/// 404 for a conversation this practice does not have.
pub fn not_found() -> AppError {
    AppError::not_found(
        "conversation_not_found",
        "no conversation with this id exists for this practice",
    )
}

/// A conversation as the API shows it.
pub type ConversationResource = ConversationView<PatientRef>;

/// The conversation as the API shows it, with whether its number has
/// opted out.
async fn view<S: OptOutStore>(
    store: &S,
    practice_id: &str,
    conversation: &Conversation,
    patients: Vec<PatientRef>,
) -> Result<ConversationResource, AppError> {
    let opted_out = store
        .is_opted_out(practice_id, conversation.phone.as_str())
        .await?;
    Ok(conversation.view(patients, opted_out))
}

/// The conversation a path's `id` names; 404 `conversation_not_found` when
/// the id is malformed or the practice has no such conversation.
async fn find<S: ConversationStore>(
    store: &S,
    practice: &Practice,
    id: &str,
) -> Result<StoredConversation, AppError> {
    let id = ConversationId::parse(id)?;
    store
        .get_conversation(&practice.practice_id, id.phone())
        .await?
        .ok_or_else(not_found)
}
