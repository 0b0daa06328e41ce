//! Practices, their API keys and their patients.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::practice::{Practice, SettingsChange};

/// Practices, their API keys and their patients.
#[async_trait]
pub trait PracticeStore: Send + Sync {
    /// The practice an API key (by its SHA-256 hex digest) belongs to.
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError>;
    /// A practice by id.
    async fn get_practice(&self, practice_id: &str) -> Result<Option<Practice>, StoreError>;
    /// Creates or replaces a practice's settings.
    async fn put_practice(&self, practice: &Practice) -> Result<(), StoreError>;
    /// Writes only the settings `change` names onto the practice as stored
    /// now (a change an administrator made meanwhile stays), in one
    /// conditional write; the practice as stored after, or `None` when
    /// there is no such practice.
    async fn update_settings(
        &self,
        practice_id: &str,
        change: &SettingsChange,
    ) -> Result<Option<Practice>, StoreError>;
    /// Makes `key_hash` the practice's only API key.
    async fn set_api_key(&self, practice_id: &str, key_hash: &str) -> Result<(), StoreError>;
    /// Creates or replaces a patient.
    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError>;
    /// A patient by the office's id.
    /// A page of the practice's patients in id order, after the id `after`;
    /// also the id to continue after, if DynamoDB has more.
    async fn list_patients(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Patient>, Option<String>), StoreError>;
    /// Marks a patient's number as unable to receive texts, if the patient
    /// still has that number.
    async fn mark_undeliverable(
        &self,
        practice_id: &str,
        patient_id: &str,
        mark: &UndeliverableNumber,
    ) -> Result<(), StoreError>;
    /// A patient by the office's id.
    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError>;
}
