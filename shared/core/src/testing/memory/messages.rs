//! Messages, recipients and idempotency records, in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;
use crate::domain::events::{self};
use crate::domain::message::{
    bulk_completes, BulkStatus, Message, MessageType, Recipient, SendJob,
};
use crate::ports::{
    tracking_key, CreateOutcome, IdempotencyRecord, MessageStore, TrackingIndex, Transition,
};

use super::MemoryStore;

#[async_trait]
impl MessageStore for MemoryStore {
    async fn create_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut s = self.0.lock().await;
        if let Some(rec) = idempotency {
            let k = (rec.practice_id.clone(), rec.key.clone());
            // As DynamoDB's condition: free only if absent or expired before now.
            if s.idempotency
                .get(&k)
                .is_some_and(|r| r.expires_at >= message.created_at)
            {
                return Ok(CreateOutcome::IdempotencyKeyTaken);
            }
            s.idempotency.insert(k, rec.clone());
        }
        s.messages.insert(
            (message.practice_id.clone(), message.id.clone()),
            message.clone(),
        );
        for r in recipients {
            s.recipients.insert(
                (
                    r.practice_id.clone(),
                    r.message_id.clone(),
                    r.recipient_id.clone(),
                ),
                r.clone(),
            );
        }
        Ok(CreateOutcome::Created)
    }
    async fn settle_idempotency(&self, practice_id: &str, key: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if s.fail_settle {
            return Err(StoreError::new("settle idempotency", "store unavailable"));
        }
        if let Some(rec) = s
            .idempotency
            .get_mut(&(practice_id.to_string(), key.to_string()))
        {
            rec.pending = false;
        }
        Ok(())
    }
    async fn remove_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if s.fail_remove {
            return Err(StoreError::new("remove message", "store unavailable"));
        }
        s.messages
            .remove(&(message.practice_id.clone(), message.id.clone()));
        for r in recipients {
            s.recipients.remove(&(
                r.practice_id.clone(),
                r.message_id.clone(),
                r.recipient_id.clone(),
            ));
        }
        if let Some(rec) = idempotency {
            s.idempotency
                .remove(&(rec.practice_id.clone(), rec.key.clone()));
        }
        Ok(())
    }
    async fn get_message(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<(Message, Vec<Recipient>)>, StoreError> {
        let s = self.0.lock().await;
        let Some(m) = s
            .messages
            .get(&(practice_id.to_string(), message_id.to_string()))
        else {
            return Ok(None);
        };
        let mut rs: Vec<Recipient> = s
            .recipients
            .values()
            .filter(|r| r.practice_id == practice_id && r.message_id == message_id)
            .cloned()
            .collect();
        rs.sort_by(|a, b| a.recipient_id.cmp(&b.recipient_id));
        Ok(Some((m.clone(), rs)))
    }
    async fn get_recipient(&self, job: &SendJob) -> Result<Option<Recipient>, StoreError> {
        Ok(self.recipient(job).await)
    }
    async fn get_idempotency(
        &self,
        practice_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // As DynamoDB's adapter: an expired record (TTL deletion lags) is absent.
        Ok(self
            .0
            .lock()
            .await
            .idempotency
            .get(&(practice_id.to_string(), key.to_string()))
            .filter(|r| r.expires_at > now)
            .cloned())
    }
    async fn transition(
        &self,
        current: &Recipient,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> Result<Option<Recipient>, StoreError> {
        let mut s = self.0.lock().await;
        let Some(next) = s.move_recipient(current, t, now) else {
            return Ok(None);
        };
        // What DynamoDB's adapter writes to the message with the recipient.
        let mut completed = None;
        if let Some(m) = s
            .messages
            .get_mut(&(current.practice_id.clone(), current.message_id.clone()))
        {
            if let Transition::Reschedule { send_at, .. } = t {
                m.send_at = Some(*send_at);
            }
            match m.message_type {
                MessageType::DirectMessage
                | MessageType::AppointmentReminder
                | MessageType::ManualReminder
                | MessageType::ReviewRequest
                | MessageType::ScheduleInvitation => {
                    m.status = next.status.into();
                    if let (Transition::Claim { at }, 0) = (t, current.attempts) {
                        m.sent_at = Some(*at);
                    }
                }
                // Then, after a final status, the one completing update.
                MessageType::BulkMessage => {
                    if next.status.is_final() && bulk_completes(m.status.as_str(), &m.counts) {
                        m.status = BulkStatus::Completed.into();
                        completed = Some(events::bulk_completed(&m.practice_id, &m.id, now));
                    }
                }
            }
        }
        if let Some(event) = completed {
            s.record_event(event);
        }
        Ok(Some(next))
    }

    async fn communications(
        &self,
        practice_id: &str,
        index: &TrackingIndex,
        low: &str,
        high: &str,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<(String, Message)> = s
            .messages
            .values()
            .filter(|m| m.practice_id == practice_id)
            .filter(|m| match index {
                TrackingIndex::All(tab) => m.message_type.tab() == *tab,
                TrackingIndex::TypeStatus(t, st) => m.message_type == *t && m.status.as_str() == st,
            })
            .map(|m| (tracking_key(m), m.clone()))
            .filter(|(k, _)| k.as_str() >= low && k.as_str() <= high)
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|(_, m)| m)
            .collect())
    }
}
