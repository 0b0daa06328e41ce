//! Delivering an event to the practice's endpoints: the retry schedule,
//! what an attempt's answer means, and where each delivery stands.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Event;
use crate::domain::clock::to_api_time;
use crate::domain::error::AppError;

/// How long to wait after a failed attempt before the next: about 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (three days in all),
/// then the delivery has failed.
pub const RETRY_DELAYS_SECONDS: [u32; 9] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/// A retry schedule: the waits after the 1st, 2nd, ... failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<u32>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(RETRY_DELAYS_SECONDS.to_vec())
    }
}

impl RetrySchedule {
    /// A schedule from comma-separated seconds (`5,300,1800`); a deployment
    /// parameter, so the local cloud's tests need not wait minutes.
    ///
    /// # Errors
    ///
    /// A sentence naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|d| {
                d.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{d:?} is not a whole number of seconds above 0"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err("between 1 and 20 delays are needed".into());
        }
        Ok(Self(delays))
    }

    /// The wait before attempt `attempt + 1` after attempt `attempt`
    /// (1-based) failed; `None` when it was the last attempt.
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.0.get(index).map(|s| Duration::seconds(i64::from(*s)))
    }

    /// Attempts in all: the first and one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.0.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}

/// What one delivery attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with this HTTP status (a redirect is not
    /// followed: it counts as a failure).
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// No answer at all: DNS, connection, TLS, or an address we refuse to
    /// call (private, loopback...).
    Error(String),
}

impl AttemptResult {
    /// A 2xx.
    pub fn delivered(&self) -> bool {
        matches!(self, AttemptResult::Status(s) if (200..300).contains(s))
    }

    /// 410 Gone: the endpoint asks not to be called again.
    pub fn gone(&self) -> bool {
        matches!(self, AttemptResult::Status(410))
    }

    /// The HTTP status, if the endpoint answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptResult::Status(s) => Some(*s),
            _ => None,
        }
    }

    /// A short description for the event list (never the response body).
    pub fn describe(&self) -> String {
        match self {
            AttemptResult::Status(s) if (200..300).contains(s) => format!("HTTP {s}"),
            AttemptResult::Status(s) if (300..400).contains(s) => {
                format!("HTTP {s}: redirects are not followed")
            }
            AttemptResult::Status(410) => "HTTP 410: the endpoint was disabled".into(),
            AttemptResult::Status(s) => format!("HTTP {s}"),
            AttemptResult::Timeout => "no answer within 15 seconds".into(),
            AttemptResult::Error(e) => e.clone(),
        }
    }
}

/// Where one endpoint's delivery of one event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt is under way.
    Sending,
    /// An attempt got a 2xx.
    Delivered,
    /// Every attempt failed, or the endpoint was disabled or deleted.
    Failed,
}

impl DeliveryState {
    /// Snake-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// No attempt will follow.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Failed)
    }
}

/// One endpoint's delivery of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The endpoint.
    pub endpoint_id: String,
    #[allow(missing_docs)]
    pub state: DeliveryState,
    /// Attempts made in this round.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// What the last attempt got, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the attempt under way began (sending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the last attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A delivery not yet attempted, due now.
    pub fn new(endpoint_id: &str, now: DateTime<Utc>) -> Self {
        Delivery {
            endpoint_id: endpoint_id.to_string(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            next_attempt_at: Some(now),
            claimed_at: None,
            last_attempt_at: None,
        }
    }
}

/// An attempt that began this long ago without an outcome recorded is taken
/// to have died with its function (the HTTP timeout is 15 s; the function's
/// 30 s): the redelivered job may attempt again.
pub const STALE_ATTEMPT: Duration = Duration::seconds(60);

/// An event with where its deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    #[allow(missing_docs)]
    pub event: Event,
    /// `None` until the event has been fanned out to the endpoints
    /// subscribed when it happened (or when it was last redelivered).
    pub deliveries: Option<Vec<Delivery>>,
    /// Bumped by each redelivery; jobs of an older round are dropped.
    pub round: u32,
}

/// The delivery state of an event as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventDelivery {
    /// Some endpoint still has attempts to come (or it is not fanned out yet).
    Pending,
    /// Every endpoint got it.
    Delivered,
    /// No attempt will follow and at least one endpoint never got it.
    Failed,
    /// No endpoint was subscribed to it.
    None,
}

impl EventDelivery {
    /// Reads the `delivery` query parameter.
    ///
    /// # Errors
    ///
    /// 422 `invalid_field` naming `delivery`.
    pub fn parse(value: &str) -> Result<Self, AppError> {
        match value {
            "pending" => Ok(EventDelivery::Pending),
            "delivered" => Ok(EventDelivery::Delivered),
            "failed" => Ok(EventDelivery::Failed),
            other => Err(AppError::invalid(
                "invalid_field",
                format!("delivery must be pending, delivered or failed, not {other:?}"),
            )
            .at("delivery")),
        }
    }
}

impl StoredEvent {
    /// The event as a whole (see [`EventDelivery`]).
    pub fn delivery(&self) -> EventDelivery {
        let Some(deliveries) = &self.deliveries else {
            return EventDelivery::Pending;
        };
        if deliveries.is_empty() {
            EventDelivery::None
        } else if deliveries.iter().any(|d| !d.state.is_final()) {
            EventDelivery::Pending
        } else if deliveries.iter().any(|d| d.state == DeliveryState::Failed) {
            EventDelivery::Failed
        } else {
            EventDelivery::Delivered
        }
    }

    /// The delivery to `endpoint_id`, if the event is fanned out to it.
    pub fn delivery_to(&self, endpoint_id: &str) -> Option<&Delivery> {
        self.deliveries
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|d| d.endpoint_id == endpoint_id)
    }

    /// The API's view: `{"id","type","created_at","data","delivery",
    /// "attempts","last_status","next_attempt_at","deliveries":[…]}`.
    pub fn view(&self) -> serde_json::Value {
        let deliveries = self.deliveries.as_deref().unwrap_or_default();
        let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
        let last = deliveries
            .iter()
            .filter(|d| d.last_attempt_at.is_some())
            .max_by_key(|d| d.last_attempt_at);
        let next = deliveries
            .iter()
            .filter(|d| !d.state.is_final())
            .filter_map(|d| d.next_attempt_at)
            .min();
        let payload = self.event.payload_json();
        serde_json::json!({
            "id": self.event.id,
            "type": self.event.event_type.as_str(),
            "created_at": to_api_time(&self.event.created_at),
            "data": payload.get("data").cloned().unwrap_or(serde_json::Value::Null),
            "delivery": self.delivery(),
            "attempts": attempts,
            "last_status": last.and_then(|d| d.last_status),
            "last_error": last.and_then(|d| d.last_error.clone()),
            "next_attempt_at": next.map(|t| to_api_time(&t)),
            "deliveries": deliveries.iter().map(|d| serde_json::json!({
                "endpoint_id": d.endpoint_id,
                "status": d.state.as_str(),
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "last_attempt_at": d.last_attempt_at.map(|t| to_api_time(&t)),
                "next_attempt_at": d.next_attempt_at.filter(|_| !d.state.is_final()).map(|t| to_api_time(&t)),
            })).collect::<Vec<_>>(),
        })
    }
}

/// One delivery attempt to make: what the event queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    #[allow(missing_docs)]
    pub practice_id: String,
    #[allow(missing_docs)]
    pub event_id: String,
    #[allow(missing_docs)]
    pub endpoint_id: String,
    /// Which attempt this is (1 = the first).
    pub attempt: u32,
    /// The event's delivery round it belongs to.
    pub round: u32,
}

impl DeliveryJob {
    /// A name for a one-time schedule that enqueues this job: unique per
    /// attempt, within EventBridge Scheduler's 64 characters.
    pub fn schedule_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(
            format!(
                "{}|{}|{}|{}|{}",
                self.practice_id, self.event_id, self.endpoint_id, self.round, self.attempt
            )
            .as_bytes(),
        );
        format!("evt-{}", &hex::encode(digest)[..40])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::events::{bulk_completed, new_event_id};
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    #[test]
    fn the_default_schedule_retries_nine_times_over_about_three_days() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 10);
        assert_eq!(s.after(1), Some(Duration::seconds(5)));
        assert_eq!(s.after(2), Some(Duration::minutes(5)));
        assert_eq!(s.after(9), Some(Duration::hours(24)));
        assert_eq!(s.after(10), None);
        assert_eq!(s.after(0), None);
        let total: i64 = (1..10).map(|a| s.after(a).unwrap().num_seconds()).sum();
        assert!(
            (Duration::hours(70).num_seconds()..=Duration::hours(80).num_seconds())
                .contains(&total)
        );
        assert_eq!(
            RetrySchedule::parse("1, 2,3").unwrap().after(3),
            Some(Duration::seconds(3))
        );
        assert!(RetrySchedule::parse("1,x").is_err());
        assert!(RetrySchedule::parse("0").is_err());
    }

    #[test]
    fn the_event_as_a_whole_follows_its_deliveries() {
        let event = bulk_completed("p1", "b1", at());
        let mut stored = StoredEvent {
            event,
            deliveries: None,
            round: 0,
        };
        assert_eq!(stored.delivery(), EventDelivery::Pending);
        stored.deliveries = Some(vec![]);
        assert_eq!(stored.delivery(), EventDelivery::None);
        let mut a = Delivery::new("a", at());
        let mut b = Delivery::new("b", at());
        stored.deliveries = Some(vec![a.clone(), b.clone()]);
        assert_eq!(stored.delivery(), EventDelivery::Pending);
        a.state = DeliveryState::Delivered;
        b.state = DeliveryState::Failed;
        stored.deliveries = Some(vec![a.clone(), b.clone()]);
        assert_eq!(stored.delivery(), EventDelivery::Failed);
        b.state = DeliveryState::Delivered;
        stored.deliveries = Some(vec![a, b]);
        assert_eq!(stored.delivery(), EventDelivery::Delivered);
    }

    #[test]
    fn attempt_results_classify_redirects_and_gone() {
        assert!(AttemptResult::Status(204).delivered());
        assert!(!AttemptResult::Status(301).delivered());
        assert!(AttemptResult::Status(301)
            .describe()
            .contains("not followed"));
        assert!(AttemptResult::Status(410).gone());
        assert!(!AttemptResult::Timeout.delivered());
    }

    #[test]
    fn schedule_names_are_short_and_differ_per_attempt() {
        let job = DeliveryJob {
            practice_id: "p".repeat(36),
            event_id: new_event_id(Utc::now()),
            endpoint_id: "e".repeat(36),
            attempt: 3,
            round: 1,
        };
        let mut next = job.clone();
        next.attempt = 4;
        assert!(job.schedule_name().len() <= 64);
        assert_ne!(job.schedule_name(), next.schedule_name());
    }
}
