//! Configuration from environment variables, read once at cold start.
//!
//! Each function has one typed configuration ([`MessagesApiConfig`],
//! [`PracticeApiConfig`], [`ConsoleConfig`], [`CarrierWebhookConfig`],
//! [`DispatcherConfig`], [`MediaCopierConfig`], [`EventDeliveryConfig`]),
//! each in its own file, read the same way ([`FromEnv`]) by
//! an [`Env`], which collects every problem (missing required variables and
//! malformed values, each naming the variable and what was expected) into one
//! [`ConfigError`]: a function that is misconfigured refuses to start and
//! says everything that is wrong at once, instead of running on defaults.
//!
//! An empty variable counts as unset. Secrets are read into a [`Secret`],
//! so a configuration can be logged with `{:?}` without showing them.

use std::fmt;

use messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND;
use messaging_core::domain::event_endpoint::UrlPolicy;
use messaging_core::domain::secret::Secret;

use crate::session_cookie::SessionCookie;

mod carrier;
mod carrier_events;
mod carrier_webhook;
mod console;
mod dispatcher;
mod event_delivery;
mod media_copier;
mod messages_api;
mod practice_api;

pub use carrier::{CarrierConfig, PasswordSetting};
pub use carrier_events::CarrierEventsConfig;
pub use carrier_webhook::CarrierWebhookConfig;
pub use console::ConsoleConfig;
pub use dispatcher::DispatcherConfig;
pub use event_delivery::EventDeliveryConfig;
pub use media_copier::MediaCopierConfig;
pub use messages_api::MessagesApiConfig;
pub use practice_api::PracticeApiConfig;

/// Everything wrong with a function's environment, all of it at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Every required variable that is unset or empty, in reading order.
    pub missing: Vec<&'static str>,
    /// Every variable whose value could not be read, in reading order.
    pub malformed: Vec<Malformed>,
}

/// A variable whose value is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The variable.
    pub name: &'static str,
    /// What it should hold, e.g. "a whole number of seconds".
    pub expected: &'static str,
    /// What it holds. Never a secret: secrets are not parsed.
    pub value: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing environment variables: {}",
                self.missing.join(", ")
            ));
        }
        parts.extend(self.malformed.iter().map(|m| m.to_string()));
        f.write_str(&parts.join("; "))
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {}, got {:?}",
            self.name, self.expected, self.value
        )
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a lookup (the process environment, or a map in
/// tests) and records every problem instead of stopping at the first.
///
/// A read that finds a problem returns a placeholder (empty text, or the
/// default) so reading can go on; [`Env::finish`] then refuses the whole
/// configuration, so a placeholder never reaches a function.
pub struct Env<F> {
    lookup: F,
    missing: Vec<&'static str>,
    malformed: Vec<Malformed>,
}

/// The process environment as a lookup.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A reader over `lookup` (a variable's value, or `None` when unset).
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            missing: Vec::new(),
            malformed: Vec::new(),
        }
    }

    /// The value, `None` when unset or empty.
    fn value(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    /// The parsed value; `None` when unset, or when malformed (recorded).
    fn read<T>(
        &mut self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.value(name)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.malformed.push(Malformed {
                name,
                expected,
                value: raw,
            });
        }
        parsed
    }

    /// A required value read with `parse`; records it missing or malformed.
    pub fn required_as<T>(
        &mut self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
        placeholder: T,
    ) -> T {
        if self.value(name).is_none() {
            self.missing.push(name);
            return placeholder;
        }
        self.read(name, expected, parse).unwrap_or(placeholder)
    }

    /// An optional value read with `parse`, or `default` when unset;
    /// a malformed value is recorded, never replaced by the default.
    pub fn optional_as<T>(
        &mut self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
        default: T,
    ) -> T {
        self.read(name, expected, parse).unwrap_or(default)
    }

    /// A required text.
    pub fn required(&mut self, name: &'static str) -> String {
        self.required_as(name, "", |v| Some(v.to_owned()), String::new())
    }

    /// A required secret. Its value is never parsed nor reported.
    pub fn secret(&mut self, name: &'static str) -> Secret {
        self.required_as(name, "", |v| Some(Secret::new(v)), Secret::new(""))
    }

    /// A required ARN (`arn:...`).
    pub fn arn(&mut self, name: &'static str) -> String {
        self.required_as(
            name,
            "an ARN (arn:...)",
            |v| v.starts_with("arn:").then(|| v.to_owned()),
            String::new(),
        )
    }

    /// A required HTTP Basic user name.
    pub fn username(&mut self, name: &'static str) -> Username {
        self.required_as(
            name,
            Username::EXPECTED,
            Username::parse,
            Username(String::new()),
        )
    }

    /// A required `http(s)://` URL.
    pub fn url(&mut self, name: &'static str) -> HttpUrl {
        self.required_as(
            name,
            HttpUrl::EXPECTED,
            HttpUrl::parse,
            HttpUrl(String::new()),
        )
    }

    /// An optional `http(s)://` URL, or `default` when unset.
    pub fn url_or(&mut self, name: &'static str, default: HttpUrl) -> HttpUrl {
        self.optional_as(name, HttpUrl::EXPECTED, HttpUrl::parse, default)
    }

    /// An optional number, or `default` when unset.
    pub fn number_or<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        expected: &'static str,
        default: T,
    ) -> T {
        self.optional_as(name, expected, |v| v.parse().ok(), default)
    }

    /// `config` if nothing was missing or malformed, else every problem.
    pub fn finish<T>(self, config: T) -> Result<T, ConfigError> {
        if self.missing.is_empty() && self.malformed.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                missing: self.missing,
                malformed: self.malformed,
            })
        }
    }
}

/// Reads every name in `names` from the process environment; fails naming
/// all that are missing or empty. For tools with a few plain variables.
pub fn require<const N: usize>(names: [&'static str; N]) -> Result<[String; N], ConfigError> {
    let mut env = Env::new(process_env);
    let values = names.map(|n| env.required(n));
    env.finish(values)
}

/// The AWS SDK configuration of a function, from the variables Lambda sets
/// (`AWS_REGION`, the execution role's credentials) and, on the local cloud,
/// `AWS_ENDPOINT_URL`. See [`messaging_adapters::aws`].
///
/// # Errors
///
/// Every variable that is missing.
pub fn aws() -> Result<messaging_adapters::aws::SdkConfig, ConfigError> {
    from_process(|env| {
        let region = env.required("AWS_REGION");
        let key = env.required("AWS_ACCESS_KEY_ID");
        let secret = env.required("AWS_SECRET_ACCESS_KEY");
        (region, key, secret)
    })
    .map(|(region, key, secret)| {
        let optional = |name: &str| process_env(name).filter(|v| !v.is_empty());
        let credentials = aws_credential_types::Credentials::new(
            key,
            secret,
            optional("AWS_SESSION_TOKEN"),
            None,
            "Lambda",
        );
        messaging_adapters::aws::config(region, credentials, optional("AWS_ENDPOINT_URL"))
    })
}

/// Reads a configuration from the process environment, logging a refusal
/// (the function then fails its cold start with the same error).
fn from_process<T>(
    read: impl FnOnce(&mut Env<fn(&str) -> Option<String>>) -> T,
) -> Result<T, ConfigError> {
    let mut env: Env<fn(&str) -> Option<String>> = Env::new(process_env);
    let config = read(&mut env);
    env.finish(config).inspect_err(|e| {
        tracing::error!(error = %e, "configuration refused");
    })
}

/// A function's configuration: read variable by variable through an
/// [`Env`], from the process environment or from any lookup (tests).
pub trait FromEnv: Sized {
    /// Reads every variable the configuration needs; a problem is recorded
    /// in `env` (and a placeholder used) so reading goes on.
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self;

    /// From the process environment; a refusal is logged.
    fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }
}

/// An `http://` or `https://` URL with a host, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    const EXPECTED: &'static str = "an http:// or https:// URL";

    /// The URL if `value` is one.
    pub fn parse(value: &str) -> Option<Self> {
        let url = reqwest::Url::parse(value).ok()?;
        (matches!(url.scheme(), "http" | "https") && url.has_host()).then(|| Self(value.to_owned()))
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An HTTP Basic user name: no `:` (RFC 7617) and no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    const EXPECTED: &'static str = "a user name without ':' or control characters";

    /// The user name if `value` can be one.
    pub fn parse(value: &str) -> Option<Self> {
        (!value.contains(':') && !value.chars().any(char::is_control))
            .then(|| Self(value.to_owned()))
    }

    /// The user name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const MESSAGES_PER_SECOND: &str = "a whole number of messages per second (up to 4294967295)";

/// `NUMBER_MESSAGES_PER_SECOND`: the carrier throughput of one sending number.
fn number_per_second<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> u32 {
    env.number_or(
        "NUMBER_MESSAGES_PER_SECOND",
        MESSAGES_PER_SECOND,
        DEFAULT_NUMBER_PER_SECOND,
    )
}

/// `SESSION_COOKIE_SECURE`: `false` only on the local cloud (plain HTTP).
fn session_cookie<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> SessionCookie {
    SessionCookie {
        secure: env.optional_as(
            "SESSION_COOKIE_SECURE",
            "true or false",
            |v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            true,
        ),
    }
}

/// `ALLOW_LOCAL_EVENT_ENDPOINTS`: `true` only on the local cloud.
fn url_policy<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> UrlPolicy {
    UrlPolicy {
        allow_local: env.optional_as(
            "ALLOW_LOCAL_EVENT_ENDPOINTS",
            "true or false",
            |v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            false,
        ),
    }
}

/// Lookups over fixed pairs, so no test touches the process environment.
#[cfg(test)]
mod test_support {
    use std::collections::HashMap;

    pub(super) const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/send";

    /// A lookup over `pairs`.
    pub(super) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// `base` with `extra` set over it.
    pub(super) fn with(
        mut base: Vec<(&'static str, &'static str)>,
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        for (name, value) in extra {
            base.retain(|(n, _)| n != name);
            base.push((name, value));
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_variable_is_named() {
        let e = require([
            "SHARED_TEST_SURELY_UNSET_A",
            "PATH",
            "SHARED_TEST_SURELY_UNSET_B",
        ])
        .unwrap_err();
        assert_eq!(
            e.missing,
            vec!["SHARED_TEST_SURELY_UNSET_A", "SHARED_TEST_SURELY_UNSET_B"]
        );
        assert!(e
            .to_string()
            .contains("SHARED_TEST_SURELY_UNSET_A, SHARED_TEST_SURELY_UNSET_B"));
    }

    #[test]
    fn urls_and_user_names_are_checked() {
        assert!(HttpUrl::parse("https://messaging.bandwidth.com/api/v2").is_some());
        assert!(HttpUrl::parse("http://localhost:4566/000000000000/send").is_some());
        assert!(HttpUrl::parse("ftp://example.com").is_none());
        assert!(HttpUrl::parse("localhost:4566").is_none());
        assert!(HttpUrl::parse("messaging.bandwidth.com").is_none());
        // Kept as written (the adapters build on the text).
        assert_eq!(
            HttpUrl::parse("http://LOCALHOST:9090").unwrap().as_str(),
            "http://LOCALHOST:9090"
        );
        assert!(Username::parse("api-user@example.com").is_some());
        assert!(Username::parse("a:b").is_none());
        assert!(Username::parse("a\nb").is_none());
    }
}
