//! The SQS consumer: one [`Dispatcher::dispatch`] per record, partial batch
//! failures reported so only the records that need it come back.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::config::{self, ConfigError};
use messaging_adapters::bandwidth::{Bandwidth, BandwidthConfig, DEFAULT_API_URL};
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dispatch::{Dispatched, Dispatcher, RetryPolicy};
use messaging_core::domain::clock::SystemClock;
use messaging_core::domain::message::SendJob;
use messaging_core::ports::SendQueue;

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Missing variables.
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
    /// Reads the table, queue and carrier settings; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        let [table, queue_url, account_id, application_id, username, password] =
            config::require([
                "TABLE_NAME",
                "SEND_QUEUE_URL",
                "CARRIER_ACCOUNT_ID",
                "CARRIER_APPLICATION_ID",
                "CARRIER_USERNAME",
                "CARRIER_PASSWORD",
            ])?;
        let aws = messaging_adapters::aws_config().await;
        let carrier = Bandwidth::new(BandwidthConfig {
            api_url: config::optional("CARRIER_API_URL", DEFAULT_API_URL),
            account_id,
            application_id,
            username,
            password,
            timeout: Duration::from_millis(config::optional_u64("CARRIER_TIMEOUT_MS", 10_000)),
        })?;
        let defaults = RetryPolicy::default();
        let queue = SqsSendQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
        Ok(Self {
            dispatcher: Dispatcher {
                store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
                queue: queue.clone(),
                carrier,
                clock: SystemClock,
                retry: RetryPolicy {
                    max_attempts: u32::try_from(config::optional_u64(
                        "CARRIER_MAX_ATTEMPTS",
                        defaults.max_attempts.into(),
                    ))
                    .unwrap_or(defaults.max_attempts),
                    base_delay_seconds: u32::try_from(config::optional_u64(
                        "CARRIER_RETRY_BASE_SECONDS",
                        defaults.base_delay_seconds.into(),
                    ))
                    .unwrap_or(defaults.base_delay_seconds),
                },
                bulk_per_second: u32::try_from(config::optional_u64(
                    "NUMBER_MESSAGES_PER_SECOND",
                    messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND.into(),
                ))
                .unwrap_or(messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND),
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
