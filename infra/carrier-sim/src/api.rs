//! Bandwidth Messaging API v2 "create message":
//! `POST /api/v2/users/{accountId}/messages`.
//!
//! Status codes and error bodies follow Bandwidth's documented shapes
//! (`{"type", "description", "fieldErrors"}`) because the product's adapter
//! maps them to retry / permanent-failure decisions.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::callbacks::{spawn_status_callbacks, status_callbacks};
use crate::sim::{
    new_message_id, now_rfc3339, segment_count, AppState, BwMessage, FaultMode, StoredMessage,
};

/// One invalid field, as in Bandwidth's `fieldErrors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// JSON field name.
    pub field_name: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: &str, description: &str) -> Self {
        Self {
            field_name: field.to_owned(),
            description: description.to_owned(),
        }
    }
}

/// A send request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSend {
    /// Bandwidth application id.
    pub application_id: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// Body.
    pub text: String,
    /// Caller's tag.
    pub tag: Option<String>,
    /// Media URLs.
    pub media: Option<Vec<String>>,
    /// Priority (`default` / `high`).
    pub priority: Option<String>,
    /// Expiration timestamp.
    pub expiration: Option<String>,
}

/// Why the send API refused a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong HTTP Basic credentials.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Credentials fine, but for another account.
    #[error("credentials are not valid for account {0}")]
    Forbidden(String),
    /// The body is not a valid create-message request.
    #[error("{description}")]
    Validation {
        /// Summary.
        description: String,
        /// Offending fields.
        field_errors: Vec<FieldError>,
    },
    /// A test armed a fault for this destination.
    #[error("injected fault {0:?}")]
    Injected(FaultMode),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let description = self.to_string();
        match self {
            Self::Unauthorized => {
                let body = json!({"type": "authentication-error", "description": description});
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"bandwidth\""),
                );
                response
            }
            Self::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                Json(json!({"type": "forbidden", "description": description})),
            )
                .into_response(),
            Self::Validation {
                description,
                field_errors,
            } => (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "type": "request-validation",
                    "description": description,
                    "fieldErrors": field_errors,
                })),
            )
                .into_response(),
            Self::Injected(mode) => injected_response(mode),
        }
    }
}

pub(crate) fn injected_response(mode: FaultMode) -> Response {
    match mode {
        FaultMode::Http500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"type": "internal-server-error", "description": "Simulated carrier failure"})),
        )
            .into_response(),
        FaultMode::Http400 => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "type": "request-validation",
                "description": "Simulated rejection of the request",
                "fieldErrors": [],
            })),
        )
            .into_response(),
        FaultMode::Http429 => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"type": "too-many-requests", "description": "Simulated rate limit"})),
            )
                .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        // Only reached if the hang ended (hang time elapsed or shutdown):
        // the client has normally given up long before.
        _ => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({"type": "gateway-timeout", "description": "Simulated timeout"})),
        )
            .into_response(),
    }
}

/// Decodes an `Authorization: Basic ...` header into user and password.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks a create-message body, collecting every field error at once like
/// Bandwidth does. `to` may be a single string or an array of strings.
pub fn validate(body: &Value) -> Result<ValidSend, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();

    let mut required_string = |field: &str, allow_empty: bool| -> Option<String> {
        match object.get(field) {
            None | Some(Value::Null) => {
                errors.push(FieldError::new(field, &format!("'{field}' is required")));
                None
            }
            Some(Value::String(s)) if !allow_empty && s.trim().is_empty() => {
                errors.push(FieldError::new(
                    field,
                    &format!("'{field}' must not be empty"),
                ));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(FieldError::new(
                    field,
                    &format!("'{field}' must be a string"),
                ));
                None
            }
        }
    };
    let application_id = required_string("applicationId", false);
    let from = required_string("from", false);
    let text = required_string("text", true);

    let to = match object.get("to") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("to", "'to' is required"));
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(vec![s.clone()]),
        Some(Value::Array(items)) if items.is_empty() => {
            errors.push(FieldError::new(
                "to",
                "'to' must contain at least one phone number",
            ));
            None
        }
        Some(Value::Array(items)) => {
            let numbers: Option<Vec<String>> = items
                .iter()
                .map(|item| {
                    item.as_str()
                        .filter(|s| !s.trim().is_empty())
                        .map(str::to_owned)
                })
                .collect();
            if numbers.is_none() {
                errors.push(FieldError::new(
                    "to",
                    "every 'to' entry must be a non-empty phone number string",
                ));
            }
            numbers
        }
        Some(_) => {
            errors.push(FieldError::new(
                "to",
                "'to' must be a phone number or an array of phone numbers",
            ));
            None
        }
    };

    let optional_string = |field: &str, errors: &mut Vec<FieldError>| match object.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                field,
                &format!("'{field}' must be a string"),
            ));
            None
        }
    };
    let tag = optional_string("tag", &mut errors);
    let priority = optional_string("priority", &mut errors);
    let expiration = optional_string("expiration", &mut errors);
    let media = match object.get("media") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let urls: Option<Vec<String>> = items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect();
            if urls.is_none() {
                errors.push(FieldError::new("media", "'media' must be an array of URLs"));
            }
            urls
        }
        Some(_) => {
            errors.push(FieldError::new("media", "'media' must be an array of URLs"));
            None
        }
    };

    match (application_id, to, from, text) {
        (Some(application_id), Some(to), Some(from), Some(text)) if errors.is_empty() => {
            Ok(ValidSend {
                application_id,
                to,
                from,
                text,
                tag,
                media,
                priority,
                expiration,
            })
        }
        _ => Err(errors),
    }
}

/// `POST /api/v2/users/{accountId}/messages`.
pub async fn create_message(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let authorized = basic_credentials(&headers)
        .is_some_and(|(user, password)| state.credentials_match(&user, &password));
    if !authorized {
        tracing::warn!(account_id, "send refused: bad credentials");
        return Err(ApiError::Unauthorized);
    }
    if account_id != state.account_id() {
        tracing::warn!(account_id, "send refused: unknown account");
        return Err(ApiError::Forbidden(account_id));
    }
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Validation {
        description: format!("Request body is not valid JSON: {e}"),
        field_errors: Vec::new(),
    })?;
    let send = validate(&parsed).map_err(|field_errors| ApiError::Validation {
        description: "Your request could not be accepted. Check the fieldErrors.".to_owned(),
        field_errors,
    })?;

    state.count_attempt(&send.to).await;
    let fault = state.take_fault(&send.to).await;
    if let Some(mode) = fault.filter(|m| !m.accepts()) {
        tracing::info!(to = ?send.to, ?mode, "send answered with injected fault");
        match mode {
            FaultMode::Timeout => hang(&state, state.fault_hang()).await,
            FaultMode::CutBeforeAccept => cut_connection(),
            _ => {}
        }
        return Err(ApiError::Injected(mode));
    }

    let received_at = now_rfc3339();
    let message = BwMessage {
        id: new_message_id(),
        owner: send.from.clone(),
        application_id: send.application_id.clone(),
        time: received_at.clone(),
        segment_count: segment_count(&send.text),
        direction: "out".to_owned(),
        to: send.to.clone(),
        from: send.from.clone(),
        text: send.text.clone(),
        tag: send.tag.clone(),
        media: send.media.clone(),
        priority: send.priority.clone(),
    };
    state
        .record(StoredMessage {
            id: message.id.clone(),
            from: send.from,
            to: send.to,
            text: send.text,
            tag: send.tag,
            application_id: send.application_id,
            media: send.media,
            priority: send.priority,
            expiration: send.expiration,
            received_at,
            callbacks: Vec::new(),
            carrier: None,
        })
        .await;
    tracing::info!(id = %message.id, from = %message.from, to = ?message.to, segments = message.segment_count, "message accepted");
    match fault {
        Some(FaultMode::EarlyCallbacks) => status_callbacks(&state, message.clone(), 1).await,
        Some(FaultMode::DuplicateCallbacks) => spawn_status_callbacks(&state, message.clone(), 2),
        _ => spawn_status_callbacks(&state, message.clone(), 1),
    }
    if let Some(mode) = fault {
        tracing::info!(id = %message.id, ?mode, "accepted send answered with injected fault");
    }
    match fault {
        Some(FaultMode::AcceptThenTimeout) => {
            hang(&state, state.fault_hang()).await;
            Err(ApiError::Injected(FaultMode::Timeout))
        }
        Some(FaultMode::CutAfterAccept) => cut_connection(),
        Some(FaultMode::CutBodyAfter2xx) => Ok(body_cut_short(&message)),
        _ => Ok((StatusCode::ACCEPTED, Json(message)).into_response()),
    }
}

/// Panic payload that drops the connection without an answer: the server
/// runs each connection in its own task, so unwinding out of the handler
/// closes the socket. `main` keeps these panics out of the log.
#[derive(Debug, Clone, Copy)]
pub struct CutConnection;

pub(crate) fn cut_connection() -> ! {
    std::panic::panic_any(CutConnection)
}

/// A 202 whose JSON body breaks off after its first bytes.
fn body_cut_short(message: &BwMessage) -> Response {
    let json = serde_json::to_vec(message).unwrap_or_default();
    let head = Bytes::copy_from_slice(&json[..json.len().min(8)]);
    // The head and the first bytes go out; a moment later the body fails,
    // which makes the server drop the connection mid-body.
    let chunks = futures_util::stream::unfold(Some(head), |head| async move {
        match head {
            Some(head) => Some((Ok(head), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "cut by fault",
                    )),
                    None,
                ))
            }
        }
    });
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Holds a faulted request open, but lets go early on shutdown so the
/// server can stop promptly.
pub(crate) async fn hang(state: &AppState, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = state.shutdown_requested() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field_name.as_str()).collect()
    }

    #[test]
    fn valid_request_with_array_to() {
        let send = validate(&json!({
            "applicationId": "app", "to": ["+14155550123"], "from": "+14155550100",
            "text": "hi", "tag": "t-1"
        }))
        .expect("valid");
        assert_eq!(send.to, vec!["+14155550123"]);
        assert_eq!(send.tag.as_deref(), Some("t-1"));
    }

    #[test]
    fn single_string_to_is_accepted() {
        let send = validate(&json!({"applicationId": "a", "to": "+1", "from": "+2", "text": ""}))
            .expect("valid");
        assert_eq!(send.to, vec!["+1"]);
    }

    #[test]
    fn missing_fields_are_all_reported() {
        let errors = validate(&json!({})).expect_err("invalid");
        assert_eq!(names(&errors), vec!["applicationId", "from", "text", "to"]);
    }

    #[test]
    fn empty_or_bad_to_is_rejected() {
        let base = |to: Value| json!({"applicationId": "a", "to": to, "from": "+2", "text": "x"});
        assert_eq!(
            names(&validate(&base(json!([]))).expect_err("empty")),
            vec!["to"]
        );
        assert_eq!(
            names(&validate(&base(json!([1]))).expect_err("number")),
            vec!["to"]
        );
        assert_eq!(
            names(&validate(&base(json!([""]))).expect_err("blank")),
            vec!["to"]
        );
        assert_eq!(
            names(&validate(&base(json!({}))).expect_err("object")),
            vec!["to"]
        );
    }

    #[test]
    fn wrong_types_and_non_objects_are_rejected() {
        let errors =
            validate(&json!({"applicationId": 1, "to": ["+1"], "from": "", "text": "x", "tag": 3}))
                .expect_err("invalid");
        assert_eq!(names(&errors), vec!["applicationId", "from", "tag"]);
        assert_eq!(
            names(&validate(&json!([1])).expect_err("array")),
            vec!["body"]
        );
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTpwOnc="),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("u".to_owned(), "p:w".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&headers), None);
    }
}
