//! Events for the office's software: endpoints (`/v1/event-endpoints`), the
//! event list and redelivery (`/v1/events`), the fan-out of a newly
//! recorded event to the endpoints subscribed to it, and one delivery
//! attempt with its retry.
//!
//! The flow (docs/design.md, "Events"): a state change and its event are
//! one write (the outbox); the table's stream hands each new event to
//! [`fan_out`], which records one delivery per subscribed endpoint and
//! queues the first attempts; [`deliver`] makes one attempt per queue
//! message and queues the next after the schedule's wait (SQS delays up to
//! 15 minutes, a one-time schedule beyond). Each attempt is claimed first,
//! so a redelivered queue message never calls an endpoint twice for the
//! same attempt; one endpoint's attempts never wait on another's.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::idempotency::IdempotentPost;
use crate::app::sending::Answer;
use crate::domain::clock::queue_delay;
use crate::domain::error::AppError;
use crate::domain::event_endpoint::{
    EndpointStatus, EventEndpoint, SigningSecret, UrlPolicy, MAX_ENDPOINTS,
};
use crate::domain::events::{
    event_id_floor, validate_event_id, AttemptResult, Delivery, DeliveryJob, DeliveryState,
    EventDelivery, EventType, RetrySchedule, StoredEvent, EVENT_RETENTION, STALE_ATTEMPT,
};
use crate::domain::limits::SQS_MAX_DELAY;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{
    CreateEndpoint, EventFilter, EventPoster, EventQueue, EventStore, HostResolver, MessageStore,
};

/// Body of `POST /v1/event-endpoints`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// Where events go: `https`, resolving to public addresses only.
    pub url: String,
    /// The types it gets; `null` or absent = every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

fn endpoint_not_found(id: &str) -> AppError {
    AppError::not_found("endpoint_not_found", format!("no event endpoint {id}"))
}

/// Reads the subscribed types: `null` = all; a list must name known types
/// and not be empty (an endpoint that wants nothing is a mistake).
fn parse_types(types: Option<Vec<String>>) -> Result<Option<Vec<EventType>>, AppError> {
    let Some(names) = types else {
        return Ok(None);
    };
    if names.is_empty() {
        return Err(AppError::invalid(
            "invalid_field",
            "event_types must list at least one type, or be null for every type",
        )
        .at("event_types"));
    }
    let mut types = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let t = EventType::parse(name).map_err(|e| e.at(format!("event_types[{i}]")))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(Some(types))
}

/// Checks a URL's form and, for a host name, every address it resolves to.
///
/// # Errors
///
/// 422 `invalid_url` naming `url`.
pub async fn check_url<R: HostResolver>(
    resolver: &R,
    policy: &UrlPolicy,
    raw: &str,
) -> Result<crate::domain::event_endpoint::EndpointUrl, AppError> {
    let url = policy.check(raw)?;
    if let Some(host) = url.host_name() {
        let addresses = resolver.resolve(host, url.port()).await.map_err(|e| {
            AppError::invalid("invalid_url", format!("{host} could not be resolved: {e}")).at("url")
        })?;
        policy.check_resolved(host, &addresses)?;
    }
    Ok(url)
}

/// `POST /v1/event-endpoints`: 201 with the endpoint and its secret (shown
/// only here and on rotation); 422 `invalid_url`, `invalid_event_type`;
/// 409 `too_many_endpoints` beyond five. `Idempotency-Key` as on every POST.
#[allow(clippy::too_many_arguments)]
pub async fn create_endpoint<S, R>(
    store: &S,
    resolver: &R,
    policy: &UrlPolicy,
    practice_id: &str,
    input: EndpointInput,
    request_value: &serde_json::Value,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Answer, AppError>
where
    S: EventStore + MessageStore,
    R: HostResolver,
{
    let post = IdempotentPost::new(
        practice_id,
        "POST /v1/event-endpoints",
        request_value,
        idempotency_key,
    );
    if let Some(answer) = post.open(store, now).await?.answer() {
        return Ok(answer);
    }
    let event_types = parse_types(input.event_types)?;
    let url = check_url(resolver, policy, input.url.trim()).await?;
    let endpoint = EventEndpoint {
        id: uuid::Uuid::now_v7().to_string(),
        practice_id: practice_id.to_string(),
        url: url.url.to_string(),
        event_types,
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secrets: vec![SigningSecret::generate()],
        created_at: now,
    };
    let body = endpoint.view_with_secret().to_string();
    let record = post.record(201, &body, now);
    match store.create_endpoint(&endpoint, record.as_ref()).await? {
        CreateEndpoint::Created => Ok(Answer { status: 201, body }),
        CreateEndpoint::LimitReached => Err(AppError::conflict(
            "too_many_endpoints",
            format!(
                "A practice can have at most {MAX_ENDPOINTS} event endpoints; delete one first."
            ),
        )),
        CreateEndpoint::IdempotencyKeyTaken => post.winner(store, now).await,
    }
}

/// `GET /v1/event-endpoints`: every endpoint (at most five), without secrets.
pub async fn list_endpoints<S: EventStore>(
    store: &S,
    practice_id: &str,
) -> Result<Vec<serde_json::Value>, AppError> {
    Ok(store
        .endpoints(practice_id)
        .await?
        .iter()
        .map(EventEndpoint::view)
        .collect())
}

/// `GET /v1/event-endpoints/{id}`.
pub async fn get_endpoint<S: EventStore>(
    store: &S,
    practice_id: &str,
    endpoint_id: &str,
) -> Result<serde_json::Value, AppError> {
    store
        .get_endpoint(practice_id, endpoint_id)
        .await?
        .map(|e| e.view())
        .ok_or_else(|| endpoint_not_found(endpoint_id))
}

/// `DELETE /v1/event-endpoints/{id}`: 404 `endpoint_not_found` when there
/// is none. Deliveries still queued for it end as failed.
pub async fn delete_endpoint<S: EventStore>(
    store: &S,
    practice_id: &str,
    endpoint_id: &str,
) -> Result<(), AppError> {
    if store.delete_endpoint(practice_id, endpoint_id).await? {
        Ok(())
    } else {
        Err(endpoint_not_found(endpoint_id))
    }
}

/// `POST /v1/event-endpoints/{id}/rotate-secret`: a new secret (shown in
/// the answer); the old one keeps signing beside it for 24 hours.
pub async fn rotate_secret<S: EventStore>(
    store: &S,
    practice_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, AppError> {
    let mut endpoint = store
        .get_endpoint(practice_id, endpoint_id)
        .await?
        .ok_or_else(|| endpoint_not_found(endpoint_id))?;
    endpoint.rotate(now);
    if !store.replace_endpoint(&endpoint).await? {
        return Err(endpoint_not_found(endpoint_id));
    }
    Ok(endpoint.view_with_secret())
}

/// `GET /v1/events?type=&delivery=`: events of the last 30 days, newest
/// first, paged.
pub async fn list_events<S: EventStore>(
    store: &S,
    practice_id: &str,
    filter: &EventFilter,
    limit: u32,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Vec<serde_json::Value>, Option<String>), AppError> {
    let after = cursor.map(decode_cursor).transpose()?;
    let floor = event_id_floor(now - EVENT_RETENTION);
    let (events, next) = store
        .list_events(practice_id, filter, &floor, limit, after.as_deref())
        .await?;
    Ok((
        events.iter().map(StoredEvent::view).collect(),
        next.as_deref().map(encode_cursor),
    ))
}

/// Reads the list's filters.
///
/// # Errors
///
/// 422 `invalid_field` naming `type` or `delivery`.
pub fn parse_filter(
    event_type: Option<&str>,
    delivery: Option<&str>,
) -> Result<EventFilter, AppError> {
    Ok(EventFilter {
        event_type: event_type
            .map(|t| {
                EventType::parse(t)
                    .map_err(|e| AppError::invalid("invalid_field", e.message).at("type"))
            })
            .transpose()?,
        delivery: delivery.map(EventDelivery::parse).transpose()?,
    })
}

/// `GET /v1/events/{id}`.
pub async fn get_event<S: EventStore>(
    store: &S,
    practice_id: &str,
    event_id: &str,
) -> Result<StoredEvent, AppError> {
    validate_event_id(event_id)?;
    store
        .get_event(practice_id, event_id)
        .await?
        .ok_or_else(|| AppError::not_found("event_not_found", format!("no event {event_id}")))
}

/// `POST /v1/events/{id}/redeliver`: a new delivery round to every enabled
/// endpoint subscribed to the event's type now, first attempts at once
/// (retries follow the schedule again); attempts still waiting from the
/// previous round are dropped. 202 with the event.
pub async fn redeliver<S: EventStore, Q: EventQueue>(
    store: &S,
    queue: &Q,
    practice_id: &str,
    event_id: &str,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, AppError> {
    for _ in 0..3 {
        let stored = get_event(store, practice_id, event_id).await?;
        if let Some(started) = start_round(store, queue, &stored, now).await? {
            return Ok(started.view());
        }
    }
    Err(AppError::unavailable("the event kept changing; try again"))
}

/// Starts the round after `stored`'s and queues its first attempts;
/// `None` when another writer started it first.
async fn start_round<S: EventStore, Q: EventQueue>(
    store: &S,
    queue: &Q,
    stored: &StoredEvent,
    now: DateTime<Utc>,
) -> Result<Option<StoredEvent>, AppError> {
    let event = &stored.event;
    let endpoints = store.endpoints(&event.practice_id).await?;
    let deliveries: Vec<Delivery> = endpoints
        .iter()
        .filter(|e| e.wants(event.event_type))
        .map(|e| Delivery::new(&e.id, now))
        .collect();
    let round = stored.round + 1;
    if !store
        .start_round(&event.practice_id, &event.id, round, &deliveries)
        .await?
    {
        return Ok(None);
    }
    let jobs: Vec<(DeliveryJob, u32)> = deliveries
        .iter()
        .map(|d| (job(stored, &d.endpoint_id, 1, round), 0))
        .collect();
    queue.enqueue(&jobs).await?;
    Ok(Some(StoredEvent {
        event: event.clone(),
        deliveries: Some(deliveries),
        round,
    }))
}

fn job(stored: &StoredEvent, endpoint_id: &str, attempt: u32, round: u32) -> DeliveryJob {
    DeliveryJob {
        practice_id: stored.event.practice_id.clone(),
        event_id: stored.event.id.clone(),
        endpoint_id: endpoint_id.to_string(),
        attempt,
        round,
    }
}

/// A newly recorded event (from the table's stream, which carries its id and
/// type): its first round, to the endpoints subscribed now, started without
/// reading the event. A stream record delivered again finds the round
/// started and queues its not-yet-attempted deliveries again; the claim
/// makes the second copy of each a no-op.
pub async fn fan_out<S: EventStore, Q: EventQueue>(
    store: &S,
    queue: &Q,
    practice_id: &str,
    event_id: &str,
    event_type: EventType,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let deliveries: Vec<Delivery> = store
        .endpoints(practice_id)
        .await?
        .iter()
        .filter(|e| e.wants(event_type))
        .map(|e| Delivery::new(&e.id, now))
        .collect();
    let first = |endpoint_id: &str, round: u32| {
        (
            DeliveryJob {
                practice_id: practice_id.to_string(),
                event_id: event_id.to_string(),
                endpoint_id: endpoint_id.to_string(),
                attempt: 1,
                round,
            },
            0,
        )
    };
    if store
        .start_round(practice_id, event_id, 1, &deliveries)
        .await?
    {
        let jobs: Vec<(DeliveryJob, u32)> = deliveries
            .iter()
            .map(|d| first(&d.endpoint_id, 1))
            .collect();
        queue.enqueue(&jobs).await?;
        return Ok(());
    }
    // Already fanned out (a repeated stream record, or a redelivery got
    // there first), or gone: queue again what has not been attempted yet,
    // for endpoints that still exist and want it.
    let Some(stored) = store.get_event(practice_id, event_id).await? else {
        tracing::warn!(event_id, "event to fan out is gone");
        return Ok(());
    };
    let wanted = |endpoint_id: &str| deliveries.iter().any(|d| d.endpoint_id == endpoint_id);
    let jobs: Vec<(DeliveryJob, u32)> = stored
        .deliveries
        .iter()
        .flatten()
        .filter(|d| d.state == DeliveryState::Pending && d.attempts == 0)
        .filter(|d| wanted(&d.endpoint_id))
        .map(|d| first(&d.endpoint_id, stored.round))
        .collect();
    queue.enqueue(&jobs).await?;
    Ok(())
}

/// What [`deliver`] did with a job, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The endpoint answered 2xx.
    Delivered,
    /// The attempt failed; the next is queued for this instant.
    RetryAt(DateTime<Utc>),
    /// No attempt will follow (the last one failed, 410, endpoint gone).
    Failed,
    /// Nothing to do: another copy of this job ran, or the round is over.
    Skipped,
}

/// Everything one delivery attempt needs.
pub struct Deliverer<'a, S, Q, W> {
    /// Events and endpoints.
    pub store: &'a S,
    /// Where the next attempt goes.
    pub queue: &'a Q,
    /// The HTTP client.
    pub client: &'a W,
    /// Which URLs may be called.
    pub policy: UrlPolicy,
    /// Waits between attempts.
    pub schedule: &'a RetrySchedule,
}

impl<S: EventStore, Q: EventQueue, W: EventPoster> Deliverer<'_, S, Q, W> {
    /// One attempt of `job`: claim it, POST the signed event, record the
    /// outcome, and queue the next attempt when there is one.
    pub async fn deliver(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
    ) -> Result<Delivered, AppError> {
        let Some(stored) = self
            .store
            .get_event(&job.practice_id, &job.event_id)
            .await?
        else {
            return Ok(Delivered::Skipped);
        };
        let Some(current) = stored.delivery_to(&job.endpoint_id).cloned() else {
            return Ok(Delivered::Skipped);
        };
        if stored.round != job.round {
            return Ok(Delivered::Skipped);
        }
        // The outcome of this attempt is recorded but its follower was not
        // queued (the function died in between): queue it now.
        if current.state == DeliveryState::Pending && current.attempts == job.attempt {
            if let Some(at) = current.next_attempt_at {
                self.queue_next(job, at, now).await?;
                return Ok(Delivered::RetryAt(at));
            }
        }
        if !self
            .store
            .claim_attempt(job, now, now - STALE_ATTEMPT)
            .await?
        {
            return Ok(Delivered::Skipped);
        }
        let endpoint = self
            .store
            .get_endpoint(&job.practice_id, &job.endpoint_id)
            .await?;
        let result = match &endpoint {
            None => None,
            Some(e) if e.status != EndpointStatus::Enabled => None,
            Some(e) => Some(self.attempt(e, &stored, now).await),
        };
        let mut next = current.clone();
        next.attempts = job.attempt;
        next.claimed_at = None;
        next.last_attempt_at = Some(now);
        let outcome = match &result {
            None => {
                next.state = DeliveryState::Failed;
                next.last_error = Some(
                    if endpoint.is_none() {
                        "the endpoint was deleted"
                    } else {
                        "the endpoint is disabled"
                    }
                    .to_string(),
                );
                next.next_attempt_at = None;
                Delivered::Failed
            }
            Some(r) => {
                next.last_status = r.status();
                next.last_error = (!r.delivered()).then(|| r.describe());
                if r.delivered() {
                    next.state = DeliveryState::Delivered;
                    next.next_attempt_at = None;
                    Delivered::Delivered
                } else if r.gone() {
                    next.state = DeliveryState::Failed;
                    next.next_attempt_at = None;
                    Delivered::Failed
                } else if let Some(wait) = self.schedule.after(job.attempt) {
                    next.state = DeliveryState::Pending;
                    next.next_attempt_at = Some(now + wait);
                    Delivered::RetryAt(now + wait)
                } else {
                    next.state = DeliveryState::Failed;
                    next.next_attempt_at = None;
                    Delivered::Failed
                }
            }
        };
        if let (Some(r), Some(mut e)) = (&result, endpoint) {
            if r.gone() {
                e.status = EndpointStatus::Disabled;
                e.disabled_reason = Some(format!(
                    "answered 410 Gone to event {} at {}",
                    stored.event.id,
                    crate::domain::clock::to_api_time(&now)
                ));
                self.store.replace_endpoint(&e).await?;
                tracing::info!(endpoint_id = %e.id, "endpoint answered 410; disabled");
            }
        }
        if !self.store.record_attempt(job, &next).await? {
            // Another copy of the job took over a stale claim meanwhile.
            return Ok(Delivered::Skipped);
        }
        if let Delivered::RetryAt(at) = outcome {
            self.queue_next(job, at, now).await?;
        }
        tracing::info!(
            event_id = %job.event_id,
            endpoint_id = %job.endpoint_id,
            attempt = job.attempt,
            result = result.as_ref().map(AttemptResult::describe).unwrap_or_default(),
            "delivery attempt"
        );
        Ok(outcome)
    }

    /// POSTs the event, signed with every secret that signs now.
    async fn attempt(
        &self,
        endpoint: &EventEndpoint,
        stored: &StoredEvent,
        now: DateTime<Utc>,
    ) -> AttemptResult {
        let url = match self.policy.check(&endpoint.url) {
            Ok(url) => url,
            Err(e) => return AttemptResult::Error(e.message),
        };
        let timestamp = now.timestamp();
        let body = &stored.event.payload;
        let signature = endpoint.signature_header(&stored.event.id, timestamp, body, now);
        let headers = [
            ("webhook-id", stored.event.id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
            ("content-type", "application/json".to_string()),
            ("user-agent", "patient-messaging-webhooks/1".to_string()),
        ];
        self.client.post(&url, &headers, body).await
    }

    /// Queues attempt `job.attempt + 1` for `at`: on the queue with a delay
    /// when it is within the queue's 15 minutes, else by a one-time schedule.
    async fn queue_next(
        &self,
        job: &DeliveryJob,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let next = DeliveryJob {
            attempt: job.attempt + 1,
            ..job.clone()
        };
        let wait = at - now;
        if wait <= SQS_MAX_DELAY {
            self.queue.enqueue(&[(next, queue_delay(wait))]).await?;
        } else {
            self.queue.enqueue_at(&next, at).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::events::EventType;
    use crate::domain::message::{RecipientStatus, Transition};
    use crate::ports::MessageStore;
    use crate::testing::{
        queued_recipient, FixedResolver, MemoryEventQueue, MemoryStore, ScriptedEventPoster,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    fn resolver() -> FixedResolver {
        let mut names = HashMap::new();
        names.insert(
            "pm.example.com".to_string(),
            vec!["93.184.216.34".parse().unwrap()],
        );
        names.insert(
            "inside.example.com".to_string(),
            vec!["10.0.0.7".parse().unwrap()],
        );
        names.insert(
            "mixed.example.com".to_string(),
            vec![
                "93.184.216.34".parse().unwrap(),
                "169.254.169.254".parse().unwrap(),
            ],
        );
        FixedResolver(names)
    }

    async fn create(
        store: &MemoryStore,
        practice: &str,
        body: serde_json::Value,
        key: Option<&str>,
    ) -> Result<Answer, AppError> {
        let input: EndpointInput = serde_json::from_value(body.clone()).unwrap();
        create_endpoint(
            store,
            &resolver(),
            &UrlPolicy::default(),
            practice,
            input,
            &body,
            key,
            now(),
        )
        .await
    }

    #[tokio::test]
    async fn an_endpoint_is_created_with_its_secret_shown_once() {
        let store = MemoryStore::default();
        let answer = create(
            &store,
            "p1",
            serde_json::json!({"url": "https://pm.example.com/hooks", "event_types": ["message.received"]}),
            None,
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 201);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
        assert_eq!(body["status"], "enabled");
        assert_eq!(body["event_types"], serde_json::json!(["message.received"]));
        let listed = list_endpoints(&store, "p1").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            listed[0].get("secret").is_none(),
            "the list never shows the secret"
        );
        // Another practice sees nothing of it.
        let id = body["id"].as_str().unwrap();
        assert!(list_endpoints(&store, "p2").await.unwrap().is_empty());
        assert_eq!(
            get_endpoint(&store, "p2", id).await.unwrap_err().code,
            "endpoint_not_found"
        );
        assert_eq!(
            delete_endpoint(&store, "p2", id).await.unwrap_err().code,
            "endpoint_not_found"
        );
        assert_eq!(
            rotate_secret(&store, "p2", id, now())
                .await
                .unwrap_err()
                .code,
            "endpoint_not_found"
        );
        delete_endpoint(&store, "p1", id).await.unwrap();
        assert!(list_endpoints(&store, "p1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_endpoints_are_refused_naming_the_field_and_store_nothing() {
        let store = MemoryStore::default();
        for (body, code, field) in [
            (
                serde_json::json!({"url": "http://pm.example.com/"}),
                "invalid_url",
                "url",
            ),
            (
                serde_json::json!({"url": "https://inside.example.com/"}),
                "invalid_url",
                "url",
            ),
            (
                serde_json::json!({"url": "https://mixed.example.com/"}),
                "invalid_url",
                "url",
            ),
            (
                serde_json::json!({"url": "https://unknown.example.com/"}),
                "invalid_url",
                "url",
            ),
            (
                serde_json::json!({"url": "https://169.254.169.254/"}),
                "invalid_url",
                "url",
            ),
            (
                serde_json::json!({"url": "https://pm.example.com/", "event_types": []}),
                "invalid_field",
                "event_types",
            ),
            (
                serde_json::json!({"url": "https://pm.example.com/", "event_types": ["message.sent"]}),
                "invalid_event_type",
                "event_types[0]",
            ),
        ] {
            let e = create(&store, "p1", body.clone(), None).await.unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (code, Some(field)), "{body}");
        }
        assert!(list_endpoints(&store, "p1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_practice_has_at_most_five_endpoints_and_a_key_replays_the_first_answer() {
        let store = MemoryStore::default();
        let body = serde_json::json!({"url": "https://pm.example.com/hooks"});
        let first = create(&store, "p1", body.clone(), Some("k1"))
            .await
            .unwrap();
        let again = create(&store, "p1", body.clone(), Some("k1"))
            .await
            .unwrap();
        assert_eq!(first, again, "same key, same answer, one endpoint");
        assert_eq!(list_endpoints(&store, "p1").await.unwrap().len(), 1);
        for _ in 0..4 {
            create(&store, "p1", body.clone(), None).await.unwrap();
        }
        let e = create(&store, "p1", body, None).await.unwrap_err();
        assert_eq!(e.code, "too_many_endpoints");
        assert_eq!(list_endpoints(&store, "p1").await.unwrap().len(), 5);
    }

    /// A direct message to +14155550142 moved to delivered: one event.
    async fn delivered_event(store: &MemoryStore) -> StoredEvent {
        let r = queued_recipient();
        store.insert_recipient(r.clone()).await;
        let claimed = store
            .transition(&r, &Transition::Claim { at: now() }, now())
            .await
            .unwrap()
            .unwrap();
        let sent = store
            .transition(
                &claimed,
                &Transition::Sent {
                    carrier_message_id: "bw-1".into(),
                    at: now(),
                },
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        store
            .transition(
                &sent,
                &Transition::Delivered {
                    carrier_message_id: "bw-1".into(),
                    at: now(),
                },
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        let all = store.events().await;
        assert_eq!(all.len(), 1, "only the delivery makes an event");
        all[0].clone()
    }

    /// A practice's events: the store, the event queue, the retry
    /// schedule, and what most tests do with them.
    struct Fixture {
        store: MemoryStore,
        queue: MemoryEventQueue,
        practice: String,
        schedule: RetrySchedule,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                store: MemoryStore::default(),
                queue: MemoryEventQueue::default(),
                practice: queued_recipient().practice_id,
                schedule: RetrySchedule::default(),
            }
        }

        /// Creates an endpoint; returns its id and secret.
        async fn endpoint(&self, body: serde_json::Value) -> (String, String) {
            let created = create(&self.store, &self.practice, body, None)
                .await
                .unwrap();
            let view: serde_json::Value = serde_json::from_str(&created.body).unwrap();
            let field = |name: &str| view[name].as_str().unwrap().to_string();
            (field("id"), field("secret"))
        }

        async fn fan_out(&self, event: &StoredEvent) {
            fan_out(
                &self.store,
                &self.queue,
                &self.practice,
                &event.event.id,
                event.event.event_type,
                now(),
            )
            .await
            .unwrap();
        }

        /// A recipient's delivery event, fanned out.
        async fn delivered(&self) -> StoredEvent {
            let event = delivered_event(&self.store).await;
            self.fan_out(&event).await;
            event
        }

        fn deliverer<'a>(
            &'a self,
            hooks: &'a ScriptedEventPoster,
        ) -> Deliverer<'a, MemoryStore, MemoryEventQueue, ScriptedEventPoster> {
            Deliverer {
                store: &self.store,
                queue: &self.queue,
                client: hooks,
                policy: UrlPolicy::default(),
                schedule: &self.schedule,
            }
        }

        async fn stored(&self, event: &StoredEvent) -> StoredEvent {
            self.store
                .get_event(&self.practice, &event.event.id)
                .await
                .unwrap()
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_repeated_fan_out_queues_nothing_for_an_endpoint_that_is_gone() {
        let f = Fixture::new();
        let event = delivered_event(&f.store).await;
        // A round already started for an endpoint this practice no longer has.
        let gone = vec![Delivery::new("ep-gone", now())];
        assert!(f
            .store
            .start_round(&f.practice, &event.event.id, 1, &gone)
            .await
            .unwrap());
        f.fan_out(&event).await;
        assert!(f.queue.take().is_empty());
    }

    #[tokio::test]
    async fn a_recorded_event_goes_to_each_subscribed_endpoint_once() {
        let f = Fixture::new();
        let (all_id, _) = f
            .endpoint(serde_json::json!({"url": "https://pm.example.com/a"}))
            .await;
        f.endpoint(serde_json::json!({"url": "https://pm.example.com/b", "event_types": ["message.received"]})).await;
        let event = delivered_event(&f.store).await;
        assert_eq!(event.event.event_type, EventType::MessageDelivered);
        f.fan_out(&event).await;
        let jobs = f.queue.take();
        assert_eq!(jobs.len(), 1, "only the endpoint subscribed to the type");
        assert_eq!(
            (jobs[0].0.endpoint_id.as_str(), jobs[0].0.attempt, jobs[0].1),
            (all_id.as_str(), 1, 0)
        );
        // The stream hands the same record over again: the first attempt is
        // queued again, and its claim makes the copy a no-op.
        f.fan_out(&event).await;
        let again = f.queue.take();
        assert_eq!(again, jobs);
        let hooks = ScriptedEventPoster::default();
        let d = f.deliverer(&hooks);
        assert_eq!(
            d.deliver(&jobs[0].0, now()).await.unwrap(),
            Delivered::Delivered
        );
        assert_eq!(
            d.deliver(&again[0].0, now()).await.unwrap(),
            Delivered::Skipped
        );
        assert_eq!(hooks.received().len(), 1);
        let stored = f.stored(&event).await;
        assert_eq!(stored.delivery(), EventDelivery::Delivered);
    }

    #[tokio::test]
    async fn a_failing_endpoint_is_retried_on_the_schedule_with_the_same_id_and_body() {
        let f = Fixture::new();
        let (_, secret) = f
            .endpoint(serde_json::json!({"url": "https://pm.example.com/a"}))
            .await;
        let event = f.delivered().await;
        let hooks = ScriptedEventPoster::default();
        hooks.answer([AttemptResult::Status(500), AttemptResult::Timeout]);
        let d = f.deliverer(&hooks);
        let mut t = now();
        let (job, _) = f.queue.take().remove(0);
        assert_eq!(
            d.deliver(&job, t).await.unwrap(),
            Delivered::RetryAt(t + Duration::seconds(5))
        );
        let (job, delay) = f.queue.take().remove(0);
        assert_eq!((job.attempt, delay), (2, 5));
        t += Duration::seconds(5);
        assert_eq!(
            d.deliver(&job, t).await.unwrap(),
            Delivered::RetryAt(t + Duration::minutes(5))
        );
        let (job, delay) = f.queue.take().remove(0);
        assert_eq!((job.attempt, delay), (3, 300));
        t += Duration::minutes(5);
        assert_eq!(d.deliver(&job, t).await.unwrap(), Delivered::Delivered);
        let got = hooks.received();
        assert_eq!(got.len(), 3);
        for (_, headers, body) in &got {
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            assert_eq!(header("webhook-id"), event.event.id);
            assert_eq!(body, &event.event.payload);
            let ts: i64 = header("webhook-timestamp").parse().unwrap();
            let expected = crate::domain::event_endpoint::SigningSecret {
                value: secret.clone(),
                expires_at: None,
            }
            .sign(&event.event.id, ts, &event.event.payload)
            .unwrap();
            assert_eq!(header("webhook-signature"), expected);
        }
        let stored = f.stored(&event).await;
        let view = stored.view();
        assert_eq!(view["attempts"], 3);
        assert_eq!(view["delivery"], "delivered");
        assert_eq!(view["last_status"], 200);
    }

    #[tokio::test]
    async fn long_waits_go_through_a_schedule_and_the_last_failure_is_final() {
        let f = Fixture::new();
        f.endpoint(serde_json::json!({"url": "https://pm.example.com/a"}))
            .await;
        let event = f.delivered().await;
        let hooks = ScriptedEventPoster::default();
        hooks.answer(std::iter::repeat_n(AttemptResult::Status(503), 10));
        let d = f.deliverer(&hooks);
        let mut job = f.queue.take().remove(0).0;
        let mut t = now();
        for attempt in 1..=10 {
            let outcome = d.deliver(&job, t).await.unwrap();
            if attempt == 10 {
                assert_eq!(outcome, Delivered::Failed);
                break;
            }
            let wait = f.schedule.after(attempt).unwrap();
            assert_eq!(outcome, Delivered::RetryAt(t + wait));
            t += wait;
            job = if wait <= SQS_MAX_DELAY {
                f.queue.take().remove(0).0
            } else {
                let (j, at) = f.queue.scheduled.lock().unwrap().pop().unwrap();
                assert_eq!(at, t);
                j
            };
        }
        assert_eq!(hooks.received().len(), 10);
        assert!(f.queue.take().is_empty() && f.queue.scheduled.lock().unwrap().is_empty());
        let stored = f.stored(&event).await;
        assert_eq!(stored.delivery(), EventDelivery::Failed);
        assert!(
            t - now() > Duration::hours(70),
            "about three days of retries"
        );
    }

    #[tokio::test]
    async fn a_410_disables_the_endpoint_and_redeliver_starts_a_new_round() {
        let f = Fixture::new();
        let (endpoint_id, _) = f
            .endpoint(serde_json::json!({"url": "https://pm.example.com/a"}))
            .await;
        let event = f.delivered().await;
        let hooks = ScriptedEventPoster::default();
        hooks.answer([AttemptResult::Status(410)]);
        let d = f.deliverer(&hooks);
        let job = f.queue.take().remove(0).0;
        assert_eq!(d.deliver(&job, now()).await.unwrap(), Delivered::Failed);
        let endpoint = f
            .store
            .get_endpoint(&f.practice, &endpoint_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(endpoint.status, EndpointStatus::Disabled);
        assert!(f.queue.take().is_empty(), "no retry after 410");

        // Redelivery goes to enabled endpoints only: none now.
        let view = redeliver(&f.store, &f.queue, &f.practice, &event.event.id, now())
            .await
            .unwrap();
        assert_eq!(view["delivery"], "none");
        // A new endpoint gets it on the next redelivery; the old round's
        // job is dropped.
        f.endpoint(serde_json::json!({"url": "https://pm.example.com/b"}))
            .await;
        redeliver(&f.store, &f.queue, &f.practice, &event.event.id, now())
            .await
            .unwrap();
        let jobs = f.queue.take();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].0.round, 3);
        assert_eq!(d.deliver(&job, now()).await.unwrap(), Delivered::Skipped);
        assert_eq!(
            d.deliver(&jobs[0].0, now()).await.unwrap(),
            Delivered::Delivered
        );
        // Another practice cannot see or redeliver it.
        assert_eq!(
            redeliver(&f.store, &f.queue, "other", &event.event.id, now())
                .await
                .unwrap_err()
                .code,
            "event_not_found"
        );
    }

    #[tokio::test]
    async fn a_died_attempt_is_taken_over_only_once_stale() {
        let f = Fixture::new();
        f.endpoint(serde_json::json!({"url": "https://pm.example.com/a"}))
            .await;
        f.delivered().await;
        let job = f.queue.take().remove(0).0;
        // A first copy claimed it and died before recording anything.
        assert!(f
            .store
            .claim_attempt(&job, now(), now() - STALE_ATTEMPT)
            .await
            .unwrap());
        let hooks = ScriptedEventPoster::default();
        let d = f.deliverer(&hooks);
        assert_eq!(
            d.deliver(&job, now() + Duration::seconds(10))
                .await
                .unwrap(),
            Delivered::Skipped
        );
        assert_eq!(
            d.deliver(&job, now() + Duration::seconds(61))
                .await
                .unwrap(),
            Delivered::Delivered
        );
        assert_eq!(hooks.received().len(), 1);
    }

    #[tokio::test]
    async fn a_state_change_and_its_event_are_one_write() {
        let store = MemoryStore::default();
        let r = queued_recipient();
        store.insert_recipient(r.clone()).await;
        // A refused transition (stale version) records no event either.
        let mut stale = r.clone();
        stale.version += 7;
        assert!(store
            .transition(&stale, &Transition::Claim { at: now() }, now())
            .await
            .unwrap()
            .is_none());
        assert!(store.events().await.is_empty());
        let claimed = store
            .transition(&r, &Transition::Claim { at: now() }, now())
            .await
            .unwrap()
            .unwrap();
        let failed = store
            .transition(
                &claimed,
                &Transition::Failed {
                    carrier_message_id: None,
                    error: crate::domain::message::RecipientError::from_carrier_code(4720),
                    at: now(),
                },
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.status, RecipientStatus::Failed);
        let all = store.events().await;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].event.event_type, EventType::MessageFailed);
        assert_eq!(all[0].event.payload_json()["data"]["error"]["code"], "4720");
    }
}
