//! `POST /v1/webhooks/bandwidth`: carrier callbacks, HTTP Basic auth.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::StartError;
use crate::config::{CarrierWebhookConfig, FromEnv, Username};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::secrets::Password;
use messaging_adapters::sqs::{SqsMediaQueue, SqsSendQueue};
use messaging_core::app::auth::check_basic_auth;
use messaging_core::app::callbacks::{self, CarrierEvent};
use messaging_core::app::messages::{Messages, SendNowOnly};
use messaging_core::domain::error::AppError;

/// The carrier webhook function.
pub struct Webhook {
    messages: Messages<DynamoStore, DynamoStore, SqsSendQueue, SendNowOnly>,
    media: SqsMediaQueue,
    username: Username,
    password: Password,
    /// The deployment's messaging application: events of another are ignored.
    application_id: String,
}

impl Webhook {
    /// Reads [`CarrierWebhookConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(CarrierWebhookConfig::from_env()?, crate::config::aws()?).await
    }

    /// Builds the clients for `config`.
    pub async fn new(
        config: CarrierWebhookConfig,
        aws: messaging_adapters::aws::SdkConfig,
    ) -> Result<Self, StartError> {
        let password = config.password.resolve(&aws).await?;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        Ok(Self {
            media: SqsMediaQueue::new(sqs.clone(), config.media_queue_url.as_str()),
            messages: Messages {
                practices: store.clone(),
                store,
                queue: SqsSendQueue::new(sqs, config.send_queue_url.as_str()),
                scheduler: SendNowOnly,
                queue_delay_max: chrono::Duration::zero(),
            },
            username: config.username,
            password,
            application_id: config.application_id,
        })
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
        let authorization = super::authorization(req);
        let check = |password: &messaging_core::domain::secret::Secret| {
            check_basic_auth(authorization, self.username.as_str(), password.expose())
        };
        if let Err(refused) = check(&self.password.current().await) {
            // Perhaps the secret was rotated since this instance read it
            // (re-read at most every 30 s, whatever callers send).
            if !self.password.refresh().await {
                return Err(refused);
            }
            check(&self.password.current().await)?;
        }
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
