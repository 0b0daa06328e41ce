//! Where a recipient's send stands, and what that makes of its message:
//! `scheduled → queued → sending → sent → delivered | failed`, with side
//! exits `canceled` and `skipped`. Statuses only move forward.

use serde::{Deserialize, Serialize};

use super::Message;

/// Where one recipient's send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    /// Waiting for its `send_at`.
    Scheduled,
    /// In the send queue.
    Queued,
    /// Claimed by the dispatcher; the carrier is being called.
    Sending,
    /// The carrier accepted it.
    Sent,
    /// The carrier reported delivery to the handset.
    Delivered,
    /// Not delivered; `error` says why.
    Failed,
    /// Canceled by the office before sending.
    Canceled,
    /// Never sent (opted out, no valid phone); `skip_reason` says why.
    Skipped,
}

impl RecipientStatus {
    /// Every status, in lifecycle order (for counts).
    pub const ALL: [RecipientStatus; 8] = [
        RecipientStatus::Scheduled,
        RecipientStatus::Queued,
        RecipientStatus::Sending,
        RecipientStatus::Sent,
        RecipientStatus::Delivered,
        RecipientStatus::Failed,
        RecipientStatus::Canceled,
        RecipientStatus::Skipped,
    ];

    /// The stored and API name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RecipientStatus::Scheduled => "scheduled",
            RecipientStatus::Queued => "queued",
            RecipientStatus::Sending => "sending",
            RecipientStatus::Sent => "sent",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
            RecipientStatus::Canceled => "canceled",
            RecipientStatus::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RecipientStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further transition is possible.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RecipientStatus::Delivered
                | RecipientStatus::Failed
                | RecipientStatus::Canceled
                | RecipientStatus::Skipped
        )
    }

    /// The statuses a recipient may be in for `next` to be a forward move.
    /// Adapters turn this into the condition of the one conditional write
    /// that performs the transition.
    pub fn allowed_predecessors(next: RecipientStatus) -> &'static [RecipientStatus] {
        use RecipientStatus::*;
        match next {
            Scheduled => &[],
            Queued => &[Scheduled],
            Sending => &[Queued],
            Sent => &[Sending],
            // A delivery or failure callback may overtake the dispatcher's own
            // `sent` write, so both are accepted from `sending` too.
            Delivered => &[Sending, Sent],
            // From `scheduled` only when its job is set aside from the
            // dead-letter queue before its time came (app::dead_letters).
            Failed => &[Scheduled, Queued, Sending, Sent],
            Canceled => &[Scheduled, Queued],
            Skipped => &[Scheduled, Queued],
        }
    }

    /// Whether `self → next` moves forward.
    pub fn can_move_to(&self, next: RecipientStatus) -> bool {
        Self::allowed_predecessors(next).contains(self)
    }
}

/// Recipients per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    #[allow(missing_docs)]
    pub scheduled: u32,
    #[allow(missing_docs)]
    pub queued: u32,
    #[allow(missing_docs)]
    pub sending: u32,
    #[allow(missing_docs)]
    pub sent: u32,
    #[allow(missing_docs)]
    pub delivered: u32,
    #[allow(missing_docs)]
    pub failed: u32,
    #[allow(missing_docs)]
    pub canceled: u32,
    #[allow(missing_docs)]
    pub skipped: u32,
}

impl Counts {
    /// The count for one status.
    pub fn get(&self, s: RecipientStatus) -> u32 {
        let mut copy = *self;
        *copy.slot(s)
    }

    /// Tallies the statuses of `recipients`.
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a RecipientStatus>) -> Counts {
        let mut c = Counts::default();
        for s in statuses {
            *c.slot(*s) += 1;
        }
        c
    }

    fn slot(&mut self, s: RecipientStatus) -> &mut u32 {
        match s {
            RecipientStatus::Scheduled => &mut self.scheduled,
            RecipientStatus::Queued => &mut self.queued,
            RecipientStatus::Sending => &mut self.sending,
            RecipientStatus::Sent => &mut self.sent,
            RecipientStatus::Delivered => &mut self.delivered,
            RecipientStatus::Failed => &mut self.failed,
            RecipientStatus::Canceled => &mut self.canceled,
            RecipientStatus::Skipped => &mut self.skipped,
        }
    }
}

/// A message's status as a whole, as stored on the message item, listed by
/// the tracking index and shown by the API: a direct message has its one
/// recipient's status ([`RecipientStatus`]), a bulk message its
/// [`BulkStatus`]. One type for both, because the tracking list filters both
/// kinds by one `status` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its `send_at`.
    Scheduled,
    /// Accepted and waiting in the send queue. (Also what a message item
    /// written without a status reads as.)
    #[default]
    Queued,
    /// Being sent (a direct message's recipient is with the carrier, or a
    /// bulk has recipients not yet final).
    Sending,
    /// The carrier accepted it.
    Sent,
    /// Delivered to the handset.
    Delivered,
    /// Failed (see the recipient's error).
    Failed,
    /// Canceled by the office.
    Canceled,
    /// Not sent (opted out, undeliverable number).
    Skipped,
    /// A bulk whose every recipient is final.
    Completed,
}

impl MessageStatus {
    /// Every message status.
    pub const ALL: [MessageStatus; 9] = [
        MessageStatus::Scheduled,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Canceled,
        MessageStatus::Skipped,
        MessageStatus::Completed,
    ];

    /// The stored and API name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Canceled => "canceled",
            MessageStatus::Skipped => "skipped",
            MessageStatus::Completed => "completed",
        }
    }

    /// Parses a stored or API name.
    pub fn parse(s: &str) -> Option<MessageStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Tests and logs compare with the stored name.
impl PartialEq<&str> for MessageStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<RecipientStatus> for MessageStatus {
    fn from(s: RecipientStatus) -> Self {
        MessageStatus::parse(s.as_str()).unwrap_or_default()
    }
}

impl From<BulkStatus> for MessageStatus {
    fn from(s: BulkStatus) -> Self {
        MessageStatus::parse(s.as_str()).unwrap_or_default()
    }
}

/// A bulk message's status as a whole (stored on the message item, and the
/// partition of the tracking index it is listed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    /// Waiting for its `send_at`.
    Scheduled,
    /// Some recipients not yet final.
    Sending,
    /// Every recipient final.
    Completed,
    /// Canceled before any recipient reached the carrier.
    Canceled,
}

impl BulkStatus {
    /// Every bulk status.
    pub const ALL: [BulkStatus; 4] = [
        BulkStatus::Scheduled,
        BulkStatus::Sending,
        BulkStatus::Completed,
        BulkStatus::Canceled,
    ];

    /// The stored and API name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            BulkStatus::Scheduled => "scheduled",
            BulkStatus::Sending => "sending",
            BulkStatus::Completed => "completed",
            BulkStatus::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<BulkStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for BulkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for BulkStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A bulk message's status from its counts, `canceled` when the office
/// canceled it before any recipient reached the carrier.
pub fn bulk_status_of(message: &Message) -> BulkStatus {
    let c = &message.counts;
    let canceled = message
        .bulk
        .as_ref()
        .is_some_and(|b| b.canceled_at.is_some());
    if canceled
        && c.canceled > 0
        && c.sent + c.delivered + c.failed == 0
        && c.queued + c.scheduled + c.sending == 0
    {
        return BulkStatus::Canceled;
    }
    bulk_status(c)
}

/// Recipients in these statuses keep a bulk open: waiting, in flight, or
/// sent and awaiting the carrier's delivery report. The others are final.
pub const BULK_OPEN_STATUSES: [RecipientStatus; 4] = [
    RecipientStatus::Scheduled,
    RecipientStatus::Queued,
    RecipientStatus::Sending,
    RecipientStatus::Sent,
];

/// The stored status a bulk is completed from (its first wave went out).
pub const BULK_COMPLETES_FROM: BulkStatus = BulkStatus::Sending;

/// Whether no recipient of a bulk with these counts is still open.
pub fn bulk_all_final(c: &Counts) -> bool {
    BULK_OPEN_STATUSES.iter().all(|s| c.get(*s) == 0)
}

/// When a bulk becomes `completed` — the one rule: after one of its
/// recipients reached a final status, if its stored status is
/// [`BULK_COMPLETES_FROM`] and [`bulk_all_final`] holds for its counts.
/// Stores apply it after such a transition (the DynamoDB adapter as the
/// condition of one update); a refusal leaves the stored status as it is.
pub fn bulk_completes(stored_status: &str, c: &Counts) -> bool {
    stored_status == BULK_COMPLETES_FROM.as_str() && bulk_all_final(c)
}

/// A bulk message's status: `scheduled`, `sending` (some not yet final),
/// `completed` (all final) or `canceled` (canceled before any was sent).
pub fn bulk_status(c: &Counts) -> BulkStatus {
    let in_flight = c.queued + c.sending + c.sent;
    let reached_carrier = c.sent + c.delivered + c.failed;
    if c.scheduled > 0 && in_flight == 0 && reached_carrier == 0 {
        BulkStatus::Scheduled
    } else if !bulk_all_final(c) {
        BulkStatus::Sending
    } else if c.canceled > 0 && reached_carrier == 0 {
        BulkStatus::Canceled
    } else {
        BulkStatus::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::RecipientStatus::*;
    use super::*;

    #[test]
    fn delivered_never_moves_back_to_sent() {
        assert!(!Delivered.can_move_to(Sent));
        assert!(!Delivered.can_move_to(Failed));
        assert!(!Failed.can_move_to(Delivered));
    }

    #[test]
    fn callback_may_overtake_the_sent_write() {
        assert!(Sending.can_move_to(Delivered));
        assert!(Sent.can_move_to(Delivered));
        assert!(Sending.can_move_to(Failed));
    }

    #[test]
    fn only_waiting_recipients_can_be_canceled() {
        assert!(Scheduled.can_move_to(Canceled));
        assert!(Queued.can_move_to(Canceled));
        assert!(!Sending.can_move_to(Canceled));
        assert!(!Sent.can_move_to(Canceled));
    }

    #[test]
    fn final_statuses_have_no_successor() {
        for from in RecipientStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in RecipientStatus::ALL {
                assert!(!from.can_move_to(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in RecipientStatus::ALL {
            assert_eq!(RecipientStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn bulk_status_follows_counts() {
        let c = |s: &[RecipientStatus]| Counts::of(s.iter());
        assert_eq!(bulk_status(&c(&[Scheduled, Scheduled])), "scheduled");
        assert_eq!(bulk_status(&c(&[Sent, Queued])), "sending");
        assert_eq!(bulk_status(&c(&[Delivered, Failed, Skipped])), "completed");
        assert_eq!(bulk_status(&c(&[Canceled, Canceled])), "canceled");
        assert_eq!(bulk_status(&c(&[Delivered, Canceled])), "completed");
    }

    #[test]
    fn a_bulk_completes_only_from_sending_once_every_recipient_is_final() {
        let c = |s: &[RecipientStatus]| Counts::of(s.iter());
        assert!(bulk_completes("sending", &c(&[Delivered, Failed, Skipped])));
        assert!(bulk_completes("sending", &c(&[Delivered, Canceled])));
        assert!(!bulk_completes("sending", &c(&[Delivered, Sent])));
        assert!(!bulk_completes("scheduled", &c(&[Delivered])));
        for status in RecipientStatus::ALL {
            let open = BULK_OPEN_STATUSES.contains(&status);
            assert_eq!(open, !status.is_final(), "{status:?}");
            assert_eq!(bulk_completes("sending", &c(&[Delivered, status])), !open);
        }
    }
}
