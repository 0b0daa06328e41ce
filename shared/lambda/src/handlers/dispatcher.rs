//! The SQS consumer: one [`Dispatcher::dispatch`] per record, partial batch
//! failures reported so only the records that need it come back.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::config::{ConfigError, DispatcherConfig};
use messaging_adapters::bandwidth::Bandwidth;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dispatch::{Dispatched, Dispatcher};
use messaging_core::domain::clock::SystemClock;
use messaging_core::domain::message::SendJob;
use messaging_core::ports::SendQueue;

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Missing or malformed variables.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("carrier client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The dispatcher function.
pub struct DispatcherFn {
    dispatcher: Dispatcher<DynamoStore, Bandwidth, SystemClock, SqsSendQueue>,
    queue: SqsSendQueue,
}

impl DispatcherFn {
    /// Reads [`DispatcherConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        Self::new(DispatcherConfig::from_env()?).await
    }

    /// Builds the clients for `config`.
    pub async fn new(config: DispatcherConfig) -> Result<Self, StartError> {
        let aws = messaging_adapters::aws_config().await;
        let carrier = Bandwidth::new(config.carrier.bandwidth())?;
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
            },
            queue,
        })
    }

    /// Handles one batch of queue records.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            let job: SendJob = match serde_json::from_str(body) {
                Ok(job) => job,
                Err(e) => {
                    // Not something we enqueued; retrying cannot fix it.
                    tracing::error!(message_id = %id, error = %e, "unreadable send job dropped");
                    continue;
                }
            };
            let retry = match self.dispatcher.dispatch(&job).await {
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
            };
            if retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }
}
