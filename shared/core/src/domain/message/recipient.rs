//! One recipient of a message: how its send went, why it failed, and the
//! forward moves ([`Transition`]) that record it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MessageType, RecipientStatus, CARRIER};
use crate::domain::aws_errors;
use crate::domain::carrier::CarrierKind;
use crate::domain::carrier_errors::{self, CarrierErrorInfo};
use crate::domain::conversation::OutboundKind;
use crate::domain::job::SendJob;
use crate::domain::phone::PhoneNumber;

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

    /// The AWS catalog's entry for an AWS End User Messaging outcome (an
    /// event type such as `TEXT_INVALID`, or a send-time refusal's reason).
    pub fn from_aws_code(code: &str) -> Self {
        let info = aws_errors::describe(code);
        Self {
            // An outcome the catalog does not know keeps AWS's own name.
            code: code.to_string(),
            carrier: CarrierKind::Aws.as_str().to_string(),
            title: info.title.to_string(),
            description: info.description.to_string(),
            resolution: info.resolution.to_string(),
            permanent: info.permanent,
        }
    }

    /// The same explanation, said to come from `carrier` (our own codes,
    /// such as `retries_exhausted`, are about the practice's carrier).
    pub fn on_carrier(mut self, carrier: CarrierKind) -> Self {
        self.carrier = carrier.as_str().to_string();
        self
    }

    /// The practice is on a carrier this deployment has no settings for.
    pub fn carrier_not_configured(carrier: CarrierKind) -> Self {
        Self {
            code: "carrier_not_configured".to_string(),
            carrier: carrier.as_str().to_string(),
            title: "Carrier not set up".to_string(),
            description: format!(
                "The practice sends through {}, which this deployment is not set up for, so nothing was sent.",
                match carrier {
                    CarrierKind::Bandwidth => "Bandwidth",
                    CarrierKind::Aws => "AWS End User Messaging SMS",
                }
            ),
            resolution: "Ask your administrator to finish the carrier's setup (README, \"Deploy to AWS\"), then send the message again.".to_string(),
            permanent: true,
        }
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
    pub origin: Option<OutboundKind>,
    /// The appointments a reminder is about (what its events name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appointment_ids: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::RecipientStatus::*;

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
    fn failed_recipient_carries_the_catalog_title() {
        let e = RecipientError::from_carrier_code(4720);
        assert_eq!(e.title, "Carrier rejected as invalid destination address");
        assert!(e.permanent);
        assert_eq!(e.code, "4720");
    }
}
