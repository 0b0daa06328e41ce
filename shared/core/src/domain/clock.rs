//! How the API writes instants, and waits as queue delays. Where "now"
//! comes from is a port: [`crate::ports::Clock`].

use chrono::{DateTime, Duration, Utc};

use super::limits::SQS_MAX_DELAY_SECONDS;

/// Formats an instant the way the API answers: RFC 3339, UTC, `Z`, milliseconds.
pub fn to_api_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Serializes a time as the API shows times ([`to_api_time`]).
pub fn serialize_api_time<S: serde::Serializer>(
    t: &DateTime<Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_api_time(t))
}

/// A wait as a queue delivery delay: whole seconds rounded up (a message
/// is never delivered before its instant), at most
/// [`SQS_MAX_DELAY_SECONDS`] (longer waits are held again on arrival).
pub fn queue_delay(wait: Duration) -> u32 {
    let ms = wait.num_milliseconds().max(0);
    u32::try_from((ms + 999) / 1000)
        .unwrap_or(SQS_MAX_DELAY_SECONDS)
        .min(SQS_MAX_DELAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_delay_rounds_up_and_caps_at_fifteen_minutes() {
        assert_eq!(queue_delay(Duration::milliseconds(-5)), 0);
        assert_eq!(queue_delay(Duration::zero()), 0);
        assert_eq!(queue_delay(Duration::milliseconds(1)), 1);
        assert_eq!(queue_delay(Duration::milliseconds(1000)), 1);
        assert_eq!(queue_delay(Duration::milliseconds(1001)), 2);
        assert_eq!(queue_delay(Duration::hours(2)), 900);
    }
}
