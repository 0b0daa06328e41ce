//! Each function's entry: builds its dependencies once from the environment
//! and maps requests to use cases. A function's `main.rs` only calls these.

pub mod batch;
pub mod console;
pub mod conversations;
pub mod dispatcher;
pub mod event_delivery;
pub mod events_api;
pub mod media_copier;
pub mod messages_api;
pub mod practice_api;
pub mod templates;
pub mod webhook;

use lambda_http::{Body, Request, Response};

use messaging_core::app::auth::{Authenticator, Caller, Credentials, CSRF_HEADER};
use messaging_core::domain::error::AppError;
use messaging_core::ports::{PracticeStore, StaffStore};

use crate::config::ConfigError;
use crate::session_cookie::SessionCookie;

/// Why a function could not start (its cold start fails with this).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Missing or malformed variables.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The carrier's HTTP client could not be built.
    #[error("carrier client: {0}")]
    CarrierClient(reqwest::Error),
    /// The HTTP client for the office's endpoints could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// A password could not be read from Secrets Manager.
    #[error(transparent)]
    Secret(#[from] messaging_core::domain::error::StoreError),
}

/// Turns a handler's result into a response, logging server-side failures.
pub(crate) fn respond(route: &str, result: Result<Response<Body>, AppError>) -> Response<Body> {
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.kind == messaging_core::domain::error::ErrorKind::Unavailable {
                tracing::error!(route, error = %e, "request failed");
            } else {
                tracing::info!(route, code = e.code, field = ?e.field, "request refused");
            }
            crate::http::error(&e)
        }
    }
}

/// The `Authorization` header.
pub(crate) fn authorization(req: &Request) -> Option<&str> {
    crate::http::header(req.headers(), "authorization")
}

/// Whether a request's method changes state (what the console's CSRF
/// header guards).
pub(crate) fn changes_state(req: &Request) -> bool {
    !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS")
}

/// Who `req` is from: the API key's practice, or the signed-in staff
/// member's (see [`Authenticator::caller`]).
pub(crate) async fn caller<S: PracticeStore + StaffStore>(
    auth: &Authenticator<S>,
    cookie: SessionCookie,
    req: &Request,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Caller, AppError> {
    let credentials = Credentials {
        authorization: authorization(req),
        session_token: cookie.read(crate::http::header(req.headers(), "cookie")),
        changes_state: changes_state(req),
        requested_with: crate::http::header(req.headers(), CSRF_HEADER),
    };
    auth.caller(&credentials, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::domain::error::StoreError;

    #[test]
    fn a_start_error_says_what_its_cause_says() {
        let config = ConfigError {
            missing: vec!["TABLE_NAME"],
            malformed: Vec::new(),
        };
        assert_eq!(
            StartError::from(config).to_string(),
            "missing environment variables: TABLE_NAME"
        );
        let secret = StoreError::new("read secret", "access denied");
        let said = secret.to_string();
        assert_eq!(StartError::from(secret).to_string(), said);
    }
}
