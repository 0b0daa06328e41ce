//! Bandwidth v2 callbacks: building the event payloads and posting them to
//! the product's webhook with retries.
//!
//! Bandwidth posts a JSON *array* of events (one per call here), with HTTP
//! Basic auth when the application is configured with callback credentials,
//! and retries when the webhook is unreachable or answers 5xx. The simulator
//! mirrors that so the product's webhook handler is exercised exactly as in
//! production.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::CallbackTarget;
use crate::sim::{fate_for, now_rfc3339, AppState, BwMessage, CallbackRecord, Fate};

/// Retries after the first attempt when the webhook is down or answers 5xx.
pub const MAX_RETRIES: u32 = 5;
/// First backoff; doubles after each failed attempt (200 ms, 400 ms, ...).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How a callback went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Last HTTP status the webhook answered; `None` if it never answered or
    /// no callback URL is configured.
    pub status: Option<u16>,
    /// HTTP attempts made (0 when there is no callback URL).
    pub attempts: u32,
}

/// The `message-delivered` / `message-failed` event for one recipient.
pub fn status_event(message: &BwMessage, to: &str, fate: Fate) -> Value {
    let mut event = json!({
        "time": now_rfc3339(),
        "to": to,
        "message": message,
    });
    match fate {
        Fate::Delivered => {
            event["type"] = json!("message-delivered");
            event["description"] = json!("ok");
        }
        Fate::Failed { code, description } => {
            event["type"] = json!("message-failed");
            event["description"] = json!(description);
            event["errorCode"] = json!(code);
        }
    }
    json!([event])
}

/// The `message-received` event for an inbound message.
pub fn received_event(message: &BwMessage) -> Value {
    let to = message.owner.clone();
    json!([{
        "type": "message-received",
        "time": now_rfc3339(),
        "description": "Incoming message received",
        "to": to,
        "message": message,
    }])
}

/// Posts `body` to the target, retrying connection errors and 5xx answers up
/// to [`MAX_RETRIES`] times with exponential backoff. A 4xx is final: the
/// webhook understood and refused, and retrying would not change that.
pub async fn deliver(
    http: &reqwest::Client,
    target: &CallbackTarget,
    body: &Value,
) -> DeliveryOutcome {
    let Some(url) = target.url.as_deref() else {
        return DeliveryOutcome {
            status: None,
            attempts: 0,
        };
    };
    let mut backoff = FIRST_BACKOFF;
    let mut outcome = DeliveryOutcome {
        status: None,
        attempts: 0,
    };
    loop {
        outcome.attempts += 1;
        let mut request = http.post(url).json(body);
        if !target.user.is_empty() || !target.password.is_empty() {
            request = request.basic_auth(&target.user, Some(&target.password));
        }
        let retryable = match request.send().await {
            Ok(response) => {
                let status = response.status();
                outcome.status = Some(status.as_u16());
                tracing::info!(
                    url,
                    status = status.as_u16(),
                    attempt = outcome.attempts,
                    "callback answered"
                );
                status.is_server_error()
            }
            Err(error) => {
                outcome.status = None;
                tracing::warn!(url, attempt = outcome.attempts, %error, "callback not delivered");
                true
            }
        };
        if !retryable || outcome.attempts > MAX_RETRIES {
            return outcome;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

/// Schedules the status callbacks of `message` (see [`status_callbacks`])
/// in a background task so the 202 is not held up by the webhook.
pub fn spawn_status_callbacks(state: &AppState, message: BwMessage, copies: u32) {
    let state = state.clone();
    tokio::spawn(async move { status_callbacks(&state, message, copies).await });
}

/// Posts one status callback per recipient after the delivery delay,
/// `copies` times each (a carrier may repeat a delivery report), the
/// recipients concurrently.
pub async fn status_callbacks(state: &AppState, message: BwMessage, copies: u32) {
    let mut tasks = tokio::task::JoinSet::new();
    for to in message.to.clone() {
        let state = state.clone();
        let message = message.clone();
        tasks.spawn(async move {
            tokio::time::sleep(state.delivery_delay()).await;
            for _ in 0..copies.max(1) {
                status_callback(&state, &message, &to).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn status_callback(state: &AppState, message: &BwMessage, to: &str) {
    let fate = fate_for(to);
    let body = status_event(message, to, fate);
    let kind = match fate {
        Fate::Delivered => "message-delivered",
        Fate::Failed { .. } => "message-failed",
    };
    let target = state.callback_target().await;
    let outcome = deliver(state.http(), &target, &body).await;
    tracing::info!(
        id = %message.id,
        to = %to,
        kind,
        status = ?outcome.status,
        attempts = outcome.attempts,
        "status callback finished"
    );
    state
        .record_callback(
            &message.id,
            CallbackRecord {
                kind: kind.to_owned(),
                to: to.to_owned(),
                status: outcome.status,
                attempts: outcome.attempts,
                at: now_rfc3339(),
            },
        )
        .await;
}
