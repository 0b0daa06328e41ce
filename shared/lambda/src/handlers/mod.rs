//! Each function's entry: builds its dependencies once from the environment
//! and maps requests to use cases. A function's `main.rs` only calls these.

pub mod batch;
pub mod carrier_webhook;
pub mod console;
pub mod conversations;
pub mod dispatcher;
pub mod event_delivery;
pub mod events_api;
pub mod media_copier;
pub mod messages_api;
pub mod practice_api;
pub mod templates;

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

/// 403 `admin_only`: a `staff` session asked for what only an admin (or the
/// API key) may do; `what` says what, in the office's words.
pub(crate) fn admin_only(what: &str) -> AppError {
    AppError::forbidden(
        "admin_only",
        format!("Only an admin of the practice can {what}."),
    )
}

/// Requests as API Gateway hands them over, and their answers read back.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::request::RequestContext;
    use lambda_http::{Body, Request, RequestExt, Response};
    use serde_json::Value;

    /// The API key of the practice the tests add.
    pub(crate) const KEY: &str = "test-api-key-0123456789";

    /// A request for the route `route_key` (`"GET /v1/templates/{id}"`),
    /// with `body`; no credentials.
    pub(crate) fn request(route_key: &str, body: &str) -> Request {
        let (method, path) = route_key.split_once(' ').unwrap_or(("GET", route_key));
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.route_key = Some(route_key.to_string());
        lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body))
            .unwrap()
            .with_request_context(RequestContext::ApiGatewayV2(context))
    }

    /// `req` with the practice's API key.
    pub(crate) fn with_key(mut req: Request) -> Request {
        req.headers_mut()
            .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        req
    }

    /// `req` with `{id}` = `id`.
    pub(crate) fn with_id(req: Request, id: &str) -> Request {
        req.with_path_parameters(HashMap::from([("id".to_string(), id.to_string())]))
    }

    /// The answer's status and JSON body (`null` when empty).
    pub(crate) fn answer(response: Response<Body>) -> (u16, Value) {
        let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }
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
