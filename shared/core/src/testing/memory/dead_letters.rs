//! Parked send jobs, in memory.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::message::{ParkedJob, SendJob};
use crate::ports::DeadLetterStore;

use super::MemoryStore;

#[async_trait]
impl DeadLetterStore for MemoryStore {
    async fn park(&self, parked: &ParkedJob) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        s.parked.retain(|p| p.job != parked.job);
        s.parked.push(parked.clone());
        Ok(())
    }
    async fn parked(&self, limit: u32) -> Result<Vec<ParkedJob>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.parked.iter().take(limit as usize).cloned().collect())
    }
    async fn unpark(&self, job: &SendJob) -> Result<(), StoreError> {
        self.0.lock().await.parked.retain(|p| &p.job != job);
        Ok(())
    }
}
