//! The event-delivery function, with two sources:
//! - the table's stream, filtered to newly inserted events: each is fanned
//!   out to the endpoints subscribed to it ([`events::fan_out`]);
//! - the event queue: one delivery attempt per record, all of a batch at
//!   once, so an endpoint that hangs for its 15 seconds delays no other.
//!
//! Either way, a record whose work failed for an infrastructure reason is
//! reported as a partial batch failure and comes back; the others do not.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde_json::Value;

use super::batch::batch_failures;
use super::StartError;
use crate::config::{EventDeliveryConfig, FromEnv};
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::event_http::HttpEventPoster;
use messaging_adapters::scheduler::EventBridgeScheduler;
use messaging_adapters::sqs::SqsEventQueue;
use messaging_core::app::events::{self, Deliverer};
use messaging_core::domain::event_endpoint::UrlPolicy;
use messaging_core::domain::events::{DeliveryJob, EventType, RetrySchedule};
use messaging_core::ports::{EventPoster, EventQueue, EventStore};

/// The function's dependencies, built once per instance.
pub struct EventDeliveryFn<S = DynamoStore, Q = SqsEventQueue, W = HttpEventPoster> {
    store: S,
    queue: Q,
    client: W,
    policy: UrlPolicy,
    schedule: Arc<RetrySchedule>,
}

impl EventDeliveryFn {
    /// Reads [`EventDeliveryConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(EventDeliveryConfig::from_env()?, crate::config::aws()?).await
    }

    /// Builds the clients for `config`.
    pub async fn new(
        config: EventDeliveryConfig,
        aws: messaging_adapters::aws::SdkConfig,
    ) -> Result<Self, StartError> {
        let scheduler =
            EventBridgeScheduler::new(aws_sdk_scheduler::Client::new(&aws), config.scheduler);
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            queue: SqsEventQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                config.event_queue_url.as_str(),
                Some(scheduler),
            ),
            client: HttpEventPoster::new(config.url_policy).map_err(StartError::HttpClient)?,
            policy: config.url_policy,
            schedule: Arc::new(config.retry_schedule),
        })
    }
}

impl<S, Q, W> EventDeliveryFn<S, Q, W>
where
    S: EventStore + Clone + 'static,
    Q: EventQueue + Clone + 'static,
    W: EventPoster + Clone + 'static,
{
    /// Wires ports (tests use in-memory ones).
    pub fn with_ports(
        store: S,
        queue: Q,
        client: W,
        policy: UrlPolicy,
        schedule: RetrySchedule,
    ) -> Self {
        Self {
            store,
            queue,
            client,
            policy,
            schedule: Arc::new(schedule),
        }
    }

    /// Handles one invocation: a stream batch or a queue batch. Answers
    /// `{"batchItemFailures": [{"itemIdentifier": …}]}`.
    pub async fn handle(&self, event: Value) -> SqsBatchResponse {
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut failed: Vec<String> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for record in records {
            match record.get("eventSource").and_then(Value::as_str) {
                Some("aws:dynamodb") => {
                    // In order: the stream's records of one batch are few,
                    // and fanning out is two reads, a write and a send.
                    if let Err(id) = self.fan_out(&record).await {
                        failed.push(id);
                    }
                }
                Some("aws:sqs") => {
                    let me = self.clone_ports();
                    tasks.spawn(async move { me.deliver(&record).await });
                }
                other => tracing::warn!(source = ?other, "record from an unknown source; ignored"),
            }
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(id)) => failed.push(id),
                Err(e) => tracing::error!(error = %e, "delivery task died"),
            }
        }
        batch_failures(failed)
    }

    fn clone_ports(&self) -> Self {
        Self {
            store: self.store.clone(),
            queue: self.queue.clone(),
            client: self.client.clone(),
            policy: self.policy,
            schedule: Arc::clone(&self.schedule),
        }
    }

    /// A stream record: the new event's first delivery round. `Err` holds
    /// the record's sequence number when it must come back.
    async fn fan_out(&self, record: &Value) -> Result<(), String> {
        let sequence = record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let image = |name: &str| {
            record
                .pointer(&format!("/dynamodb/NewImage/{name}/S"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(practice_id), Some(event_id), Some(event_type)) = (
            image("practice_id"),
            image("id"),
            image("event_type").and_then(|t| EventType::parse(&t).ok()),
        ) else {
            tracing::warn!(sequence, "stream record without an event; ignored");
            return Ok(());
        };
        events::fan_out(
            &self.store,
            &self.queue,
            &practice_id,
            &event_id,
            event_type,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| {
            tracing::error!(event_id, error = %e, "fan-out failed; the stream will retry");
            sequence
        })
    }

    /// A queue record: one delivery attempt. `Err` holds the message id
    /// when it must come back.
    async fn deliver(&self, record: &Value) -> Result<(), String> {
        let message_id = record
            .get("messageId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(job) = record
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str::<DeliveryJob>(b).ok())
        else {
            tracing::error!(message_id, "unreadable delivery job; dropped");
            return Ok(());
        };
        let deliverer = Deliverer {
            store: &self.store,
            queue: &self.queue,
            client: &self.client,
            policy: self.policy,
            schedule: &self.schedule,
        };
        match deliverer.deliver(&job, chrono::Utc::now()).await {
            Ok(outcome) => {
                tracing::debug!(event_id = %job.event_id, ?outcome, "delivery job done");
                Ok(())
            }
            Err(e) => {
                tracing::error!(event_id = %job.event_id, error = %e, "delivery job failed; will retry");
                Err(message_id)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use messaging_core::domain::event_endpoint::{EndpointStatus, EventEndpoint, SigningSecret};
    use messaging_core::domain::events::AttemptResult;
    use messaging_core::domain::message::Transition;
    use messaging_core::ports::MessageStore;
    use messaging_core::testing::{
        queued_recipient, MemoryEventQueue, MemoryStore, ScriptedEventPoster,
    };

    fn endpoint(practice_id: &str, id: &str) -> EventEndpoint {
        EventEndpoint {
            id: id.into(),
            practice_id: practice_id.into(),
            url: format!("https://pm.example.com/{id}"),
            event_types: None,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secrets: vec![SigningSecret::generate()],
            created_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_stream_record_fans_out_and_queue_records_are_delivered_together() {
        let store = MemoryStore::default();
        let queue = MemoryEventQueue::default();
        let hooks = ScriptedEventPoster::default();
        let r = queued_recipient();
        store.insert_recipient(r.clone()).await;
        for id in ["a", "b"] {
            store
                .create_endpoint(&endpoint(&r.practice_id, id), None)
                .await
                .unwrap();
        }
        let claimed = store
            .transition(
                &r,
                &Transition::Claim {
                    at: chrono::Utc::now(),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap()
            .unwrap();
        store
            .transition(
                &claimed,
                &Transition::Failed {
                    carrier_message_id: None,
                    error: messaging_core::domain::message::RecipientError::from_carrier_code(4720),
                    at: chrono::Utc::now(),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let event = store.events().await.remove(0).event;
        let f = EventDeliveryFn::with_ports(
            store.clone(),
            queue.clone(),
            hooks.clone(),
            UrlPolicy::default(),
            RetrySchedule::default(),
        );
        let stream = serde_json::json!({"Records": [{
            "eventSource": "aws:dynamodb",
            "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": "1", "NewImage": {
                "practice_id": {"S": r.practice_id}, "id": {"S": event.id}, "entity": {"S": "event"},
                "event_type": {"S": "message.failed"}
            }}
        }]});
        assert!(f.handle(stream).await.batch_item_failures.is_empty());
        let jobs = queue.take();
        assert_eq!(jobs.len(), 2);
        hooks.answer([AttemptResult::Status(500)]);
        let records: Vec<Value> = jobs
            .iter()
            .enumerate()
            .map(|(i, (job, _))| {
                serde_json::json!({
                    "eventSource": "aws:sqs", "messageId": format!("m{i}"),
                    "body": serde_json::to_string(job).unwrap()
                })
            })
            .chain(std::iter::once(serde_json::json!({
                "eventSource": "aws:sqs", "messageId": "junk", "body": "not a job"
            })))
            .collect();
        let answer = f.handle(serde_json::json!({"Records": records})).await;
        assert!(
            answer.batch_item_failures.is_empty(),
            "failed attempts are retried by the schedule, not the queue"
        );
        assert_eq!(hooks.received().len(), 2);
        assert_eq!(queue.take().len(), 1, "the failed one's next attempt");
        let retry = store.events().await.remove(0);
        assert_eq!(retry.view()["delivery"], "pending");
    }
}
