//! Messages, their recipients, and the recipient lifecycle:
//! `scheduled → queued → sending → sent → delivered | failed`, with side exits
//! `canceled` and `skipped`. Statuses only move forward.

mod recipient;
mod status;
mod view;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::bulk::BulkProgress;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Channel;
use crate::domain::text::Encoding;

pub use crate::domain::job::SendJob;
pub use recipient::{ParkedJob, Recipient, RecipientError, Transition, JOB_DEAD_LETTERED};
pub use status::{
    bulk_all_final, bulk_completes, bulk_status, bulk_status_of, BulkStatus, Counts, MessageStatus,
    RecipientStatus, BULK_COMPLETES_FROM, BULK_OPEN_STATUSES,
};
pub use view::{MessageView, RecipientView};

/// What kind of message: sent by hand (the Manual tab) or by the product
/// itself (the Automatic tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// One recipient.
    DirectMessage,
    /// A list of recipients, paced by the hourly cap.
    BulkMessage,
    /// A reminder the product sent by a rule (automatic).
    AppointmentReminder,
    /// A reminder of an appointment staff sent now.
    ManualReminder,
    /// A request to review the practice (`{review_link}`).
    ReviewRequest,
    /// An invitation to book online (`{schedule_link}`).
    ScheduleInvitation,
}

/// The seed's two tabs of the Communication dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tab {
    /// What staff sent.
    #[default]
    Manual,
    /// What the product sent by itself.
    Automatic,
}

impl MessageType {
    /// Every type, manual ones first.
    pub const ALL: [MessageType; 6] = [
        MessageType::DirectMessage,
        MessageType::BulkMessage,
        MessageType::ManualReminder,
        MessageType::ReviewRequest,
        MessageType::ScheduleInvitation,
        MessageType::AppointmentReminder,
    ];

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::DirectMessage => "direct_message",
            MessageType::BulkMessage => "bulk_message",
            MessageType::AppointmentReminder => "appointment_reminder",
            MessageType::ManualReminder => "manual_reminder",
            MessageType::ReviewRequest => "review_request",
            MessageType::ScheduleInvitation => "schedule_invitation",
        }
    }

    /// Reads the API's name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The tab it is listed in.
    pub fn tab(self) -> Tab {
        match self {
            MessageType::AppointmentReminder => Tab::Automatic,
            _ => Tab::Manual,
        }
    }

    /// Whether it goes to one recipient (everything but bulk).
    pub fn is_single(self) -> bool {
        self != MessageType::BulkMessage
    }
}

/// The only carrier adapter so far.
pub const CARRIER: &str = "bandwidth";

/// A direct or bulk message: what was written, from which number, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique id (time-ordered).
    pub id: String,
    /// Owner.
    pub practice_id: String,
    /// Direct or bulk.
    pub message_type: MessageType,
    /// Sending channel.
    pub channel: Channel,
    /// Sending number.
    pub from: PhoneNumber,
    /// The text as written (for a direct message: as the patient gets it).
    pub text: String,
    /// The Quick Message it was written from, if any.
    #[serde(default)]
    pub template_id: Option<String>,
    /// GSM-7 or UCS-2 (of the longest rendered text).
    pub encoding: Encoding,
    /// Segments per recipient (of the longest rendered text).
    pub segments: u32,
    /// When it is to be sent; `None` = now.
    pub send_at: Option<DateTime<Utc>>,
    /// When the API accepted it.
    pub created_at: DateTime<Utc>,
    /// Number of recipients, skipped ones included.
    pub target_count: u32,
    /// The message's status as the tracking list shows it (kept current by
    /// every recipient transition).
    #[serde(default)]
    pub status: MessageStatus,
    /// Recipients per status (kept current by every recipient transition).
    #[serde(default)]
    pub counts: Counts,
    /// When sending began.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// A bulk message's progress through its waves (`None` for direct ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<BulkProgress>,
    /// The appointments a reminder is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appointment_ids: Vec<String>,
}

impl Message {
    /// The time the tracking list sorts and filters on: when sending began,
    /// or else when it is scheduled, or else when it was accepted.
    pub fn tracking_time(&self) -> DateTime<Utc> {
        self.sent_at.or(self.send_at).unwrap_or(self.created_at)
    }
}

/// Whether `id` has the shape of a message id the API gives out: a UUID in
/// its canonical lower-case hyphenated form (36 characters). Anything else
/// names no message and is answered 404 before any read; a lookup of a
/// well-formed id reads only that message and its recipients.
pub fn is_message_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_message_ids() {
        let id = uuid::Uuid::now_v7().to_string();
        assert!(is_message_id(&id));
        for bad in [
            "",
            "0",
            "m-1",
            &id.to_uppercase(),
            &id.replace('-', ""),
            &format!("{id}#R#00001"),
            &format!("{{{id}}}"),
        ] {
            assert!(!is_message_id(bad), "{bad}");
        }
    }
}
