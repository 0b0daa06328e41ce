//! Bandwidth Messaging API v2 over HTTPS: `POST /users/{accountId}/messages`
//! with HTTP Basic credentials.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use messaging_core::domain::secret::Secret;
use messaging_core::ports::{Carrier, CarrierOutcome, OutboundText};

/// Production base URL of the Messaging API v2.
pub const DEFAULT_API_URL: &str = "https://messaging.bandwidth.com/api/v2";

/// What the adapter needs to reach a Bandwidth account. Its `Debug` shows
/// the password as `[redacted]`.
#[derive(Debug, Clone)]
pub struct BandwidthConfig {
    /// Base URL, `https://messaging.bandwidth.com/api/v2` unless overridden.
    pub api_url: String,
    /// Account id.
    pub account_id: String,
    /// Messaging application id (ties callbacks to our webhook).
    pub application_id: String,
    /// API user name.
    pub username: String,
    /// API password.
    pub password: Secret,
    /// How long to wait for an answer before treating the attempt as retryable.
    pub timeout: Duration,
}

/// The carrier adapter.
#[derive(Debug, Clone)]
pub struct Bandwidth {
    http: reqwest::Client,
    config: BandwidthConfig,
    messages_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateMessage<'a> {
    application_id: &'a str,
    to: [&'a str; 1],
    from: &'a str,
    text: &'a str,
    tag: &'a str,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
}

impl Bandwidth {
    /// Builds the adapter; the HTTP client (and its connection pool) is reused
    /// across invocations of a warm function.
    pub fn new(config: BandwidthConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        let messages_url = format!(
            "{}/users/{}/messages",
            config.api_url.trim_end_matches('/'),
            config.account_id
        );
        Ok(Self {
            http,
            config,
            messages_url,
        })
    }
}

#[async_trait]
impl Carrier for Bandwidth {
    async fn send(&self, text: &OutboundText) -> CarrierOutcome {
        let body = CreateMessage {
            application_id: &self.config.application_id,
            to: [&text.to],
            from: &text.from,
            text: &text.text,
            tag: &text.tag,
        };
        let response = match self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return CarrierOutcome::Retryable {
                    reason: "carrier did not answer in time".into(),
                }
            }
            Err(e) => {
                return CarrierOutcome::Retryable {
                    reason: format!("carrier unreachable: {e}"),
                }
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return CarrierOutcome::Retryable {
                    reason: format!("carrier answer cut off: {e}"),
                }
            }
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&bytes) {
                Ok(c) => CarrierOutcome::Accepted {
                    carrier_message_id: c.id,
                },
                // Accepted but unreadable: the message may be on its way, so
                // this must not be retried (it could reach the patient twice).
                Err(e) => CarrierOutcome::Rejected {
                    status: status.as_u16(),
                    detail: format!("accepted with an unreadable answer: {e}"),
                },
            };
        }
        let problem: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
        let detail = match (problem.kind.is_empty(), problem.description.is_empty()) {
            (_, false) => format!("{} ({})", problem.description, problem.kind),
            (false, true) => problem.kind,
            (true, true) => format!("HTTP {}", status.as_u16()),
        };
        if status.is_server_error() || status.as_u16() == 429 {
            CarrierOutcome::Retryable {
                reason: format!("HTTP {}: {detail}", status.as_u16()),
            }
        } else {
            CarrierOutcome::Rejected {
                status: status.as_u16(),
                detail,
            }
        }
    }
}
