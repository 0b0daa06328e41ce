//! HTTP conventions of the API (`api.md`), in one place: the error body and
//! the status for each error kind, strict JSON parsing, route keys, auth headers.

use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use messaging_core::domain::error::{AppError, ErrorKind};

/// A response handed to the Lambda runtime as built. `lambda_http`'s own
/// conversion of a `Response<Body>` collects and decodes every text body
/// again by the charset its `Content-Type` names, which links every
/// encoding `encoding_rs` knows (about 150 KB of each API function). Ours
/// need none of it: JSON and console files are UTF-8 `Body::Text`, and a
/// gzipped console file is `Body::Binary` with its `Content-Encoding`,
/// which that conversion passes through unchanged as well.
#[derive(Debug)]
pub struct AsBuilt(pub Response<Body>);

impl lambda_http::IntoResponse for AsBuilt {
    fn into_response(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

/// One API invocation: `handled` (a handler's `handle(request)`), metered
/// ([`crate::telemetry::metered`]), its response handed over as built.
pub async fn respond<F>(handled: F) -> Result<AsBuilt, std::convert::Infallible>
where
    F: std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>>,
{
    crate::telemetry::metered(handled).await.map(AsBuilt)
}

/// Bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The HTTP status for each kind of refusal. The only such mapping.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// A JSON response with a pre-serialised body.
pub fn raw_json(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => raw_json(status.as_u16(), body),
        Err(e) => {
            tracing::error!(error = %e, "response did not serialise");
            error(&AppError::unavailable(
                "The response could not be produced; retry shortly.",
            ))
        }
    }
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// The error body: `{"error": {"code", "message", "field"}}`.
pub fn error_body(e: &AppError) -> serde_json::Value {
    serde_json::json!({"error": {"code": e.code, "message": e.message, "field": e.field}})
}

/// The error response, with the status for its kind.
pub fn error(e: &AppError) -> Response<Body> {
    let mut response = raw_json(status_of(e.kind).as_u16(), error_body(e).to_string());
    if e.kind == ErrorKind::TooManyRequests {
        let seconds = e.retry_after_seconds.unwrap_or(1);
        response.headers_mut().insert(
            lambda_http::http::header::RETRY_AFTER,
            lambda_http::http::HeaderValue::from(seconds),
        );
    }
    response
}

/// The body bytes, refusing oversized ones with 413.
pub fn body_bytes(req: &Request) -> Result<&[u8], AppError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(AppError::payload_too_large(format!(
            "the request body is {} bytes; the most accepted is {MAX_BODY_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// `"POST /v1/messages"`: the API Gateway route that matched.
pub fn route_key(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => format!("{} {}", req.method(), req.uri().path()),
    }
}

/// A path parameter of the matched route.
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
}

/// A query-string parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
}

/// Refuses a parameter the route reads (`names`) when it is given empty
/// (`?sent_to=`) or more than once, with 422 `invalid_field` naming it.
/// Parameters the route does not read are ignored. (API Gateway's HTTP API
/// joins repeated values with commas in `queryStringParameters`; the raw
/// query string, which this reads, keeps them apart.)
pub fn check_query(req: &Request, names: &[&str]) -> Result<(), AppError> {
    let Some(params) = req.query_string_parameters_ref() else {
        return Ok(());
    };
    for name in names {
        let values = params.all(name).unwrap_or_default();
        if values.len() > 1 {
            return Err(AppError::invalid(
                "invalid_field",
                format!("{name} is given {} times; give it once", values.len()),
            )
            .at(*name));
        }
        if values.first().is_some_and(|v| v.is_empty()) {
            return Err(AppError::invalid(
                "invalid_field",
                format!("{name} is empty; give a value or leave it out"),
            )
            .at(*name));
        }
    }
    Ok(())
}

/// Default and largest page size of list endpoints.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 200;

/// `?limit=` (1..=200, default 50; else 422 `invalid_limit`) and `?cursor=`.
pub fn page_params(req: &Request) -> Result<(u32, Option<String>), AppError> {
    check_query(req, &["limit", "cursor"])?;
    let limit = match query_param(req, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                AppError::invalid(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
                .at("limit")
            })?,
    };
    Ok((limit, query_param(req, "cursor").filter(|c| !c.is_empty())))
}

/// A list answer: `{"items": [...], "next_cursor": "..." | null}`.
pub fn page<T: Serialize>(items: &[T], next_cursor: Option<String>) -> Response<Body> {
    json(
        StatusCode::OK,
        &serde_json::json!({"items": items, "next_cursor": next_cursor}),
    )
}

/// A header as text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `Idempotency-Key` header, if sent. A value that is not text (bytes
/// outside visible ASCII that HTTP still carries, such as Latin-1) is
/// refused like any other malformed key, never taken as "no key".
pub fn idempotency_key(req: &Request) -> Result<Option<&str>, AppError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| messaging_core::app::idempotency::invalid_key()),
    }
}

/// 404 for a route this function does not serve.
pub fn no_route() -> AppError {
    AppError::not_found("not_found", "there is no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_response_reaches_the_runtime_as_built() {
        use lambda_http::IntoResponse;
        let sent =
            respond(async { Ok(json(StatusCode::CREATED, &serde_json::json!({"id": "m1"}))) })
                .await
                .expect("infallible")
                .into_response()
                .await;
        assert_eq!(sent.status(), StatusCode::CREATED);
        assert_eq!(sent.headers()["content-type"], "application/json");
        assert!(matches!(sent.body(), Body::Text(t) if t == r#"{"id":"m1"}"#));
        // Gzipped bytes stay bytes (API Gateway gets them base64-encoded).
        let mut gzipped = Response::new(Body::Binary(vec![0x1f, 0x8b, 0]));
        gzipped
            .headers_mut()
            .insert("content-encoding", "gzip".parse().expect("header"));
        let sent = AsBuilt(gzipped).into_response().await;
        assert!(matches!(sent.body(), Body::Binary(b) if b == &[0x1f, 0x8b, 0]));
        let sent = AsBuilt(empty(StatusCode::NO_CONTENT)).into_response().await;
        assert!(matches!(sent.body(), Body::Empty));
    }

    #[test]
    fn a_key_that_is_not_text_is_refused_not_ignored() {
        let mut req = Request::default();
        assert_eq!(idempotency_key(&req).unwrap(), None);
        req.headers_mut().insert(
            "idempotency-key",
            lambda_http::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let e = idempotency_key(&req).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_idempotency_key", Some("Idempotency-Key"))
        );
        req.headers_mut().insert(
            "idempotency-key",
            lambda_http::http::HeaderValue::from_static("k-1"),
        );
        assert_eq!(idempotency_key(&req).unwrap(), Some("k-1"));
    }

    #[test]
    fn error_body_has_the_documented_shape() {
        let e = AppError::invalid("invalid_phone", "bad").at("to");
        assert_eq!(
            error_body(&e),
            serde_json::json!({"error": {"code": "invalid_phone", "message": "bad", "field": "to"}})
        );
        assert_eq!(status_of(e.kind), 422);
    }

    fn with_query(query: &str) -> Request {
        use lambda_http::RequestExt;
        let parsed: lambda_http::aws_lambda_events::query_map::QueryMap = query.parse().unwrap();
        Request::default().with_query_string_parameters(parsed)
    }

    #[test]
    fn a_read_parameter_given_empty_or_twice_is_refused_by_name() {
        let e = check_query(&with_query("sent_to="), &["sent_from", "sent_to"]).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("sent_to"))
        );
        let e = check_query(&with_query("status=open&status=closed"), &["status"]).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("status"))
        );
        let e = page_params(&with_query("limit=5&limit=6")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        let e = page_params(&with_query("cursor=")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("cursor"));
        // Parameters the route does not read are ignored, however given.
        check_query(&with_query("status=open&x=1&x=2&y="), &["status"]).unwrap();
        check_query(&Request::default(), &["status"]).unwrap();
        assert_eq!(page_params(&with_query("limit=7")).unwrap(), (7, None));
    }
}
