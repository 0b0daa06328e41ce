//! The send queue, the carrier and the one-time send schedules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::carrier::CarrierKind;
use crate::domain::error::StoreError;
use crate::domain::message::{RecipientError, SendJob};

/// The queue the dispatcher consumes.
#[async_trait]
pub trait SendQueue: Send + Sync {
    /// Enqueues sends (batched by the adapter).
    async fn enqueue(&self, jobs: &[SendJob]) -> Result<(), StoreError>;
    /// Enqueues sends, each visible after its own delay in seconds (at most
    /// 900): a bulk wave spaced to the sending number's pace.
    async fn enqueue_wave(&self, jobs: &[(SendJob, u32)]) -> Result<(), StoreError>;
    /// Enqueues one send to become visible after `delay_seconds` (at most 900).
    async fn enqueue_delayed(&self, job: &SendJob, delay_seconds: u32) -> Result<(), StoreError>;
    /// Makes a received queue message visible again after `delay_seconds`.
    async fn retry_later(&self, receipt_handle: &str, delay_seconds: u32)
        -> Result<(), StoreError>;
}

/// A text ready for the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundText {
    /// Sending number, E.164.
    pub from: String,
    /// Destination, E.164.
    pub to: String,
    /// What the patient gets.
    pub text: String,
    /// Our ids, echoed back in callbacks.
    pub tag: String,
    /// The carrier of the practice sending it.
    pub carrier: CarrierKind,
}

/// What the carrier said to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierOutcome {
    /// Accepted for delivery (any 2xx): never sent again.
    Accepted {
        /// The carrier's message id; empty when the answer could not be
        /// read (the delivery callback, matched by tag, brings it).
        carrier_message_id: String,
    },
    /// Refused for good (HTTP 4xx other than 429).
    Rejected {
        /// HTTP status.
        status: u16,
        /// The carrier's description.
        detail: String,
        /// The catalog's explanation, when the carrier's answer names an
        /// outcome it lists (AWS says why it refused a send: a number on
        /// its opt-out list, a spending limit, …); otherwise the generic
        /// "carrier refused the message".
        error: Option<RecipientError>,
    },
    /// The carrier said it did not take it (5xx, 429), or the request never
    /// reached it (no connection): safe to try again later.
    Retryable {
        /// What happened, for the record.
        reason: String,
    },
    /// The request was sent but no answer came (timeout, connection dropped
    /// before the status line): the carrier may have taken it. Never resent
    /// blindly; its delivery report, matched by tag, settles it.
    Unconfirmed {
        /// What happened, for the record.
        reason: String,
    },
}

/// Sends texts through a carrier.
#[async_trait]
pub trait Carrier: Send + Sync {
    /// Submits one text.
    async fn send(&self, text: &OutboundText) -> CarrierOutcome;
}

/// The carrier's own list of numbers that opted out, where it keeps one
/// that can refuse our sends (AWS End User Messaging's opt-out list).
#[async_trait]
pub trait CarrierOptOuts: Send + Sync {
    /// Takes `phone` off the carrier's list, so a patient who texted START
    /// can be texted again (our opt-out record is the one that decides); a
    /// number that is not on it is fine.
    async fn remove_opt_out(&self, phone: &str) -> Result<(), StoreError>;
}

/// One-time schedules that put a send on the queue at a given time
/// (EventBridge Scheduler `at()` schedules on AWS).
#[async_trait]
pub trait SendScheduler: Send + Sync {
    /// Creates, or replaces, the schedule `name` to enqueue `job` at `at`.
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        job: &SendJob,
    ) -> Result<(), StoreError>;
    /// Deletes the schedule `name`; a schedule that no longer exists is fine.
    async fn unschedule(&self, name: &str) -> Result<(), StoreError>;
}
