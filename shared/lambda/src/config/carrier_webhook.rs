//! The carrier webhook function's configuration.

use super::carrier::{password, PasswordSetting};
use super::{Env, FromEnv, HttpUrl, Username};

/// The carrier webhook function.
#[derive(Debug, Clone)]
pub struct CarrierWebhookConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SEND_QUEUE_URL` (HELP replies).
    pub send_queue_url: HttpUrl,
    /// `MEDIA_QUEUE_URL`: attachments of inbound texts to copy.
    pub media_queue_url: HttpUrl,
    /// `WEBHOOK_USERNAME`: the Basic user Bandwidth sends.
    pub username: Username,
    /// `WEBHOOK_PASSWORD_SECRET_ARN` (or `WEBHOOK_PASSWORD`): the Basic
    /// password Bandwidth sends.
    pub password: PasswordSetting,
    /// `CARRIER_APPLICATION_ID`: events of any other application are ignored.
    pub application_id: String,
}

impl FromEnv for CarrierWebhookConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            send_queue_url: env.url("SEND_QUEUE_URL"),
            media_queue_url: env.url("MEDIA_QUEUE_URL"),
            username: env.username("WEBHOOK_USERNAME"),
            password: password(env, "WEBHOOK_PASSWORD", "WEBHOOK_PASSWORD_SECRET_ARN"),
            application_id: env.required("CARRIER_APPLICATION_ID"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, with, QUEUE_URL};
    use super::*;
    use messaging_core::domain::secret::Secret;

    fn webhook_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "messaging"),
            ("SEND_QUEUE_URL", QUEUE_URL),
            ("MEDIA_QUEUE_URL", QUEUE_URL),
            ("WEBHOOK_USERNAME", "bandwidth"),
            ("WEBHOOK_PASSWORD", "webhook-s3cret-pw"),
            ("CARRIER_APPLICATION_ID", "app-1"),
        ]
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let w = CarrierWebhookConfig::from_lookup(vars(&webhook_vars())).unwrap();
        assert_eq!(w.username.as_str(), "bandwidth");
        assert_eq!(
            w.password,
            PasswordSetting::Value(Secret::new("webhook-s3cret-pw"))
        );
    }

    #[test]
    fn all_problems_are_named_at_once() {
        let e = CarrierWebhookConfig::from_lookup(vars(&[("SCHEDULE_DLQ_ARN", "x")])).unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                "TABLE_NAME",
                "SEND_QUEUE_URL",
                "MEDIA_QUEUE_URL",
                "WEBHOOK_USERNAME",
                "WEBHOOK_PASSWORD",
                "CARRIER_APPLICATION_ID"
            ]
        );
    }

    #[test]
    fn empty_counts_as_unset() {
        // Required: missing.
        let e = CarrierWebhookConfig::from_lookup(vars(&with(
            webhook_vars(),
            &[("WEBHOOK_PASSWORD", ""), ("TABLE_NAME", "")],
        )))
        .unwrap_err();
        assert_eq!(e.missing, vec!["TABLE_NAME", "WEBHOOK_PASSWORD"]);
        assert!(e.malformed.is_empty());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let w = CarrierWebhookConfig::from_lookup(vars(&webhook_vars())).unwrap();
        for printed in [format!("{w:?}"), format!("{w:#?}")] {
            assert!(!printed.contains("webhook-s3cret-pw"), "{printed}");
            assert!(printed.contains("[redacted]"), "{printed}");
        }
    }
}
