//! The carrier's account, as the dispatcher and the media copier read it,
//! and where a password comes from.

use std::time::Duration;

use messaging_adapters::bandwidth::{BandwidthConfig, DEFAULT_API_URL};
use messaging_adapters::secrets::Password;
use messaging_adapters::ssm::ParameterStore;
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
    /// `CARRIER_PASSWORD_PARAMETER` (or `CARRIER_PASSWORD`).
    pub password: PasswordSetting,
    /// `CARRIER_TIMEOUT_MS` (default 10 000 ms).
    pub timeout: Duration,
}

impl CarrierConfig {
    /// What the Bandwidth adapter needs, with the password
    /// ([`PasswordSetting::password`]).
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
    /// `*_PASSWORD_PARAMETER`: the name of an SSM Parameter Store
    /// `SecureString` parameter, read when the password is first needed
    /// and again when the other side refuses it (how the template deploys
    /// every function: the value never appears in the environment).
    Parameter(String),
    /// `*_PASSWORD`: given directly (unit tests, a developer's own run).
    Value(Secret),
}

impl PasswordSetting {
    /// The password: a given value, or the parameter's, read from `aws`'s
    /// Parameter Store on first use (nothing is read now).
    pub fn password(&self, aws: &messaging_adapters::aws::SdkConfig) -> Password {
        match self {
            Self::Value(secret) => secret.clone().into(),
            Self::Parameter(name) => Password::from_parameter(ParameterStore::new(aws), name),
        }
    }
}

/// An SSM parameter name as the template's IAM policies name it: a full
/// path (`/patient-messaging/carrier-password`), letters, digits and
/// `_ . - /` only (SSM's own rule), at most 1,011 characters.
fn parameter_name(value: &str) -> Option<String> {
    let valid = value.starts_with('/')
        && value.len() > 1
        && value.len() <= 1011
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    valid.then(|| value.to_owned())
}

/// `{parameter_var}` when set (a parameter name), else `{value_var}`
/// (required then).
pub(super) fn password<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
    value_var: &'static str,
    parameter_var: &'static str,
) -> PasswordSetting {
    if env.value(parameter_var).is_some() {
        PasswordSetting::Parameter(env.required_as(
            parameter_var,
            "an SSM parameter name (/path/name)",
            parameter_name,
            String::new(),
        ))
    } else {
        PasswordSetting::Value(env.secret(value_var))
    }
}

/// `CARRIER_USERNAME`, `CARRIER_PASSWORD_PARAMETER` (or
/// `CARRIER_PASSWORD`), `CARRIER_API_URL` and `CARRIER_TIMEOUT_MS`: what any
/// call to the carrier's API needs.
pub(super) fn carrier_access<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
) -> (HttpUrl, Username, PasswordSetting, Duration) {
    let username = env.username("CARRIER_USERNAME");
    let password = password(env, "CARRIER_PASSWORD", "CARRIER_PASSWORD_PARAMETER");
    let api_url = env.url_or("CARRIER_API_URL", HttpUrl(DEFAULT_API_URL.to_owned()));
    let timeout = env.optional_as(
        "CARRIER_TIMEOUT_MS",
        "a whole number of milliseconds",
        |v| v.parse().ok().map(Duration::from_millis),
        DispatcherConfig::DEFAULT_CARRIER_TIMEOUT,
    );
    (api_url, username, password, timeout)
}
