//! Practices, their API keys and their patients, in memory.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::practice::{Practice, SettingsChange};
use crate::ports::PracticeStore;

use super::MemoryStore;

#[async_trait]
impl PracticeStore for MemoryStore {
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.keys
            .get(key_hash)
            .and_then(|id| s.practices.get(id))
            .cloned())
    }
    async fn get_practice(&self, practice_id: &str) -> Result<Option<Practice>, StoreError> {
        Ok(self.0.lock().await.practices.get(practice_id).cloned())
    }
    async fn update_settings(
        &self,
        practice_id: &str,
        change: &SettingsChange,
    ) -> Result<Option<Practice>, StoreError> {
        let mut s = self.0.lock().await;
        Ok(s.practices.get_mut(practice_id).map(|stored| {
            *stored = change.applied_to(stored);
            stored.clone()
        }))
    }

    async fn put_practice(&self, practice: &Practice) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        let numbers = |p: &Practice| {
            [
                Some(p.channels.sms_main.clone()),
                p.channels.sms_alt.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
        };
        let mine = numbers(practice);
        if let Some(taken) = s
            .practices
            .values()
            .filter(|other| other.practice_id != practice.practice_id)
            .flat_map(numbers)
            .find(|n| mine.contains(n))
        {
            return Err(StoreError::new(
                "store practice",
                format!("the sending number {taken} belongs to another practice; a practice never takes over another's number"),
            ));
        }
        s.practices
            .insert(practice.practice_id.clone(), practice.clone());
        Ok(())
    }
    async fn set_api_key(&self, practice_id: &str, key_hash: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        s.keys.retain(|_, p| p != practice_id);
        s.keys.insert(key_hash.to_string(), practice_id.to_string());
        Ok(())
    }
    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError> {
        self.0.lock().await.patients.insert(
            (practice_id.to_string(), patient.patient_id.clone()),
            patient.clone(),
        );
        Ok(())
    }
    async fn list_patients(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Patient>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<Patient> = s
            .patients
            .iter()
            .filter(|((p, id), _)| p == practice_id && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, p)| p.clone())
            .collect();
        all.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = if more {
            all.last().map(|p| p.patient_id.clone())
        } else {
            None
        };
        Ok((all, next))
    }
    async fn mark_undeliverable(
        &self,
        practice_id: &str,
        patient_id: &str,
        mark: &UndeliverableNumber,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        if let Some(p) = s
            .patients
            .get_mut(&(practice_id.to_string(), patient_id.to_string()))
        {
            if p.phone == mark.phone {
                p.sms_undeliverable = Some(mark.clone());
            }
        }
        Ok(())
    }
    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .patients
            .get(&(practice_id.to_string(), patient_id.to_string()))
            .cloned())
    }
}
