//! What direct and bulk messages share on their way out: the channel and
//! the text (as written or from a Quick Message, checked for length and
//! merge fields), the requested send time, and the hand-over of a job to
//! the queue now or to a schedule for later.

use chrono::{DateTime, Duration, Utc};

use crate::app::templates;
use crate::domain::clock::queue_delay;
use crate::domain::error::{AppError, StoreError};
use crate::domain::limits::SQS_MAX_DELAY;
use crate::domain::merge;
use crate::domain::message::SendJob;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Practice};
use crate::domain::text::{self, InvalidText};
use crate::ports::{SendQueue, SendScheduler, TemplateStore};

/// An answer to return as-is: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// How far ahead of `send_at` a schedule fires. Scheduler fires within the
/// minute of its time; the dispatcher then holds the send until its second.
pub const SCHEDULE_LEAD: Duration = Duration::seconds(60);
/// Furthest ahead a send may be scheduled.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::days(365);

/// A sender that never schedules (HELP replies are always sent now).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendNowOnly;

#[async_trait::async_trait]
impl SendScheduler for SendNowOnly {
    async fn schedule(
        &self,
        _name: &str,
        _at: DateTime<Utc>,
        _job: &SendJob,
    ) -> Result<(), StoreError> {
        Err(StoreError::new("schedule", "this function only sends now"))
    }
    async fn unschedule(&self, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The schedule of a message's send (or of a bulk's first pump run).
pub fn schedule_name(message_id: &str) -> String {
    format!("msg-{message_id}")
}

/// A new, time-ordered message id.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Reads and checks a requested send time: RFC 3339 with an offset, in the
/// future, at most 365 days ahead.
pub fn parse_send_at(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    let invalid = |m: &str| AppError::invalid("invalid_send_at", m.to_string()).at("send_at");
    let t = DateTime::parse_from_rfc3339(value)
        .map_err(|_| {
            invalid("send_at must be a time with an offset, such as 2026-12-01T15:00:00-05:00")
        })?
        .with_timezone(&Utc);
    if t <= now {
        return Err(invalid(
            "send_at is in the past; choose a future time or leave it out to send now",
        ));
    }
    if t > now + MAX_SCHEDULE_AHEAD {
        return Err(invalid("send_at is more than 365 days ahead"));
    }
    Ok(t)
}

/// [`parse_send_at`] for an optional field (absent = now).
pub fn parse_optional_send_at(
    value: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    value.map(|v| parse_send_at(v, now)).transpose()
}

/// 422 `invalid_text` on the `text` field.
pub(crate) fn invalid_text(e: InvalidText) -> AppError {
    AppError::invalid("invalid_text", e.to_string()).at("text")
}

/// The channel asked for (default `sms_main`) and the practice's number on
/// it; 422 `channel_unavailable` when the practice has none.
pub(crate) fn resolve_channel(
    practice: &Practice,
    channel: Option<&str>,
) -> Result<(Channel, PhoneNumber), AppError> {
    let channel = match channel {
        None => Channel::SmsMain,
        Some(c) => Channel::parse(c).ok_or_else(|| {
            AppError::invalid("invalid_field", "channel must be sms_main or sms_alt").at("channel")
        })?,
    };
    let from = practice.channels.number(channel).cloned().ok_or_else(|| {
        AppError::invalid(
            "channel_unavailable",
            format!(
                "the practice has no {} number; choose another channel",
                channel.as_str()
            ),
        )
        .at("channel")
    })?;
    Ok((channel, from))
}

/// The text to send, as written or from a Quick Message, checked for
/// length and merge fields; also the template's id when one was used.
pub(crate) async fn resolve_text<T: TemplateStore>(
    templates_store: &T,
    practice_id: &str,
    text: Option<String>,
    template_id: Option<String>,
    allowed_fields: &[&str],
) -> Result<(String, Option<String>), AppError> {
    let (raw_text, template_id) = match (text, template_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "invalid_field",
                "give either text or template_id, not both",
            )
            .at("template_id"))
        }
        (None, None) => {
            return Err(
                AppError::invalid("invalid_text", "text or template_id is required").at("text"),
            )
        }
        (Some(text), None) => (text, None),
        (None, Some(id)) => {
            let template = templates::load_for_send(templates_store, practice_id, &id).await?;
            (template.body, Some(template.id))
        }
    };
    let text_field = if template_id.is_some() {
        "template_id"
    } else {
        "text"
    };
    text::validate_text(&raw_text).map_err(invalid_text)?;
    merge::check_fields_in(&raw_text, text_field, allowed_fields)?;
    Ok((raw_text, template_id))
}

/// Whether a job due at `due` goes on the queue with a delivery delay
/// (due within `queue_delay_max`, and never beyond the queue's longest
/// delay) rather than on a schedule.
pub fn goes_on_queue(due: DateTime<Utc>, now: DateTime<Utc>, queue_delay_max: Duration) -> bool {
    due - now <= queue_delay_max.min(SQS_MAX_DELAY)
}

/// Hands `job` over so that it reaches the queue in time for `due`: with a
/// queue delay (whole seconds, rounded up: never early) when it is close
/// (see [`goes_on_queue`]), else with the schedule [`schedule_name`] of
/// `message_id`, firing [`SCHEDULE_LEAD`] early (the dispatcher or the pump
/// holds it until `due`).
pub async fn queue_or_schedule<Q: SendQueue, S: SendScheduler>(
    queue: &Q,
    scheduler: &S,
    queue_delay_max: Duration,
    message_id: &str,
    job: &SendJob,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if goes_on_queue(due, now, queue_delay_max) {
        queue.enqueue_delayed(job, queue_delay(due - now)).await
    } else {
        let fire_at = (due - SCHEDULE_LEAD).max(now + Duration::seconds(1));
        scheduler
            .schedule(&schedule_name(message_id), fire_at, job)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T14:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_send_time_is_in_the_future_and_at_most_a_year_ahead() {
        assert!(parse_send_at("2026-12-01T09:00:01-05:00", now()).is_ok());
        for bad in ["2026-12-01T14:00:00Z", "2027-12-02T14:00:00Z", "soon"] {
            let e = parse_send_at(bad, now()).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_send_at", Some("send_at"))
            );
        }
        assert_eq!(parse_optional_send_at(None, now()).unwrap(), None);
    }

    #[test]
    fn close_jobs_go_on_the_queue_and_never_beyond_its_longest_delay() {
        let t = now();
        assert!(goes_on_queue(
            t + Duration::seconds(900),
            t,
            Duration::hours(1)
        ));
        assert!(!goes_on_queue(
            t + Duration::seconds(901),
            t,
            Duration::hours(1)
        ));
        assert!(!goes_on_queue(
            t + Duration::seconds(1),
            t,
            Duration::zero()
        ));
    }
}
