//! Event endpoints and events, the event queue, scripted endpoints and
//! name resolution, in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;
use crate::domain::event_endpoint::{EventEndpoint, MAX_ENDPOINTS};
use crate::domain::events::{Delivery, DeliveryJob, DeliveryState, StoredEvent};
use crate::ports::{
    CreateEndpoint, EventFilter, EventPoster, EventQueue, EventStore, HostResolver,
    IdempotencyRecord,
};

use super::MemoryStore;

impl MemoryStore {
    /// Every event recorded, oldest first.
    pub async fn events(&self) -> Vec<StoredEvent> {
        let s = self.0.lock().await;
        let mut all: Vec<StoredEvent> = s.events.values().cloned().collect();
        all.sort_by(|a, b| a.event.id.cmp(&b.event.id));
        all
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn create_endpoint(
        &self,
        endpoint: &EventEndpoint,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateEndpoint, StoreError> {
        let mut s = self.0.lock().await;
        if let Some(rec) = idempotency {
            let k = (rec.practice_id.clone(), rec.key.clone());
            if s.idempotency
                .get(&k)
                .is_some_and(|r| r.expires_at > endpoint.created_at)
            {
                return Ok(CreateEndpoint::IdempotencyKeyTaken);
            }
        }
        let count = s
            .endpoints
            .keys()
            .filter(|(p, _)| *p == endpoint.practice_id)
            .count();
        if count >= MAX_ENDPOINTS {
            return Ok(CreateEndpoint::LimitReached);
        }
        s.endpoints.insert(
            (endpoint.practice_id.clone(), endpoint.id.clone()),
            endpoint.clone(),
        );
        if let Some(rec) = idempotency {
            s.idempotency
                .insert((rec.practice_id.clone(), rec.key.clone()), rec.clone());
        }
        Ok(CreateEndpoint::Created)
    }

    async fn endpoints(&self, practice_id: &str) -> Result<Vec<EventEndpoint>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.endpoints
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<EventEndpoint>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.endpoints
            .get(&(practice_id.to_string(), endpoint_id.to_string()))
            .cloned())
    }

    async fn replace_endpoint(&self, endpoint: &EventEndpoint) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let k = (endpoint.practice_id.clone(), endpoint.id.clone());
        match s.endpoints.get_mut(&k) {
            Some(stored) => {
                *stored = endpoint.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        Ok(s.endpoints
            .remove(&(practice_id.to_string(), endpoint_id.to_string()))
            .is_some())
    }

    async fn get_event(
        &self,
        practice_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.events
            .get(&(practice_id.to_string(), event_id.to_string()))
            .cloned())
    }

    async fn list_events(
        &self,
        practice_id: &str,
        filter: &EventFilter,
        floor: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        // As DynamoDB reads it: a page of `limit` ids, newest first, then
        // the filter, so a page may hold fewer than `limit`.
        let page: Vec<&StoredEvent> = s
            .events
            .iter()
            .rev()
            .filter(|((p, id), _)| {
                p == practice_id && id.as_str() > floor && after.is_none_or(|a| id.as_str() < a)
            })
            .map(|(_, e)| e)
            .take(limit as usize + 1)
            .collect();
        let more = page.len() > limit as usize;
        let page = &page[..page.len().min(limit as usize)];
        let next = more
            .then(|| page.last().map(|e| e.event.id.clone()))
            .flatten();
        let items = page
            .iter()
            .filter(|e| filter.event_type.is_none_or(|t| e.event.event_type == t))
            .filter(|e| filter.delivery.is_none_or(|d| e.delivery() == d))
            .map(|e| (*e).clone())
            .collect();
        Ok((items, next))
    }

    async fn start_round(
        &self,
        practice_id: &str,
        event_id: &str,
        round: u32,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(stored) = s
            .events
            .get_mut(&(practice_id.to_string(), event_id.to_string()))
        else {
            return Ok(false);
        };
        if stored.round + 1 != round {
            return Ok(false);
        }
        stored.round = round;
        stored.deliveries = Some(deliveries.to_vec());
        Ok(true)
    }

    async fn claim_attempt(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(d) = s.delivery_in_round(job) else {
            return Ok(false);
        };
        let waiting = d.state == DeliveryState::Pending && d.attempts + 1 == job.attempt;
        let stale = d.state == DeliveryState::Sending
            && d.attempts == job.attempt
            && d.claimed_at.is_some_and(|c| c < stale_before);
        if !(waiting || stale) {
            return Ok(false);
        }
        d.state = DeliveryState::Sending;
        d.attempts = job.attempt;
        d.claimed_at = Some(now);
        Ok(true)
    }

    async fn record_attempt(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(d) = s.delivery_in_round(job) else {
            return Ok(false);
        };
        if d.state != DeliveryState::Sending || d.attempts != job.attempt {
            return Ok(false);
        }
        *d = delivery.clone();
        Ok(true)
    }
}

/// Jobs put on one-time schedules, with their times.
pub type ScheduledJobs = Arc<std::sync::Mutex<Vec<(DeliveryJob, DateTime<Utc>)>>>;

/// One request an endpoint got: URL, headers, body.
pub type PostedEvent = (String, Vec<(String, String)>, String);

/// The event queue in memory: jobs with their delays, and those scheduled.
#[derive(Clone, Default)]
pub struct MemoryEventQueue {
    /// Enqueued jobs with their delays in seconds.
    pub queued: Arc<std::sync::Mutex<Vec<(DeliveryJob, u32)>>>,
    /// Jobs put on one-time schedules, with their times.
    pub scheduled: ScheduledJobs,
    /// When set, enqueueing fails (a queue outage).
    pub fail: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryEventQueue {
    /// Takes every queued job.
    pub fn take(&self) -> Vec<(DeliveryJob, u32)> {
        std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl EventQueue for MemoryEventQueue {
    async fn enqueue(&self, jobs: &[(DeliveryJob, u32)]) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("enqueue deliveries", "queue unavailable"));
        }
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(jobs.iter().cloned());
        Ok(())
    }

    async fn enqueue_at(&self, job: &DeliveryJob, at: DateTime<Utc>) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new(
                "schedule delivery",
                "scheduler unavailable",
            ));
        }
        self.scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((job.clone(), at));
        Ok(())
    }
}

/// An endpoint in memory: answers from a script (then 200), records every
/// request it got.
#[derive(Clone, Default)]
pub struct ScriptedEventPoster {
    /// Results to give, in order; 200 once empty.
    pub script: Arc<std::sync::Mutex<VecDeque<crate::domain::events::AttemptResult>>>,
    /// (url, headers, body) of every request.
    pub requests: Arc<std::sync::Mutex<Vec<PostedEvent>>>,
}

impl ScriptedEventPoster {
    /// Answers `results` to the next requests.
    pub fn answer(&self, results: impl IntoIterator<Item = crate::domain::events::AttemptResult>) {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(results);
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<PostedEvent> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventPoster for ScriptedEventPoster {
    async fn post(
        &self,
        url: &crate::domain::event_endpoint::EndpointUrl,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> crate::domain::events::AttemptResult {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                url.url.to_string(),
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect(),
                body.to_string(),
            ));
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(crate::domain::events::AttemptResult::Status(200))
    }
}

/// Name resolution from a fixed table.
#[derive(Clone, Default)]
pub struct FixedResolver(pub HashMap<String, Vec<std::net::IpAddr>>);

#[async_trait]
impl HostResolver for FixedResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<std::net::IpAddr>, String> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| format!("{host} is not known"))
    }
}
