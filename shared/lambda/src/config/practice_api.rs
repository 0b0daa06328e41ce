//! The practice function's configuration.

use messaging_core::domain::event_endpoint::UrlPolicy;

use super::{session_cookie, url_policy, Env, FromEnv, HttpUrl};
use crate::session_cookie::SessionCookie;

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

impl FromEnv for PracticeApiConfig {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::vars;
    use super::*;

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
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
}
