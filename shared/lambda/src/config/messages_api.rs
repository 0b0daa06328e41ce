//! The messages function's configuration.

use messaging_adapters::scheduler::SchedulerConfig;

use super::{number_per_second, session_cookie, Env, FromEnv, HttpUrl};
use crate::session_cookie::SessionCookie;

const WHOLE_SECONDS: &str = "a whole number of seconds";

/// The messages function (direct and bulk messages).
#[derive(Debug, Clone)]
pub struct MessagesApiConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SEND_QUEUE_URL`.
    pub send_queue_url: HttpUrl,
    /// `SCHEDULE_GROUP`, `SEND_QUEUE_ARN`, `SCHEDULER_ROLE_ARN`, `SCHEDULE_DLQ_ARN`.
    pub scheduler: SchedulerConfig,
    /// `QUEUE_DELAY_MAX_SECONDS` (default 900): sends due within it go on
    /// the queue with a delay instead of a schedule.
    pub queue_delay_max: chrono::Duration,
    /// `NUMBER_MESSAGES_PER_SECOND` (default 1): bulk pacing.
    pub number_per_second: u32,
    /// `SESSION_COOKIE_SECURE` (default true): the console's cookie.
    pub session_cookie: SessionCookie,
}

impl MessagesApiConfig {
    /// Default of `QUEUE_DELAY_MAX_SECONDS` (SQS's longest delivery delay).
    pub const DEFAULT_QUEUE_DELAY_MAX_SECONDS: i64 =
        messaging_core::domain::limits::SQS_MAX_DELAY_SECONDS as i64;
}

impl FromEnv for MessagesApiConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let table_name = env.required("TABLE_NAME");
        let send_queue_url = env.url("SEND_QUEUE_URL");
        let queue_arn = env.arn("SEND_QUEUE_ARN");
        let group = env.required("SCHEDULE_GROUP");
        let role_arn = env.arn("SCHEDULER_ROLE_ARN");
        let dead_letter_arn = env.arn("SCHEDULE_DLQ_ARN");
        let queue_delay_max = env.optional_as(
            "QUEUE_DELAY_MAX_SECONDS",
            WHOLE_SECONDS,
            |v| {
                v.parse::<u64>()
                    .ok()
                    .and_then(|n| i64::try_from(n).ok())
                    .and_then(chrono::Duration::try_seconds)
            },
            chrono::Duration::seconds(Self::DEFAULT_QUEUE_DELAY_MAX_SECONDS),
        );
        Self {
            table_name,
            send_queue_url,
            scheduler: SchedulerConfig {
                group,
                queue_arn,
                role_arn,
                dead_letter_arn,
            },
            queue_delay_max,
            number_per_second: number_per_second(env),
            session_cookie: session_cookie(env),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, with, QUEUE_URL};
    use super::super::Malformed;
    use super::*;
    use messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND;

    fn messages_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "messaging"),
            ("SEND_QUEUE_URL", QUEUE_URL),
            ("SEND_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:send"),
            ("SCHEDULE_GROUP", "stack-sends"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/sched"),
            ("SCHEDULE_DLQ_ARN", "arn:aws:sqs:us-east-1:123456789012:dlq"),
        ]
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let m = MessagesApiConfig::from_lookup(vars(&messages_vars())).unwrap();
        assert_eq!(m.table_name, "messaging");
        assert_eq!(m.send_queue_url.as_str(), QUEUE_URL);
        assert_eq!(m.scheduler.group, "stack-sends");
        assert_eq!(
            m.scheduler.queue_arn,
            "arn:aws:sqs:us-east-1:123456789012:send"
        );
        assert_eq!(m.queue_delay_max, chrono::Duration::seconds(900));
        assert_eq!(m.number_per_second, DEFAULT_NUMBER_PER_SECOND);
    }

    #[test]
    fn set_values_are_read() {
        let m = MessagesApiConfig::from_lookup(vars(&with(
            messages_vars(),
            &[
                ("QUEUE_DELAY_MAX_SECONDS", "0"),
                ("NUMBER_MESSAGES_PER_SECOND", "3"),
            ],
        )))
        .unwrap();
        assert_eq!(m.queue_delay_max, chrono::Duration::zero());
        assert_eq!(m.number_per_second, 3);
    }

    #[test]
    fn a_malformed_number_is_refused_naming_the_variable() {
        let e = MessagesApiConfig::from_lookup(vars(&with(
            messages_vars(),
            &[("QUEUE_DELAY_MAX_SECONDS", "15m")],
        )))
        .unwrap_err();
        assert!(e.missing.is_empty());
        assert_eq!(
            e.malformed,
            vec![Malformed {
                name: "QUEUE_DELAY_MAX_SECONDS",
                expected: WHOLE_SECONDS,
                value: "15m".into(),
            }]
        );
        assert_eq!(
            e.to_string(),
            "QUEUE_DELAY_MAX_SECONDS must be a whole number of seconds, got \"15m\""
        );
    }

    #[test]
    fn all_problems_are_named_at_once() {
        let e = MessagesApiConfig::from_lookup(vars(&[])).unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                "TABLE_NAME",
                "SEND_QUEUE_URL",
                "SEND_QUEUE_ARN",
                "SCHEDULE_GROUP",
                "SCHEDULER_ROLE_ARN",
                "SCHEDULE_DLQ_ARN"
            ]
        );
        let e = MessagesApiConfig::from_lookup(vars(&with(
            messages_vars(),
            &[("SCHEDULER_ROLE_ARN", "sched-role")],
        )))
        .unwrap_err();
        assert_eq!(e.malformed[0].name, "SCHEDULER_ROLE_ARN");
        assert_eq!(e.malformed[0].expected, "an ARN (arn:...)");
    }

    #[test]
    fn empty_counts_as_unset() {
        // Optional: the default.
        let m = MessagesApiConfig::from_lookup(vars(&with(
            messages_vars(),
            &[
                ("QUEUE_DELAY_MAX_SECONDS", ""),
                ("NUMBER_MESSAGES_PER_SECOND", ""),
            ],
        )))
        .unwrap();
        assert_eq!(m.queue_delay_max, chrono::Duration::seconds(900));
        assert_eq!(m.number_per_second, DEFAULT_NUMBER_PER_SECOND);
    }
}
