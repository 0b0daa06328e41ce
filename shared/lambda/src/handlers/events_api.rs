//! `/v1/event-endpoints…` and `/v1/events…`: the office's event endpoints,
//! the events of the last 30 days and their redelivery, for whichever
//! function serves those routes.

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http;
use messaging_core::app::events::{self, EndpointInput};
use messaging_core::domain::error::AppError;
use messaging_core::domain::event_endpoint::UrlPolicy;
use messaging_core::ports::{EventQueue, EventStore, HostResolver, MessageStore};

/// What the event routes need besides the store.
pub struct EventRoutes<'a, Q, R> {
    /// Where a redelivery's first attempts go.
    pub queue: &'a Q,
    /// Resolves endpoint host names at creation.
    pub resolver: &'a R,
    /// Which endpoint URLs are allowed.
    pub policy: UrlPolicy,
}

/// An endpoint id from the path: a UUID, else no endpoint (404) before any read.
fn endpoint_id(req: &Request) -> Result<String, AppError> {
    let id = http::path_param(req, "id").unwrap_or_default();
    uuid::Uuid::parse_str(&id)
        .map(|_| id.clone())
        .map_err(|_| AppError::not_found("endpoint_not_found", format!("no event endpoint {id}")))
}

impl<Q: EventQueue, R: HostResolver> EventRoutes<'_, Q, R> {
    /// Serves the event routes for the practice `practice_id`; `None` for
    /// any other route key.
    pub async fn route<S: EventStore + MessageStore>(
        &self,
        store: &S,
        practice_id: &str,
        route: &str,
        req: &Request,
        now: DateTime<Utc>,
    ) -> Option<Result<Response<Body>, AppError>> {
        let result = match route {
            "POST /v1/event-endpoints" => self.create(store, practice_id, req, now).await,
            "GET /v1/event-endpoints" => events::list_endpoints(store, practice_id)
                .await
                .map(|items| http::page(&items, None)),
            "GET /v1/event-endpoints/{id}" => match endpoint_id(req) {
                Ok(id) => events::get_endpoint(store, practice_id, &id)
                    .await
                    .map(|e| http::json(StatusCode::OK, &e)),
                Err(e) => Err(e),
            },
            "DELETE /v1/event-endpoints/{id}" => match endpoint_id(req) {
                Ok(id) => events::delete_endpoint(store, practice_id, &id)
                    .await
                    .map(|()| http::empty(StatusCode::NO_CONTENT)),
                Err(e) => Err(e),
            },
            "POST /v1/event-endpoints/{id}/rotate-secret" => match endpoint_id(req) {
                Ok(id) => events::rotate_secret(store, practice_id, &id, now)
                    .await
                    .map(|e| http::json(StatusCode::OK, &e)),
                Err(e) => Err(e),
            },
            "GET /v1/events" => list(store, practice_id, req, now).await,
            "GET /v1/events/{id}" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                events::get_event(store, practice_id, &id)
                    .await
                    .map(|e| http::json(StatusCode::OK, &e.view()))
            }
            "POST /v1/events/{id}/redeliver" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                events::redeliver(store, self.queue, practice_id, &id, now)
                    .await
                    .map(|view| http::json(StatusCode::ACCEPTED, &view))
            }
            _ => return None,
        };
        Some(result)
    }

    async fn create<S: EventStore + MessageStore>(
        &self,
        store: &S,
        practice_id: &str,
        req: &Request,
        now: DateTime<Utc>,
    ) -> Result<Response<Body>, AppError> {
        let (input, value) =
            messaging_core::json::parse_json::<EndpointInput>(http::body_bytes(req)?)?;
        let key = http::idempotency_key(req)?;
        let answer = events::create_endpoint(
            store,
            self.resolver,
            &self.policy,
            practice_id,
            input,
            &value,
            key,
            now,
        )
        .await?;
        Ok(http::raw_json(answer.status, answer.body))
    }
}

async fn list<S: EventStore>(
    store: &S,
    practice_id: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let (limit, cursor) = http::page_params(req)?;
    http::check_query(req, &["type", "delivery"])?;
    let filter = events::parse_filter(
        http::query_param(req, "type").as_deref(),
        http::query_param(req, "delivery").as_deref(),
    )?;
    let (items, next) =
        events::list_events(store, practice_id, &filter, limit, cursor.as_deref(), now).await?;
    Ok(http::page(&items, next))
}
