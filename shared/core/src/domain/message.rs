//! Messages, their recipients, and the recipient lifecycle:
//! `scheduled → queued → sending → sent → delivered | failed`, with side exits
//! `canceled` and `skipped`. Statuses only move forward.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::carrier_errors::{self, CarrierErrorInfo};
use super::clock::to_api_time;
use super::phone::PhoneNumber;
use super::practice::Channel;
use super::text::Encoding;

pub use super::job::SendJob;

/// Direct (one patient) or bulk (a list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// One recipient.
    DirectMessage,
    /// A list of recipients, paced by the hourly cap.
    BulkMessage,
}

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

/// Why a recipient failed, in words the office can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientError {
    /// The carrier's numeric code (`"4720"`), or our own code for failures
    /// that never reached a callback (`"carrier_rejected"`, `"retries_exhausted"`).
    pub code: String,
    /// Which carrier reported it.
    pub carrier: String,
    /// Short title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// What the office should do.
    pub resolution: String,
    /// Sending the same message again would fail the same way.
    pub permanent: bool,
}

impl RecipientError {
    /// The catalog's entry for a Bandwidth error code.
    pub fn from_carrier_code(code: u16) -> Self {
        Self::from_info(&carrier_errors::describe(code))
    }

    fn from_info(info: &CarrierErrorInfo) -> Self {
        Self {
            code: info.code.to_string(),
            carrier: CARRIER.to_string(),
            title: info.title.to_string(),
            description: info.description.to_string(),
            resolution: info.resolution.to_string(),
            permanent: info.permanent,
        }
    }

    /// The carrier refused the request itself (HTTP 4xx), before any handset.
    pub fn carrier_rejected(http_status: u16, detail: &str) -> Self {
        Self {
            code: format!("http_{http_status}"),
            carrier: CARRIER.to_string(),
            title: "Carrier refused the message".to_string(),
            description: format!("The carrier refused the send request: {detail}"),
            resolution: "Check the practice's sending number and carrier settings, then send again. If it keeps happening, contact support with this code.".to_string(),
            permanent: true,
        }
    }

    /// The send's queue job kept failing and was set aside on the
    /// dead-letter queue before anything reached the carrier.
    pub fn job_dead_lettered() -> Self {
        Self {
            code: JOB_DEAD_LETTERED.to_string(),
            carrier: CARRIER.to_string(),
            title: "Set aside after repeated failures".to_string(),
            description: "This text could not be processed after repeated attempts and was set aside. It was not sent.".to_string(),
            resolution: "Nothing reached the patient. Your administrator can send it again with `practice-admin requeue-dead-letters`; or send a new message.".to_string(),
            permanent: false,
        }
    }

    /// The carrier kept answering with errors or timing out.
    pub fn retries_exhausted(attempts: u32, last: &str) -> Self {
        Self {
            code: "retries_exhausted".to_string(),
            carrier: CARRIER.to_string(),
            title: "Carrier unavailable".to_string(),
            description: format!(
                "The carrier could not be reached after {attempts} attempts (last: {last})."
            ),
            resolution: "Nothing was sent. Send the message again later.".to_string(),
            permanent: false,
        }
    }

    /// The send was interrupted after it was claimed, so whether the carrier
    /// got it is unknown. Marked failed rather than retried to never send twice.
    pub fn send_interrupted() -> Self {
        Self {
            code: "send_interrupted".to_string(),
            carrier: CARRIER.to_string(),
            title: "Send interrupted".to_string(),
            description: "The send was interrupted before the carrier confirmed it, and no delivery report came; the patient may or may not have received it. It was not sent again, to avoid a duplicate."
                .to_string(),
            resolution: "Check with the patient before sending again.".to_string(),
            permanent: false,
        }
    }
}

/// Error code of a recipient whose queue job was set aside (dead-lettered)
/// before it reached the carrier; only these may be requeued.
pub const JOB_DEAD_LETTERED: &str = "job_dead_lettered";

/// A send or pump job taken off the dead-letter queue and kept for repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedJob {
    /// The job as it was queued.
    pub job: SendJob,
    /// What was done with it when it was set aside.
    pub reason: String,
    /// When.
    pub parked_at: DateTime<Utc>,
}

/// One forward move of a recipient. Adapters perform it as one conditional
/// write, conditioned on the recipient being unchanged since it was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// `queued → sending`: the dispatcher takes the send; at most one wins.
    Claim {
        /// When.
        at: DateTime<Utc>,
    },
    /// `sending → queued`: the carrier failed retryably; the claim is given back.
    Release {
        /// Why, for the record.
        reason: String,
    },
    /// `sending → sent`: the carrier accepted the message.
    Sent {
        /// The carrier's id.
        carrier_message_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// `sending | sent → delivered`, from a callback.
    Delivered {
        /// Must match the id stored, if one is stored.
        carrier_message_id: String,
        /// When the carrier says it was delivered.
        at: DateTime<Utc>,
    },
    /// `scheduled → queued`: its time has come.
    Queue,
    /// `failed (job_dead_lettered) → queued`: a job set aside before it
    /// reached the carrier is sent again by the repair command. No other
    /// failure may go back: it may have reached the patient.
    Requeue,
    /// `scheduled → scheduled` at a new time (the office rescheduled it).
    Reschedule {
        /// The requested send time.
        send_at: DateTime<Utc>,
        /// The first instant it may go (after quiet hours).
        not_before: DateTime<Utc>,
    },
    /// `scheduled | queued → canceled`, by the office.
    Cancel {
        /// When.
        at: DateTime<Utc>,
    },
    /// `queued → skipped`: not sent, e.g. the number opted out after queueing.
    Skip {
        /// Why, in words the office understands.
        reason: String,
    },
    /// `→ failed`, with the reason. From a callback the carrier id must match.
    Failed {
        /// The callback's carrier id, if the failure came from a callback.
        carrier_message_id: Option<String>,
        /// Why.
        error: RecipientError,
        /// When.
        at: DateTime<Utc>,
    },
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
    pub bulk: Option<super::bulk::BulkProgress>,
}

impl Message {
    /// The time the tracking list sorts and filters on: when sending began,
    /// or else when it is scheduled, or else when it was accepted.
    pub fn tracking_time(&self) -> DateTime<Utc> {
        self.sent_at.or(self.send_at).unwrap_or(self.created_at)
    }
}

/// One recipient of a message, and how its send went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Owner.
    pub practice_id: String,
    /// The message it belongs to.
    pub message_id: String,
    /// Position within the message (`"00001"`).
    pub recipient_id: String,
    /// The patient, or `None` for an ad-hoc number.
    pub patient_id: Option<String>,
    /// Destination.
    pub to: PhoneNumber,
    /// Sending number.
    pub from: PhoneNumber,
    /// Rendered text, exactly what the patient gets.
    pub text: String,
    /// Lifecycle position.
    pub status: RecipientStatus,
    /// Not sent before this instant (schedule, cap, quiet hours).
    pub not_before: Option<DateTime<Utc>>,
    /// The carrier's id once it accepted the message.
    pub carrier_message_id: Option<String>,
    /// When the carrier accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the carrier reported delivery.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<RecipientError>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// Carrier attempts so far.
    pub attempts: u32,
    /// When the dispatcher last claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Direct or bulk (decides how the message's own status follows).
    #[serde(default = "direct")]
    pub message_type: MessageType,
    /// Why the practice sent it, where it is not plain from `message_type`
    /// (a reply in a conversation, an after-hours reply, the answer to a
    /// keyword). Keyword answers may go to an opted-out number; every kind
    /// decides how the text shows in its conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<super::conversation::OutboundKind>,
    /// Bumped by every transition; writes are conditioned on it, so a
    /// transition computed from a stale read is refused.
    #[serde(default)]
    pub version: u32,
}

fn direct() -> MessageType {
    MessageType::DirectMessage
}

impl Recipient {
    /// The queue job that sends to this recipient.
    pub fn job(&self) -> SendJob {
        SendJob {
            practice_id: self.practice_id.clone(),
            message_id: self.message_id.clone(),
            recipient_id: self.recipient_id.clone(),
        }
    }

    /// The recipient after `t`, or `None` when `t` would not move it forward
    /// (or names another carrier message). The single definition of each
    /// transition's effect; adapters store what this returns.
    pub fn apply(&self, t: &Transition) -> Option<Recipient> {
        use RecipientStatus::*;
        let id_matches = |cid: &str| self.carrier_message_id.as_deref().is_none_or(|c| c == cid);
        let mut next = self.clone();
        next.version = self.version.wrapping_add(1);
        match t {
            Transition::Claim { at } => {
                if !self.status.can_move_to(Sending) {
                    return None;
                }
                next.status = Sending;
                next.claimed_at = Some(*at);
                next.attempts = self.attempts.saturating_add(1);
            }
            Transition::Release { .. } => {
                if self.status != Sending {
                    return None;
                }
                next.status = Queued;
                next.claimed_at = None;
            }
            Transition::Sent {
                carrier_message_id,
                at,
            } => {
                if !self.status.can_move_to(Sent) {
                    return None;
                }
                next.status = Sent;
                // Empty: accepted, but the carrier's answer could not be
                // read; its callbacks (matched by tag) will carry the id.
                next.carrier_message_id =
                    Some(carrier_message_id.clone()).filter(|id| !id.is_empty());
                next.sent_at = Some(*at);
            }
            Transition::Delivered {
                carrier_message_id,
                at,
            } => {
                if !self.status.can_move_to(Delivered) || !id_matches(carrier_message_id) {
                    return None;
                }
                next.status = Delivered;
                next.delivered_at = Some(*at);
                next.carrier_message_id
                    .get_or_insert_with(|| carrier_message_id.clone());
                next.sent_at.get_or_insert(*at);
            }
            Transition::Queue => {
                if !self.status.can_move_to(Queued) {
                    return None;
                }
                next.status = Queued;
            }
            Transition::Requeue => {
                let set_aside = self
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == JOB_DEAD_LETTERED);
                if self.status != Failed || !set_aside {
                    return None;
                }
                next.status = Queued;
                next.error = None;
                next.claimed_at = None;
            }
            Transition::Reschedule { not_before, .. } => {
                if self.status != Scheduled {
                    return None;
                }
                next.not_before = Some(*not_before);
            }
            Transition::Cancel { .. } => {
                if !self.status.can_move_to(Canceled) {
                    return None;
                }
                next.status = Canceled;
                next.claimed_at = None;
            }
            Transition::Skip { reason } => {
                if !self.status.can_move_to(Skipped) {
                    return None;
                }
                next.status = Skipped;
                next.skip_reason = Some(reason.clone());
                next.claimed_at = None;
            }
            Transition::Failed {
                carrier_message_id,
                error,
                ..
            } => {
                if !self.status.can_move_to(Failed)
                    || !carrier_message_id.as_deref().is_none_or(id_matches)
                {
                    return None;
                }
                next.status = Failed;
                next.error = Some(error.clone());
                if let Some(cid) = carrier_message_id {
                    next.carrier_message_id.get_or_insert_with(|| cid.clone());
                }
            }
        }
        Some(next)
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

/// A recipient as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    patient_id: Option<String>,
    to: String,
    status: RecipientStatus,
    not_before: Option<String>,
    carrier_message_id: Option<String>,
    sent_at: Option<String>,
    delivered_at: Option<String>,
    error: Option<RecipientError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<String>,
}

impl From<&Recipient> for RecipientView {
    fn from(r: &Recipient) -> Self {
        Self {
            patient_id: r.patient_id.clone(),
            to: r.to.to_string(),
            status: r.status,
            not_before: r.not_before.as_ref().map(to_api_time),
            carrier_message_id: r.carrier_message_id.clone(),
            sent_at: r.sent_at.as_ref().map(to_api_time),
            delivered_at: r.delivered_at.as_ref().map(to_api_time),
            error: r.error.clone(),
            skip_reason: r.skip_reason.clone(),
        }
    }
}

/// A message as the API shows it (`GET /v1/messages/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    id: String,
    #[serde(rename = "type")]
    message_type: MessageType,
    status: &'static str,
    channel: Channel,
    from: String,
    text: String,
    template_id: Option<String>,
    encoding: Encoding,
    segments: u32,
    send_at: Option<String>,
    created_at: String,
    target_count: u32,
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients: Option<Vec<RecipientView>>,
}

impl MessageView {
    /// Builds the resource from the stored message and its recipients.
    pub fn new(message: &Message, recipients: &[Recipient]) -> Self {
        let counts = Counts::of(recipients.iter().map(|r| &r.status));
        let status = match (message.message_type, recipients.first()) {
            (MessageType::DirectMessage, Some(r)) => r.status.as_str(),
            _ => bulk_status(&counts).as_str(),
        };
        Self {
            status,
            counts,
            recipients: Some(recipients.iter().map(RecipientView::from).collect()),
            ..Self::summary(message)
        }
    }

    /// A message without its recipients: counts and status as kept on the
    /// message by every recipient transition (how bulk messages are shown).
    pub fn summary(message: &Message) -> Self {
        Self {
            id: message.id.clone(),
            message_type: message.message_type,
            status: bulk_status_of(message).as_str(),
            channel: message.channel,
            from: message.from.to_string(),
            text: message.text.clone(),
            template_id: message.template_id.clone(),
            encoding: message.encoding,
            segments: message.segments,
            send_at: message.send_at.as_ref().map(to_api_time),
            created_at: to_api_time(&message.created_at),
            target_count: message.target_count,
            counts: message.counts,
            recipients: None,
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

/// Whether `id` has the shape of a message id the API gives out: a UUID in
/// its canonical lower-case hyphenated form (36 characters). Anything else
/// names no message and is answered 404 before any read; a lookup of a
/// well-formed id reads only that message and its recipients.
pub fn is_message_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
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
    fn an_acceptance_without_a_readable_id_takes_the_callbacks_id() {
        let r = crate::testing::queued_recipient();
        let at = Utc::now();
        let claimed = r.apply(&Transition::Claim { at }).unwrap();
        let sent = claimed
            .apply(&Transition::Sent {
                carrier_message_id: String::new(),
                at,
            })
            .unwrap();
        assert_eq!(
            (sent.status, sent.carrier_message_id.as_deref()),
            (Sent, None)
        );
        let delivered = sent
            .apply(&Transition::Delivered {
                carrier_message_id: "bw-9".into(),
                at,
            })
            .unwrap();
        assert_eq!(delivered.carrier_message_id.as_deref(), Some("bw-9"));
    }

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

    #[test]
    fn failed_recipient_carries_the_catalog_title() {
        let e = RecipientError::from_carrier_code(4720);
        assert_eq!(e.title, "Carrier rejected as invalid destination address");
        assert!(e.permanent);
        assert_eq!(e.code, "4720");
    }
}
