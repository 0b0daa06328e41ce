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
        http: carrier_sim::http_client_builder().build().expect("client"),
    }
}

impl Harness {
    /// A send request to `to` with these credentials, not yet sent.
    fn send_request(&self, to: &str, user: &str, password: &str) -> reqwest::RequestBuilder {
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
    }

    async fn send(&self, to: &str, user: &str, password: &str) -> reqwest::Response {
        self.send_request(to, user, password)
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

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The simulator's API credentials (defaults of `Config`).
const API_USER: &str = "sim-user";
const API_PASSWORD: &str = "sim-password";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 pretend jpeg \xff\xd9";
const PDF: &[u8] = b"%PDF-1.4 pretend x-ray report";

impl Harness {
    async fn inbound(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/_sim/inbound", self.sim))
            .json(body)
            .send()
            .await
            .expect("inbound")
    }

    async fn download(&self, url: &str, credentials: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await.expect("media request")
    }

    async fn media_requests(&self, message_id: &str) -> Value {
        let response = self
            .http
            .get(format!(
                "{}/_sim/media-requests?message_id={message_id}",
                self.sim
            ))
            .send()
            .await
            .expect("media requests");
        assert_eq!(response.status(), 200);
        response.json().await.expect("media requests json")
    }

    async fn received_events(&self) -> Vec<Value> {
        self.inbox
            .lock()
            .await
            .iter()
            .filter(|r| r.body[0]["type"] == "message-received")
            .map(|r| r.body[0].clone())
            .collect()
    }
}

#[tokio::test]
async fn inbound_mms_callback_carries_media_urls_that_serve_the_files() {
    let h = start().await;
    // No text at all: a photo on its own is a valid MMS.
    let response = h
        .inbound(&json!({
            "from": "+14155550123",
            "to": "+14155550100",
            "media": [
                {"content_type": "image/jpeg", "base64": b64(JPEG)},
                {"content_type": "application/pdf", "base64": b64(PDF)},
            ],
        }))
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["callback_status"], 204);
    let id = answer["id"].as_str().expect("id").to_owned();

    let events = h.received_events().await;
    assert_eq!(events.len(), 1, "delivered before the 202");
    let message = &events[0]["message"];
    assert_eq!(events[0]["type"], "message-received");
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["direction"], "in");
    assert_eq!(message["text"], "");
    assert_eq!(message["segmentCount"], 1);
    let urls: Vec<String> = message["media"]
        .as_array()
        .expect("message.media is an array")
        .iter()
        .map(|u| u.as_str().expect("url").to_owned())
        .collect();
    assert_eq!(
        urls,
        vec![
            format!("{}/api/v2/users/{ACCOUNT}/media/{id}/0/file0.jpg", h.sim),
            format!("{}/api/v2/users/{ACCOUNT}/media/{id}/1/file1.pdf", h.sim),
        ]
    );
    assert_eq!(answer["media"], json!(urls));

    for (url, bytes, content_type) in [
        (&urls[0], JPEG, "image/jpeg"),
        (&urls[1], PDF, "application/pdf"),
    ] {
        let response = h.download(url, Some((API_USER, API_PASSWORD))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type)
        );
        assert_eq!(response.bytes().await.expect("body").as_ref(), bytes);
    }

    let response = h.download(&urls[0], None).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        h.download(&urls[0], Some((API_USER, "wrong")))
            .await
            .status(),
        401
    );
    assert_eq!(
        h.download(&urls[0], Some((HOOK_USER, HOOK_PASSWORD)))
            .await
            .status(),
        401,
        "the webhook's credentials are not the API's"
    );
    let unknown = format!("{}/api/v2/users/{ACCOUNT}/media/{id}/7/file7.jpg", h.sim);
    let response = h.download(&unknown, Some((API_USER, API_PASSWORD))).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "not-found");
    let other_account = urls[0].replace(ACCOUNT, "1234567");
    assert_eq!(
        h.download(&other_account, Some((API_USER, API_PASSWORD)))
            .await
            .status(),
        403
    );

    let seen = h.media_requests(&id).await;
    let statuses: Vec<u64> = seen["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, vec![200, 200, 401, 401, 401, 404, 403]);
    assert_eq!(seen["count"], 7);

    // A plain text still has no media at all.
    h.inbound(&json!({"from": "+14155550123", "to": "+14155550100", "text": "STOP"}))
        .await;
    let events = h.received_events().await;
    assert_eq!(events.len(), 2);
    assert!(events[1]["message"].get("media").is_none());
}

#[tokio::test]
async fn inbound_mms_with_bad_media_is_refused_with_422_and_no_callback() {
    let h = start().await;
    let mms = |media: Value| json!({"from": "+14155550123", "to": "+14155550100", "text": "look", "media": media});
    let cases = [
        (
            mms(json!([{"content_type": "application/zip", "base64": b64(b"PK")}])),
            "media[0].content_type",
        ),
        (
            mms(json!([
                {"content_type": "image/jpeg", "base64": b64(JPEG)},
                {"content_type": "image/png", "base64": "%%% not base64 %%%"},
            ])),
            "media[1].base64",
        ),
        (
            mms(json!(vec![
                json!({"content_type": "text/plain", "base64": b64(b"x")});
                11
            ])),
            "media",
        ),
        (mms(json!("https://example.com/x.jpg")), "media"),
        // 3.5 MB plus one byte: also checks the body limit leaves room for it.
        (
            mms(json!([
                {"content_type": "image/jpeg", "base64": b64(&vec![0u8; 3_500_001])},
            ])),
            "media",
        ),
    ];
    for (body, field) in cases {
        let response = h.inbound(&body).await;
        assert_eq!(response.status(), 422, "{field}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["type"], "request-validation");
        assert_eq!(error["fieldErrors"][0]["fieldName"], field);
        assert!(
            error["description"]
                .as_str()
                .expect("description")
                .contains(field),
            "{error}"
        );
    }
    assert!(
        h.inbox.lock().await.is_empty(),
        "refused MMS must not be posted"
    );
    // Empty filter = every request: nothing was stored, nothing fetched.
    let seen = h.media_requests("").await;
    assert_eq!(seen["count"], 0);

    // Without media, text is still required.
    let response = h
        .inbound(&json!({"from": "+14155550123", "to": "+14155550100"}))
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn armed_media_failures_answer_503_then_serve_the_file() {
    let h = start().await;
    let response = h
        .http
        .put(format!("{}/_sim/config", h.sim))
        .json(&json!({"media_failures": 2}))
        .send()
        .await
        .expect("config");
    assert_eq!(response.status(), 200);
    let config: Value = response.json().await.expect("json");
    assert_eq!(config["media_failures"], 2);
    assert_eq!(config["callback_user"], HOOK_USER, "other settings kept");

    let answer: Value = h
        .inbound(&json!({
            "from": "+14155550123", "to": "+14155550100", "text": "my crown",
            "media": [{"content_type": "image/png", "base64": b64(b"png")}],
        }))
        .await
        .json()
        .await
        .expect("json");
    let id = answer["id"].as_str().expect("id");
    let url = answer["media"][0].as_str().expect("url");

    // Unauthorized and unknown requests do not use up a failure.
    assert_eq!(h.download(url, None).await.status(), 401);
    for _ in 0..2 {
        let response = h.download(url, Some((API_USER, API_PASSWORD))).await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["type"], "service-unavailable");
    }
    let response = h.download(url, Some((API_USER, API_PASSWORD))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("body").as_ref(), b"png");

    let seen = h.media_requests(id).await;
    assert_eq!(seen["count"], 4);
    let requests = seen["requests"].as_array().expect("requests");
    let statuses: Vec<u64> = requests
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, vec![401, 503, 503, 200]);
    assert_eq!(requests[0]["media_id"], format!("{id}/0/file0.png"));

    // Disarming works, and the log can be cleared.
    h.http
        .put(format!("{}/_sim/config", h.sim))
        .json(&json!({"media_failures": 1}))
        .send()
        .await
        .expect("arm");
    let config: Value = h
        .http
        .put(format!("{}/_sim/config", h.sim))
        .json(&json!({"media_failures": 0}))
        .send()
        .await
        .expect("disarm")
        .json()
        .await
        .expect("json");
    assert_eq!(config["media_failures"], 0);
    assert_eq!(
        h.download(url, Some((API_USER, API_PASSWORD)))
            .await
            .status(),
        200
    );
    let cleared = h
        .http
        .delete(format!("{}/_sim/media-requests", h.sim))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), 204);
    assert_eq!(h.media_requests(id).await["count"], 0);
}

impl Harness {
    async fn arm(&self, to: &str, mode: &str) {
        let armed = self
            .http
            .post(format!("{}/_sim/faults", self.sim))
            .json(&json!({"to": to, "mode": mode, "times": 1}))
            .send()
            .await
            .expect("arm");
        assert!(armed.status().is_success(), "{mode}");
    }

    /// A send whose connection may be cut: the error is the caller's to check.
    async fn try_send(&self, to: &str) -> reqwest::Result<reqwest::Response> {
        self.send_request(to, "sim-user", "sim-password")
            .send()
            .await
    }

    async fn attempts(&self, to: &str) -> u64 {
        let r: Value = self
            .http
            .get(format!(
                "{}/_sim/attempts?to={}",
                self.sim,
                to.replace('+', "%2B")
            ))
            .send()
            .await
            .expect("attempts")
            .json()
            .await
            .expect("json");
        r["attempts"].as_u64().expect("a count")
    }

    async fn callbacks_for(&self, to: &str) -> usize {
        self.inbox
            .lock()
            .await
            .iter()
            .filter(|r| r.body[0]["to"] == to)
            .count()
    }
}

#[tokio::test]
async fn cut_connections_drop_the_answer_before_or_after_taking_the_text() {
    let h = start().await;
    let before = "+14155550201";
    h.arm(before, "cut_before_accept").await;
    assert!(h.try_send(before).await.is_err(), "no answer");
    assert!(h.messages(before).await.is_empty());
    assert_eq!(h.attempts(before).await, 1);

    let after = "+14155550202";
    h.arm(after, "cut_after_accept").await;
    assert!(h.try_send(after).await.is_err(), "no answer");
    assert_eq!(h.messages(after).await.len(), 1, "taken all the same");
    h.wait_for_event("message-delivered", after).await;

    let body = "+14155550203";
    h.arm(body, "cut_body_after_2xx").await;
    let response = h.try_send(body).await.expect("a status line");
    assert_eq!(response.status(), 202);
    assert!(response.bytes().await.is_err(), "the body is cut");
    assert_eq!(h.messages(body).await.len(), 1);
}

#[tokio::test]
async fn delivery_reports_can_come_twice_or_before_the_answer() {
    let h = start().await;
    let twice = "+14155550204";
    h.arm(twice, "duplicate_callbacks").await;
    assert_eq!(h.try_send(twice).await.expect("answer").status(), 202);
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while h.callbacks_for(twice).await < 2 {
        assert!(tokio::time::Instant::now() < give_up, "no second report");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let early = "+14155550205";
    h.arm(early, "early_callbacks").await;
    assert_eq!(h.try_send(early).await.expect("answer").status(), 202);
    assert_eq!(h.callbacks_for(early).await, 1, "reported before answering");
}
