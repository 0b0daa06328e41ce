//! `POST /v1/messages`, `GET/PATCH/DELETE /v1/messages/{id}`, and the bulk
//! messages: `POST /v1/bulk-messages`, `GET/DELETE /v1/bulk-messages/{id}`,
//! `GET /v1/bulk-messages/{id}/recipients`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::config::{self, ConfigError};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::scheduler::{EventBridgeScheduler, SchedulerConfig};
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::auth::Authenticator;
use messaging_core::app::bulk::{BulkMessages, BulkRequest};
use messaging_core::app::messages::{Messages, RescheduleRequest, SendMessageRequest};
use messaging_core::domain::clock::{Clock, SystemClock};
use messaging_core::domain::error::AppError;

/// The messages function.
pub struct MessagesApi {
    auth: Authenticator<DynamoStore>,
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue, EventBridgeScheduler>,
    bulk: BulkMessages<DynamoStore, SqsSendQueue, EventBridgeScheduler>,
    clock: SystemClock,
}

impl MessagesApi {
    /// Reads the table, queue and scheduling settings; builds clients once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let [table, queue_url, queue_arn, group, role_arn, dead_letter_arn] = config::require([
            "TABLE_NAME",
            "SEND_QUEUE_URL",
            "SEND_QUEUE_ARN",
            "SCHEDULE_GROUP",
            "SCHEDULER_ROLE_ARN",
            "SCHEDULE_DLQ_ARN",
        ])?;
        let aws = messaging_adapters::aws_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
        let queue = SqsSendQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
        let scheduler = EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(&aws),
            SchedulerConfig {
                group,
                queue_arn,
                role_arn,
                dead_letter_arn,
            },
        );
        let queue_delay_max = chrono::Duration::seconds(
            i64::try_from(config::optional_u64("QUEUE_DELAY_MAX_SECONDS", 900)).unwrap_or(900),
        );
        Ok(Self {
            auth: Authenticator::new(store.clone()),
            bulk: BulkMessages {
                store: store.clone(),
                queue: queue.clone(),
                scheduler: scheduler.clone(),
                queue_delay_max,
                per_second: u32::try_from(config::optional_u64(
                    "NUMBER_MESSAGES_PER_SECOND",
                    messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND.into(),
                ))
                .unwrap_or(messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND),
            },
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler,
                queue_delay_max,
            },
            clock: SystemClock,
        })
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        let practice = self.auth.practice(super::authorization(req)).await?;
        let id = || http::path_param(req, "id").unwrap_or_default();
        match route {
            "POST /v1/messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<SendMessageRequest>(bytes)?;
                let key = http::header(req.headers(), "idempotency-key");
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
                let key = http::header(req.headers(), "idempotency-key");
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
            "DELETE /v1/bulk-messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.bulk.cancel(&practice, &id(), self.clock.now()).await?,
            )),
            _ => Err(http::no_route()),
        }
    }
}
