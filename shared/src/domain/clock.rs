//! Time as a dependency, so decisions that hinge on "now" are testable.

use chrono::{DateTime, Utc};

/// Where "now" comes from. Production uses [`SystemClock`]; tests pass their own.
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Formats an instant the way the API answers: RFC 3339, UTC, `Z`, milliseconds.
pub fn to_api_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
