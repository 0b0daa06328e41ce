//! Event endpoints, recorded events and their deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::messages::IdempotencyRecord;
use crate::domain::error::StoreError;

/// How creating an event endpoint went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateEndpoint {
    /// Stored, with the idempotency record if any.
    Created,
    /// The practice already has [`MAX_ENDPOINTS`](crate::domain::event_endpoint::MAX_ENDPOINTS).
    LimitReached,
    /// Another request with the same idempotency key won the race.
    IdempotencyKeyTaken,
}

/// Which events a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<crate::domain::events::EventType>,
    /// Only events in this delivery state.
    pub delivery: Option<crate::domain::events::EventDelivery>,
}

/// Event endpoints and the events recorded for them. Events themselves are
/// written by the other stores, in the same write as the change that causes
/// them (see [`crate::domain::events`]); this port reads them and tracks
/// their deliveries.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a new endpoint (and the idempotency record, when given) unless
    /// the practice already has the most it may. An idempotency record
    /// expired at `endpoint.created_at` may be replaced.
    async fn create_endpoint(
        &self,
        endpoint: &crate::domain::event_endpoint::EventEndpoint,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateEndpoint, StoreError>;
    /// The practice's endpoints, oldest first.
    async fn endpoints(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::event_endpoint::EventEndpoint>, StoreError>;
    /// One endpoint.
    async fn get_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<crate::domain::event_endpoint::EventEndpoint>, StoreError>;
    /// Replaces a stored endpoint (a rotation, a disable); `false` when it
    /// is gone.
    async fn replace_endpoint(
        &self,
        endpoint: &crate::domain::event_endpoint::EventEndpoint,
    ) -> Result<bool, StoreError>;
    /// Deletes an endpoint; `false` when there was none.
    async fn delete_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, StoreError>;
    /// An event with its deliveries, read consistently.
    async fn get_event(
        &self,
        practice_id: &str,
        event_id: &str,
    ) -> Result<Option<crate::domain::events::StoredEvent>, StoreError>;
    /// A page of events, newest first, with ids above `floor` (where the
    /// retention period starts), after the id `after`; also the id to
    /// continue after when more may follow.
    async fn list_events(
        &self,
        practice_id: &str,
        filter: &EventFilter,
        floor: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<crate::domain::events::StoredEvent>, Option<String>), StoreError>;
    /// Starts delivery round `round` (the stored round + 1) with these
    /// deliveries, replacing the previous round's: only if the stored round
    /// is still `round - 1` (and, for round 1, no round was started).
    async fn start_round(
        &self,
        practice_id: &str,
        event_id: &str,
        round: u32,
        deliveries: &[crate::domain::events::Delivery],
    ) -> Result<bool, StoreError>;
    /// Marks `job`'s attempt under way: only if the delivery is in `job`'s
    /// round and waits for exactly this attempt, or this attempt began
    /// before `stale_before` and never recorded an outcome.
    async fn claim_attempt(
        &self,
        job: &crate::domain::events::DeliveryJob,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records the outcome of `job`'s attempt as `delivery` (its new state):
    /// only if that attempt is still the one under way.
    async fn record_attempt(
        &self,
        job: &crate::domain::events::DeliveryJob,
        delivery: &crate::domain::events::Delivery,
    ) -> Result<bool, StoreError>;
}

/// The queue of delivery attempts.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Enqueues attempts, each visible after its delay in seconds (at most 900).
    async fn enqueue(
        &self,
        jobs: &[(crate::domain::events::DeliveryJob, u32)],
    ) -> Result<(), StoreError>;
    /// Puts an attempt on the queue at `at` (beyond the queue's own delays:
    /// a one-time schedule).
    async fn enqueue_at(
        &self,
        job: &crate::domain::events::DeliveryJob,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// POSTs a signed event to an office's endpoint.
#[async_trait]
pub trait EventPoster: Send + Sync {
    /// One attempt: no redirects followed, at most
    /// [`DELIVERY_TIMEOUT`](crate::domain::event_endpoint::DELIVERY_TIMEOUT), only
    /// to addresses `policy` allows (checked again at connection time).
    async fn post(
        &self,
        url: &crate::domain::event_endpoint::EndpointUrl,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> crate::domain::events::AttemptResult;
}

/// Resolves host names (to check an endpoint's addresses when it is created).
#[async_trait]
pub trait HostResolver: Send + Sync {
    /// The addresses `host` resolves to.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::IpAddr>, String>;
}
