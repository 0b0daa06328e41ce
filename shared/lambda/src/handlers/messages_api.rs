//! `POST /v1/messages`, `GET/PATCH/DELETE /v1/messages/{id}`, and the bulk
//! messages: `POST /v1/bulk-messages`, `GET/DELETE /v1/bulk-messages/{id}`,
//! `GET /v1/bulk-messages/{id}/recipients`; and a reply in a conversation,
//! `POST /v1/conversations/{id}/messages` (a send like the others).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, FromEnv, MessagesApiConfig};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::scheduler::EventBridgeScheduler;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::auth::Authenticator;
use messaging_core::app::bulk::{BulkMessages, BulkRequest};
use messaging_core::app::conversations::{self, ReplyRequest};
use messaging_core::app::messages::{Messages, RescheduleRequest, SendMessageRequest};
use messaging_core::domain::clock::{Clock, SystemClock};
use messaging_core::domain::error::AppError;

/// The messages function.
pub struct MessagesApi {
    auth: Authenticator<DynamoStore>,
    /// The console's session cookie, an alternative to the API key.
    session_cookie: crate::session_cookie::SessionCookie,
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue, EventBridgeScheduler>,
    bulk: BulkMessages<DynamoStore, SqsSendQueue, EventBridgeScheduler>,
    clock: SystemClock,
}

impl MessagesApi {
    /// Reads [`MessagesApiConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(MessagesApiConfig::from_env()?, crate::config::aws()?).await)
    }

    /// Builds the clients for `config`.
    pub async fn new(config: MessagesApiConfig, aws: messaging_adapters::aws::SdkConfig) -> Self {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
        let queue = SqsSendQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            config.send_queue_url.as_str(),
        );
        let scheduler =
            EventBridgeScheduler::new(aws_sdk_scheduler::Client::new(&aws), config.scheduler);
        Self {
            auth: Authenticator::new(store.clone()),
            session_cookie: config.session_cookie,
            bulk: BulkMessages {
                store: store.clone(),
                queue: queue.clone(),
                scheduler: scheduler.clone(),
                queue_delay_max: config.queue_delay_max,
                per_second: config.number_per_second,
            },
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler,
                queue_delay_max: config.queue_delay_max,
            },
            clock: SystemClock,
        }
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        let practice = super::caller(&self.auth, self.session_cookie, req, chrono::Utc::now())
            .await?
            .practice;
        let id = || http::path_param(req, "id").unwrap_or_default();
        match route {
            "POST /v1/messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<SendMessageRequest>(bytes)?;
                let key = http::idempotency_key(req)?;
                let answer = self
                    .messages
                    .send_direct(&practice, body, &value, key, self.clock.now())
                    .await?;
                Ok(http::raw_json(answer.status, answer.body))
            }
            "GET /v1/messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.messages.get(&practice, &id()).await?,
            )),
            "PATCH /v1/messages/{id}" => {
                let (body, _) =
                    messaging_core::json::parse_json::<RescheduleRequest>(http::body_bytes(req)?)?;
                let view = self
                    .messages
                    .reschedule(&practice, &id(), body, self.clock.now())
                    .await?;
                Ok(http::json(StatusCode::OK, &view))
            }
            "DELETE /v1/messages/{id}" => {
                let view = self
                    .messages
                    .cancel(&practice, &id(), self.clock.now())
                    .await?;
                Ok(http::json(StatusCode::OK, &view))
            }
            "POST /v1/bulk-messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<BulkRequest>(bytes)?;
                let key = http::idempotency_key(req)?;
                let answer = self
                    .bulk
                    .accept(&practice, body, &value, key, self.clock.now())
                    .await?;
                Ok(http::raw_json(answer.status, answer.body))
            }
            "GET /v1/bulk-messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.bulk.get(&practice, &id(), self.clock.now()).await?,
            )),
            "GET /v1/bulk-messages/{id}/recipients" => {
                let (limit, cursor) = http::page_params(req)?;
                http::check_query(req, &["status"])?;
                let status = http::query_param(req, "status");
                let (items, next) = self
                    .bulk
                    .recipients(
                        &practice,
                        &id(),
                        status.as_deref(),
                        limit,
                        cursor.as_deref(),
                    )
                    .await?;
                Ok(http::page(&items, next))
            }
            "POST /v1/conversations/{id}/messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<ReplyRequest>(bytes)?;
                let key = http::idempotency_key(req)?;
                let answer = conversations::reply(
                    &self.messages,
                    &self.messages.store,
                    &practice,
                    &id(),
                    body,
                    &value,
                    key,
                    self.clock.now(),
                )
                .await?;
                Ok(http::raw_json(answer.status, answer.body))
            }
            "DELETE /v1/bulk-messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.bulk.cancel(&practice, &id(), self.clock.now()).await?,
            )),
            _ => Err(http::no_route()),
        }
    }
}
