//! The office's event endpoints: where events go, how each delivery is
//! signed (Standard Webhooks 1.0), and which URLs we agree to call.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::clock::to_api_time;
use super::error::AppError;
use super::events::EventType;

/// At most this many endpoints per practice.
pub const MAX_ENDPOINTS: usize = 5;
/// After a rotation, the old secret keeps signing beside the new one this long.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// An attempt waits at most this long for the endpoint's answer.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// At most this much of an endpoint's answer is read (and never logged).
pub const MAX_RESPONSE_BYTES: usize = 4096;

const SECRET_PREFIX: &str = "whsec_";

/// A signing secret, `whsec_` + base64 of 32 random bytes. `Debug` never
/// prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// The whole secret as the office was shown it.
    pub value: String,
    /// After a rotation, when the old secret stops signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningSecret")
            .field("value", &super::secret::Secret::REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        SigningSecret {
            value: format!("{SECRET_PREFIX}{}", B64.encode(bytes)),
            expires_at: None,
        }
    }

    /// The HMAC key: the base64-decoded part after `whsec_`.
    fn key(&self) -> Option<Vec<u8>> {
        let encoded = self
            .value
            .strip_prefix(SECRET_PREFIX)
            .unwrap_or(&self.value);
        B64.decode(encoded).ok()
    }

    /// `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> Option<String> {
        let key = self.key()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
    }
}

/// Whether an endpoint is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    /// Gets events.
    Enabled,
    /// Answered 410 Gone: gets nothing more.
    Disabled,
}

/// An office's event endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEndpoint {
    /// Time-ordered UUID.
    pub id: String,
    /// Owner.
    pub practice_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The types it gets; `None` = every type.
    pub event_types: Option<Vec<EventType>>,
    #[allow(missing_docs)]
    pub status: EndpointStatus,
    /// Why it was disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The current secret first; during a rotation, the previous one too.
    pub secrets: Vec<SigningSecret>,
    #[allow(missing_docs)]
    pub created_at: DateTime<Utc>,
}

impl EventEndpoint {
    /// Whether the endpoint gets events of `event_type`.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.status == EndpointStatus::Enabled
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&event_type))
    }

    /// The secrets that sign at `now`: the current one, and a rotated-out
    /// one until its overlap ends.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&SigningSecret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|until| now < until))
            .collect()
    }

    /// The `webhook-signature` header: one `v1,…` per signing secret,
    /// separated by spaces.
    pub fn signature_header(
        &self,
        id: &str,
        timestamp: i64,
        body: &str,
        now: DateTime<Utc>,
    ) -> String {
        self.signing_secrets(now)
            .iter()
            .filter_map(|s| s.sign(id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Replaces the current secret with a new one, keeping the old one
    /// signing for [`ROTATION_OVERLAP`]; secrets rotated out earlier are
    /// dropped. Returns the new secret.
    pub fn rotate(&mut self, now: DateTime<Utc>) -> SigningSecret {
        let fresh = SigningSecret::generate();
        let mut kept = vec![fresh.clone()];
        if let Some(current) = self.secrets.iter().find(|s| s.expires_at.is_none()) {
            let mut old = current.clone();
            old.expires_at = Some(now + ROTATION_OVERLAP);
            kept.push(old);
        }
        self.secrets = kept;
        fresh
    }

    /// The current secret (shown at creation and rotation only).
    pub fn current_secret(&self) -> Option<&SigningSecret> {
        self.secrets.iter().find(|s| s.expires_at.is_none())
    }

    /// The API's view, without the secret.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "url": self.url,
            "event_types": self.event_types,
            "status": self.status,
            "disabled_reason": self.disabled_reason,
            "created_at": to_api_time(&self.created_at),
        })
    }

    /// The API's view with the current secret (creation and rotation).
    pub fn view_with_secret(&self) -> serde_json::Value {
        let mut v = self.view();
        if let (Some(map), Some(secret)) = (v.as_object_mut(), self.current_secret()) {
            map.insert(
                "secret".into(),
                serde_json::Value::String(secret.value.clone()),
            );
        }
        v
    }
}

/// What the deployment lets endpoints be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// The local cloud's tests run receivers on this machine: allow
    /// `http(s)://127.0.0.1:…` (only that address). Off on AWS.
    pub allow_local: bool,
}

/// A URL that passed the syntax rules; whether its host's addresses are
/// public is checked when it resolves ([`UrlPolicy::address_allowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    /// The URL, normalised.
    pub url: url::Url,
    /// The host's address when the URL names one directly.
    pub ip: Option<IpAddr>,
}

impl EndpointUrl {
    /// The host name to resolve, when the URL names one.
    pub fn host_name(&self) -> Option<&str> {
        match self.ip {
            Some(_) => None,
            None => self.url.host_str(),
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }
}

fn invalid_url(why: impl Into<String>) -> AppError {
    AppError::invalid("invalid_url", why).at("url")
}

impl UrlPolicy {
    /// Checks a URL's form: `https` (or the local exception), no user name
    /// or password, no fragment, and an address literal must be public.
    ///
    /// # Errors
    ///
    /// 422 `invalid_url` naming `url`, with the reason.
    pub fn check(&self, raw: &str) -> Result<EndpointUrl, AppError> {
        if raw.len() > MAX_URL_LEN {
            return Err(invalid_url(format!(
                "url is longer than {MAX_URL_LEN} characters"
            )));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| invalid_url(format!("url is not a valid absolute URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid_url("url must not carry a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(invalid_url("url must not have a #fragment"));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(invalid_url("url has no host")),
        };
        // The local exception is for the address written as `127.0.0.1`,
        // not for other spellings the URL parser maps to it (`2130706433`,
        // `0x7f.1`...).
        let written_host = raw
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let literal = written_host == "127.0.0.1" || written_host.starts_with("127.0.0.1:");
        let local = self.allow_local && literal && ip == Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return Err(invalid_url("url must start with https://")),
        }
        if let Some(ip) = ip {
            if !(local || is_public(ip)) {
                return Err(invalid_url(format!(
                    "url points to {ip}, a private, loopback, link-local or otherwise non-public address"
                )));
            }
        }
        Ok(EndpointUrl { url, ip })
    }

    /// Whether we agree to connect to `ip`: public addresses only, plus
    /// 127.0.0.1 when the local exception is on.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        (self.allow_local && ip == IpAddr::V4(Ipv4Addr::LOCALHOST)) || is_public(ip)
    }

    /// Checks what a host name resolved to: every address must be public
    /// (a name with one private address among public ones is refused, so a
    /// DNS answer cannot steer a delivery inside).
    ///
    /// # Errors
    ///
    /// 422 `invalid_url` naming the refused address.
    pub fn check_resolved(&self, host: &str, addresses: &[IpAddr]) -> Result<(), AppError> {
        if addresses.is_empty() {
            return Err(invalid_url(format!(
                "{host} does not resolve to any address"
            )));
        }
        // The local exception is for the literal 127.0.0.1 only: a name
        // never gets it.
        if let Some(bad) = addresses.iter().find(|a| !is_public(**a)) {
            return Err(invalid_url(format!(
                "{host} resolves to {bad}, a private, loopback, link-local or otherwise non-public address"
            )));
        }
        Ok(())
    }
}

/// Whether `ip` is a globally routable unicast address: not private,
/// loopback, link-local (169.254.0.0/16 holds cloud metadata services),
/// shared (100.64.0.0/10), unspecified, broadcast, multicast, documentation,
/// benchmarking or reserved; IPv6 forms that embed an IPv4 address are
/// judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o0 == 0
        || (o0 == 100 && (64..128).contains(&o1))
        || (o0 == 192 && o1 == 0 && o2 == 0)
        || (o0 == 198 && (18..20).contains(&o1))
        || o0 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    // 64:ff9b::/96 (NAT64) and ::a.b.c.d (IPv4-compatible) carry an IPv4 address.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) || s[..6] == [0; 6] {
        let [a0, a1] = s[6].to_be_bytes();
        let [a2, a3] = s[7].to_be_bytes();
        return !a.is_unspecified()
            && !a.is_loopback()
            && is_public_v4(Ipv4Addr::new(a0, a1, a2, a3));
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo
        || s[0] == 0x2002 // 6to4
        || s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only 100::/64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The specification's example (standard-webhooks, spec/standard-webhooks.md).
        let secret = SigningSecret {
            value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            expires_at: None,
        };
        let sig = secret
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_random_prefixed_and_never_printed() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert!(a.value.starts_with("whsec_"));
        assert_ne!(a, b);
        assert_eq!(a.key().unwrap().len(), 32);
        assert!(!format!("{a:?}").contains(&a.value));
    }

    fn endpoint() -> EventEndpoint {
        EventEndpoint {
            id: "e1".into(),
            practice_id: "p1".into(),
            url: "https://pm.example.com/hooks".into(),
            event_types: Some(vec![EventType::MessageReceived]),
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secrets: vec![SigningSecret::generate()],
            created_at: now(),
        }
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
        let mut e = endpoint();
        let old = e.secrets[0].clone();
        let fresh = e.rotate(now());
        let header = e.signature_header("evt_1", 1, "{}", now());
        let sigs: Vec<&str> = header.split(' ').collect();
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0], fresh.sign("evt_1", 1, "{}").unwrap());
        assert_eq!(sigs[1], old.sign("evt_1", 1, "{}").unwrap());
        assert_eq!(e.current_secret().unwrap(), &fresh);
        let later = now() + ROTATION_OVERLAP;
        assert_eq!(
            e.signature_header("evt_1", 1, "{}", later)
                .split(' ')
                .count(),
            1
        );
        // A second rotation drops the first old secret at once.
        e.rotate(now());
        assert_eq!(e.secrets.len(), 2);
        assert!(!e.secrets.iter().any(|s| s.value == old.value));
    }

    #[test]
    fn endpoints_get_only_their_types_and_nothing_once_disabled() {
        let mut e = endpoint();
        assert!(e.wants(EventType::MessageReceived));
        assert!(!e.wants(EventType::MessageFailed));
        e.event_types = None;
        assert!(e.wants(EventType::MessageFailed));
        e.status = EndpointStatus::Disabled;
        assert!(!e.wants(EventType::MessageReceived));
        assert!(e.view().get("secret").is_none());
        assert!(e.view_with_secret()["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_"));
    }

    #[test]
    fn urls_must_be_https_and_public() {
        let aws = UrlPolicy { allow_local: false };
        let local = UrlPolicy { allow_local: true };
        for ok in [
            "https://pm.example.com/hooks",
            "https://93.184.216.34/x",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
        ] {
            aws.check(ok).unwrap();
        }
        for bad in [
            "http://pm.example.com/hooks",
            "ftp://pm.example.com/",
            "https://user:pw@pm.example.com/",
            "https://pm.example.com/#x",
            "not a url",
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.0.0.1/",
            "https://127.1/",
            "https://10.0.0.8/",
            "https://172.16.3.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://255.255.255.255/",
            "https://224.0.0.1/",
        ] {
            let e = aws.check(bad).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_url", Some("url")),
                "{bad}"
            );
        }
        // The local cloud's exception is exactly 127.0.0.1.
        local.check("http://127.0.0.1:8080/hooks").unwrap();
        for bad in [
            "http://localhost:8080/",
            "http://127.0.0.2/",
            "http://10.0.0.1/",
            "https://2130706433/",
            "http://0x7f.0.0.1:8080/",
            "http://127.1:8080/",
        ] {
            assert!(local.check(bad).is_err(), "{bad}");
        }
        assert!(aws.check("http://127.0.0.1:8080/hooks").is_err());
    }

    #[test]
    fn a_name_is_refused_when_any_address_it_resolves_to_is_not_public() {
        let aws = UrlPolicy::default();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        aws.check_resolved("pm.example.com", &[public]).unwrap();
        assert!(aws
            .check_resolved("evil.example.com", &[public, private])
            .is_err());
        assert!(aws.check_resolved("nothing.example.com", &[]).is_err());
        assert!(aws
            .check_resolved("localhost", &["127.0.0.1".parse().unwrap()])
            .is_err());
        let local = UrlPolicy { allow_local: true };
        assert!(
            local
                .check_resolved("localhost", &["127.0.0.1".parse().unwrap()])
                .is_err(),
            "the local exception is for the address literal only"
        );
    }
}
