//! The dispatcher function's configuration.

use std::time::Duration;

use messaging_core::app::dispatch::RetryPolicy;

use messaging_adapters::aws_sms::AwsSmsConfig;

use super::carrier::{aws_sms, carrier_access, CarrierConfig};
use super::{number_per_second, Env, FromEnv, HttpUrl};

/// The dispatcher function (the send-queue consumer).
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SEND_QUEUE_URL`.
    pub send_queue_url: HttpUrl,
    /// The `CARRIER_*` settings (Bandwidth).
    pub carrier: CarrierConfig,
    /// The `SMS_*` settings: AWS End User Messaging SMS, when the
    /// deployment has it.
    pub aws_sms: Option<AwsSmsConfig>,
    /// `CARRIER_MAX_ATTEMPTS` and `CARRIER_RETRY_BASE_SECONDS` (defaults:
    /// [`RetryPolicy::default`]).
    pub retry: RetryPolicy,
    /// `NUMBER_MESSAGES_PER_SECOND` (default 1): the number's pace.
    pub number_per_second: u32,
    /// `SEND_DEAD_LETTER_QUEUE_ARN`: records from this queue are jobs the
    /// send queue gave up on, set aside instead of dispatched.
    pub dead_letter_queue_arn: Option<String>,
}

impl DispatcherConfig {
    /// Default of `CARRIER_TIMEOUT_MS`.
    pub const DEFAULT_CARRIER_TIMEOUT: Duration = Duration::from_millis(10_000);
}

impl FromEnv for DispatcherConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let table_name = env.required("TABLE_NAME");
        let send_queue_url = env.url("SEND_QUEUE_URL");
        let account_id = env.required("CARRIER_ACCOUNT_ID");
        let application_id = env.required("CARRIER_APPLICATION_ID");
        let (api_url, username, password, timeout) = carrier_access(env);
        let aws_sms = aws_sms(env, Some(timeout));
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            max_attempts: env.number_or(
                "CARRIER_MAX_ATTEMPTS",
                "a whole number of attempts (up to 4294967295)",
                defaults.max_attempts,
            ),
            base_delay_seconds: env.number_or(
                "CARRIER_RETRY_BASE_SECONDS",
                "a whole number of seconds (up to 4294967295)",
                defaults.base_delay_seconds,
            ),
            confirm_wait_seconds: env.number_or(
                "SEND_CONFIRM_WAIT_SECONDS",
                "a whole number of seconds (up to 4294967295)",
                defaults.confirm_wait_seconds,
            ),
        };
        Self {
            table_name,
            send_queue_url,
            carrier: CarrierConfig {
                api_url,
                account_id,
                application_id,
                username,
                password,
                timeout,
            },
            aws_sms,
            retry,
            number_per_second: number_per_second(env),
            dead_letter_queue_arn: env.optional_as(
                "SEND_DEAD_LETTER_QUEUE_ARN",
                "an ARN (arn:...)",
                |v| v.starts_with("arn:").then(|| Some(v.to_owned())),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, with, QUEUE_URL};
    use super::super::PasswordSetting;
    use super::*;
    use messaging_adapters::bandwidth::DEFAULT_API_URL;
    use messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND;
    use messaging_core::domain::secret::Secret;

    fn dispatcher_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "messaging"),
            ("SEND_QUEUE_URL", QUEUE_URL),
            ("CARRIER_ACCOUNT_ID", "9900000"),
            ("CARRIER_APPLICATION_ID", "app-1"),
            ("CARRIER_USERNAME", "api-user"),
            ("CARRIER_PASSWORD", "carrier-s3cret-pw"),
        ]
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let d = DispatcherConfig::from_lookup(vars(&dispatcher_vars())).unwrap();
        assert_eq!(d.carrier.api_url.as_str(), DEFAULT_API_URL);
        assert_eq!(d.carrier.timeout, Duration::from_secs(10));
        assert_eq!(d.retry.max_attempts, RetryPolicy::default().max_attempts);
        assert_eq!(
            d.retry.base_delay_seconds,
            RetryPolicy::default().base_delay_seconds
        );
        assert_eq!(d.number_per_second, DEFAULT_NUMBER_PER_SECOND);
        let b = d.carrier.bandwidth(Secret::new("resolved").into());
        assert_eq!(b.api_url, DEFAULT_API_URL);
        assert_eq!(b.account_id, "9900000");
        assert_eq!(b.application_id, "app-1");
        assert_eq!(b.username, "api-user");
        assert_eq!(
            d.carrier.password,
            PasswordSetting::Value(Secret::new("carrier-s3cret-pw"))
        );
    }

    #[test]
    fn the_aws_carrier_is_there_only_with_a_configuration_set() {
        let d = DispatcherConfig::from_lookup(vars(&dispatcher_vars())).unwrap();
        assert!(d.aws_sms.is_none());
        let d = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[
                ("SMS_CONFIGURATION_SET", "patient-messaging"),
                ("SMS_API_URL", "http://127.0.0.1:4599"),
            ],
        )))
        .unwrap();
        let aws = d.aws_sms.unwrap();
        assert_eq!(aws.configuration_set, "patient-messaging");
        assert_eq!(aws.api_url.as_deref(), Some("http://127.0.0.1:4599"));
        assert_eq!(aws.opt_out_list, None);
        let e = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[("SMS_API_URL", "sms-voice")],
        )))
        .unwrap_err();
        assert_eq!(e.malformed[0].name, "SMS_API_URL");
    }

    #[test]
    fn set_values_are_read() {
        let d = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[
                ("CARRIER_API_URL", "http://localhost:9090/api/v2"),
                ("CARRIER_TIMEOUT_MS", "2500"),
                ("CARRIER_MAX_ATTEMPTS", "6"),
                ("CARRIER_RETRY_BASE_SECONDS", "5"),
                ("NUMBER_MESSAGES_PER_SECOND", "10"),
            ],
        )))
        .unwrap();
        assert_eq!(d.carrier.api_url.as_str(), "http://localhost:9090/api/v2");
        assert_eq!(d.carrier.timeout, Duration::from_millis(2500));
        assert_eq!(d.retry.max_attempts, 6);
        assert_eq!(d.retry.base_delay_seconds, 5);
        assert_eq!(d.number_per_second, 10);
    }

    #[test]
    fn out_of_range_numbers_are_malformed_not_the_default() {
        let e = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[
                ("CARRIER_MAX_ATTEMPTS", "-1"),
                ("NUMBER_MESSAGES_PER_SECOND", "4294967296"),
                ("CARRIER_TIMEOUT_MS", "10s"),
            ],
        )))
        .unwrap_err();
        let names: Vec<_> = e.malformed.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            vec![
                "CARRIER_TIMEOUT_MS",
                "CARRIER_MAX_ATTEMPTS",
                "NUMBER_MESSAGES_PER_SECOND"
            ]
        );
    }

    #[test]
    fn all_problems_are_named_at_once() {
        let e = DispatcherConfig::from_lookup(vars(&[
            ("SEND_QUEUE_URL", "sqs/send"),
            ("CARRIER_USERNAME", "user:name"),
            ("CARRIER_RETRY_BASE_SECONDS", "ten"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                "TABLE_NAME",
                "CARRIER_ACCOUNT_ID",
                "CARRIER_APPLICATION_ID",
                "CARRIER_PASSWORD"
            ]
        );
        let names: Vec<_> = e.malformed.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            vec![
                "SEND_QUEUE_URL",
                "CARRIER_USERNAME",
                "CARRIER_RETRY_BASE_SECONDS"
            ]
        );
        let text = e.to_string();
        assert!(text.starts_with(
            "missing environment variables: TABLE_NAME, CARRIER_ACCOUNT_ID, \
             CARRIER_APPLICATION_ID, CARRIER_PASSWORD; "
        ));
        assert!(text.contains("SEND_QUEUE_URL must be an http:// or https:// URL"));
        assert!(text.contains("CARRIER_RETRY_BASE_SECONDS must be a whole number of seconds"));
    }

    #[test]
    fn empty_counts_as_unset() {
        let d = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[("CARRIER_API_URL", ""), ("CARRIER_TIMEOUT_MS", "")],
        )))
        .unwrap();
        assert_eq!(d.carrier.api_url.as_str(), DEFAULT_API_URL);
        assert_eq!(d.carrier.timeout, Duration::from_secs(10));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let d = DispatcherConfig::from_lookup(vars(&dispatcher_vars())).unwrap();
        for printed in [
            format!("{d:?}"),
            format!("{d:#?}"),
            format!("{:?}", d.carrier),
            format!("{:?}", d.carrier.password),
        ] {
            assert!(!printed.contains("carrier-s3cret-pw"), "{printed}");
            assert!(printed.contains("[redacted]"), "{printed}");
        }
    }
}
