//! Send jobs parked off the dead-letter queue.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::message::{ParkedJob, SendJob};

/// Jobs taken off the send dead-letter queue, kept until the repair
/// command requeues or drops them.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Keeps `parked` (one per job: parking the same job again replaces it).
    async fn park(&self, parked: &ParkedJob) -> Result<(), StoreError>;
    /// Up to `limit` parked jobs, oldest first.
    async fn parked(&self, limit: u32) -> Result<Vec<ParkedJob>, StoreError>;
    /// Forgets the parked `job`.
    async fn unpark(&self, job: &SendJob) -> Result<(), StoreError>;
}
