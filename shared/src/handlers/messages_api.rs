//! `POST /v1/messages`, `GET /v1/messages/{id}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sqs::SqsSendQueue;
use crate::app::auth::Authenticator;
use crate::app::messages::{Messages, SendMessageRequest};
use crate::config::{self, ConfigError};
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::error::AppError;
use crate::http;

/// The messages function.
pub struct MessagesApi {
    auth: Authenticator<DynamoStore>,
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue>,
    clock: SystemClock,
}

impl MessagesApi {
    /// Reads `TABLE_NAME` and `SEND_QUEUE_URL`; builds clients once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let [table, queue_url] = config::require(["TABLE_NAME", "SEND_QUEUE_URL"])?;
        let aws = crate::adapters::aws_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
        let queue = SqsSendQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
        Ok(Self {
            auth: Authenticator::new(store.clone()),
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
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
            "GET /v1/messages/{id}" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                let view = self.messages.get(&practice, &id).await?;
                Ok(http::json(StatusCode::OK, &view))
            }
            _ => Err(http::no_route()),
        }
    }
}
