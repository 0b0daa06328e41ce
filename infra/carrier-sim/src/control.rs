//! Test-control endpoints under `/_sim`: inspection, fault injection, runtime
//! reconfiguration and inbound messages. None of these exist at Bandwidth;
//! they let the product's tests steer and observe the "carrier".

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::callbacks::{deliver, received_event};
use crate::sim::{new_message_id, now_rfc3339, segment_count, AppState, BwMessage, FaultMode};

/// `GET /_sim/health`.
pub async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// Query of `GET /_sim/messages`.
#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    /// Only messages to this number.
    pub to: Option<String>,
}

/// `GET /_sim/messages[?to=...]`.
pub async fn list_messages(
    State(state): State<AppState>,
    Query(query): Query<MessagesQuery>,
) -> Response {
    Json(state.messages(query.to.as_deref()).await).into_response()
}

/// `DELETE /_sim/messages`.
pub async fn clear_messages(State(state): State<AppState>) -> StatusCode {
    state.clear_messages().await;
    StatusCode::NO_CONTENT
}

/// Body of `POST /_sim/faults`.
#[derive(Debug, Deserialize)]
pub struct FaultRequest {
    /// Destination number the fault applies to.
    pub to: String,
    /// What the send API should do.
    pub mode: FaultMode,
    /// For how many sends (default 1).
    pub times: Option<u32>,
}

/// `POST /_sim/faults`.
pub async fn arm_fault(
    State(state): State<AppState>,
    Json(request): Json<FaultRequest>,
) -> Response {
    let times = request.times.unwrap_or(1);
    tracing::info!(to = %request.to, mode = ?request.mode, times, "fault armed");
    state
        .arm_fault(request.to.clone(), request.mode, times)
        .await;
    (
        StatusCode::CREATED,
        Json(json!({"to": request.to, "mode": request.mode, "times": times})),
    )
        .into_response()
}

/// `DELETE /_sim/faults`.
pub async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.clear_faults().await;
    StatusCode::NO_CONTENT
}

/// Body of `PUT /_sim/config`; absent fields are left unchanged.
#[derive(Debug, Deserialize)]
pub struct ConfigRequest {
    /// New webhook URL (empty string disables callbacks).
    pub callback_url: Option<String>,
    /// New callback Basic user.
    pub callback_user: Option<String>,
    /// New callback Basic password.
    pub callback_password: Option<String>,
}

/// `PUT /_sim/config`. The password is never echoed back.
pub async fn put_config(
    State(state): State<AppState>,
    Json(request): Json<ConfigRequest>,
) -> Json<Value> {
    let target = state
        .update_callback(
            request.callback_url,
            request.callback_user,
            request.callback_password,
        )
        .await;
    tracing::info!(url = ?target.url, user = %target.user, "callback target reconfigured");
    Json(json!({
        "callback_url": target.url,
        "callback_user": target.user,
        "callback_password_set": !target.password.is_empty(),
    }))
}

/// `POST /_sim/inbound`: a patient texts a practice number. The
/// `message-received` callback is delivered before answering, so a test can
/// assert on the product's reaction right after this call returns.
pub async fn inbound(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return bad_request(&format!("body is not valid JSON: {e}")),
    };
    let field = |name: &str| {
        parsed
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(from), Some(to), Some(text)) = (
        field("from"),
        field("to"),
        parsed.get("text").and_then(Value::as_str),
    ) else {
        return bad_request("'from', 'to' and 'text' are required strings");
    };
    let application_id = field("applicationId")
        .unwrap_or(state.application_id())
        .to_owned();

    let message = BwMessage {
        id: new_message_id(),
        owner: to.to_owned(),
        application_id,
        time: now_rfc3339(),
        segment_count: segment_count(text),
        direction: "in".to_owned(),
        to: vec![to.to_owned()],
        from: from.to_owned(),
        text: text.to_owned(),
        tag: None,
        media: None,
        priority: None,
    };
    let target = state.callback_target().await;
    let outcome = deliver(state.http(), &target, &received_event(&message)).await;
    tracing::info!(id = %message.id, from, to, status = ?outcome.status, attempts = outcome.attempts, "inbound callback finished");
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": message.id, "callback_status": outcome.status})),
    )
        .into_response()
}

fn bad_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"type": "request-validation", "description": description})),
    )
        .into_response()
}
