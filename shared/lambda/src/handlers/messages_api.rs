//! `POST /v1/messages`, `GET/PATCH/DELETE /v1/messages/{id}`, and the bulk
//! messages: `POST /v1/bulk-messages`, `GET/DELETE /v1/bulk-messages/{id}`,
//! `GET /v1/bulk-messages/{id}/recipients`; and a reply in a conversation,
//! `POST /v1/conversations/{id}/messages` (a send like the others); and the
//! appointments and reminder rules (see [`super::appointments`]).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, FromEnv, MessagesApiConfig};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::scheduler::EventBridgeScheduler;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::appointments::Appointments;
use messaging_core::app::auth::Authenticator;
use messaging_core::app::bulk::{BulkMessages, BulkRequest};
use messaging_core::app::conversations::{self, ReplyRequest};
use messaging_core::app::messages::{Messages, RescheduleRequest, SendMessageRequest};
use messaging_core::domain::error::AppError;
use messaging_core::ports::{
    AppointmentStore, BulkStore, Clock, ConversationStore, MessageStore, OptOutStore,
    PracticeStore, RateStore, SendQueue, SendScheduler, StaffStore, SystemClock, TemplateStore,
};

/// The messages function, over its ports: the store (practices, keys,
/// messages, bulks, conversations), the send queue and the scheduler.
pub struct MessagesApi<S, Q, C> {
    auth: Authenticator<S>,
    /// The console's session cookie, an alternative to the API key.
    session_cookie: crate::session_cookie::SessionCookie,
    messages: Messages<S, S, Q, C>,
    bulk: BulkMessages<S, Q, C>,
    appointments: Appointments<S, Q>,
    clock: SystemClock,
}

/// The messages function as deployed: DynamoDB, SQS, EventBridge Scheduler.
pub type AwsMessagesApi = MessagesApi<DynamoStore, SqsSendQueue, EventBridgeScheduler>;

impl AwsMessagesApi {
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
        Self::with_ports(
            store,
            queue,
            scheduler,
            config.session_cookie,
            config.queue_delay_max,
            config.number_per_second,
        )
    }
}

impl<S, Q, C> MessagesApi<S, Q, C>
where
    S: PracticeStore
        + StaffStore
        + OptOutStore
        + TemplateStore
        + MessageStore
        + BulkStore
        + RateStore
        + ConversationStore
        + AppointmentStore
        + Clone,
    Q: SendQueue + Clone,
    C: SendScheduler + Clone,
{
    /// Serves the messages routes over these ports; sends due within
    /// `queue_delay_max` go on the queue with a delay, bulks are paced at
    /// `per_second` messages a second.
    pub fn with_ports(
        store: S,
        queue: Q,
        scheduler: C,
        session_cookie: crate::session_cookie::SessionCookie,
        queue_delay_max: chrono::Duration,
        per_second: u32,
    ) -> Self {
        Self {
            auth: Authenticator::new(store.clone()),
            session_cookie,
            bulk: BulkMessages {
                store: store.clone(),
                queue: queue.clone(),
                scheduler: scheduler.clone(),
                queue_delay_max,
                per_second,
            },
            appointments: Appointments {
                store: store.clone(),
                queue: queue.clone(),
            },
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler,
                queue_delay_max,
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
        // Time enters here: one instant for the whole request.
        let now = self.clock.now();
        let caller = super::caller(&self.auth, self.session_cookie, req, now).await?;
        if let Some(result) =
            super::appointments::route(&self.appointments, &self.messages, &caller, route, req, now)
                .await
        {
            return result;
        }
        let practice = caller.practice;
        let id = || http::path_param(req, "id").unwrap_or_default();
        match route {
            "POST /v1/messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<SendMessageRequest>(bytes)?;
                let key = http::idempotency_key(req)?;
                let answer = self
                    .messages
                    .send_direct(&practice, body, &value, key, now)
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
                    .reschedule(&practice, &id(), body, now)
                    .await?;
                Ok(http::json(StatusCode::OK, &view))
            }
            "DELETE /v1/messages/{id}" => {
                let view = self.messages.cancel(&practice, &id(), now).await?;
                Ok(http::json(StatusCode::OK, &view))
            }
            "POST /v1/bulk-messages" => {
                let bytes = http::body_bytes(req)?;
                let (body, value) = messaging_core::json::parse_json::<BulkRequest>(bytes)?;
                let key = http::idempotency_key(req)?;
                let answer = self.bulk.accept(&practice, body, &value, key, now).await?;
                Ok(http::raw_json(answer.status, answer.body))
            }
            "GET /v1/bulk-messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.bulk.get(&practice, &id(), now).await?,
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
                    now,
                )
                .await?;
                Ok(http::raw_json(answer.status, answer.body))
            }
            "DELETE /v1/bulk-messages/{id}" => Ok(http::json(
                StatusCode::OK,
                &self.bulk.cancel(&practice, &id(), now).await?,
            )),
            _ => Err(http::no_route()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{answer, request, with_id, with_key, KEY};
    use crate::session_cookie::SessionCookie;
    use messaging_core::testing::{sample_practice, MemoryQueue, MemoryScheduler, MemoryStore};

    async fn api(
        store: &MemoryStore,
        queue: &MemoryQueue,
    ) -> MessagesApi<MemoryStore, MemoryQueue, MemoryScheduler> {
        scheduling(store, queue, &MemoryScheduler::default()).await
    }

    /// The messages function whose later sends go on `scheduler`.
    async fn scheduling(
        store: &MemoryStore,
        queue: &MemoryQueue,
        scheduler: &MemoryScheduler,
    ) -> MessagesApi<MemoryStore, MemoryQueue, MemoryScheduler> {
        store.add_practice(sample_practice("p1"), KEY).await;
        MessagesApi::with_ports(
            store.clone(),
            queue.clone(),
            scheduler.clone(),
            SessionCookie { secure: true },
            chrono::Duration::seconds(900),
            1,
        )
    }

    async fn call(
        api: &MessagesApi<MemoryStore, MemoryQueue, MemoryScheduler>,
        req: Request,
    ) -> (u16, serde_json::Value) {
        let Ok(response) = api.handle(req).await;
        answer(response)
    }

    #[tokio::test]
    async fn a_request_without_a_key_is_refused_with_401() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let api = api(&store, &queue).await;
        let body = r#"{"to": "+14155550142", "text": "Hi"}"#;
        let (status, body) = call(&api, request("POST /v1/messages", body)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
        assert!(queue.jobs.lock().await.is_empty());
        assert_eq!(store.message_count().await, 0);
    }

    #[tokio::test]
    async fn a_direct_message_is_accepted_queued_and_read_back() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let api = api(&store, &queue).await;
        let body = r#"{"to": "+14155550142", "text": "Your cleaning is tomorrow at 9"}"#;
        let (status, sent) = call(&api, with_key(request("POST /v1/messages", body))).await;
        assert_eq!(status, 202, "{sent}");
        let id = sent["id"].as_str().unwrap().to_string();

        let jobs = queue.jobs.lock().await.clone();
        assert_eq!(jobs.len(), 1, "one recipient, queued now");
        assert_eq!(
            (jobs[0].practice_id.as_str(), jobs[0].message_id.as_str()),
            ("p1", id.as_str())
        );

        let (status, got) = call(
            &api,
            with_key(with_id(request("GET /v1/messages/{id}", ""), &id)),
        )
        .await;
        assert_eq!((status, got["id"].as_str()), (200, Some(id.as_str())));

        let (status, body) = call(
            &api,
            with_key(with_id(request("GET /v1/messages/{id}", ""), "nope")),
        )
        .await;
        assert_eq!(status, 404, "{body}");
    }

    #[tokio::test]
    async fn a_malformed_body_is_400_and_sends_nothing() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let api = api(&store, &queue).await;
        let (status, body) = call(&api, with_key(request("POST /v1/messages", "{not json"))).await;
        assert_eq!(status, 400, "{body}");
        assert!(queue.jobs.lock().await.is_empty());
    }

    #[tokio::test]
    async fn a_route_it_does_not_serve_is_404() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let api = api(&store, &queue).await;
        let (status, body) = call(&api, with_key(request("GET /v1/settings", ""))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }

    #[tokio::test]
    async fn a_send_repeated_with_its_idempotency_key_is_answered_once() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let api = api(&store, &queue).await;
        let send = || {
            let mut req = with_key(request(
                "POST /v1/messages",
                r#"{"to": "+14155550142", "text": "See you at 3"}"#,
            ));
            req.headers_mut()
                .insert("idempotency-key", "visit-42".parse().unwrap());
            req
        };
        let (status, first) = call(&api, send()).await;
        assert_eq!(status, 202, "{first}");
        let (status, again) = call(&api, send()).await;
        assert_eq!((status, &again["id"]), (202, &first["id"]));
        assert_eq!(queue.jobs.lock().await.len(), 1, "queued once");
        assert_eq!(store.message_count().await, 1);
    }

    #[tokio::test]
    async fn a_later_send_is_scheduled_not_queued() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let scheduler = MemoryScheduler::default();
        let api = scheduling(&store, &queue, &scheduler).await;
        let at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        let body = serde_json::json!({"to": "+14155550142", "text": "Tomorrow", "send_at": at});
        let (status, sent) = call(
            &api,
            with_key(request("POST /v1/messages", &body.to_string())),
        )
        .await;
        assert_eq!(status, 202, "{sent}");
        assert!(queue.jobs.lock().await.is_empty());
        assert!(queue.delayed.lock().await.is_empty());
        let schedules = scheduler.schedules.lock().await;
        assert_eq!(schedules.len(), 1);
        let (_, job) = schedules.values().next().unwrap();
        assert_eq!(Some(job.message_id.as_str()), sent["id"].as_str());
    }
}
