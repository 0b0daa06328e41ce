//! Test-control endpoints under `/_sim`: inspection, fault injection, runtime
//! reconfiguration and inbound messages. None of these exist at Bandwidth;
//! they let the product's tests steer and observe the "carrier".
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /_sim/health` | `{"ok": true}` |
//! | `GET /_sim/messages[?to=]`, `DELETE` | accepted sends and their callbacks |
//! | `GET /_sim/attempts?to=` | `{"to", "attempts"}`: send requests received for `to`, faults included |
//! | `POST /_sim/faults`, `DELETE` | `{"to", "mode", "times"}` for the next `times` sends to `to`, see below |
//! | `PUT /_sim/config` | `{"callback_url", "callback_user", "callback_password", "media_failures"}`, all optional |
//! | `POST /_sim/inbound` | a patient texts (or MMSes) a practice number, see [`inbound`] |
//! | `GET /_sim/media-requests[?message_id=]`, `DELETE` | `{"count", "requests": [{"media_id", "status", "at"}]}` |
//! | `POST /_sim/aws/numbers` | `{"numbers": [...]}`: origination numbers of the simulated AWS account ([`crate::aws`]) |
//!
//! `PUT /_sim/config` also takes `aws_topic_arn` and `aws_sns_url`: where
//! the simulated AWS End User Messaging publishes its events and inbound
//! texts. A text to an AWS number through `/_sim/inbound` goes there
//! (answered once SNS took it; `callback_status` is SNS's status).
//!
//! Fault modes: `http_500`, `http_400`, `http_429` answer that status without
//! accepting; `timeout` hangs without accepting; `cut_before_accept` drops
//! the connection without accepting. These accept the message (recorded,
//! delivery reports sent) and then misbehave: `accept_then_timeout` hangs,
//! `cut_after_accept` drops the connection unanswered, `cut_body_after_2xx`
//! answers 202 and cuts the body, `duplicate_callbacks` posts every delivery
//! report twice, `early_callbacks` posts the report before answering.
//!
//! `media_failures: N` makes the next N downloads of stored media from the
//! media API answer 503 (`0` disarms), for tests of the product's download
//! retries; `GET /_sim/media-requests` then shows every attempt with the
//! status it got.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::FieldError;
use crate::callbacks::{deliver, received_event};
use crate::media::{store_inbound_media, validate_media};
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

/// Query of `GET /_sim/attempts`.
#[derive(Debug, Deserialize)]
pub struct AttemptsQuery {
    /// The destination number.
    pub to: String,
}

/// `GET /_sim/attempts?to=`: how many valid send requests reached the
/// simulator for `to`, whatever it answered (faults included).
pub async fn count_attempts(
    State(state): State<AppState>,
    Query(query): Query<AttemptsQuery>,
) -> Response {
    let attempts = state.attempts(&query.to).await;
    Json(json!({"to": query.to, "attempts": attempts})).into_response()
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
    /// The next this-many downloads of stored media answer 503 (0 disarms).
    pub media_failures: Option<u32>,
    /// The stack's SMS event topic, where AWS events and inbound texts go.
    pub aws_topic_arn: Option<String>,
    /// The SNS endpoint to publish them through (the emulator).
    pub aws_sns_url: Option<String>,
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
    if let Some(times) = request.media_failures {
        tracing::info!(times, "media download failures armed");
        state.set_media_failures(times).await;
    }
    if request.aws_topic_arn.is_some() || request.aws_sns_url.is_some() {
        state
            .set_aws_target(request.aws_topic_arn, request.aws_sns_url)
            .await;
    }
    let aws = state.aws_target().await;
    Json(json!({
        "callback_url": target.url,
        "callback_user": target.user,
        "callback_password_set": !target.password.is_empty(),
        "media_failures": state.media_failures().await,
        "aws_topic_arn": aws.topic_arn,
        "aws_sns_url": aws.sns_url,
    }))
}

/// `POST /_sim/inbound`: a patient texts a practice number. The
/// `message-received` callback is delivered before answering, so a test can
/// assert on the product's reaction right after this call returns.
///
/// Body: `{"from", "to", "text", "applicationId"?, "media"?}`. With
/// `"media": [{"content_type": "image/jpeg", "base64": "..."}]` it is an MMS:
/// the files are stored behind media URLs (see [`crate::media`]) that go in
/// the callback's `message.media`, `segmentCount` is 1 as Bandwidth reports
/// for every MMS, and `text` may be empty or absent. Missing `from`/`to`/
/// `text` is a 400; bad media is a 422 whose `fieldErrors` name the item
/// (`media[0].content_type`), and then nothing is stored or posted.
///
/// Answer: 202 `{"id", "callback_status", "media"?: [url, ...]}`.
pub async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
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
    let media = parsed.get("media").filter(|m| !m.is_null());
    let text = match parsed.get("text") {
        Some(Value::String(text)) => Some(text.as_str()),
        None | Some(Value::Null) if media.is_some() => Some(""),
        _ => None,
    };
    let (Some(from), Some(to), Some(text)) = (field("from"), field("to"), text) else {
        return bad_request(
            "'from', 'to' and 'text' are required strings ('text' may be left out of an MMS)",
        );
    };
    let files = match media.map(validate_media).transpose() {
        Ok(files) => files,
        Err(field_errors) => return unprocessable_media(field_errors),
    };
    let application_id = field("applicationId")
        .unwrap_or(state.application_id())
        .to_owned();
    if state.is_aws_number(to).await {
        return aws_inbound(&state, from, to, text, files.is_some()).await;
    }

    let id = new_message_id();
    let media_urls = match files {
        Some(files) => {
            let base_url = media_base_url(&state, &headers);
            Some(store_inbound_media(&state, &base_url, &id, files).await)
        }
        None => None,
    };
    let message = BwMessage {
        id,
        owner: to.to_owned(),
        application_id,
        time: now_rfc3339(),
        // Bandwidth reports every MMS as one segment.
        segment_count: if media_urls.is_some() {
            1
        } else {
            segment_count(text)
        },
        direction: "in".to_owned(),
        to: vec![to.to_owned()],
        from: from.to_owned(),
        text: text.to_owned(),
        tag: None,
        media: media_urls.clone(),
        priority: None,
    };
    let target = state.callback_target().await;
    let outcome = deliver(state.http(), &target, &received_event(&message)).await;
    tracing::info!(id = %message.id, from, to, media = media_urls.as_ref().map_or(0, Vec::len), status = ?outcome.status, attempts = outcome.attempts, "inbound callback finished");
    let mut answer = json!({"id": message.id, "callback_status": outcome.status});
    if let Some(urls) = media_urls {
        answer["media"] = json!(urls);
    }
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

/// A text to a number of the simulated AWS account: published to the SMS
/// event topic as AWS's two-way channel would (the stack acts on it within
/// about a second, after this answers). AWS End User Messaging receives no
/// MMS, so a picture is refused, not silently dropped.
async fn aws_inbound(
    state: &AppState,
    from: &str,
    to: &str,
    text: &str,
    has_media: bool,
) -> Response {
    if has_media {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "type": "request-validation",
                "description": format!("{to} is on AWS End User Messaging SMS, which receives no MMS: send text only"),
            })),
        )
            .into_response();
    }
    let id = uuid::Uuid::new_v4().to_string();
    let status = crate::aws::publish(state, &crate::aws::inbound_text(&id, from, to, text)).await;
    tracing::info!(%id, from, to, ?status, "inbound AWS text published");
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "callback_status": status, "carrier": "aws"})),
    )
        .into_response()
}

/// Where media URLs point: the configured public URL, else the address this
/// request reached us at.
fn media_base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state.public_url() {
        return url.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Query of `GET /_sim/media-requests`.
#[derive(Debug, Deserialize)]
pub struct MediaRequestsQuery {
    /// Only requests for media of this message.
    pub message_id: Option<String>,
}

/// `GET /_sim/media-requests[?message_id=...]`: every media API request,
/// oldest first, with the status it got.
pub async fn list_media_requests(
    State(state): State<AppState>,
    Query(query): Query<MediaRequestsQuery>,
) -> Json<Value> {
    let message_id = query.message_id.as_deref().filter(|id| !id.is_empty());
    let requests = state.media_requests(message_id).await;
    Json(json!({"count": requests.len(), "requests": requests}))
}

/// `DELETE /_sim/media-requests`.
pub async fn clear_media_requests(State(state): State<AppState>) -> StatusCode {
    state.clear_media_requests().await;
    StatusCode::NO_CONTENT
}

fn unprocessable_media(field_errors: Vec<FieldError>) -> Response {
    let details: Vec<String> = field_errors
        .iter()
        .map(|e| format!("{}: {}", e.field_name, e.description))
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "type": "request-validation",
            "description": format!("Invalid media: {}", details.join("; ")),
            "fieldErrors": field_errors,
        })),
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
