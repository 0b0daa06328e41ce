//! The carrier-events function's configuration.

use messaging_adapters::aws_sms::AwsSmsConfig;

use super::carrier::aws_sms;
use super::{Env, FromEnv, HttpUrl};

/// The function that takes AWS End User Messaging SMS's reports off the
/// queue its SNS topic fills.
#[derive(Debug, Clone)]
pub struct CarrierEventsConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SEND_QUEUE_URL` (confirmations, HELP and after-hours replies).
    pub send_queue_url: HttpUrl,
    /// `SMS_EVENT_TOPIC_ARN`: notifications of any other topic are ignored.
    pub topic_arn: String,
    /// The `SMS_*` settings (the opt-out list a START removes the number
    /// from); `None` when the deployment has no AWS carrier.
    pub aws_sms: Option<AwsSmsConfig>,
}

impl FromEnv for CarrierEventsConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            send_queue_url: env.url("SEND_QUEUE_URL"),
            topic_arn: env.arn("SMS_EVENT_TOPIC_ARN"),
            aws_sms: aws_sms(env, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, QUEUE_URL};
    use super::*;

    #[test]
    fn the_topic_must_be_an_arn_and_every_problem_is_named() {
        let c = CarrierEventsConfig::from_lookup(vars(&[
            ("TABLE_NAME", "messaging"),
            ("SEND_QUEUE_URL", QUEUE_URL),
            (
                "SMS_EVENT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:sms-events",
            ),
            ("SMS_CONFIGURATION_SET", "patient-messaging"),
            ("SMS_OPT_OUT_LIST", "patient-messaging"),
        ]))
        .unwrap();
        assert_eq!(c.topic_arn, "arn:aws:sns:us-east-1:123456789012:sms-events");
        assert_eq!(
            c.aws_sms.unwrap().opt_out_list.as_deref(),
            Some("patient-messaging")
        );
        let e = CarrierEventsConfig::from_lookup(vars(&[("SMS_EVENT_TOPIC_ARN", "sms-events")]))
            .unwrap_err();
        assert_eq!(e.missing, vec!["TABLE_NAME", "SEND_QUEUE_URL"]);
        assert_eq!(e.malformed[0].name, "SMS_EVENT_TOPIC_ARN");
    }
}
