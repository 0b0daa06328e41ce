//! Configuration from environment variables, read once at cold start.
//!
//! Each function has one typed configuration ([`MessagesApiConfig`],
//! [`PracticeApiConfig`], [`WebhookConfig`], [`DispatcherConfig`],
//! [`MediaCopierConfig`]) read by
//! an [`Env`], which collects every problem (missing required variables and
//! malformed values, each naming the variable and what was expected) into one
//! [`ConfigError`]: a function that is misconfigured refuses to start and
//! says everything that is wrong at once, instead of running on defaults.
//!
//! An empty variable counts as unset. Secrets are read into a [`Secret`],
//! so a configuration can be logged with `{:?}` without showing them.

use std::fmt;
use std::time::Duration;

use messaging_adapters::bandwidth::{BandwidthConfig, DEFAULT_API_URL};
use messaging_adapters::scheduler::SchedulerConfig;
use messaging_adapters::secrets::Password;
use messaging_core::app::dispatch::RetryPolicy;
use messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events::RetrySchedule;
use messaging_core::domain::secret::Secret;
use messaging_core::domain::webhook::UrlPolicy;

use crate::session_cookie::SessionCookie;

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

const WHOLE_SECONDS: &str = "a whole number of seconds";
const MESSAGES_PER_SECOND: &str = "a whole number of messages per second (up to 4294967295)";

/// `NUMBER_MESSAGES_PER_SECOND`: the carrier throughput of one sending number.
fn number_per_second<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> u32 {
    env.number_or(
        "NUMBER_MESSAGES_PER_SECOND",
        MESSAGES_PER_SECOND,
        DEFAULT_NUMBER_PER_SECOND,
    )
}

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

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

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

/// The practice function (settings, patients, templates, tracking, the
/// Inbox and its threads).
#[derive(Debug, Clone)]
pub struct PracticeApiConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `MEDIA_BUCKET`: where copied attachments are, for the thread's links.
    pub media_bucket: String,
    /// `EVENT_QUEUE_URL`: redelivered events' first attempts.
    pub event_queue_url: HttpUrl,
    /// `ALLOW_LOCAL_EVENT_ENDPOINTS` (default false).
    pub url_policy: UrlPolicy,
    /// `SESSION_COOKIE_SECURE` (default true): the console's cookie.
    pub session_cookie: SessionCookie,
}

impl PracticeApiConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            media_bucket: env.required("MEDIA_BUCKET"),
            event_queue_url: env.url("EVENT_QUEUE_URL"),
            url_policy: url_policy(env),
            session_cookie: session_cookie(env),
        }
    }
}

/// The console function: the console's files, sign-in and sign-out, and
/// the practice's staff accounts.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SESSION_COOKIE_SECURE` (default true).
    pub session_cookie: SessionCookie,
}

impl ConsoleConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            session_cookie: session_cookie(env),
        }
    }
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

impl EventDeliveryConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

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

/// The carrier webhook function.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
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

impl WebhookConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

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
fn password<F: Fn(&str) -> Option<String>>(
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
fn carrier_access<F: Fn(&str) -> Option<String>>(
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

/// The dispatcher function (the send-queue consumer).
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SEND_QUEUE_URL`.
    pub send_queue_url: HttpUrl,
    /// The `CARRIER_*` settings.
    pub carrier: CarrierConfig,
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

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let table_name = env.required("TABLE_NAME");
        let send_queue_url = env.url("SEND_QUEUE_URL");
        let account_id = env.required("CARRIER_ACCOUNT_ID");
        let application_id = env.required("CARRIER_APPLICATION_ID");
        let (api_url, username, password, timeout) = carrier_access(env);
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

/// The media copier (the media-queue consumer): downloads attachments from
/// the carrier into the media bucket.
#[derive(Debug, Clone)]
pub struct MediaCopierConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `MEDIA_BUCKET`.
    pub media_bucket: String,
    /// `MEDIA_QUEUE_URL`: its own queue (retry pauses).
    pub media_queue_url: HttpUrl,
    /// The `CARRIER_*` settings, as the dispatcher's; downloads name no
    /// messaging application, so `CARRIER_APPLICATION_ID` is not read (and
    /// is empty here).
    pub carrier: CarrierConfig,
}

impl MediaCopierConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        from_process(Self::read)
    }

    /// From a lookup (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish(config)
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let table_name = env.required("TABLE_NAME");
        let media_bucket = env.required("MEDIA_BUCKET");
        let media_queue_url = env.url("MEDIA_QUEUE_URL");
        let account_id = env.required("CARRIER_ACCOUNT_ID");
        let (api_url, username, password, timeout) = carrier_access(env);
        Self {
            table_name,
            media_bucket,
            media_queue_url,
            carrier: CarrierConfig {
                api_url,
                account_id,
                application_id: String::new(),
                username,
                password,
                timeout,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A lookup over fixed pairs, so no test touches the process environment.
    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/send";

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

    fn with(
        mut base: Vec<(&'static str, &'static str)>,
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        for (name, value) in extra {
            base.retain(|(n, _)| n != name);
            base.push((name, value));
        }
        base
    }

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
    fn the_session_cookie_is_secure_unless_turned_off() {
        let c = ConsoleConfig::from_lookup(vars(&[("TABLE_NAME", "messaging")])).unwrap();
        assert!(c.session_cookie.secure);
        let c = ConsoleConfig::from_lookup(vars(&[
            ("TABLE_NAME", "messaging"),
            ("SESSION_COOKIE_SECURE", "false"),
        ]))
        .unwrap();
        assert!(!c.session_cookie.secure);
        let e = ConsoleConfig::from_lookup(vars(&[("SESSION_COOKIE_SECURE", "no")])).unwrap_err();
        assert_eq!(e.missing, vec!["TABLE_NAME"]);
        assert_eq!(e.malformed[0].name, "SESSION_COOKIE_SECURE");
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

        let w = WebhookConfig::from_lookup(vars(&webhook_vars())).unwrap();
        assert_eq!(w.username.as_str(), "bandwidth");
        assert_eq!(
            w.password,
            PasswordSetting::Value(Secret::new("webhook-s3cret-pw"))
        );

        let p = PracticeApiConfig::from_lookup(vars(&[
            ("TABLE_NAME", "t"),
            ("MEDIA_BUCKET", "b"),
            (
                "EVENT_QUEUE_URL",
                "http://127.0.0.1:4566/000000000000/events",
            ),
        ]))
        .unwrap();
        assert_eq!((p.table_name.as_str(), p.media_bucket.as_str()), ("t", "b"));
        assert!(!p.url_policy.allow_local, "off unless asked");
        let e = PracticeApiConfig::from_lookup(vars(&[("TABLE_NAME", "t")])).unwrap_err();
        assert_eq!(e.missing, vec!["MEDIA_BUCKET", "EVENT_QUEUE_URL"]);
    }

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

        // Out of the field's range is malformed too, not silently the default.
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
        let e = WebhookConfig::from_lookup(vars(&[("SCHEDULE_DLQ_ARN", "x")])).unwrap_err();
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
        // Required: missing.
        let e = WebhookConfig::from_lookup(vars(&with(
            webhook_vars(),
            &[("WEBHOOK_PASSWORD", ""), ("TABLE_NAME", "")],
        )))
        .unwrap_err();
        assert_eq!(e.missing, vec!["TABLE_NAME", "WEBHOOK_PASSWORD"]);
        assert!(e.malformed.is_empty());

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
        let d = DispatcherConfig::from_lookup(vars(&with(
            dispatcher_vars(),
            &[("CARRIER_API_URL", ""), ("CARRIER_TIMEOUT_MS", "")],
        )))
        .unwrap();
        assert_eq!(d.carrier.api_url.as_str(), DEFAULT_API_URL);
        assert_eq!(d.carrier.timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_media_copier_reads_its_bucket_queue_and_carrier_access() {
        let vars_ok = [
            ("TABLE_NAME", "messaging"),
            ("MEDIA_BUCKET", "stack-media"),
            ("MEDIA_QUEUE_URL", QUEUE_URL),
            ("CARRIER_ACCOUNT_ID", "9900000"),
            ("CARRIER_USERNAME", "api-user"),
            ("CARRIER_PASSWORD", "carrier-s3cret-pw"),
            ("CARRIER_API_URL", "http://127.0.0.1:4599/api/v2"),
        ];
        let c = MediaCopierConfig::from_lookup(vars(&vars_ok)).unwrap();
        assert_eq!(c.media_bucket, "stack-media");
        assert_eq!(c.media_queue_url.as_str(), QUEUE_URL);
        let b = c.carrier.bandwidth(Secret::new("resolved").into());
        assert_eq!(b.api_url, "http://127.0.0.1:4599/api/v2");
        assert_eq!(
            (b.account_id.as_str(), b.username.as_str()),
            ("9900000", "api-user")
        );
        assert_eq!(b.timeout, DispatcherConfig::DEFAULT_CARRIER_TIMEOUT);
        assert!(!format!("{c:?}").contains("carrier-s3cret-pw"));

        let e = MediaCopierConfig::from_lookup(vars(&[("MEDIA_QUEUE_URL", "queue")])).unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                "TABLE_NAME",
                "MEDIA_BUCKET",
                "CARRIER_ACCOUNT_ID",
                "CARRIER_USERNAME",
                "CARRIER_PASSWORD"
            ]
        );
        assert_eq!(e.malformed[0].name, "MEDIA_QUEUE_URL");
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
        let w = WebhookConfig::from_lookup(vars(&webhook_vars())).unwrap();
        for printed in [format!("{w:?}"), format!("{w:#?}")] {
            assert!(!printed.contains("webhook-s3cret-pw"), "{printed}");
            assert!(printed.contains("[redacted]"), "{printed}");
        }
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
