//! What bulk messages need beyond the message store, in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;
use crate::domain::message::{BulkStatus, Message, MessageType, Recipient, RecipientStatus};
use crate::domain::patient::Patient;
use crate::ports::{BulkStore, CreateOutcome, IdempotencyRecord, MessageStore, Transition};

use super::{rkey, MemoryStore};

#[async_trait]
impl BulkStore for MemoryStore {
    async fn get_patients(
        &self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<Patient>, StoreError> {
        let s = self.0.lock().await;
        Ok(patient_ids
            .iter()
            .filter_map(|id| {
                s.patients
                    .get(&(practice_id.to_string(), id.clone()))
                    .cloned()
            })
            .collect())
    }
    async fn create_bulk(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_message(message, recipients, idempotency).await
    }
    async fn get_message_only(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.messages
            .get(&(practice_id.to_string(), message_id.to_string()))
            .cloned())
    }
    async fn recipients_page(
        &self,
        practice_id: &str,
        message_id: &str,
        status: Option<RecipientStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Recipient>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<Recipient> = s
            .recipients
            .values()
            .filter(|r| r.practice_id == practice_id && r.message_id == message_id)
            .filter(|r| after.is_none_or(|a| r.recipient_id.as_str() > a))
            .filter(|r| status.is_none_or(|st| r.status == st))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.recipient_id.cmp(&b.recipient_id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = more
            .then(|| all.last().map(|r| r.recipient_id.clone()))
            .flatten();
        Ok((all, next))
    }
    async fn advance_pump(
        &self,
        practice_id: &str,
        message_id: &str,
        pump: &str,
        released: u32,
        next_pump: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(b) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
            .and_then(|m| m.bulk.as_mut())
        else {
            return Ok(false);
        };
        if b.pump.as_deref() != Some(pump) || b.canceled_at.is_some() {
            return Ok(false);
        }
        b.released = released;
        b.pump = next_pump.map(str::to_string);
        Ok(true)
    }
    async fn stop_bulk(
        &self,
        practice_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        let Some(b) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
            .and_then(|m| m.bulk.as_mut())
        else {
            return Err(StoreError::new("cancel bulk", "no such bulk message"));
        };
        b.canceled_at.get_or_insert(at);
        b.pump = None;
        Ok(())
    }
    async fn transition_many(
        &self,
        current: &[Recipient],
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        for r in current {
            let stored = s.recipients.get(&rkey(&r.job()));
            if stored.is_none_or(|x| x.version != r.version) || r.apply(transition).is_none() {
                return Ok(false);
            }
        }
        // Recipients and the message's counts only, in one transaction on
        // DynamoDB: no status or time of the message changes.
        for r in current {
            s.move_recipient(r, transition, now);
        }
        Ok(true)
    }
    async fn set_bulk_status(
        &self,
        practice_id: &str,
        message_id: &str,
        from: crate::domain::message::BulkStatus,
        to: crate::domain::message::BulkStatus,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(m) = s
            .messages
            .get_mut(&(practice_id.to_string(), message_id.to_string()))
        else {
            return Ok(false);
        };
        if m.status != from.as_str() || (sent_at.is_some() && m.sent_at.is_some()) {
            return Ok(false);
        }
        m.status = to.into();
        if sent_at.is_some() {
            m.sent_at = sent_at;
        }
        Ok(true)
    }
    async fn sending_bulks(&self, practice_id: &str) -> Result<Vec<Message>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.messages
            .values()
            .filter(|m| {
                m.practice_id == practice_id
                    && m.message_type == MessageType::BulkMessage
                    && m.status == BulkStatus::Sending.as_str()
            })
            .cloned()
            .collect())
    }
}
