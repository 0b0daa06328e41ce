//! The send queue, the media queue and the event queue on SQS.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use messaging_core::domain::conversation::MediaCopyJob;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events::DeliveryJob;
use messaging_core::domain::limits::{SQS_BATCH_ENTRIES, SQS_MAX_DELAY_SECONDS};
use messaging_core::domain::message::SendJob;
use messaging_core::ports::{EventQueue, MediaQueue, RetryLater, SendQueue};

use crate::retry::Backoff;

/// [`SQS_MAX_DELAY_SECONDS`] as the SDK's type.
const MAX_DELAY_I32: i32 = SQS_MAX_DELAY_SECONDS as i32;

/// Three tries per batch for the entries SQS refuses, pausing 200 ms, then 400 ms.
const ENQUEUE_RETRY: Backoff = Backoff {
    attempts: 3,
    first: Duration::from_millis(200),
    max: Duration::from_millis(400),
    jitter: Duration::ZERO,
};

/// Why one try of a `SendMessageBatch` did not enqueue everything.
enum EnqueueFailure<E> {
    /// The request failed.
    Request(E),
    /// SQS refused this many entries; the first refusal's message.
    Refused(usize, String),
    /// Not worth another try.
    Final(StoreError),
}

/// The send queue.
#[derive(Debug, Clone)]
pub struct SqsSendQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSendQueue {
    /// Wraps a client and the queue's URL.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl SendQueue for SqsSendQueue {
    async fn enqueue(&self, jobs: &[SendJob]) -> Result<(), StoreError> {
        let jobs: Vec<(SendJob, u32)> = jobs.iter().map(|j| (j.clone(), 0)).collect();
        self.enqueue_wave(&jobs).await
    }

    async fn enqueue_wave(&self, jobs: &[(SendJob, u32)]) -> Result<(), StoreError> {
        let bodies = jobs
            .iter()
            .map(|(job, delay)| {
                let body = serde_json::to_string(job)
                    .map_err(|e| StoreError::new("encode send job", e))?;
                Ok((body, *delay))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        send_batches(&self.client, &self.queue_url, bodies, "enqueue sends").await
    }

    async fn enqueue_delayed(&self, job: &SendJob, delay_seconds: u32) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(|e| StoreError::new("encode send job", e))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(
                i32::try_from(delay_seconds.min(SQS_MAX_DELAY_SECONDS)).unwrap_or(MAX_DELAY_I32),
            )
            .send()
            .await
            .map_err(|e| {
                StoreError::new(
                    "enqueue delayed send",
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(())
    }

    async fn retry_later(
        &self,
        receipt_handle: &str,
        delay_seconds: u32,
    ) -> Result<(), StoreError> {
        change_visibility(&self.client, &self.queue_url, receipt_handle, delay_seconds).await
    }
}

/// The event queue: delivery attempts, delayed on the queue up to 15
/// minutes, and through a one-time schedule beyond.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    scheduler: Option<crate::scheduler::EventBridgeScheduler>,
}

impl SqsEventQueue {
    /// Wraps a client, the queue's URL and, where attempts may wait longer
    /// than the queue's delays, the scheduler targeting this queue.
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        scheduler: Option<crate::scheduler::EventBridgeScheduler>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            scheduler,
        }
    }
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, jobs: &[(DeliveryJob, u32)]) -> Result<(), StoreError> {
        let bodies = jobs
            .iter()
            .map(|(job, delay)| {
                serde_json::to_string(job)
                    .map(|body| (body, *delay))
                    .map_err(|e| StoreError::new("encode delivery job", e))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        send_batches(&self.client, &self.queue_url, bodies, "enqueue deliveries").await
    }

    async fn enqueue_at(
        &self,
        job: &DeliveryJob,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let scheduler = self.scheduler.as_ref().ok_or_else(|| {
            StoreError::new(
                "schedule delivery",
                "no scheduler configured for the event queue",
            )
        })?;
        let input =
            serde_json::to_string(job).map_err(|e| StoreError::new("encode delivery job", e))?;
        scheduler
            .put_schedule(&job.schedule_name(), at, &input)
            .await
    }
}

/// Sends `(body, delay in seconds)` messages to `queue_url`, in batches of
/// [`SQS_BATCH_ENTRIES`]; entries SQS refuses are sent again
/// ([`ENQUEUE_RETRY`]). `operation` names the work in errors.
async fn send_batches(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: Vec<(String, u32)>,
    operation: &'static str,
) -> Result<(), StoreError> {
    for chunk in bodies.chunks(SQS_BATCH_ENTRIES) {
        let pending: Vec<(String, String, u32)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (body, delay))| {
                (
                    i.to_string(),
                    body.clone(),
                    (*delay).min(SQS_MAX_DELAY_SECONDS),
                )
            })
            .collect();
        ENQUEUE_RETRY
            .run_carrying(
                pending,
                |_, mut pending: Vec<(String, String, u32)>| async move {
                    let entries = match pending
                        .iter()
                        .map(|(id, body, delay)| {
                            SendMessageBatchRequestEntry::builder()
                                .id(id)
                                .message_body(body)
                                .delay_seconds(i32::try_from(*delay).unwrap_or(MAX_DELAY_I32))
                                .build()
                                .map_err(|e| StoreError::new("build queue entry", e))
                        })
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(entries) => entries,
                        Err(e) => return Err((pending, EnqueueFailure::Final(e))),
                    };
                    let out = match client
                        .send_message_batch()
                        .queue_url(queue_url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                    {
                        Ok(out) => out,
                        Err(e) => return Err((pending, EnqueueFailure::Request(e))),
                    };
                    let failed: Vec<String> =
                        out.failed().iter().map(|f| f.id().to_string()).collect();
                    pending.retain(|(id, _, _)| failed.contains(id));
                    if pending.is_empty() {
                        return Ok(());
                    }
                    let first = out
                        .failed()
                        .first()
                        .and_then(|f| f.message())
                        .unwrap_or_default()
                        .to_string();
                    let refused = EnqueueFailure::Refused(pending.len(), first);
                    Err((pending, refused))
                },
                |failure, attempt| match failure {
                    EnqueueFailure::Request(e) => {
                        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), attempt, operation, "enqueue failed; retrying");
                        true
                    }
                    EnqueueFailure::Refused(..) => true,
                    EnqueueFailure::Final(_) => false,
                },
            )
            .await
            .map_err(|failure| match failure {
                EnqueueFailure::Request(e) => {
                    StoreError::new(operation, aws_sdk_sqs::error::DisplayErrorContext(e))
                }
                EnqueueFailure::Refused(left, first) => {
                    StoreError::new(operation, format!("{left} entries refused: {first}"))
                }
                EnqueueFailure::Final(e) => e,
            })?;
    }
    Ok(())
}

/// Makes a received message visible again in `delay_seconds`.
async fn change_visibility(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    delay_seconds: u32,
) -> Result<(), StoreError> {
    client
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(i32::try_from(delay_seconds).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| StoreError::new("delay retry", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// The media queue: one [`MediaCopyJob`] per attachment to copy, as JSON.
#[derive(Debug, Clone)]
pub struct SqsMediaQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsMediaQueue {
    /// Wraps a client and the queue's URL.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Makes a received copy job visible again in `delay_seconds` (the
    /// copier's retry pause).
    ///
    /// # Errors
    ///
    /// SQS refused; the queue's visibility timeout then applies.
    pub async fn retry_later(
        &self,
        receipt_handle: &str,
        delay_seconds: u32,
    ) -> Result<(), StoreError> {
        change_visibility(&self.client, &self.queue_url, receipt_handle, delay_seconds).await
    }
}

#[async_trait]
impl MediaQueue for SqsMediaQueue {
    async fn enqueue_media(&self, jobs: &[MediaCopyJob]) -> Result<(), StoreError> {
        let bodies = jobs
            .iter()
            .map(|job| {
                let body = serde_json::to_string(job)
                    .map_err(|e| StoreError::new("encode media job", e))?;
                Ok((body, 0))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        send_batches(&self.client, &self.queue_url, bodies, "enqueue media").await
    }
}

#[async_trait]
impl RetryLater for SqsMediaQueue {
    async fn retry_later(&self, receipt_handle: &str, seconds: u32) -> Result<(), StoreError> {
        SqsMediaQueue::retry_later(self, receipt_handle, seconds).await
    }
}
