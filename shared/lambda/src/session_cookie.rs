//! The console's session cookie: how it is written and read.
//!
//! `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/`, and on a deployment served over HTTPS `Secure` with
//! the `__Host-` name prefix (browsers then refuse it from plain HTTP or
//! with a `Domain`). The local cloud is plain HTTP, where browsers keep a
//! `Secure` cookie only from 127.0.0.1 and localhost, not from another
//! address the console may be opened on: there, and only there
//! (`SESSION_COOKIE_SECURE=false`), the cookie is `pm_session` without
//! `Secure`. A deployment reads only the name it writes.

use chrono::{DateTime, Utc};

/// How the deployment writes its session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCookie {
    /// `Secure` and the `__Host-` prefix (everywhere but the local cloud).
    pub secure: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self { secure: true }
    }
}

impl SessionCookie {
    /// The cookie's name.
    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-pm_session"
        } else {
            "pm_session"
        }
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "Path=/; HttpOnly; Secure; SameSite=Strict"
        } else {
            "Path=/; HttpOnly; SameSite=Strict"
        }
    }

    /// `Set-Cookie` for a new session, ending when the session does.
    pub fn set(&self, token: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let max_age = (expires_at - now).num_seconds().max(0);
        format!(
            "{}={token}; {}; Max-Age={max_age}",
            self.name(),
            self.attributes()
        )
    }

    /// `Set-Cookie` that makes the browser forget the cookie.
    pub fn clear(&self) -> String {
        format!("{}=; {}; Max-Age=0", self.name(), self.attributes())
    }

    /// The session token in a `Cookie` header, if this deployment's cookie
    /// is there with a value.
    pub fn read<'a>(&self, cookie_header: Option<&'a str>) -> Option<&'a str> {
        let name = self.name();
        cookie_header?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_secure_deployment_writes_a_host_only_secure_cookie() {
        let cookie = SessionCookie { secure: true };
        let now = Utc::now();
        let set = cookie.set("pms_abc", now + Duration::hours(12), now);
        assert_eq!(
            set,
            "__Host-pm_session=pms_abc; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=43200"
        );
        assert!(cookie.clear().contains("Max-Age=0"));
        assert!(cookie.clear().contains("Secure"));
    }

    #[test]
    fn the_local_cloud_drops_only_secure_and_the_prefix() {
        let cookie = SessionCookie { secure: false };
        let now = Utc::now();
        assert_eq!(
            cookie.set("pms_abc", now + Duration::seconds(10), now),
            "pm_session=pms_abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=10"
        );
    }

    #[test]
    fn only_this_deployments_cookie_is_read() {
        let secure = SessionCookie { secure: true };
        let local = SessionCookie { secure: false };
        let header = Some("theme=dark; __Host-pm_session=pms_1 ; pm_session=pms_2");
        assert_eq!(secure.read(header), Some("pms_1"));
        assert_eq!(local.read(header), Some("pms_2"));
        assert_eq!(secure.read(Some("pm_session=pms_2")), None);
        assert_eq!(local.read(Some("pm_session=")), None);
        assert_eq!(local.read(None), None);
    }
}
