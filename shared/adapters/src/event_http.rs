//! Delivering events to the office's endpoints over HTTP(S), and resolving
//! their host names — refusing, at connection time, any address the
//! deployment's [`UrlPolicy`] does not allow (private, loopback,
//! link-local...), so a name that resolved to a public address when the
//! endpoint was created cannot later steer a delivery inside.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;

use messaging_core::domain::event_endpoint::{
    EndpointUrl, UrlPolicy, DELIVERY_TIMEOUT, MAX_RESPONSE_BYTES,
};
use messaging_core::domain::events::AttemptResult;
use messaging_core::ports::{EventPoster, HostResolver};

/// Resolves with the system resolver, then refuses the whole answer when
/// any address in it is not allowed.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    policy: UrlPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
            policy
                .check_resolved(&host, &ips)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.message.into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client for event deliveries.
#[derive(Debug, Clone)]
pub struct HttpEventPoster {
    http: reqwest::Client,
    policy: UrlPolicy,
}

impl HttpEventPoster {
    /// A client that follows no redirect, gives each attempt
    /// [`DELIVERY_TIMEOUT`] in all, uses no proxy, and connects only to
    /// addresses `policy` allows.
    ///
    /// # Errors
    ///
    /// When the TLS backend cannot be set up.
    pub fn new(policy: UrlPolicy) -> Result<Self, reqwest::Error> {
        let http = crate::http::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(std::time::Duration::from_secs(10))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()?;
        Ok(Self { http, policy })
    }
}

#[async_trait]
impl EventPoster for HttpEventPoster {
    async fn post(
        &self,
        url: &EndpointUrl,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> AttemptResult {
        // An address literal never reaches the resolver: check it here.
        if let Some(ip) = url.ip {
            if !self.policy.address_allowed(ip) {
                return AttemptResult::Error(format!("{ip} is not a public address"));
            }
        }
        let mut request = self.http.post(url.url.clone()).body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return AttemptResult::Timeout,
            Err(e) => return AttemptResult::Error(describe(&e)),
        };
        let status = response.status().as_u16();
        // Read (and drop) at most a small bound of the answer, so the
        // connection can be reused; its content is never logged.
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        AttemptResult::Status(status)
    }
}

/// The error in words, without the URL.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut words = if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_request() {
        "the request failed".to_string()
    } else {
        "no answer".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        words.push_str(": ");
        words.push_str(&s.to_string());
        source = s.source();
    }
    words
}

/// Host-name resolution with the system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl HostResolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        tokio::net::lookup_host((host, port))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server on 127.0.0.1 answering `answer`.
    async fn serve_once(answer: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                // A client that went away is the test's failure to report.
                if socket.read(&mut buf).await.is_ok() {
                    socket.write_all(answer.as_bytes()).await.ok();
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_counts_as_its_status() {
        let port = serve_once(
            "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let policy = UrlPolicy { allow_local: true };
        let client = HttpEventPoster::new(policy).unwrap();
        let url = policy
            .check(&format!("http://127.0.0.1:{port}/hook"))
            .unwrap();
        let got = client.post(&url, &[], "{}").await;
        assert_eq!(got, AttemptResult::Status(302));
        assert!(!got.delivered());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_connection() {
        // `localhost` resolves to 127.0.0.1/::1: with the local exception
        // only the literal 127.0.0.1 is allowed, never a name.
        let port = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let policy = UrlPolicy { allow_local: true };
        let client = HttpEventPoster::new(policy).unwrap();
        // Skip the creation-time check to see the connection-time one.
        let url = EndpointUrl {
            url: url::Url::parse(&format!("http://localhost:{port}/hook")).unwrap(),
            ip: None,
        };
        match client.post(&url, &[], "{}").await {
            AttemptResult::Error(e) => assert!(e.contains("non-public"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let literal = EndpointUrl {
            url: url::Url::parse("http://10.1.2.3/hook").unwrap(),
            ip: Some("10.1.2.3".parse().unwrap()),
        };
        assert!(matches!(
            client.post(&literal, &[], "{}").await,
            AttemptResult::Error(_)
        ));
    }

    #[tokio::test]
    async fn an_answer_is_its_status_whatever_its_body() {
        let port = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789").await;
        let policy = UrlPolicy { allow_local: true };
        let client = HttpEventPoster::new(policy).unwrap();
        let url = policy
            .check(&format!("http://127.0.0.1:{port}/hook"))
            .unwrap();
        assert_eq!(
            client
                .post(&url, &[("webhook-id", "evt_1".into())], "{}")
                .await,
            AttemptResult::Status(200)
        );
    }
}
