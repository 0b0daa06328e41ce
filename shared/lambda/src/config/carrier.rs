//! The carrier's account, as the dispatcher and the media copier read it,
//! and where a password comes from.

use std::time::Duration;

use messaging_adapters::aws_sms::AwsSmsConfig;
use messaging_adapters::bandwidth::{BandwidthConfig, DEFAULT_API_URL};
use messaging_adapters::secrets::Password;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::secret::Secret;

use super::{DispatcherConfig, Env, HttpUrl, Username};

/// The Bandwidth account the dispatcher sends through.
#[derive(Debug, Clone)]
pub struct CarrierConfig {
    /// `CARRIER_API_URL` (default: Bandwidth's production API).
    pub api_url: HttpUrl,
    /// `CARRIER_ACCOUNT_ID`.
    pub account_id: String,
    /// `CARRIER_APPLICATION_ID`.
    pub application_id: String,
    /// `CARRIER_USERNAME`.
    pub username: Username,
    /// `CARRIER_PASSWORD_SECRET_ARN` (or `CARRIER_PASSWORD`).
    pub password: PasswordSetting,
    /// `CARRIER_TIMEOUT_MS` (default 10 000 ms).
    pub timeout: Duration,
}

impl CarrierConfig {
    /// What the Bandwidth adapter needs, with the password resolved
    /// ([`PasswordSetting::resolve`]).
    pub fn bandwidth(&self, password: Password) -> BandwidthConfig {
        BandwidthConfig {
            api_url: self.api_url.as_str().to_owned(),
            account_id: self.account_id.clone(),
            application_id: self.application_id.clone(),
            username: self.username.as_str().to_owned(),
            password,
            timeout: self.timeout,
        }
    }
}

/// Where a password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSetting {
    /// `*_PASSWORD_SECRET_ARN`: read from AWS Secrets Manager at cold start
    /// and again when the other side refuses it (how the template deploys
    /// every function: the value never appears in the environment).
    SecretArn(String),
    /// `*_PASSWORD`: given directly (unit tests, a developer's own run).
    Value(Secret),
}

impl PasswordSetting {
    /// The password, read from Secrets Manager now if that is its source.
    pub async fn resolve(
        &self,
        aws: &messaging_adapters::aws::SdkConfig,
    ) -> Result<Password, StoreError> {
        match self {
            Self::Value(secret) => Ok(secret.clone().into()),
            Self::SecretArn(arn) => {
                Password::from_secrets_manager(aws_sdk_secretsmanager::Client::new(aws), arn).await
            }
        }
    }
}

/// `{arn_var}` when set (an ARN), else `{value_var}` (required then).
pub(super) fn password<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
    value_var: &'static str,
    arn_var: &'static str,
) -> PasswordSetting {
    if env.value(arn_var).is_some() {
        PasswordSetting::SecretArn(env.arn(arn_var))
    } else {
        PasswordSetting::Value(env.secret(value_var))
    }
}

/// `CARRIER_USERNAME`, `CARRIER_PASSWORD_SECRET_ARN` (or
/// `CARRIER_PASSWORD`), `CARRIER_API_URL` and `CARRIER_TIMEOUT_MS`: what any
/// call to the carrier's API needs.
pub(super) fn carrier_access<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
) -> (HttpUrl, Username, PasswordSetting, Duration) {
    let username = env.username("CARRIER_USERNAME");
    let password = password(env, "CARRIER_PASSWORD", "CARRIER_PASSWORD_SECRET_ARN");
    let api_url = env.url_or("CARRIER_API_URL", HttpUrl(DEFAULT_API_URL.to_owned()));
    let timeout = env.optional_as(
        "CARRIER_TIMEOUT_MS",
        "a whole number of milliseconds",
        |v| v.parse().ok().map(Duration::from_millis),
        DispatcherConfig::DEFAULT_CARRIER_TIMEOUT,
    );
    (api_url, username, password, timeout)
}

/// AWS End User Messaging SMS in the deployment's account, when set up:
/// `SMS_CONFIGURATION_SET` (the configuration set texts are sent with;
/// unset or empty: the deployment has no AWS carrier), `SMS_OPT_OUT_LIST`
/// (the numbers' opt-out list, optional), `SMS_API_URL` (optional: only the
/// local cloud points it elsewhere) and `CARRIER_TIMEOUT_MS`.
pub(super) fn aws_sms<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
    timeout: Option<Duration>,
) -> Option<AwsSmsConfig> {
    let api_url = env.optional_as(
        "SMS_API_URL",
        HttpUrl::EXPECTED,
        |v| HttpUrl::parse(v).map(Some),
        None,
    );
    // Read here unless the caller read it already (for Bandwidth).
    let timeout = timeout.unwrap_or_else(|| {
        env.optional_as(
            "CARRIER_TIMEOUT_MS",
            "a whole number of milliseconds",
            |v| v.parse().ok().map(Duration::from_millis),
            DispatcherConfig::DEFAULT_CARRIER_TIMEOUT,
        )
    });
    let opt_out_list = env.optional_as("SMS_OPT_OUT_LIST", "", |v| Some(Some(v.to_owned())), None);
    let configuration_set = env.optional_as(
        "SMS_CONFIGURATION_SET",
        "",
        |v| Some(Some(v.to_owned())),
        None,
    )?;
    Some(AwsSmsConfig {
        api_url: api_url.map(|u| u.as_str().to_owned()),
        configuration_set,
        opt_out_list,
        timeout,
    })
}
