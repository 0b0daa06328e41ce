//! Bandwidth Messaging API v2 over HTTPS: `POST /users/{accountId}/messages`
//! to send, `GET /users/{accountId}/media/{mediaId}` to download what
//! patients attach to inbound texts, both with HTTP Basic credentials.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::secrets::Password;
use messaging_core::ports::{Carrier, CarrierMedia, CarrierOutcome, MediaFetchError, OutboundText};

/// Production base URL of the Messaging API v2.
pub const DEFAULT_API_URL: &str = "https://messaging.bandwidth.com/api/v2";

/// Largest attachment downloaded (Bandwidth limits a whole MMS to 3.5 MB;
/// anything larger is not a carrier file and is refused, not stored).
pub const MAX_MEDIA_BYTES: usize = 5 * 1024 * 1024;

/// How long one media download may take in all.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

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
    /// API password (from Secrets Manager in a deployed function).
    pub password: Password,
    /// How long to wait for an answer before treating the attempt as retryable.
    pub timeout: Duration,
}

/// The carrier adapter.
#[derive(Debug, Clone)]
pub struct Bandwidth {
    http: reqwest::Client,
    config: BandwidthConfig,
    messages_url: String,
    /// Downloads: follows redirects only on the API's own origin.
    media_http: reqwest::Client,
    /// `{api_url}/users/{accountId}/media/`, parsed: every media link must
    /// start with it.
    media_base: reqwest::Url,
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
        let http = crate::http::client_builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        let base = config.api_url.trim_end_matches('/');
        let messages_url = format!("{base}/users/{}/messages", config.account_id);
        // An unparsable API URL fails every send; downloads are refused
        // likewise (`about:blank` matches no media link).
        let media_base = reqwest::Url::parse(&format!("{base}/users/{}/media/", config.account_id))
            .unwrap_or_else(|_| reqwest::Url::parse("about:blank").expect("a valid URL"));
        let origin = media_base.origin();
        let media_http = crate::http::client_builder()
            .timeout(MEDIA_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            // The credentials go with the request: never follow the carrier
            // to another host.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() < 3 && attempt.url().origin() == origin {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()?;
        Ok(Self {
            http,
            config,
            messages_url,
            media_http,
            media_base,
        })
    }

    /// `url` parsed, if it is a media link of our account on the carrier's
    /// API host (same scheme, host and port as the configured API URL, path
    /// under `/users/{accountId}/media/`).
    fn media_url(&self, url: &str) -> Option<reqwest::Url> {
        let parsed = reqwest::Url::parse(url).ok()?;
        let on_api = parsed.origin() == self.media_base.origin()
            && parsed.path().starts_with(self.media_base.path())
            && parsed.path().len() > self.media_base.path().len()
            && parsed.username().is_empty()
            && parsed.password().is_none();
        on_api.then_some(parsed)
    }
}

#[async_trait]
impl CarrierMedia for Bandwidth {
    async fn download(&self, url: &str) -> Result<Vec<u8>, MediaFetchError> {
        let Some(url) = self.media_url(url) else {
            return Err(MediaFetchError::Permanent(format!(
                "not a media link of this account on the carrier's API ({})",
                self.media_base
            )));
        };
        let mut fresh_password = false;
        let mut response = loop {
            let password = self.config.password.current().await;
            let response = self
                .media_http
                .get(url.clone())
                .basic_auth(&self.config.username, Some(password.expose()))
                .send()
                .await
                .map_err(|e| {
                    MediaFetchError::Retryable(if e.is_timeout() {
                        "carrier did not answer in time".into()
                    } else {
                        format!("carrier unreachable: {e}")
                    })
                })?;
            // Refused: the password may have been rotated; read it again once.
            if response.status() == reqwest::StatusCode::UNAUTHORIZED
                && !fresh_password
                && self.config.password.refresh().await
            {
                fresh_password = true;
                continue;
            }
            break response;
        };
        let status = response.status();
        if !status.is_success() {
            let why = format!("HTTP {}", status.as_u16());
            return Err(
                if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    MediaFetchError::Retryable(why)
                } else {
                    // 404 and 410 (expired or unknown), 401/403 (not ours),
                    // a redirect elsewhere: the same answer every time.
                    MediaFetchError::Permanent(why)
                },
            );
        }
        let too_large =
            || MediaFetchError::Permanent(format!("larger than {MAX_MEDIA_BYTES} bytes"));
        if response
            .content_length()
            .is_some_and(|n| n > MAX_MEDIA_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_MEDIA_BYTES {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes),
                Err(e) => {
                    return Err(MediaFetchError::Retryable(if e.is_timeout() {
                        "download did not finish in time".into()
                    } else {
                        format!("download cut off: {e}")
                    }))
                }
            }
        }
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
        let mut fresh_password = false;
        let response = loop {
            let password = self.config.password.current().await;
            let sent = self
                .http
                .post(&self.messages_url)
                .basic_auth(&self.config.username, Some(password.expose()))
                .json(&body)
                .send()
                .await;
            // A 401 took nothing: if the password was rotated, the send is
            // safe to repeat once with the new one.
            if let Ok(r) = &sent {
                if r.status() == reqwest::StatusCode::UNAUTHORIZED
                    && !fresh_password
                    && self.config.password.refresh().await
                {
                    fresh_password = true;
                    continue;
                }
            }
            break sent;
        };
        let response = match response {
            Ok(r) => r,
            // No connection was made: the request never reached the carrier.
            Err(e) if e.is_connect() => {
                return CarrierOutcome::Retryable {
                    reason: format!("carrier unreachable: {e}"),
                }
            }
            // The request went out and no status line came back: the carrier
            // may have taken it.
            Err(e) if e.is_timeout() => {
                return CarrierOutcome::Unconfirmed {
                    reason: "carrier did not answer in time".into(),
                }
            }
            Err(e) => {
                return CarrierOutcome::Unconfirmed {
                    reason: format!("carrier connection lost before its answer: {e}"),
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            // A 2xx is a certain acceptance: the text is on its way and must
            // never be sent again, whatever happens to the answer's body. An
            // answer that cannot be read leaves the carrier's id unknown
            // (empty); the callbacks, matched by tag and numbers, fill it in.
            let id = match response.bytes().await {
                Ok(bytes) => serde_json::from_slice::<Created>(&bytes)
                    .map(|c| c.id)
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "carrier accepted with an unreadable answer");
                        String::new()
                    }),
                Err(e) => {
                    tracing::warn!(error = %e, "carrier accepted; its answer was cut off");
                    String::new()
                }
            };
            return CarrierOutcome::Accepted {
                carrier_message_id: id,
            };
        }
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return CarrierOutcome::Retryable {
                    reason: format!("carrier answer cut off: {e}"),
                }
            }
        };
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
                error: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::domain::secret::Secret;

    fn carrier(api_url: &str) -> Bandwidth {
        Bandwidth::new(BandwidthConfig {
            api_url: api_url.into(),
            account_id: "9900000".into(),
            application_id: "app".into(),
            username: "user".into(),
            password: Secret::new("pw").into(),
            timeout: Duration::from_secs(1),
        })
        .expect("client")
    }

    #[test]
    fn only_media_links_of_our_account_on_the_api_host_are_downloaded() {
        let bw = carrier("https://messaging.bandwidth.com/api/v2/");
        let ours = "https://messaging.bandwidth.com/api/v2/users/9900000/media/14762070468292kw2fuqty55yp2b2/0/bw.png";
        assert!(bw.media_url(ours).is_some());
        for other in [
            "https://evil.example/api/v2/users/9900000/media/x/0/a.png",
            "http://messaging.bandwidth.com/api/v2/users/9900000/media/x/0/a.png",
            "https://messaging.bandwidth.com:8443/api/v2/users/9900000/media/x/0/a.png",
            "https://messaging.bandwidth.com.evil.example/api/v2/users/9900000/media/x",
            "https://user:pw@messaging.bandwidth.com/api/v2/users/9900000/media/x/0/a.png",
            "https://messaging.bandwidth.com/api/v2/users/1234567/media/x/0/a.png",
            "https://messaging.bandwidth.com/api/v2/users/9900000/messages",
            "https://messaging.bandwidth.com/api/v2/users/9900000/media/",
            "https://messaging.bandwidth.com/other/users/9900000/media/x",
            "not a url",
        ] {
            assert!(bw.media_url(other).is_none(), "{other}");
        }
        // The simulator, as the local cloud configures it.
        let sim = carrier("http://127.0.0.1:4599/api/v2");
        assert!(sim
            .media_url("http://127.0.0.1:4599/api/v2/users/9900000/media/m/0/file0.png")
            .is_some());
        assert!(sim
            .media_url("http://localhost:4599/api/v2/users/9900000/media/m/0/file0.png")
            .is_none());
    }

    #[tokio::test]
    async fn a_link_elsewhere_is_refused_without_a_request() {
        let bw = carrier("https://messaging.bandwidth.com/api/v2");
        let e = bw
            .download("http://127.0.0.1:9/api/v2/users/9900000/media/x")
            .await
            .expect_err("refused");
        assert!(matches!(e, MediaFetchError::Permanent(_)), "{e}");
    }

    /// A one-request HTTP server on 127.0.0.1 answering `answer` raw.
    async fn serve_once(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 16384];
                if socket.read(&mut buf).await.is_ok() {
                    socket.write_all(answer.as_bytes()).await.ok();
                }
            }
        });
        format!("http://127.0.0.1:{port}/api/v2")
    }

    fn text() -> OutboundText {
        OutboundText {
            from: "+14155550100".into(),
            to: "+14155550142".into(),
            text: "hi".into(),
            tag: "p/m/00001".into(),
            carrier: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_2xx_is_an_acceptance_even_when_its_answer_cannot_be_read() {
        for answer in [
            // Not JSON.
            "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello",
            // Cut off: promises 100 bytes, sends 10 and closes.
            "HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n{\"id\": \"12",
        ] {
            let url = serve_once(answer).await;
            assert_eq!(
                carrier(&url).send(&text()).await,
                CarrierOutcome::Accepted {
                    carrier_message_id: String::new()
                },
                "{answer}"
            );
        }
        let url =
            serve_once("HTTP/1.1 202 Accepted\r\nContent-Length: 12\r\n\r\n{\"id\": \"m1\"}").await;
        assert_eq!(
            carrier(&url).send(&text()).await,
            CarrierOutcome::Accepted {
                carrier_message_id: "m1".into()
            }
        );
        let url = serve_once("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        assert!(matches!(
            carrier(&url).send(&text()).await,
            CarrierOutcome::Retryable { .. }
        ));
    }

    #[tokio::test]
    async fn no_connection_is_retryable_but_a_lost_answer_is_unconfirmed() {
        // Nothing listens: the request never left, so trying again is safe.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let closed = format!("http://127.0.0.1:{port}/api/v2");
        assert!(matches!(
            carrier(&closed).send(&text()).await,
            CarrierOutcome::Retryable { .. }
        ));
        // The request was read, then the connection dropped without a status
        // line: the carrier may have taken it.
        let url = serve_once("").await;
        assert!(matches!(
            carrier(&url).send(&text()).await,
            CarrierOutcome::Unconfirmed { .. }
        ));
    }
}
