//! The one HTTP stack of every function: reqwest over rustls, trusting the
//! Mozilla root certificates compiled into the binary (`webpki-roots`).
//!
//! The carrier adapter, the event deliveries and every AWS request (see
//! [`crate::aws`]) start from [`client_builder`], so a function has one
//! HTTP/TLS implementation, not reqwest beside the AWS SDK's own client.
//! Compiled-in roots cost no file reads at cold start: loading the
//! system's certificate store read ~150 files and parsed each certificate,
//! once per client, which was most of a cold start's time
//! (docs/measurements.md, "Cold start"). The roots are the same set of
//! public certificate authorities every browser trusts; AWS endpoints
//! (Amazon Trust Services) and the carrier are among them.

use std::sync::{Arc, OnceLock};

/// TLS settings shared by every client of the process (built on first use).
fn tls() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("the default protocol versions are supported")
                .with_root_certificates(roots)
                .with_no_client_auth();
            // reqwest speaks HTTP/1.1 only here (no `http2` feature).
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            config
        })
        .clone()
}

/// A reqwest builder with this process's TLS settings; callers add their
/// timeouts, redirect and proxy policy.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_preconfigured_tls(tls())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_include_amazon_trust_services() {
        // AWS endpoints chain to Amazon Root CA 1..4; a store without them
        // would fail every AWS request on a real account.
        let amazon = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .filter(|anchor| {
                String::from_utf8_lossy(anchor.subject.as_ref()).contains("Amazon Root CA")
            })
            .count();
        assert!(amazon >= 4, "{amazon} Amazon roots");
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        client_builder().build().expect("a client");
    }
}
