//! Reading a bulk: its progress with a fresh estimate, and pages of its
//! recipients.

use chrono::{DateTime, Utc};

use super::{BulkMessages, BulkView, RecipientItem};
use crate::app::rate_cap::BULK_KEY;
use crate::domain::bulk::{estimate_completion, Pace};
use crate::domain::clock::to_api_time;
use crate::domain::error::AppError;
use crate::domain::message::{Message, MessageType, MessageView, RecipientStatus, RecipientView};
use crate::domain::practice::Practice;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{
    BulkStore, MessageStore, OptOutStore, PracticeStore, RateStore, SendQueue, SendScheduler,
    TemplateStore,
};

fn not_found(id: &str) -> AppError {
    AppError::not_found("message_not_found", format!("no bulk message {id}"))
}

impl<S, Q, C> BulkMessages<S, Q, C>
where
    S: PracticeStore + OptOutStore + TemplateStore + MessageStore + BulkStore + RateStore,
    Q: SendQueue,
    C: SendScheduler,
{
    pub(super) async fn load(
        &self,
        practice: &Practice,
        message_id: &str,
    ) -> Result<Message, AppError> {
        if !crate::domain::message::is_message_id(message_id) {
            return Err(not_found(message_id));
        }
        self.store
            .get_message_only(&practice.practice_id, message_id)
            .await?
            .filter(|m| m.message_type == MessageType::BulkMessage)
            .ok_or_else(|| not_found(message_id))
    }

    /// The resource with a fresh estimate: what this bulk still has to send
    /// behind what the practice's other sending bulks still have, under the
    /// cap as it stands, the number's pace and quiet hours.
    pub(super) async fn view(
        &self,
        practice: &Practice,
        message: &Message,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let c = &message.counts;
        let own = c.scheduled + c.queued + c.sending;
        let canceled = message
            .bulk
            .as_ref()
            .is_some_and(|b| b.canceled_at.is_some());
        let estimate = if own == 0 || canceled {
            None
        } else {
            let start = message.bulk.as_ref().map_or(now, |b| b.due.max(now));
            let mut ahead = 0u32;
            if start <= now {
                for other in self.store.sending_bulks(&practice.practice_id).await? {
                    if other.id < message.id {
                        ahead += other.counts.queued + other.counts.sending;
                    }
                }
            }
            let (bucket, _) = self
                .store
                .read_bucket(&practice.practice_id, BULK_KEY)
                .await?;
            estimate_completion(
                &bucket,
                start,
                ahead,
                own,
                &Pace::for_practice(practice, self.per_second),
                practice.timezone.tz(),
                practice.quiet_hours.as_ref(),
            )
        };
        Ok(BulkView {
            message: MessageView::summary(message),
            hourly_cap: practice.hourly_cap,
            cap_window_seconds: practice.cap_window_seconds,
            estimated_completion_at: estimate.as_ref().map(to_api_time),
        })
    }

    /// `GET /v1/bulk-messages/{id}`.
    pub async fn get(
        &self,
        practice: &Practice,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let message = self.load(practice, message_id).await?;
        self.view(practice, &message, now).await
    }

    /// `GET /v1/bulk-messages/{id}/recipients?status=`: a page in list order.
    pub async fn recipients(
        &self,
        practice: &Practice,
        message_id: &str,
        status: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<RecipientItem>, Option<String>), AppError> {
        let status = status
            .filter(|s| !s.is_empty())
            .map(|s| {
                RecipientStatus::parse(s).ok_or_else(|| {
                    AppError::invalid(
                        "invalid_field",
                        format!("status {s:?} is not a recipient status"),
                    )
                    .at("status")
                })
            })
            .transpose()?;
        self.load(practice, message_id).await?;
        let after = cursor.map(decode_cursor).transpose()?;
        let (page, next) = self
            .store
            .recipients_page(
                &practice.practice_id,
                message_id,
                status,
                limit,
                after.as_deref(),
            )
            .await?;
        let items = page
            .iter()
            .map(|r| RecipientItem {
                recipient_id: r.recipient_id.clone(),
                recipient: RecipientView::from(r),
            })
            .collect();
        Ok((items, next.as_deref().map(encode_cursor)))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::super::test_support::*;
    use crate::testing::{sample_practice, MemoryQueue};

    #[tokio::test]
    async fn the_estimate_counts_what_the_practices_other_bulks_still_have_to_send() {
        let mut practice = sample_practice("demo");
        practice.hourly_cap = 2;
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let first = serde_json::json!({"patient_ids": ["p-000", "p-001"], "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, first, now).await.unwrap();
        assert_eq!(view["estimated_completion_at"], "2026-12-01T15:00:01.000Z");
        // Five seconds later the first bulk's two (not sent yet) are ahead
        // and fill the cap from then: the next goes an hour after them.
        let second = serde_json::json!({"patient_ids": ["p-002"], "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, second, now + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(view["estimated_completion_at"], "2026-12-01T16:00:05.000Z");
    }
}
