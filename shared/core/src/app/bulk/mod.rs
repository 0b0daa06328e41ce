//! Bulk messages: accept a list (ids or an age audience), store it cheaply,
//! and let one pump job per bulk release it in waves under the practice's
//! hourly cap; read progress, page recipients, cancel.
//!
//! - [`accept`](BulkMessages::accept) (`accept.rs`): validate, pick the
//!   recipients, hand the pump job over, store the bulk.
//! - [`get`](BulkMessages::get) and [`recipients`](BulkMessages::recipients)
//!   (`read.rs`): progress with its estimate, pages of recipients.
//! - [`cancel`](BulkMessages::cancel) (`cancel.rs`).
//! - [`pump::run_pump`]: one run of a bulk's pump, called by the dispatcher.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::domain::message::{MessageView, RecipientView};

mod accept;
mod cancel;
pub mod pump;
mod read;
#[cfg(test)]
pub(crate) mod test_support;

/// Body of `POST /v1/bulk-messages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The patients to text, or...
    #[serde(default)]
    pub patient_ids: Option<Vec<String>>,
    /// ...everyone whose age is in a range.
    #[serde(default)]
    pub audience: Option<Audience>,
    /// The text with optional merge fields, or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a saved Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Start later, at this time.
    #[serde(default)]
    pub send_at: Option<String>,
    /// The office confirms it knows bulk sends are capped per hour and meant
    /// for patients who expect the message. Required, `true`.
    #[serde(default)]
    pub acknowledge_bulk_limit: Option<bool>,
}

/// An age range; whole years, inclusive, on the practice's date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Youngest age included.
    #[serde(default)]
    pub min_age: Option<i64>,
    /// Oldest age included.
    #[serde(default)]
    pub max_age: Option<i64>,
}

/// A bulk message as the API shows it: the message resource without its
/// recipients, with the cap and when it should be done.
#[derive(Debug, Clone, Serialize)]
pub struct BulkView {
    #[serde(flatten)]
    message: MessageView,
    hourly_cap: u32,
    cap_window_seconds: u32,
    estimated_completion_at: Option<String>,
}

/// One page of a bulk's recipients.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientItem {
    recipient_id: String,
    #[serde(flatten)]
    recipient: RecipientView,
}

/// Everything the bulk use cases need.
pub struct BulkMessages<S, Q, C> {
    /// Practices, patients, opt-outs, templates, messages, rate buckets.
    pub store: S,
    /// The send queue.
    pub queue: Q,
    /// One-time schedules for bulks that start later.
    pub scheduler: C,
    /// Starts due within this much go on the queue with a delay instead of
    /// a schedule.
    pub queue_delay_max: Duration,
    /// Carrier submissions per second through one sending number.
    pub per_second: u32,
}

/// Why a recipient is kept but not sent to.
pub mod skip {
    /// The number replied STOP.
    pub const OPTED_OUT: &str = "opted_out: the number replied STOP";
}

/// Position of the `n`-th recipient (1-based) as its id.
pub fn recipient_id(n: u32) -> String {
    format!("{n:05}")
}

/// The first pump job is queued this long before the bulk is stored
/// (normally it is stored within milliseconds).
pub const PUMP_HEAD_START_SECONDS: u32 = 1;

/// How long a pump keeps looking for a bulk that is not stored yet before it
/// concludes that storing failed and stops.
pub const PUMP_GRACE: Duration = Duration::seconds(60);
