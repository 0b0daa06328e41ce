//! `DELETE /v1/bulk-messages/{id}`.

use chrono::{DateTime, Utc};

use super::{BulkMessages, BulkView};
use crate::app::sending::schedule_name;
use crate::domain::error::AppError;
use crate::domain::limits::DYNAMO_TRANSACTION_ITEMS;
use crate::domain::message::{bulk_status_of, BulkStatus, RecipientStatus};
use crate::domain::practice::Practice;
use crate::ports::{
    BulkStore, MessageStore, OptOutStore, PracticeStore, RateStore, SendQueue, SendScheduler,
    TemplateStore, Transition,
};

impl<S, Q, C> BulkMessages<S, Q, C>
where
    S: PracticeStore + OptOutStore + TemplateStore + MessageStore + BulkStore + RateStore,
    Q: SendQueue,
    C: SendScheduler,
{
    /// `DELETE /v1/bulk-messages/{id}`: stops the pump and cancels every
    /// recipient not yet `sending`, in transactions of up to 99 recipients
    /// conditioned on each being unchanged; a recipient the dispatcher
    /// claims meanwhile is read again and left to finish. Idempotent.
    pub async fn cancel(
        &self,
        practice: &Practice,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let pid = &practice.practice_id;
        let message = self.load(practice, message_id).await?;
        self.store.stop_bulk(pid, message_id, now).await?;
        if message.send_at.is_some() {
            if let Err(e) = self.scheduler.unschedule(&schedule_name(message_id)).await {
                // Harmless: a firing pump finds the bulk canceled.
                tracing::warn!(message_id, error = %e, "schedule not deleted");
            }
        }
        let cancel = Transition::Cancel { at: now };
        for round in 0..5 {
            let mut waiting = Vec::new();
            for status in [RecipientStatus::Queued, RecipientStatus::Scheduled] {
                let mut after: Option<String> = None;
                loop {
                    let (page, next) = self
                        .store
                        .recipients_page(pid, message_id, Some(status), 200, after.as_deref())
                        .await?;
                    waiting.extend(page);
                    match next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
            if waiting.is_empty() {
                break;
            }
            let mut conflicts = 0;
            // One item of each transaction is the message's counts.
            for chunk in waiting.chunks(DYNAMO_TRANSACTION_ITEMS - 1) {
                if !self.store.transition_many(chunk, &cancel, now).await? {
                    conflicts += 1;
                }
            }
            if conflicts == 0 {
                break;
            }
            tracing::info!(
                message_id,
                round,
                conflicts,
                "recipients moved during cancel; reading again"
            );
        }
        let message = self.load(practice, message_id).await?;
        let status = bulk_status_of(&message);
        if let Some(stored) = BulkStatus::parse(message.status.as_str()).filter(|s| *s != status) {
            self.store
                .set_bulk_status(pid, message_id, stored, status, None)
                .await?;
        }
        tracing::info!(message_id, "bulk canceled");
        let message = self.load(practice, message_id).await?;
        self.view(practice, &message, now).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::test_support::*;
    use crate::ports::{OptOutChange, OptOutStore};
    use crate::testing::{sample_practice, MemoryQueue};

    #[tokio::test]
    async fn canceling_a_bulk_with_nothing_left_leaves_it_completed() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 2).await;
        for i in 0..2 {
            store
                .record_opt_out(&OptOutChange {
                    practice_id: "demo".into(),
                    phone: phone(i).to_string(),
                    opted_out: true,
                    keyword: "STOP".into(),
                    source: "sms".into(),
                    at: T0.parse().unwrap(),
                })
                .await
                .unwrap();
        }
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let body = serde_json::json!({"patient_ids": ids(2), "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, body, now).await.unwrap();
        assert_eq!(view["status"], "completed");
        assert!(
            queue.delayed.lock().await.is_empty(),
            "no pump for nothing to send"
        );
        let id = view["id"].as_str().unwrap();
        let view = serde_json::to_value(app.cancel(&practice, id, now).await.unwrap()).unwrap();
        assert_eq!(view["status"], "completed");
        assert_eq!(view["counts"]["skipped"], 2);
    }
}
