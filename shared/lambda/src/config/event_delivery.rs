//! The event-delivery function's configuration.

use messaging_adapters::scheduler::SchedulerConfig;
use messaging_core::domain::event_endpoint::UrlPolicy;
use messaging_core::domain::events::RetrySchedule;

use super::{url_policy, Env, FromEnv, HttpUrl};

/// The event-delivery function: the table's stream (new events) and the
/// event queue (delivery attempts).
#[derive(Debug, Clone)]
pub struct EventDeliveryConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `EVENT_QUEUE_URL`.
    pub event_queue_url: HttpUrl,
    /// `SCHEDULE_GROUP`, `EVENT_QUEUE_ARN`, `SCHEDULER_ROLE_ARN`,
    /// `SCHEDULE_DLQ_ARN`: one-time schedules for waits beyond the queue's.
    pub scheduler: SchedulerConfig,
    /// `ALLOW_LOCAL_EVENT_ENDPOINTS` (default false).
    pub url_policy: UrlPolicy,
    /// `EVENT_RETRY_SCHEDULE`: seconds between attempts, comma-separated
    /// (default 5,300,1800,7200,18000,36000,50400,72000,86400).
    pub retry_schedule: RetrySchedule,
}

impl FromEnv for EventDeliveryConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            event_queue_url: env.url("EVENT_QUEUE_URL"),
            scheduler: SchedulerConfig {
                queue_arn: env.arn("EVENT_QUEUE_ARN"),
                group: env.required("SCHEDULE_GROUP"),
                role_arn: env.arn("SCHEDULER_ROLE_ARN"),
                dead_letter_arn: env.arn("SCHEDULE_DLQ_ARN"),
            },
            url_policy: url_policy(env),
            retry_schedule: env.optional_as(
                "EVENT_RETRY_SCHEDULE",
                "whole seconds above 0, comma-separated (5,300,1800)",
                |v| RetrySchedule::parse(v).ok(),
                RetrySchedule::default(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, with};
    use super::*;

    fn event_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "t"),
            (
                "EVENT_QUEUE_URL",
                "http://127.0.0.1:4566/000000000000/events",
            ),
            (
                "EVENT_QUEUE_ARN",
                "arn:aws:sqs:us-east-1:000000000000:events",
            ),
            ("SCHEDULE_GROUP", "g"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::000000000000:role/s"),
            ("SCHEDULE_DLQ_ARN", "arn:aws:sqs:us-east-1:000000000000:dlq"),
        ]
    }

    #[test]
    fn event_delivery_reads_its_schedule_and_refuses_a_malformed_one() {
        let c = EventDeliveryConfig::from_lookup(vars(&event_vars())).unwrap();
        assert_eq!(c.retry_schedule, RetrySchedule::default());
        assert!(!c.url_policy.allow_local);
        let c = EventDeliveryConfig::from_lookup(vars(&with(
            event_vars(),
            &[
                ("EVENT_RETRY_SCHEDULE", "1,2"),
                ("ALLOW_LOCAL_EVENT_ENDPOINTS", "true"),
            ],
        )))
        .unwrap();
        assert_eq!(c.retry_schedule.max_attempts(), 3);
        assert!(c.url_policy.allow_local);
        let e = EventDeliveryConfig::from_lookup(vars(&with(
            event_vars(),
            &[
                ("EVENT_RETRY_SCHEDULE", "1,soon"),
                ("ALLOW_LOCAL_EVENT_ENDPOINTS", "yes"),
            ],
        )))
        .unwrap_err();
        let names: Vec<&str> = e.malformed.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            vec!["ALLOW_LOCAL_EVENT_ENDPOINTS", "EVENT_RETRY_SCHEDULE"]
        );
    }
}
