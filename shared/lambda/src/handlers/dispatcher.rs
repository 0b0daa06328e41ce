//! The SQS consumer: one [`Dispatcher::dispatch`] per record, partial batch
//! failures reported so only the records that need it come back.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use super::batch::each_record;
use super::StartError;
use crate::config::{DispatcherConfig, FromEnv};
use messaging_adapters::bandwidth::Bandwidth;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dead_letters::set_aside;
use messaging_core::app::dispatch::{Dispatched, Dispatcher};
use messaging_core::domain::clock::SystemClock;
use messaging_core::domain::message::SendJob;
use messaging_core::ports::SendQueue;

/// The dispatcher function.
pub struct DispatcherFn {
    dispatcher: Dispatcher<DynamoStore, Bandwidth, SystemClock, SqsSendQueue>,
    queue: SqsSendQueue,
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
        let carrier = Bandwidth::new(config.carrier.bandwidth(password))
            .map_err(StartError::CarrierClient)?;
        let queue = SqsSendQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            config.send_queue_url.as_str(),
        );
        Ok(Self {
            dispatcher: Dispatcher {
                store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
                queue: queue.clone(),
                carrier,
                clock: SystemClock,
                retry: config.retry,
                bulk_per_second: config.number_per_second,
                inline_wait: messaging_core::app::dispatch::INLINE_WAIT,
                practices: Default::default(),
            },
            queue,
            dead_letter_queue_arn: config.dead_letter_queue_arn,
        })
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
