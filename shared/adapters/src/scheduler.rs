//! One-time EventBridge Scheduler schedules that put a job on a queue: a
//! scheduled send on the send queue, a late event delivery attempt on the
//! event queue.
//!
//! Each schedule is `at(...)` in UTC, targets the send queue directly with the
//! send job as its input, retries delivery to the queue, sends what it cannot
//! deliver to a dead-letter queue, and deletes itself after firing.

use async_trait::async_trait;
use aws_sdk_scheduler::error::{DisplayErrorContext, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};
use chrono::{DateTime, Utc};

use messaging_core::domain::error::StoreError;
use messaging_core::domain::message::SendJob;
use messaging_core::ports::SendScheduler;

/// Where schedules live and what they target.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The stack's schedule group.
    pub group: String,
    /// ARN of the send queue (the target).
    pub queue_arn: String,
    /// Role Scheduler assumes to send to the queue.
    pub role_arn: String,
    /// Queue for firings Scheduler could not deliver.
    pub dead_letter_arn: String,
}

/// The scheduler adapter.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    config: SchedulerConfig,
}

impl EventBridgeScheduler {
    /// Wraps a client and the stack's scheduling resources.
    pub fn new(client: aws_sdk_scheduler::Client, config: SchedulerConfig) -> Self {
        Self { client, config }
    }

    fn target(&self, input: &str) -> Result<Target, StoreError> {
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(10)
            .maximum_event_age_in_seconds(3600)
            .build();
        Target::builder()
            .arn(&self.config.queue_arn)
            .role_arn(&self.config.role_arn)
            .input(input)
            .retry_policy(retry)
            .dead_letter_config(
                DeadLetterConfig::builder()
                    .arn(&self.config.dead_letter_arn)
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::new("build schedule target", e))
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)`, UTC.
fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

impl EventBridgeScheduler {
    /// Creates, or replaces, the one-time schedule `name` that puts `input`
    /// on the target queue at `at`.
    pub async fn put_schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        input: &str,
    ) -> Result<(), StoreError> {
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| StoreError::new("build schedule", e))?;
        let created = self
            .client
            .create_schedule()
            .name(name)
            .group_name(&self.config.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .target(self.target(input)?)
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Rescheduling: the schedule exists, replace its time.
            Err(SdkError::ServiceError(e)) if e.err().is_conflict_exception() => {
                self.client
                    .update_schedule()
                    .name(name)
                    .group_name(&self.config.group)
                    .schedule_expression(at_expression(at))
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .target(self.target(input)?)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .send()
                    .await
                    .map_err(|e| StoreError::new("update schedule", DisplayErrorContext(e)))?;
                Ok(())
            }
            Err(e) => Err(StoreError::new("create schedule", DisplayErrorContext(e))),
        }
    }
}

#[async_trait]
impl SendScheduler for EventBridgeScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        job: &SendJob,
    ) -> Result<(), StoreError> {
        let input =
            serde_json::to_string(job).map_err(|e| StoreError::new("encode send job", e))?;
        self.put_schedule(name, at, &input).await
    }

    async fn unschedule(&self, name: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.config.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(()),
            Err(e) => Err(StoreError::new("delete schedule", DisplayErrorContext(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expression_is_utc_to_the_second() {
        let t: DateTime<Utc> = "2026-12-01T15:04:05.900Z".parse().unwrap();
        assert_eq!(at_expression(t), "at(2026-12-01T15:04:05)");
    }
}
