//! The keys every slice shares: partitions, sort keys and the tracking
//! indexes' names.

use messaging_core::domain::message::{MessageType, Tab};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::ports::TrackingIndex;

pub(super) fn patient_sk(patient_id: &str) -> String {
    format!("{PATIENT_PREFIX}{patient_id}")
}
pub(super) const PATIENT_PREFIX: &str = "PATIENT#";

pub(super) fn practice_pk(practice_id: &str) -> String {
    format!("PRACTICE#{practice_id}")
}
pub(super) fn message_sk(message_id: &str) -> String {
    format!("MSG#{message_id}")
}
pub(super) fn recipient_sk(message_id: &str, recipient_id: &str) -> String {
    format!("MSG#{message_id}#R#{recipient_id}")
}
pub(super) const PRACTICE_SK: &str = "#PRACTICE";
pub(super) const NUMBER_SK: &str = "#NUMBER";
/// Index over every message of a practice, by tracking time.
pub const TRACKING_ALL: &str = "TrackingAll";
/// Index over a practice's messages of one type and status, by tracking time.
pub const TRACKING_BY_TYPE_STATUS: &str = "TrackingByTypeStatus";

pub(super) fn type_status_pk(practice_id: &str, t: MessageType, status: &str) -> String {
    format!("PRACTICE#{practice_id}#{}#{status}", t.as_str())
}

/// The partition of a tab in the index over every message: the Manual tab
/// keeps the practice's own key; automatic texts have their own.
pub(super) fn tab_pk(practice_id: &str, tab: Tab) -> String {
    match tab {
        Tab::Manual => practice_pk(practice_id),
        Tab::Automatic => format!("PRACTICE#{practice_id}#AUTOMATIC"),
    }
}

/// Which index, key attribute names and partition key a tracking read uses:
/// `(index, pk attribute, sk attribute, pk value)`. Public so the tracking
/// benchmark can issue the very query [`MessageStore::communications`] does.
///
/// [`MessageStore::communications`]: messaging_core::ports::MessageStore::communications
pub fn tracking_index_keys(
    practice_id: &str,
    index: &TrackingIndex,
) -> (&'static str, &'static str, &'static str, String) {
    match index {
        TrackingIndex::All(tab) => (TRACKING_ALL, "gsi1pk", "gsi1sk", tab_pk(practice_id, *tab)),
        TrackingIndex::TypeStatus(t, status) => (
            TRACKING_BY_TYPE_STATUS,
            "gsi2pk",
            "gsi2sk",
            type_status_pk(practice_id, *t, status),
        ),
    }
}

/// Index of a practice's conversations in one status.
pub const INBOX_BY_STATUS: &str = "InboxByStatus";
/// Index of a practice's conversations in one status with unread texts.
pub const INBOX_UNREAD: &str = "InboxUnread";
/// Index of a practice's conversations in one status assigned to one person.
pub const INBOX_BY_ASSIGNEE: &str = "InboxByAssignee";
/// Index of a practice's unread conversations in one status assigned to one
/// person.
pub const INBOX_UNREAD_BY_ASSIGNEE: &str = "InboxUnreadByAssignee";

pub(super) const APIKEY_SK: &str = "#APIKEY";

/// The sort-key prefix of the links listing patients under the number
/// `phone` (`PHONEPAT#{phone}#{patient_id}`).
pub(super) fn phone_patients_prefix(phone: &PhoneNumber) -> String {
    format!("PHONEPAT#{}#", phone.as_str())
}

/// The sort key of the link listing `patient_id` under the number `phone`.
pub(super) fn phone_patient_sk(phone: &PhoneNumber, patient_id: &str) -> String {
    format!("{}{patient_id}", phone_patients_prefix(phone))
}

pub(super) fn events_pk(practice_id: &str) -> String {
    format!("PRACTICE#{practice_id}#EVENTS")
}
pub(super) fn event_sk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}
