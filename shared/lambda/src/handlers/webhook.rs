//! `POST /v1/webhooks/bandwidth`: carrier callbacks, HTTP Basic auth.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, Username, WebhookConfig};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::{SqsMediaQueue, SqsSendQueue};
use messaging_core::app::auth::check_basic_auth;
use messaging_core::app::callbacks::{self, CarrierEvent};
use messaging_core::app::messages::{Messages, SendNowOnly};
use messaging_core::domain::error::AppError;
use messaging_core::domain::secret::Secret;

/// The carrier webhook function.
pub struct Webhook {
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue, SendNowOnly>,
    media: SqsMediaQueue,
    username: Username,
    password: Secret,
    /// The deployment's messaging application: events of another are ignored.
    application_id: String,
}

impl Webhook {
    /// Reads [`WebhookConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(WebhookConfig::from_env()?).await)
    }

    /// Builds the clients for `config`.
    pub async fn new(config: WebhookConfig) -> Self {
        let aws = messaging_adapters::aws_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        Self {
            media: SqsMediaQueue::new(sqs.clone(), config.media_queue_url.as_str()),
            messages: Messages {
                practices: store.clone(),
                store,
                queue: SqsSendQueue::new(sqs, config.send_queue_url.as_str()),
                scheduler: SendNowOnly,
                queue_delay_max: chrono::Duration::zero(),
            },
            username: config.username,
            password: config.password,
            application_id: config.application_id,
        }
    }

    /// Handles one callback request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        if route != "POST /v1/webhooks/bandwidth" {
            return Err(http::no_route());
        }
        check_basic_auth(
            super::authorization(req),
            self.username.as_str(),
            self.password.expose(),
        )?;
        let bytes = http::body_bytes(req)?;
        let events: Vec<CarrierEvent> = serde_json::from_slice(bytes).map_err(|e| {
            AppError::bad_request(
                "invalid_json",
                format!("expected an array of Bandwidth events: {e}"),
            )
        })?;
        // Answered 2xx either way, so the carrier does not retry what we
        // will never believe.
        let (believed, foreign) = callbacks::of_application(events, &self.application_id);
        let applied =
            callbacks::apply(&self.messages, &self.media, &believed, chrono::Utc::now()).await?;
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"recorded": applied.recorded, "ignored": applied.ignored + foreign}),
        ))
    }
}
