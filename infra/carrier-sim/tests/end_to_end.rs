//! End-to-end: the simulator and a fake product webhook run in-process on
//! ephemeral ports; the tests talk to the simulator over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use carrier_sim::{router, AppState, CallbackTarget, Config};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

const ACCOUNT: &str = "9900000";
const HOOK_USER: &str = "hook-user";
const HOOK_PASSWORD: &str = "hook-pass";
const DEADLINE: Duration = Duration::from_secs(10);

/// One request the fake webhook received.
#[derive(Debug, Clone)]
struct Received {
    authorization: Option<String>,
    body: Value,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

struct Harness {
    sim: String,
    inbox: Inbox,
    http: reqwest::Client,
}

async fn webhook(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    inbox.lock().await.push(Received {
        authorization,
        body,
    });
    StatusCode::NO_CONTENT
}

async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    format!("http://{address}")
}

async fn start() -> Harness {
    let inbox: Inbox = Arc::default();
    let hook = serve(
        Router::new()
            .route("/webhooks/bandwidth", post(webhook))
            .with_state(inbox.clone()),
    )
    .await;
    let config = Config {
        callback: CallbackTarget {
            url: Some(format!("{hook}/webhooks/bandwidth")),
            user: HOOK_USER.to_owned(),
            password: HOOK_PASSWORD.to_owned(),
        },
        delivery_delay: Duration::from_millis(20),
        ..Config::default()
    };
    let sim = serve(router(AppState::new(config).expect("state"))).await;
    Harness {
        sim,
        inbox,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    async fn send(&self, to: &str, user: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v2/users/{ACCOUNT}/messages", self.sim))
            .basic_auth(user, Some(password))
            .json(&json!({
                "applicationId": "app-1",
                "to": [to],
                "from": "+14155550100",
                "text": "Your appointment is tomorrow",
                "tag": "msg-42",
            }))
            .send()
            .await
            .expect("send request")
    }

    /// Polls the webhook inbox until an event of `kind` for `to` arrives.
    async fn wait_for_event(&self, kind: &str, to: &str) -> Received {
        let give_up = tokio::time::Instant::now() + DEADLINE;
        loop {
            let found = self
                .inbox
                .lock()
                .await
                .iter()
                .find(|r| r.body[0]["type"] == kind && r.body[0]["to"] == to)
                .cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "no {kind} callback for {to}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn messages(&self, to: &str) -> Vec<Value> {
        let response = self
            .http
            // `+` must be percent-encoded or the server reads it as a space.
            .get(format!(
                "{}/_sim/messages?to={}",
                self.sim,
                to.replace('+', "%2B")
            ))
            .send()
            .await
            .expect("list messages");
        assert_eq!(response.status(), 200);
        response.json().await.expect("messages json")
    }
}

fn expected_auth() -> String {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{HOOK_USER}:{HOOK_PASSWORD}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn accepted_send_gets_delivered_callback_with_basic_auth() {
    let h = start().await;
    let response = h.send("+14155550123", "sim-user", "sim-password").await;
    assert_eq!(response.status(), 202);
    let sent: Value = response.json().await.expect("json");
    let id = sent["id"].as_str().expect("id").to_owned();
    assert!(id.ends_with("sim"));
    assert_eq!(sent["owner"], "+14155550100");
    assert_eq!(sent["direction"], "out");
    assert_eq!(sent["segmentCount"], 1);
    assert_eq!(sent["to"], json!(["+14155550123"]));
    assert_eq!(sent["tag"], "msg-42");
    assert!(sent["time"].as_str().expect("time").ends_with('Z'));

    let event = h.wait_for_event("message-delivered", "+14155550123").await;
    assert_eq!(
        event.authorization.as_deref(),
        Some(expected_auth().as_str())
    );
    assert_eq!(event.body.as_array().map(Vec::len), Some(1));
    assert_eq!(event.body[0]["description"], "ok");
    assert_eq!(event.body[0]["message"]["id"], id.as_str());
    assert_eq!(event.body[0]["message"]["tag"], "msg-42");

    // The inspection API shows the message and, eventually, the callback status.
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        let listed = h.messages("+14155550123").await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], id.as_str());
        assert_eq!(listed[0]["applicationId"], "app-1");
        if listed[0]["callbacks"][0]["status"] == 204 {
            assert_eq!(listed[0]["callbacks"][0]["type"], "message-delivered");
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "callback status never recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn number_ending_in_error_code_gets_message_failed() {
    let h = start().await;
    assert_eq!(
        h.send("+14155554720", "sim-user", "sim-password")
            .await
            .status(),
        202
    );
    let event = h.wait_for_event("message-failed", "+14155554720").await;
    assert_eq!(event.body[0]["errorCode"], 4720);
    assert_eq!(
        event.authorization.as_deref(),
        Some(expected_auth().as_str())
    );
}

#[tokio::test]
async fn bad_credentials_account_and_body_are_refused() {
    let h = start().await;
    let response = h.send("+14155550123", "sim-user", "wrong").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "authentication-error");

    let response = h
        .http
        .post(format!("{}/api/v2/users/1234567/messages", h.sim))
        .basic_auth("sim-user", Some("sim-password"))
        .json(&json!({"applicationId": "a", "to": ["+1"], "from": "+2", "text": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);

    let response = h
        .http
        .post(format!("{}/api/v2/users/{ACCOUNT}/messages", h.sim))
        .basic_auth("sim-user", Some("sim-password"))
        .json(&json!({"applicationId": "a", "to": [], "from": "+2", "text": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "request-validation");
    assert_eq!(body["fieldErrors"][0]["fieldName"], "to");

    assert!(h.messages("+14155550123").await.is_empty());
}

#[tokio::test]
async fn fault_answers_500_once_then_sends_succeed() {
    let h = start().await;
    let to = "+14155550199";
    let armed = h
        .http
        .post(format!("{}/_sim/faults", h.sim))
        .json(&json!({"to": to, "mode": "http_500", "times": 1}))
        .send()
        .await
        .expect("arm");
    assert!(armed.status().is_success());

    let response = h.send(to, "sim-user", "sim-password").await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "internal-server-error");
    assert!(
        h.messages(to).await.is_empty(),
        "faulted attempt must not be recorded"
    );

    assert_eq!(h.send(to, "sim-user", "sim-password").await.status(), 202);
    h.wait_for_event("message-delivered", to).await;
    assert_eq!(h.messages(to).await.len(), 1);
    let delivered = h
        .inbox
        .lock()
        .await
        .iter()
        .filter(|r| r.body[0]["to"] == to)
        .count();
    assert_eq!(delivered, 1, "only the accepted send gets a callback");
}

#[tokio::test]
async fn inbound_delivers_message_received_synchronously() {
    let h = start().await;
    let response = h
        .http
        .post(format!("{}/_sim/inbound", h.sim))
        .json(&json!({"from": "+14155550123", "to": "+14155550100", "text": "STOP"}))
        .send()
        .await
        .expect("inbound");
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["callback_status"], 204);

    // Synchronous: already in the inbox, no polling needed.
    let inbox = h.inbox.lock().await;
    let event = inbox
        .iter()
        .find(|r| r.body[0]["type"] == "message-received")
        .expect("message-received delivered before the 202");
    assert_eq!(
        event.authorization.as_deref(),
        Some(expected_auth().as_str())
    );
    let e = &event.body[0];
    assert_eq!(e["to"], "+14155550100");
    assert_eq!(e["description"], "Incoming message received");
    assert_eq!(e["message"]["id"], answer["id"]);
    assert_eq!(e["message"]["direction"], "in");
    assert_eq!(e["message"]["owner"], "+14155550100");
    assert_eq!(e["message"]["from"], "+14155550123");
    assert_eq!(e["message"]["to"], json!(["+14155550100"]));
    assert_eq!(e["message"]["text"], "STOP");
    drop(inbox);

    let response = h
        .http
        .post(format!("{}/_sim/inbound", h.sim))
        .json(&json!({"from": "+14155550123"}))
        .send()
        .await
        .expect("inbound");
    assert_eq!(response.status(), 400);
}
