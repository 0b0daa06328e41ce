//! Start-up configuration, read from the command line and the environment.
//!
//! The simulator is launched by scripts and test harnesses, not humans, so it
//! takes a tiny fixed set of knobs through `std::env` instead of a CLI
//! framework. Everything has a default so `carrier-sim` with no arguments
//! just works; `--port 0` (the default) lets the OS pick a free port, which the
//! binary then announces on stdout.

use std::time::Duration;

/// Account id the send API accepts when `SIM_ACCOUNT_ID` is unset.
pub const DEFAULT_ACCOUNT_ID: &str = "9900000";
/// Basic-auth user the send API requires when `SIM_API_USER` is unset.
pub const DEFAULT_API_USER: &str = "sim-user";
/// Basic-auth password the send API requires when `SIM_API_PASSWORD` is unset.
pub const DEFAULT_API_PASSWORD: &str = "sim-password";
/// Application id put on inbound (`message-received`) events when
/// `SIM_APPLICATION_ID` is unset; outbound messages echo the sender's own.
pub const DEFAULT_APPLICATION_ID: &str = "sim-application";
/// Delay between accepting a send and posting its delivery callback.
pub const DEFAULT_DELIVERY_DELAY_MS: u64 = 300;
/// How long a `timeout` fault keeps the request open before giving up.
pub const DEFAULT_FAULT_HANG: Duration = Duration::from_secs(30);

/// A problem with the command line or an environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value was present but could not be parsed.
    #[error("invalid value {value:?} for {name}: {reason}")]
    Invalid {
        /// Name of the flag or variable.
        name: &'static str,
        /// The raw value that was rejected.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// `--port` was the last argument.
    #[error("--port needs a value")]
    MissingPortValue,
    /// Anything other than `--port`.
    #[error("unexpected argument {0:?}; usage: carrier-sim [--port PORT]")]
    UnknownArgument(String),
}

/// Where (and as whom) callbacks are posted: the product's webhook.
///
/// Kept separate from [`Config`] because it can be swapped at runtime through
/// `PUT /_sim/config` — the webhook's URL is often only known after the
/// product's emulator has started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackTarget {
    /// Webhook URL; `None` means "accept sends but post no callbacks".
    pub url: Option<String>,
    /// HTTP Basic user sent with every callback (no auth header if empty
    /// together with `password`).
    pub user: String,
    /// HTTP Basic password sent with every callback.
    pub password: String,
}

impl CallbackTarget {
    /// Treats an empty or blank URL as "no callbacks", which is what an unset
    /// shell variable expands to.
    pub fn normalize_url(url: &str) -> Option<String> {
        let trimmed = url.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

/// Everything the simulator needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The only account id `POST /api/v2/users/{accountId}/messages` accepts.
    pub account_id: String,
    /// Basic-auth user the send API requires.
    pub api_user: String,
    /// Basic-auth password the send API requires.
    pub api_password: String,
    /// Application id used on inbound events.
    pub application_id: String,
    /// Initial callback target.
    pub callback: CallbackTarget,
    /// Delay before the delivery callback of an accepted send.
    pub delivery_delay: Duration,
    /// How long a `timeout` fault hangs.
    pub fault_hang: Duration,
    /// Base URL the simulator is reached at (`http://127.0.0.1:4599`), used
    /// to build its MMS media URLs. `SIM_PUBLIC_URL`; when unset the binary
    /// fills in the address it bound, and an embedded simulator without one
    /// uses the `Host` of the `/_sim/inbound` request.
    pub public_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            api_user: DEFAULT_API_USER.to_owned(),
            api_password: DEFAULT_API_PASSWORD.to_owned(),
            application_id: DEFAULT_APPLICATION_ID.to_owned(),
            callback: CallbackTarget::default(),
            delivery_delay: Duration::from_millis(DEFAULT_DELIVERY_DELAY_MS),
            fault_hang: DEFAULT_FAULT_HANG,
            public_url: None,
        }
    }
}

impl Config {
    /// Reads the real process arguments and environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_sources(std::env::args().skip(1), |name| std::env::var(name).ok())
    }

    /// Builds a config from explicit arguments (without the program name) and
    /// an environment lookup, so it can be unit-tested without touching the
    /// process environment. `--port` wins over `SIM_PORT`.
    pub fn from_sources<I>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = String>,
    {
        let mut config = Self::default();
        if let Some(port) = env("SIM_PORT") {
            config.port = parse_port("SIM_PORT", &port)?;
        }
        if let Some(v) = env("SIM_ACCOUNT_ID") {
            config.account_id = v;
        }
        if let Some(v) = env("SIM_API_USER") {
            config.api_user = v;
        }
        if let Some(v) = env("SIM_API_PASSWORD") {
            config.api_password = v;
        }
        if let Some(v) = env("SIM_APPLICATION_ID") {
            config.application_id = v;
        }
        if let Some(v) = env("SIM_CALLBACK_URL") {
            config.callback.url = CallbackTarget::normalize_url(&v);
        }
        if let Some(v) = env("SIM_CALLBACK_USER") {
            config.callback.user = v;
        }
        if let Some(v) = env("SIM_CALLBACK_PASSWORD") {
            config.callback.password = v;
        }
        if let Some(v) = env("SIM_PUBLIC_URL") {
            config.public_url = normalize_base_url(&v);
        }
        if let Some(v) = env("SIM_DELIVERY_DELAY_MS") {
            let ms = v.trim().parse::<u64>().map_err(|e| ConfigError::Invalid {
                name: "SIM_DELIVERY_DELAY_MS",
                value: v.clone(),
                reason: e.to_string(),
            })?;
            config.delivery_delay = Duration::from_millis(ms);
        }

        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--port" {
                let value = args.next().ok_or(ConfigError::MissingPortValue)?;
                config.port = parse_port("--port", &value)?;
            } else if let Some(value) = arg.strip_prefix("--port=") {
                config.port = parse_port("--port", value)?;
            } else {
                return Err(ConfigError::UnknownArgument(arg));
            }
        }
        Ok(config)
    }
}

/// Trims blanks and trailing slashes; empty means "not set".
pub fn normalize_base_url(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/');
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn parse_port(name: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|e| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_sources(args.iter().map(|a| (*a).to_owned()), |k| {
            env.get(k).cloned()
        })
    }

    #[test]
    fn defaults_apply_without_input() {
        let config = build(&[], &[]).expect("defaults");
        assert_eq!(config.port, 0);
        assert_eq!(config.account_id, "9900000");
        assert_eq!(config.api_user, "sim-user");
        assert_eq!(config.api_password, "sim-password");
        assert_eq!(config.callback.url, None);
        assert_eq!(config.delivery_delay, Duration::from_millis(300));
        assert_eq!(config.public_url, None);
    }

    #[test]
    fn env_and_flag_are_read_and_flag_wins() {
        let config = build(
            &["--port", "4100"],
            &[
                ("SIM_PORT", "4000"),
                ("SIM_CALLBACK_URL", " http://127.0.0.1:1/hook "),
                ("SIM_CALLBACK_USER", "u"),
                ("SIM_DELIVERY_DELAY_MS", "5"),
                ("SIM_PUBLIC_URL", " http://127.0.0.1:4599/ "),
            ],
        )
        .expect("config");
        assert_eq!(config.port, 4100);
        assert_eq!(
            config.callback.url.as_deref(),
            Some("http://127.0.0.1:1/hook")
        );
        assert_eq!(config.callback.user, "u");
        assert_eq!(config.delivery_delay, Duration::from_millis(5));
        assert_eq!(config.public_url.as_deref(), Some("http://127.0.0.1:4599"));
        assert_eq!(build(&["--port=7"], &[]).expect("config").port, 7);
    }

    #[test]
    fn empty_callback_url_means_none_and_bad_values_fail() {
        let config = build(&[], &[("SIM_CALLBACK_URL", "")]).expect("config");
        assert_eq!(config.callback.url, None);
        assert!(build(&["--port", "x"], &[]).is_err());
        assert!(build(&["--port"], &[]).is_err());
        assert!(build(&["--verbose"], &[]).is_err());
        assert!(build(&[], &[("SIM_DELIVERY_DELAY_MS", "-1")]).is_err());
    }
}
