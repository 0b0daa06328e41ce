//! Two-way texting: one conversation per (practice, patient phone number),
//! the thread of texts in it, and the rules the Inbox and Patient Chat show:
//! unread counts, whether a patient is waiting for an answer, and when the
//! after-hours reply goes out.
//!
//! Everything here is pure. The store reads a [`Conversation`], applies one
//! of its methods and writes it back only if [`Conversation::version`] is
//! unchanged (storing `version + 1`), retrying on conflict. Carrier callbacks
//! arrive at least once and in any order, so every rule orders events by
//! their own time (`at`), never by when they were recorded; and the thread
//! entry for a carrier message id is written in the same transaction as the
//! conversation, so a redelivered callback is recognised and not counted
//! twice.

mod id;
mod inbox;
mod media;
mod opt_out;
#[cfg(test)]
mod test_support;
mod thread;

pub use id::ConversationId;
pub use inbox::{
    Conversation, ConversationStatus, ConversationView, InboxFilter, PatientRef,
    StoredConversation, AUTO_REPLY_MIN_GAP_HOURS, HELP_REPLY_MIN_GAP_HOURS, MAX_ASSIGNEE_LEN,
};
pub use media::{MediaCopyJob, MediaItem, MediaStatus, MediaView};
pub use opt_out::{opt_out_intent, opt_out_rule};
pub use thread::{
    Direction, InboundEntry, InboundIntent, LastMessage, OutboundEntry, OutboundKind, ThreadEntry,
    ThreadItem,
};
