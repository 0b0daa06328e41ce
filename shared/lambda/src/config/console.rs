//! The console function's configuration.

use super::{session_cookie, Env, FromEnv};
use crate::session_cookie::SessionCookie;

/// The console function: the console's files, sign-in and sign-out, and
/// the practice's staff accounts.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SESSION_COOKIE_SECURE` (default true).
    pub session_cookie: SessionCookie,
}

impl FromEnv for ConsoleConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            table_name: env.required("TABLE_NAME"),
            session_cookie: session_cookie(env),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::vars;
    use super::*;

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
}
