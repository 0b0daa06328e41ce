//! Each function's entry: builds its dependencies once from the environment
//! and maps requests to use cases. A function's `main.rs` only calls these.

pub mod appointments;
pub mod batch;
pub mod carrier_events;
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
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.kind == messaging_core::domain::error::ErrorKind::Unavailable {
                tracing::error!(route, error = %e, "request failed");
            } else {
                tracing::info!(route, code = e.code, field = ?e.field, "request refused");
            }
            crate::http::error(&e)
        }
    };
    protect(route, &mut response);
    response
}

/// What every answer carries: no content-type guessing by the browser
/// (`nosniff`) and HTTPS only from then on (HSTS; browsers ignore it over
/// the local cloud's plain HTTP). An answer of the API (`/v1/…`, patient
/// data) is also never kept by a cache, unless its handler said otherwise.
fn protect(route: &str, response: &mut Response<Body>) {
    use lambda_http::http::header::{
        CACHE_CONTROL, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    };
    use lambda_http::http::HeaderValue;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    if route
        .split_once(' ')
        .is_some_and(|(_, path)| path.starts_with("/v1/"))
    {
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
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
    fn api_answers_are_never_cached_and_every_answer_is_nosniff_and_https_only() {
        let header = |r: &Response<Body>, name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let ok = respond(
            "GET /v1/patients/{id}",
            Ok(crate::http::json(
                lambda_http::http::StatusCode::OK,
                &serde_json::json!({}),
            )),
        );
        let refused = respond("GET /v1/settings", Err(AppError::unauthorized("no key")));
        for r in [&ok, &refused] {
            assert_eq!(header(r, "cache-control").as_deref(), Some("no-store"));
            assert_eq!(
                header(r, "x-content-type-options").as_deref(),
                Some("nosniff")
            );
            assert!(header(r, "strict-transport-security")
                .unwrap()
                .starts_with("max-age="));
        }
        // The console's files keep the caching their handler chose.
        let mut asset = crate::http::empty(lambda_http::http::StatusCode::OK);
        asset
            .headers_mut()
            .insert("cache-control", "no-cache".parse().unwrap());
        let asset = respond("GET /console/{asset}", Ok(asset));
        assert_eq!(header(&asset, "cache-control").as_deref(), Some("no-cache"));
        assert_eq!(
            header(&asset, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }

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
