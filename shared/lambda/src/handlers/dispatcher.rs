//! The SQS consumer: one [`Dispatcher::dispatch`] per record, partial batch
//! failures reported so only the records that need it come back.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use super::batch::each_record;
use super::StartError;
use crate::config::{DispatcherConfig, FromEnv};
use messaging_adapters::aws_sms::AwsSms;
use messaging_adapters::bandwidth::Bandwidth;
use messaging_adapters::carriers::Carriers;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dead_letters::set_aside;
use messaging_core::app::dispatch::{DispatchStore, Dispatched, Dispatcher, RetryPolicy};
use messaging_core::domain::message::SendJob;
use messaging_core::ports::{Carrier, DeadLetterStore, SendQueue, SystemClock};

/// The dispatcher function, over the store, the carrier and the send queue.
pub struct DispatcherFn<S = DynamoStore, C = Carriers, Q = SqsSendQueue> {
    dispatcher: Dispatcher<S, C, SystemClock, Q>,
    queue: Q,
    dead_letter_queue_arn: Option<String>,
}

impl DispatcherFn {
    /// Reads [`DispatcherConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(DispatcherConfig::from_env()?, crate::config::aws()?).await
    }

    /// Builds the clients for `config`.
    pub async fn new(
        config: DispatcherConfig,
        aws: messaging_adapters::aws::SdkConfig,
    ) -> Result<Self, StartError> {
        let password = config.carrier.password.resolve(&aws).await?;
        let bandwidth = Bandwidth::new(config.carrier.bandwidth(password))
            .map_err(StartError::CarrierClient)?;
        let aws_sms = config
            .aws_sms
            .map(|c| AwsSms::new(&aws, c))
            .transpose()
            .map_err(StartError::CarrierClient)?;
        let carrier = Carriers {
            bandwidth: Some(bandwidth),
            aws: aws_sms,
        };
        let queue = SqsSendQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            config.send_queue_url.as_str(),
        );
        Ok(Self::with_ports(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            carrier,
            queue,
            config.retry,
            config.number_per_second,
            config.dead_letter_queue_arn,
        ))
    }
}

impl<S, C, Q> DispatcherFn<S, C, Q>
where
    S: DispatchStore + DeadLetterStore,
    C: Carrier,
    Q: SendQueue + Clone,
{
    /// A dispatcher over these ports; records from the queue
    /// `dead_letter_queue_arn` are set aside instead of dispatched.
    pub fn with_ports(
        store: S,
        carrier: C,
        queue: Q,
        retry: RetryPolicy,
        bulk_per_second: u32,
        dead_letter_queue_arn: Option<String>,
    ) -> Self {
        Self {
            dispatcher: Dispatcher {
                store,
                queue: queue.clone(),
                carrier,
                clock: SystemClock,
                retry,
                bulk_per_second,
                inline_wait: messaging_core::app::dispatch::INLINE_WAIT,
                practices: Default::default(),
            },
            queue,
            dead_letter_queue_arn,
        }
    }

    /// Handles one batch of queue records: sends from the send queue, or
    /// jobs it gave up on from its dead-letter queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let from_dead_letters = self.dead_letter_queue_arn.is_some()
            && event
                .records
                .first()
                .is_some_and(|r| r.event_source_arn == self.dead_letter_queue_arn);
        if from_dead_letters {
            return each_record(&event.records, |r| self.set_aside(r)).await;
        }
        each_record(&event.records, |r| self.dispatch(r)).await
    }

    /// Dispatches one record's job; `true` when the record should come back.
    async fn dispatch(&self, record: &SqsMessage) -> bool {
        let id = record.message_id.as_deref().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let job: SendJob = match serde_json::from_str(body) {
            Ok(job) => job,
            Err(e) => {
                // Not something we enqueued; retrying cannot fix it.
                tracing::error!(message_id = %id, error = %e, "unreadable send job dropped");
                return false;
            }
        };
        match self.dispatcher.dispatch(&job).await {
            Ok(Dispatched::Done) => false,
            Ok(Dispatched::RetryAfter(seconds)) => {
                if let Some(handle) = record.receipt_handle.as_deref() {
                    if let Err(e) = self.queue.retry_later(handle, seconds).await {
                        tracing::warn!(error = %e, "could not set retry delay; default visibility applies");
                    }
                }
                true
            }
            Err(e) => {
                tracing::error!(%job, error = %e, "dispatch failed; will be redelivered");
                true
            }
        }
    }

    /// A job from the dead-letter queue: its recipient is shown failed with
    /// an explanation and the job parked for the repair command
    /// ([`set_aside`]). `true` when the record should come back.
    async fn set_aside(&self, record: &SqsMessage) -> bool {
        let id = record.message_id.as_deref().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let Ok(job) = serde_json::from_str::<SendJob>(body) else {
            tracing::error!(message_id = %id, "unreadable dead-lettered job dropped");
            return false;
        };
        let d = &self.dispatcher;
        if let Err(e) = set_aside(&d.store, &d.clock, &job).await {
            tracing::error!(%job, error = %e, "could not set the job aside; will be redelivered");
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::ports::CarrierOutcome;
    use messaging_core::testing::{queued_recipient, MemoryQueue, MemoryStore, ScriptedCarrier};

    const DEAD_LETTERS: &str = "arn:aws:sqs:us-east-1:123456789012:send-dlq";

    fn record(id: &str, body: &str, source: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.receipt_handle = Some(format!("handle-{id}"));
        r.body = Some(body.into());
        r.event_source_arn = Some(source.into());
        r
    }

    fn dispatcher(
        store: &MemoryStore,
        carrier: &ScriptedCarrier,
    ) -> DispatcherFn<MemoryStore, ScriptedCarrier, MemoryQueue> {
        DispatcherFn::with_ports(
            store.clone(),
            carrier.clone(),
            MemoryQueue::default(),
            RetryPolicy::default(),
            1,
            Some(DEAD_LETTERS.into()),
        )
    }

    /// Two queued recipients of one message, as their jobs' JSON.
    async fn two_jobs(store: &MemoryStore) -> [String; 2] {
        let first = store.insert_recipient(queued_recipient()).await;
        let mut second = queued_recipient();
        second.recipient_id = "00002".into();
        let second = store.insert_recipient(second).await;
        [first, second].map(|job| serde_json::to_string(&job).unwrap())
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn only_sends_to_try_again_come_back() {
        let store = MemoryStore::default();
        let [first, second] = two_jobs(&store).await;
        let carrier = ScriptedCarrier::with(vec![
            CarrierOutcome::Accepted {
                carrier_message_id: "bw-1".into(),
            },
            CarrierOutcome::Retryable {
                reason: "503".into(),
            },
        ]);
        let f = dispatcher(&store, &carrier);
        let source = "arn:aws:sqs:us-east-1:123456789012:send";
        let mut event = SqsEvent::default();
        event.records = vec![
            record("a", &first, source),
            record("junk", "{not json", source),
            record("b", &second, source),
        ];
        let response = f.handle(event).await;
        assert_eq!(failed_ids(&response), ["b"]);
        assert_eq!(carrier.calls().await, 2, "the unreadable one is dropped");
    }

    #[tokio::test]
    async fn dead_lettered_jobs_are_set_aside_not_sent() {
        let store = MemoryStore::default();
        let [first, _] = two_jobs(&store).await;
        let carrier = ScriptedCarrier::accepting();
        let f = dispatcher(&store, &carrier);
        let mut event = SqsEvent::default();
        event.records = vec![
            record("a", &first, DEAD_LETTERS),
            record("junk", "{not json", DEAD_LETTERS),
        ];
        let response = f.handle(event).await;
        assert!(failed_ids(&response).is_empty());
        assert_eq!(carrier.calls().await, 0);
    }
}
