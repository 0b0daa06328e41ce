//! The one error type of the application layer. Every refusal the API gives is
//! built here; the HTTP status for each kind is chosen in exactly one place
//! (`messaging_lambda::http::status_of`).

use std::fmt;

/// What kind of refusal an [`AppError`] is; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is not well-formed (bad JSON, unknown field).
    BadRequest,
    /// No or unknown API key, or wrong webhook credentials.
    Unauthorized,
    /// Authenticated, but not allowed to do this (a staff member who is not
    /// an admin; a console request without its CSRF header).
    Forbidden,
    /// The resource does not exist for this practice.
    NotFound,
    /// The request conflicts with the resource's current state.
    Conflict,
    /// The body is larger than the API accepts.
    PayloadTooLarge,
    /// Well-formed but refused by a business rule (invalid phone, empty text...).
    Unprocessable,
    /// A dependency (database, queue) failed; the client may retry.
    Unavailable,
    /// The practice sent more requests than its limit; retry after a second.
    TooManyRequests,
}

/// A refusal with a stable `code`, a sentence the office can act on, and the
/// JSON path of the offending field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// Decides the HTTP status.
    pub kind: ErrorKind,
    /// Stable, snake_case machine code (`invalid_phone`).
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
    /// JSON path of the field at fault (`to`, `recipients[0].phone`), if any.
    pub field: Option<String>,
    /// For a 429: in how many seconds a retry may succeed (`Retry-After`);
    /// `None` means one second.
    pub retry_after_seconds: Option<u64>,
}

impl AppError {
    fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            field: None,
            retry_after_seconds: None,
        }
    }

    /// Attaches the JSON path of the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request is not well-formed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    /// 422: a business rule refuses the request.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    /// 404 with a code naming what was not found.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    /// 409: conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// 401: missing or unknown credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    /// 429 with its own code (a sign-in refused after too many failures).
    pub fn too_many(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooManyRequests, code, message)
    }

    /// Says when a retry may succeed (a 429's `Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds.max(1));
        self
    }

    /// 401 with its own code (`invalid_credentials` for a failed sign-in).
    pub fn unauthorized_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, code, message)
    }

    /// 413: the body is too large.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PayloadTooLarge, "payload_too_large", message)
    }

    /// 429: the practice is over its request limit.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooManyRequests, "rate_limited", message)
    }

    /// 503: a dependency failed. The detail is logged, not shown to the client.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "service_unavailable", message)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

/// A failure of an adapter (DynamoDB, SQS, the carrier's HTTP API) that the
/// domain cannot act on beyond "try again later".
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct StoreError {
    /// What was being done (`create message`).
    pub operation: &'static str,
    /// The adapter's own description of the failure, for logs only.
    pub detail: String,
}

impl StoreError {
    /// Wraps an adapter error with the operation it interrupted.
    pub fn new(operation: &'static str, detail: impl fmt::Display) -> Self {
        Self {
            operation,
            detail: detail.to_string(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        AppError::unavailable("The service could not complete the request just now; retry shortly.")
    }
}
