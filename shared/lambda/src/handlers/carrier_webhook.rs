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
use messaging_core::ports::{
    AppointmentStore, ConversationStore, MediaQueue, MessageStore, OptOutStore, PracticeStore,
    SendQueue, TemplateStore,
};

/// The carrier webhook function, over the store, the send queue (keyword
/// replies, after-hours replies) and the media queue (attachments to copy).
pub struct Webhook<S = DynamoStore, Q = SqsSendQueue, M = SqsMediaQueue> {
    messages: Messages<S, S, Q, SendNowOnly>,
    media: M,
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
        Ok(Self::with_ports(
            store,
            SqsSendQueue::new(sqs.clone(), config.send_queue_url.as_str()),
            SqsMediaQueue::new(sqs, config.media_queue_url.as_str()),
            config.username,
            password,
            config.application_id,
        ))
    }
}

impl<S, Q, M> Webhook<S, Q, M>
where
    S: MessageStore
        + PracticeStore
        + OptOutStore
        + TemplateStore
        + ConversationStore
        + AppointmentStore
        + Clone,
    Q: SendQueue,
    M: MediaQueue,
{
    /// The handler over these ports: callbacks authenticated as `username`
    /// with `password`, of the messaging application `application_id`.
    pub fn with_ports(
        store: S,
        queue: Q,
        media: M,
        username: Username,
        password: Password,
        application_id: String,
    ) -> Self {
        Self {
            media,
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler: SendNowOnly,
                queue_delay_max: chrono::Duration::zero(),
            },
            username,
            password,
            application_id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{answer, request};
    use messaging_core::domain::secret::Secret;
    use messaging_core::testing::{sample_practice, MemoryQueue, MemoryStore};

    const APPLICATION: &str = "app-1";

    fn webhook(
        store: &MemoryStore,
        queue: &MemoryQueue,
    ) -> Webhook<MemoryStore, MemoryQueue, MemoryQueue> {
        Webhook::with_ports(
            store.clone(),
            queue.clone(),
            queue.clone(),
            Username::parse("bandwidth").unwrap(),
            Password::from(Secret::new("s3cret".to_string())),
            APPLICATION.to_string(),
        )
    }

    /// A callback with HTTP Basic credentials: `basic` is the base64 of
    /// `user:password` (`bandwidth:s3cret` is the right one).
    fn callback(body: &serde_json::Value, password: &str) -> Request {
        let mut req = request("POST /v1/webhooks/bandwidth", &body.to_string());
        let basic = match password {
            "s3cret" => "YmFuZHdpZHRoOnMzY3JldA==",
            _ => "YmFuZHdpZHRoOndyb25n",
        };
        req.headers_mut()
            .insert("authorization", format!("Basic {basic}").parse().unwrap());
        req
    }

    fn inbound(text: &str, application: &str) -> serde_json::Value {
        serde_json::json!([{
            "type": "message-received", "time": "2026-11-26T15:00:01Z", "to": "+14155550100",
            "message": {"id": format!("in-{text}"), "from": "+14155550142", "to": ["+14155550100"],
                        "text": text, "direction": "in", "applicationId": application}
        }])
    }

    #[tokio::test]
    async fn wrong_credentials_are_refused_and_record_nothing() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        store.add_practice(sample_practice("demo"), "key").await;
        let hook = webhook(&store, &queue);
        let (status, body) = answer(
            hook.handle(callback(&inbound("STOP", APPLICATION), "wrong"))
                .await
                .unwrap(),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
        assert!(!store.is_opted_out("demo", "+14155550142").await.unwrap());
        assert!(queue.jobs.lock().await.is_empty());
    }

    #[tokio::test]
    async fn a_stop_opts_the_number_out_and_queues_one_confirmation() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        store.add_practice(sample_practice("demo"), "key").await;
        let hook = webhook(&store, &queue);
        let (status, body) = answer(
            hook.handle(callback(&inbound("STOP", APPLICATION), "s3cret"))
                .await
                .unwrap(),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["recorded"].as_u64(), body["ignored"].as_u64()),
            (Some(1), Some(0))
        );
        assert!(store.is_opted_out("demo", "+14155550142").await.unwrap());
        assert_eq!(queue.jobs.lock().await.len(), 1, "the opt-out confirmation");
        // The carrier redelivers the same callback: nothing more.
        let again = answer(
            hook.handle(callback(&inbound("STOP", APPLICATION), "s3cret"))
                .await
                .unwrap(),
        );
        assert_eq!(again.0, 200);
        assert_eq!(queue.jobs.lock().await.len(), 1, "confirmed once");
    }

    #[tokio::test]
    async fn another_applications_callbacks_and_other_routes_are_not_ours() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        store.add_practice(sample_practice("demo"), "key").await;
        let hook = webhook(&store, &queue);
        let (status, body) = answer(
            hook.handle(callback(&inbound("STOP", "other-app"), "s3cret"))
                .await
                .unwrap(),
        );
        assert_eq!(
            (status, body["recorded"].as_u64(), body["ignored"].as_u64()),
            (200, Some(0), Some(1))
        );
        assert!(!store.is_opted_out("demo", "+14155550142").await.unwrap());
        let (status, _) = answer(
            hook.handle(request("GET /v1/webhooks/bandwidth", ""))
                .await
                .unwrap(),
        );
        assert_eq!(status, 404);
        let (status, body) = answer(
            hook.handle(callback(&serde_json::json!({"not": "a list"}), "s3cret"))
                .await
                .unwrap(),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_json"))
        );
    }
}
