//! Conversations and their threads, in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::conversation::{
    Conversation, InboxFilter, MediaStatus, PatientRef, StoredConversation, ThreadItem,
};
use crate::domain::error::StoreError;
use crate::domain::events::{self};
use crate::domain::message::{Recipient, SendJob};
use crate::domain::phone::PhoneNumber;
use crate::ports::{inbox_key, ConversationStore, SaveConversation};

use super::{rkey, MemoryStore};

fn ckey(practice_id: &str, phone: &PhoneNumber) -> (String, String) {
    (practice_id.to_string(), phone.as_str().to_string())
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn get_conversation(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Option<StoredConversation>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.conversations.get(&ckey(practice_id, phone)).cloned())
    }

    async fn save_conversation(
        &self,
        practice_id: &str,
        conversation: &Conversation,
        created: bool,
        patients: &[PatientRef],
        entry: Option<&ThreadItem>,
        now: DateTime<Utc>,
    ) -> Result<SaveConversation, StoreError> {
        let mut s = self.0.lock().await;
        let k = ckey(practice_id, &conversation.phone);
        // As DynamoDB's transaction: the entry's condition is looked at first.
        if let Some(entry) = entry {
            if s.threads
                .get(&k)
                .is_some_and(|t| t.contains_key(&entry.position()))
            {
                return Ok(SaveConversation::DuplicateEntry);
            }
        }
        let stored_version = s.conversations.get(&k).map(|c| c.conversation.version);
        let expected = if created {
            None
        } else {
            Some(conversation.version)
        };
        if stored_version != expected {
            return Ok(SaveConversation::Conflict);
        }
        let mut next = conversation.clone();
        next.version = conversation.version + 1;
        s.conversations.insert(
            k.clone(),
            StoredConversation {
                conversation: next,
                patients: patients.to_vec(),
            },
        );
        if let Some(entry) = entry {
            s.threads
                .entry(k)
                .or_default()
                .insert(entry.position(), entry.clone());
            if let ThreadItem::Inbound(inbound) = entry {
                s.record_event(events::received(practice_id, inbound, now));
            }
        }
        Ok(SaveConversation::Saved)
    }

    async fn list_conversations(
        &self,
        practice_id: &str,
        filter: &InboxFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredConversation>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<(String, StoredConversation)> = s
            .conversations
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, c)| (inbox_key(&c.conversation), c))
            .filter(|(k, c)| {
                let c = &c.conversation;
                filter.status.is_none_or(|st| c.status == st)
                    && (!filter.unread_only || c.unread_count > 0)
                    && filter
                        .assignee
                        .as_ref()
                        .is_none_or(|a| c.assignee.as_ref() == Some(a))
                    && after.is_none_or(|after| k.as_str() < after)
            })
            .map(|(k, c)| (k, c.clone()))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = more.then(|| found.last().map(|(k, _)| k.clone())).flatten();
        Ok((found.into_iter().map(|(_, c)| c).collect(), next))
    }

    async fn thread(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<ThreadItem>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let Some(thread) = s.threads.get(&ckey(practice_id, phone)) else {
            return Ok((Vec::new(), None));
        };
        let mut found: Vec<(&String, &ThreadItem)> = thread
            .iter()
            .rev()
            .filter(|(p, _)| after.is_none_or(|a| p.as_str() < a))
            .take(limit as usize + 1)
            .collect();
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = more
            .then(|| found.last().map(|(p, _)| (*p).clone()))
            .flatten();
        Ok((found.into_iter().map(|(_, e)| e.clone()).collect(), next))
    }

    async fn patients_with_phone(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Vec<PatientRef>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<PatientRef> = s
            .patients
            .iter()
            .filter(|((p, _), patient)| p == practice_id && &patient.phone == phone)
            .map(|(_, patient)| PatientRef {
                patient_id: patient.patient_id.clone(),
                first_name: patient.first_name.clone(),
                last_name: patient.last_name.clone(),
            })
            .collect();
        // DynamoDB lists them by sort key: the number, then the patient id.
        found.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        Ok(found)
    }

    async fn recipients(&self, jobs: &[SendJob]) -> Result<Vec<Option<Recipient>>, StoreError> {
        let s = self.0.lock().await;
        Ok(jobs
            .iter()
            .map(|job| s.recipients.get(&rkey(job)).cloned())
            .collect())
    }

    async fn set_media_status(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        position: &str,
        index: usize,
        status: MediaStatus,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if let Some(ThreadItem::Inbound(entry)) = s
            .threads
            .get_mut(&ckey(practice_id, phone))
            .and_then(|t| t.get_mut(position))
        {
            if let Some(media) = entry.media.get_mut(index) {
                media.status = status;
            }
        }
        Ok(())
    }
}
