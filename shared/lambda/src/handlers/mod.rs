//! Each function's entry: builds its dependencies once from the environment
//! and maps requests to use cases. A function's `main.rs` only calls these.

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

use messaging_core::domain::error::AppError;

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
