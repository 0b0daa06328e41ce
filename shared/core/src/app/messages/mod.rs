//! Direct messages: accept, store, enqueue; read back.

mod reminder;
mod send;
#[cfg(test)]
mod test_support;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::app::sending::{goes_on_queue, parse_send_at, queue_or_schedule, schedule_name};
use crate::domain::conversation::OutboundKind;
use crate::domain::error::{AppError, StoreError};
use crate::domain::message::{
    Message, MessageView, Recipient, RecipientStatus, SendJob, Transition,
};
use crate::domain::practice::Practice;
use crate::domain::quiet_hours::next_allowed;
use crate::ports::{
    MessageStore, OptOutStore, PracticeStore, SendQueue, SendScheduler, TemplateStore,
};

pub use crate::app::sending::{new_message_id, Answer, SendNowOnly};
pub use reminder::ManualReminderRequest;
pub(crate) use send::{direct_message, DirectDraft};

/// The recipient id of a message to one number.
pub const FIRST_RECIPIENT: &str = "00001";

/// Body of `POST /v1/messages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// A synced patient, or...
    #[serde(default)]
    pub patient_id: Option<String>,
    /// ...an ad-hoc number.
    #[serde(default)]
    pub to: Option<String>,
    /// Merge data for an ad-hoc `to`.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Merge data for an ad-hoc `to`.
    #[serde(default)]
    pub last_name: Option<String>,
    /// The text, with optional merge fields, or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a saved Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Send later, at this time (RFC 3339 with offset); absent = now.
    #[serde(default)]
    pub send_at: Option<String>,
    /// `direct_message` (default), `review_request` or
    /// `schedule_invitation`.
    #[serde(default, rename = "type")]
    pub message_type: Option<String>,
    /// Why the practice sends it, when the system (not the request body)
    /// knows better than "a direct message": a conversation reply, an
    /// after-hours reply, a keyword's answer. Never read from JSON.
    #[serde(skip)]
    pub origin: Option<OutboundKind>,
}

/// Everything the messages use cases need.
pub struct Messages<P, M, Q, S> {
    /// Practices and patients.
    pub practices: P,
    /// Messages and recipients.
    pub store: M,
    /// The send queue.
    pub queue: Q,
    /// One-time schedules for sends in the future.
    pub scheduler: S,
    /// Sends due within this much go on the queue with a delivery delay
    /// instead of a schedule (at most the queue's longest delay,
    /// [`SQS_MAX_DELAY`](crate::domain::limits::SQS_MAX_DELAY)).
    pub queue_delay_max: Duration,
}

/// Body of `PATCH /v1/messages/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new send time.
    pub send_at: String,
}

impl<
        P: PracticeStore + OptOutStore + TemplateStore,
        M: MessageStore,
        Q: SendQueue,
        S: SendScheduler,
    > Messages<P, M, Q, S>
{
    /// Arranges for `job` to reach the queue in time for `due`: with a queue
    /// delay when it is close, else with a schedule that fires a minute early
    /// (the dispatcher holds it until `due`).
    async fn plan(
        &self,
        message_id: &str,
        due: DateTime<Utc>,
        job: &SendJob,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue_or_schedule(
            &self.queue,
            &self.scheduler,
            self.queue_delay_max,
            message_id,
            job,
            due,
            now,
        )
        .await
    }

    async fn direct_recipient(
        &self,
        practice: &Practice,
        message_id: &str,
    ) -> Result<(Message, Recipient), AppError> {
        let not_found =
            || AppError::not_found("message_not_found", format!("no message {message_id}"));
        if !crate::domain::message::is_message_id(message_id) {
            return Err(not_found());
        }
        let (message, recipients) = self
            .store
            .get_message(&practice.practice_id, message_id)
            .await?
            // Bulk messages live under /v1/bulk-messages.
            .filter(|(m, _)| m.message_type.is_single())
            .ok_or_else(not_found)?;
        let recipient = recipients.into_iter().next().ok_or_else(not_found)?;
        Ok((message, recipient))
    }

    /// `PATCH /v1/messages/{id}`: moves a scheduled message to a new time;
    /// 409 `not_scheduled` once it is no longer waiting for its time.
    pub async fn reschedule(
        &self,
        practice: &Practice,
        message_id: &str,
        request: RescheduleRequest,
        now: DateTime<Utc>,
    ) -> Result<MessageView, AppError> {
        let send_at = parse_send_at(&request.send_at, now)?;
        let not_before = next_allowed(
            send_at,
            practice.timezone.tz(),
            practice.quiet_hours.as_ref(),
        );
        let (_, mut current) = self.direct_recipient(practice, message_id).await?;
        let change = Transition::Reschedule {
            send_at,
            not_before,
        };
        loop {
            if current.status != RecipientStatus::Scheduled {
                return Err(AppError::conflict(
                    "not_scheduled",
                    format!(
                        "the message is {} and can no longer be rescheduled",
                        current.status.as_str()
                    ),
                ));
            }
            if self
                .store
                .transition(&current, &change, now)
                .await?
                .is_some()
            {
                break;
            }
            // Changed meanwhile (fired, canceled, rescheduled): look again.
            current = self.direct_recipient(practice, message_id).await?.1;
        }
        let job = current.job();
        // The record now holds the new time. Should the schedule not follow,
        // an earlier firing is held by the dispatcher until the new time, so
        // the send is neither early nor lost.
        self.plan(message_id, not_before, &job, now).await?;
        if goes_on_queue(not_before, now, self.queue_delay_max) {
            self.scheduler
                .unschedule(&schedule_name(message_id))
                .await?;
        }
        tracing::info!(message_id, send_at = %send_at, "rescheduled");
        self.get(practice, message_id).await
    }

    /// `DELETE /v1/messages/{id}`: cancels while scheduled or queued (200,
    /// also when already canceled); 409 `already_sent` once sending began.
    /// The dispatcher claims with a conditional write on the same record, so
    /// a cancel that races a firing schedule either wins or gets the 409.
    pub async fn cancel(
        &self,
        practice: &Practice,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<MessageView, AppError> {
        let (_, mut current) = self.direct_recipient(practice, message_id).await?;
        loop {
            match current.status {
                RecipientStatus::Canceled => break,
                RecipientStatus::Scheduled | RecipientStatus::Queued => {
                    if self
                        .store
                        .transition(&current, &Transition::Cancel { at: now }, now)
                        .await?
                        .is_some()
                    {
                        if let Err(e) = self.scheduler.unschedule(&schedule_name(message_id)).await
                        {
                            // Harmless: a firing finds the record canceled.
                            tracing::warn!(message_id, error = %e, "schedule not deleted");
                        }
                        tracing::info!(message_id, "canceled");
                        break;
                    }
                    current = self.direct_recipient(practice, message_id).await?.1;
                }
                other => {
                    return Err(AppError::conflict(
                        "already_sent",
                        format!(
                            "the message is {} and can no longer be canceled",
                            other.as_str()
                        ),
                    ))
                }
            }
        }
        self.get(practice, message_id).await
    }

    /// `GET /v1/messages/{id}`: the message with its recipients; 404 when it
    /// does not exist for this practice.
    pub async fn get(
        &self,
        practice: &Practice,
        message_id: &str,
    ) -> Result<MessageView, AppError> {
        let not_found =
            || AppError::not_found("message_not_found", format!("no message {message_id}"));
        if !crate::domain::message::is_message_id(message_id) {
            return Err(not_found());
        }
        let (message, recipients) = self
            .store
            .get_message(&practice.practice_id, message_id)
            .await?
            // Bulk messages live under /v1/bulk-messages.
            .filter(|(m, _)| m.message_type.is_single())
            .ok_or_else(not_found)?;
        Ok(MessageView::new(&message, &recipients))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::testing::{sample_practice, MemoryQueue, MemoryScheduler, MemoryStore};

    fn scheduled(send_at: &str) -> (SendMessageRequest, serde_json::Value) {
        let value =
            serde_json::json!({"to": "+14155550142", "text": "Reminder", "send_at": send_at});
        (serde_json::from_value(value.clone()).unwrap(), value)
    }

    async fn send_scheduled(
        svc: &Messages<MemoryStore, MemoryStore, MemoryQueue, MemoryScheduler>,
        practice: &Practice,
        send_at: &str,
    ) -> Result<serde_json::Value, AppError> {
        let (req, value) = scheduled(send_at);
        let a = svc.send_direct(practice, req, &value, None, now()).await?;
        Ok(serde_json::from_str(&a.body).unwrap())
    }

    #[tokio::test]
    async fn far_send_at_gets_a_schedule_a_minute_early_stored_in_utc() {
        let store = MemoryStore::default();
        let scheduler = MemoryScheduler::default();
        let svc = scheduling(&store, MemoryQueue::default(), scheduler.clone());
        // 12:00 EST = 17:00Z, inside quiet hours 08:00-21:00.
        let mut practice = sample_practice("demo");
        practice.quiet_hours =
            crate::domain::practice::QuietHours::parse_setting("08:00-21:00").unwrap();
        let m = send_scheduled(&svc, &practice, "2026-12-01T12:00:00-05:00")
            .await
            .unwrap();
        assert_eq!(m["status"], "scheduled");
        assert_eq!(m["send_at"], "2026-12-01T17:00:00.000Z");
        assert_eq!(m["recipients"][0]["not_before"], "2026-12-01T17:00:00.000Z");
        let schedules = scheduler.schedules.lock().await.clone();
        let (at, _) = schedules
            .get(&schedule_name(m["id"].as_str().unwrap()))
            .unwrap();
        assert_eq!(
            *at,
            "2026-12-01T16:59:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(svc.queue.jobs.lock().await.is_empty());
    }

    #[tokio::test]
    async fn scheduled_send_outside_quiet_hours_waits_for_the_window() {
        let store = MemoryStore::default();
        let svc = service(&store, MemoryQueue::default());
        let mut practice = sample_practice("demo");
        practice.quiet_hours =
            crate::domain::practice::QuietHours::parse_setting("08:00-21:00").unwrap();
        // 23:00 EST → next day 08:00 EST = 13:00Z.
        let m = send_scheduled(&svc, &practice, "2026-12-01T23:00:00-05:00")
            .await
            .unwrap();
        assert_eq!(m["send_at"], "2026-12-02T04:00:00.000Z");
        assert_eq!(m["recipients"][0]["not_before"], "2026-12-02T13:00:00.000Z");
    }

    #[tokio::test]
    async fn near_send_at_goes_on_the_queue_with_a_delay() {
        let store = MemoryStore::default();
        let svc = service(&store, MemoryQueue::default());
        send_scheduled(&svc, &sample_practice("demo"), "2026-12-01T14:05:00Z")
            .await
            .unwrap();
        assert_eq!(svc.queue.delayed.lock().await[0].1, 300);
    }

    #[tokio::test]
    async fn send_at_in_the_past_or_beyond_a_year_is_refused_and_stores_nothing() {
        let store = MemoryStore::default();
        let svc = service(&store, MemoryQueue::default());
        for bad in [
            "2026-12-01T13:59:59Z",
            "2027-12-02T14:00:00Z",
            "tomorrow",
            "2026-12-01T15:00:00",
        ] {
            let e = send_scheduled(&svc, &sample_practice("demo"), bad)
                .await
                .unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_send_at", Some("send_at")),
                "{bad}"
            );
        }
        assert_eq!(store.message_count().await, 0);
    }

    #[tokio::test]
    async fn scheduler_failure_at_create_leaves_nothing_and_says_so() {
        let store = MemoryStore::default();
        let failing = MemoryScheduler::default();
        failing
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let svc = scheduling(&store, MemoryQueue::default(), failing);
        let e = send_scheduled(&svc, &sample_practice("demo"), "2026-12-02T14:00:00Z")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(store.message_count().await, 0);
    }

    #[tokio::test]
    async fn reschedule_moves_the_time_and_the_schedule() {
        let store = MemoryStore::default();
        let scheduler = MemoryScheduler::default();
        let svc = scheduling(&store, MemoryQueue::default(), scheduler.clone());
        let practice = sample_practice("demo");
        let m = send_scheduled(&svc, &practice, "2026-12-02T14:00:00Z")
            .await
            .unwrap();
        let id = m["id"].as_str().unwrap();
        let req = RescheduleRequest {
            send_at: "2026-12-03T09:30:00-05:00".into(),
        };
        let view =
            serde_json::to_value(svc.reschedule(&practice, id, req, now()).await.unwrap()).unwrap();
        assert_eq!(view["send_at"], "2026-12-03T14:30:00.000Z");
        assert_eq!(
            view["recipients"][0]["not_before"],
            "2026-12-03T14:30:00.000Z"
        );
        let (at, _) = scheduler
            .schedules
            .lock()
            .await
            .get(&schedule_name(id))
            .cloned()
            .unwrap();
        assert_eq!(at, "2026-12-03T14:29:00Z".parse::<DateTime<Utc>>().unwrap());
        let past = RescheduleRequest {
            send_at: "2026-11-30T00:00:00Z".into(),
        };
        assert_eq!(
            svc.reschedule(&practice, id, past, now())
                .await
                .unwrap_err()
                .code,
            "invalid_send_at"
        );
    }

    #[tokio::test]
    async fn cancel_deletes_the_schedule_is_idempotent_and_blocks_reschedule() {
        let store = MemoryStore::default();
        let scheduler = MemoryScheduler::default();
        let svc = scheduling(&store, MemoryQueue::default(), scheduler.clone());
        let practice = sample_practice("demo");
        let m = send_scheduled(&svc, &practice, "2026-12-02T14:00:00Z")
            .await
            .unwrap();
        let id = m["id"].as_str().unwrap();
        let first = serde_json::to_value(svc.cancel(&practice, id, now()).await.unwrap()).unwrap();
        assert_eq!(first["status"], "canceled");
        assert!(scheduler.schedules.lock().await.is_empty());
        let again = serde_json::to_value(svc.cancel(&practice, id, now()).await.unwrap()).unwrap();
        assert_eq!(again["status"], "canceled");
        let req = RescheduleRequest {
            send_at: "2026-12-03T00:00:00Z".into(),
        };
        assert_eq!(
            svc.reschedule(&practice, id, req, now())
                .await
                .unwrap_err()
                .code,
            "not_scheduled"
        );
    }

    #[tokio::test]
    async fn scheduler_failure_at_update_keeps_the_new_time_and_reports_it() {
        let store = MemoryStore::default();
        let scheduler = MemoryScheduler::default();
        let svc = scheduling(&store, MemoryQueue::default(), scheduler.clone());
        let practice = sample_practice("demo");
        let m = send_scheduled(&svc, &practice, "2026-12-02T14:00:00Z")
            .await
            .unwrap();
        let id = m["id"].as_str().unwrap();
        scheduler
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let req = RescheduleRequest {
            send_at: "2026-12-05T14:00:00Z".into(),
        };
        let e = svc.reschedule(&practice, id, req, now()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        // The record holds the new time, so the old schedule's firing is held
        // by the dispatcher until then (see dispatch tests): not early, not lost.
        let view = serde_json::to_value(svc.get(&practice, id).await.unwrap()).unwrap();
        assert_eq!(
            view["recipients"][0]["not_before"],
            "2026-12-05T14:00:00.000Z"
        );
        assert_eq!(view["status"], "scheduled");
    }

    #[tokio::test]
    async fn scheduler_failure_at_delete_still_cancels() {
        let store = MemoryStore::default();
        let scheduler = MemoryScheduler::default();
        let svc = scheduling(&store, MemoryQueue::default(), scheduler.clone());
        let practice = sample_practice("demo");
        let m = send_scheduled(&svc, &practice, "2026-12-02T14:00:00Z")
            .await
            .unwrap();
        scheduler
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let view = serde_json::to_value(
            svc.cancel(&practice, m["id"].as_str().unwrap(), now())
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            view["status"], "canceled",
            "a stray firing finds the record canceled"
        );
    }

    #[tokio::test]
    async fn concurrent_cancel_and_reschedule_end_canceled() {
        let store = MemoryStore::default();
        let svc = service(&store, MemoryQueue::default());
        let practice = sample_practice("demo");
        let m = send_scheduled(&svc, &practice, "2026-12-02T14:00:00Z")
            .await
            .unwrap();
        let id = m["id"].as_str().unwrap();
        let req = RescheduleRequest {
            send_at: "2026-12-03T14:00:00Z".into(),
        };
        let (moved, canceled) = tokio::join!(
            svc.reschedule(&practice, id, req, now()),
            svc.cancel(&practice, id, now())
        );
        assert!(canceled.is_ok());
        if let Err(e) = moved {
            assert_eq!(e.code, "not_scheduled");
        }
        let view = serde_json::to_value(svc.get(&practice, id).await.unwrap()).unwrap();
        assert_eq!(view["status"], "canceled");
    }

    #[tokio::test]
    async fn cancel_after_sending_started_is_refused() {
        let store = MemoryStore::default();
        let svc = service(&store, MemoryQueue::default());
        let practice = sample_practice("demo");
        let (req, value) = request("+14155550142", "Now");
        let a = svc
            .send_direct(&practice, req, &value, None, now())
            .await
            .unwrap();
        let id = serde_json::from_str::<serde_json::Value>(&a.body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let job = svc.queue.jobs.lock().await[0].clone();
        let current = store.recipient(&job).await.unwrap();
        store
            .transition(&current, &Transition::Claim { at: now() }, now())
            .await
            .unwrap()
            .unwrap();
        let e = svc.cancel(&practice, &id, now()).await.unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::Conflict, "already_sent"));
        let r = RescheduleRequest {
            send_at: "2026-12-03T00:00:00Z".into(),
        };
        assert_eq!(
            svc.reschedule(&practice, &id, r, now())
                .await
                .unwrap_err()
                .code,
            "not_scheduled"
        );
    }
}
