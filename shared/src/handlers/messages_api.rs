//! `POST /v1/messages`, `GET/PATCH/DELETE /v1/messages/{id}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::scheduler::{EventBridgeScheduler, SchedulerConfig};
use crate::adapters::sqs::SqsSendQueue;
use crate::app::auth::Authenticator;
use crate::app::messages::{Messages, RescheduleRequest, SendMessageRequest};
use crate::config::{self, ConfigError};
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::error::AppError;
use crate::http;

/// The messages function.
pub struct MessagesApi {
    auth: Authenticator<DynamoStore>,
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue, EventBridgeScheduler>,
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
        let aws = crate::adapters::aws_config().await;
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
        Ok(Self {
            auth: Authenticator::new(store.clone()),
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler,
                queue_delay_max: chrono::Duration::seconds(
                    i64::try_from(config::optional_u64("QUEUE_DELAY_MAX_SECONDS", 900))
                        .unwrap_or(900),
                ),
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
                let (body, value) = http::parse_json::<SendMessageRequest>(bytes)?;
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
                let (body, _) = http::parse_json::<RescheduleRequest>(http::body_bytes(req)?)?;
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
            _ => Err(http::no_route()),
        }
    }
}
