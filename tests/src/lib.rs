//! Helpers for the adapter and end-to-end tests in `tests/local_cloud/` (crate `cloud-tests`).
//!
//! These tests need the local cloud that `make test` (or `make dev`) brings
//! up; they find it through `.local/endpoints.json` (or `ENDPOINTS_FILE`).
//! They are `#[ignore]`d so a plain `cargo test` runs only the fast tests;
//! `make test` runs them all with `--include-ignored`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use messaging_adapters::dynamo::DynamoStore;
use messaging_core::app::auth::{generate_key, hash_key};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::domain::practice::{Channels, Practice};
use messaging_core::ports::PracticeStore;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

pub mod billing;
pub mod emulator;
pub mod receiver;

/// Why a test is ignored by default.
pub const NEEDS_LOCAL_CLOUD: &str = "needs the local cloud: run `make test`";

/// Basic credentials of the deployed webhook.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookCredentials {
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
}

/// The office console and its demo staff account.
#[derive(Debug, Clone, Deserialize)]
pub struct Console {
    /// `{api_url}/console`.
    pub url: String,
    /// The demo practice's staff account.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// `.local/endpoints.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    /// API base URL.
    pub api_url: String,
    /// Demo practice key.
    pub api_key: String,
    /// Demo practice id.
    pub practice_id: String,
    /// Carrier simulator.
    pub carrier_url: String,
    /// The emulator.
    pub aws_endpoint_url: String,
    /// The stack's name (`LOCAL_STACK_NAME`; absent from an endpoints file
    /// written before it was recorded: the default stack).
    #[serde(default = "default_stack_name")]
    pub stack_name: String,
    /// The stack's table.
    pub table_name: String,
    /// The stack's send queue.
    pub send_queue_url: String,
    /// Its dead-letter queue.
    pub dead_letter_queue_url: String,
    /// Webhook credentials.
    pub webhook: WebhookCredentials,
    /// The console (absent from an endpoints file written before it existed).
    #[serde(default)]
    pub console: Option<Console>,
    /// The stack's media bucket (absent from an endpoints file written
    /// before the bucket existed).
    #[serde(default)]
    pub media_bucket: Option<String>,
    /// The stack's media queue (likewise).
    #[serde(default)]
    pub media_queue_url: Option<String>,
    /// The stack's `NumberMessagesPerSecond` (1 when not recorded).
    #[serde(default = "one")]
    pub number_messages_per_second: u32,
}

fn one() -> u32 {
    1
}

fn default_stack_name() -> String {
    "patient-messaging".into()
}

impl Endpoints {
    /// Reads the endpoints of the running local cloud.
    pub fn load() -> Endpoints {
        let path = std::env::var("ENDPOINTS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/endpoints.json")
            });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{} not readable ({e}); {NEEDS_LOCAL_CLOUD}", path.display())
        });
        serde_json::from_str(&text).expect("endpoints.json is malformed")
    }

    /// AWS SDK configuration pointing at the emulator.
    pub async fn aws(&self) -> messaging_adapters::aws::SdkConfig {
        let credentials =
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-cloud");
        messaging_adapters::aws::config(
            "us-east-1".into(),
            credentials,
            Some(self.aws_endpoint_url.clone()),
        )
    }

    /// The repository on the stack's table.
    pub async fn store(&self) -> DynamoStore {
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws().await),
            &self.table_name,
        )
    }

    /// A message and one recipient stored directly (as the API would), in `status`.
    pub async fn stored_recipient(
        &self,
        practice_id: &str,
        status: messaging_core::domain::message::RecipientStatus,
    ) -> messaging_core::domain::message::SendJob {
        use messaging_core::domain::message::*;
        use messaging_core::ports::MessageStore;
        let now = chrono::Utc::now();
        let message_id = messaging_core::app::messages::new_message_id();
        let to = random_phone();
        let from = random_phone();
        let message = Message {
            id: message_id.clone(),
            practice_id: practice_id.to_string(),
            message_type: MessageType::DirectMessage,
            channel: messaging_core::domain::practice::Channel::SmsMain,
            from: from.clone(),
            text: "Stored directly".into(),
            template_id: None,
            encoding: messaging_core::domain::text::Encoding::Gsm7,
            segments: 1,
            send_at: None,
            created_at: now,
            target_count: 1,
            status: status.into(),
            counts: Counts::of([status].iter()),
            sent_at: None,
            bulk: None,
            appointment_ids: Vec::new(),
        };
        let recipient = Recipient {
            practice_id: practice_id.to_string(),
            message_id: message_id.clone(),
            recipient_id: "00001".into(),
            patient_id: None,
            to,
            from,
            text: "Stored directly".into(),
            status,
            not_before: None,
            carrier_message_id: (status == RecipientStatus::Sent)
                .then(|| format!("carrier-{message_id}")),
            sent_at: None,
            delivered_at: None,
            error: None,
            skip_reason: None,
            attempts: 0,
            claimed_at: None,
            message_type: MessageType::DirectMessage,
            origin: None,
            version: 0,
            appointment_ids: Vec::new(),
        };
        let outcome = self
            .store()
            .await
            .create_message(&message, &[recipient], None)
            .await
            .expect("store");
        assert_eq!(outcome, messaging_core::ports::CreateOutcome::Created);
        SendJob {
            practice_id: practice_id.to_string(),
            message_id,
            recipient_id: "00001".into(),
        }
    }

    /// A fresh practice of its own for one test, created through the
    /// repository (as the admin command does), so tests never share state.
    pub async fn new_practice(&self) -> TestPractice {
        self.new_practice_with(|_| {}).await
    }

    /// A fresh practice whose settings `adjust` changes first (a small cap
    /// and window for bulk tests, quiet hours...).
    pub async fn new_practice_with(&self, adjust: impl FnOnce(&mut Practice)) -> TestPractice {
        let id = format!("t-{}", uuid::Uuid::new_v4().simple());
        let practice = Practice {
            practice_id: id.clone(),
            name: "Test Dental".into(),
            timezone: "America/New_York".parse().expect("a time zone"),
            channels: Channels {
                sms_main: random_phone(),
                sms_alt: None,
            },
            hourly_cap: 250,
            cap_window_seconds: 3600,
            max_bulk_recipients: 1000,
            quiet_hours: None,
            help_text: None,
            auto_reply: Default::default(),
            automatic_window: None,
            links: Default::default(),
            carrier: Default::default(),
        };
        let mut practice = practice;
        adjust(&mut practice);
        let store = self.store().await;
        store
            .put_practice(&practice)
            .await
            .expect("create practice");
        let key = generate_key();
        store
            .set_api_key(&id, &hash_key(&key))
            .await
            .expect("store key");
        TestPractice {
            api: Api::new(&self.api_url, &key),
            practice,
        }
    }

    /// A fresh practice on AWS End User Messaging SMS (`adjust` first, as
    /// [`Endpoints::new_practice_with`]): its numbers become origination
    /// numbers of the simulated AWS account, whose events and inbound texts
    /// reach the stack through its SNS topic.
    pub async fn new_aws_practice_with(&self, adjust: impl FnOnce(&mut Practice)) -> TestPractice {
        let t = self
            .new_practice_with(|p| {
                p.carrier = messaging_core::domain::carrier::CarrierKind::Aws;
                adjust(p);
            })
            .await;
        let numbers: Vec<String> = std::iter::once(&t.practice.channels.sms_main)
            .chain(t.practice.channels.sms_alt.as_ref())
            .map(ToString::to_string)
            .collect();
        let r = http()
            .post(format!("{}/_sim/aws/numbers", self.carrier_url))
            .json(&serde_json::json!({ "numbers": numbers }))
            .send()
            .await
            .expect("simulator");
        assert!(
            r.status().is_success(),
            "registering AWS numbers: {}",
            r.status()
        );
        t
    }

    /// Every message the carrier simulator received for `to`.
    pub async fn carrier_messages(&self, to: &str) -> Vec<Value> {
        let url = format!(
            "{}/_sim/messages?to={}",
            self.carrier_url,
            to.replace('+', "%2B")
        );
        let r = http().get(url).send().await.expect("simulator");
        r.json().await.expect("simulator json")
    }

    /// Send requests the carrier simulator received for `to`, whether it
    /// accepted them or answered with an injected fault.
    pub async fn sent_attempts(&self, to: &str) -> u64 {
        let url = format!(
            "{}/_sim/attempts?to={}",
            self.carrier_url,
            to.replace('+', "%2B")
        );
        let r: Value = http()
            .get(url)
            .send()
            .await
            .expect("simulator")
            .json()
            .await
            .expect("simulator json");
        r["attempts"].as_u64().expect("attempts")
    }

    /// Plays a patient texting `text` from `from` to the practice number
    /// `to` (the simulator delivers the `message-received` callback to the
    /// webhook before it answers); `media` as `/_sim/inbound` takes it.
    /// Answers the simulator's reply.
    pub async fn patient_texts(&self, from: &str, to: &str, text: &str, media: Value) -> Value {
        let mut body = serde_json::json!({"from": from, "to": to, "text": text});
        if !media.is_null() {
            body["media"] = media;
        }
        let r = http()
            .post(format!("{}/_sim/inbound", self.carrier_url))
            .json(&body)
            .send()
            .await
            .expect("simulator");
        assert_eq!(
            r.status().as_u16(),
            202,
            "simulator refused the inbound text"
        );
        let answer: Value = r.json().await.expect("simulator json");
        assert_eq!(
            answer["callback_status"], 200,
            "webhook answered {answer:?}"
        );
        answer
    }

    /// What the carrier received for `to` apart from the confirmation of
    /// an opt-out from `practice_name` (the one text an opted-out number
    /// still gets).
    pub async fn texts_besides_opt_out_confirmation(
        &self,
        to: &str,
        practice_name: &str,
    ) -> Vec<Value> {
        let confirmation = messaging_core::app::callbacks::opt_out_confirmation(practice_name);
        self.carrier_messages(to)
            .await
            .into_iter()
            .filter(|m| m["text"] != confirmation.as_str())
            .collect()
    }

    /// Arms a carrier fault for one destination number.
    pub async fn carrier_fault(&self, to: &str, mode: &str, times: u32) {
        let r = http()
            .post(format!("{}/_sim/faults", self.carrier_url))
            .json(&serde_json::json!({"to": to, "mode": mode, "times": times}))
            .send()
            .await
            .expect("simulator");
        assert!(r.status().is_success(), "arming fault: {}", r.status());
    }
}

impl TestPractice {
    /// A staff account of this practice (`admin` or `staff`), made as the
    /// admin command makes it; answers its user name and password.
    pub async fn staff(&self, local: &Endpoints, role: &str) -> (String, String) {
        let user = format!("staff-{}", uuid::Uuid::new_v4().simple());
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        messaging_core::app::staff::create_staff(
            &local.store().await,
            &self.practice.practice_id,
            &messaging_core::app::staff::NewStaff {
                user: user.clone(),
                name: format!("Staff {}", &user[6..12]),
                role: role.to_string(),
                password: password.clone(),
            },
            chrono::Utc::now(),
        )
        .await
        .expect("create staff");
        (user, password)
    }
}

/// A staff member's signed-in browser, as far as the API sees one: the
/// session cookie on every request, and the console's CSRF header on
/// requests that change state.
#[derive(Clone)]
pub struct StaffSession {
    /// Client without an API key, sending the cookie.
    pub api: Api,
    /// `pm_session=…`, as the browser sends it back.
    pub cookie: String,
    /// The `Set-Cookie` header the sign-in answered.
    pub set_cookie: String,
    /// The sign-in's answer.
    pub signed_in: Value,
}

impl StaffSession {
    /// `POST /v1/sessions`; panics unless it answers 201 with a cookie.
    pub async fn sign_in(api_url: &str, user: &str, password: &str) -> StaffSession {
        let r = sign_in_raw(api_url, user, password).await;
        assert_eq!(r.0, 201, "sign-in: {:?}", r.2);
        let set_cookie = r.1.expect("a Set-Cookie header");
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
        StaffSession {
            api: Api::new(api_url, ""),
            cookie,
            set_cookie,
            signed_in: r.2,
        }
    }

    /// A request with the cookie (and `X-Requested-With: console` when
    /// `csrf_header`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        csrf_header: bool,
    ) -> Reply {
        let mut headers = vec![("cookie", self.cookie.as_str())];
        if csrf_header {
            headers.push(("x-requested-with", "console"));
        }
        self.api
            .call(
                method,
                path,
                body.map(|b| b.to_string().into_bytes()),
                &headers,
            )
            .await
    }
}

/// `POST /v1/sessions` as the console sends it (with `X-Requested-With:
/// console`): status, `Set-Cookie`, body, `Retry-After`.
pub async fn sign_in_raw(
    api_url: &str,
    user: &str,
    password: &str,
) -> (u16, Option<String>, Value, Option<String>) {
    let r = http()
        .post(format!("{api_url}/v1/sessions"))
        .header("x-requested-with", "console")
        .json(&serde_json::json!({"user": user, "password": password}))
        .send()
        .await
        .expect("sign-in request");
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (set_cookie, retry_after) = (header("set-cookie"), header("retry-after"));
    let body = r.json().await.unwrap_or(Value::Null);
    (status, set_cookie, body, retry_after)
}

/// A practice made for one test, with its API client.
pub struct TestPractice {
    /// Client with the practice's key.
    pub api: Api,
    /// Its settings.
    pub practice: Practice,
}

/// A minimal API client.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// A response: status and JSON body (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

impl Reply {
    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
    /// `error.field` of an error body.
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// A client for `base` with `key`.
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            http: messaging_adapters::http::client_builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.to_string(),
            key: key.to_string(),
        }
    }

    /// Sends a request with the bearer key and extra headers. A 429
    /// (`rate_limited`) is waited out as its `Retry-After` says and sent
    /// again, as a well-behaved client does (a few times at most).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if !self.key.is_empty() {
                req = req.bearer_auth(&self.key);
            }
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.clone());
            }
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let bytes = r.bytes().await.expect("body");
            if let (429, Some(seconds), true) = (status, wait, tries < 5) {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                continue;
            }
            return Reply {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, &[]).await
    }

    /// POST a JSON value.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    /// `POST /v1/messages` that must be accepted (202); the message's id.
    pub async fn send(&self, body: &Value) -> String {
        let r = self.post("/v1/messages", body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        r.body["id"].as_str().expect("a message id").to_string()
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None, &[]).await
    }

    /// PUT a JSON value.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call("PUT", path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    /// PATCH a JSON value.
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call("PATCH", path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    /// Polls `GET /v1/messages/{id}` until `done` holds for it.
    pub async fn wait_for_message(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("/v1/messages/{id}");
        poll(within, || async {
            let r = self.get(&path).await;
            (r.status == 200 && done(&r.body)).then_some(r.body)
        })
        .await
        .unwrap_or_else(|| {
            panic!("message {id} did not reach the expected state within {within:?}")
        })
    }
}

/// Calls `probe` until it yields a value or `within` passes (no fixed sleeps:
/// it checks every 100 ms and returns as soon as the condition holds).
pub async fn poll<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A random valid NANP number whose last four digits are below 4000, so the
/// carrier simulator delivers it (error codes are 4xxx, 5xxx, 9xxx).
pub fn random_phone() -> PhoneNumber {
    let mut rng = rand::rng();
    let n = format!(
        "+1{}{}{}{:04}",
        rng.random_range(2..=9),
        rng.random_range(20..=98),
        rng.random_range(200..=999),
        rng.random_range(0..4000)
    );
    PhoneNumber::parse(&n).unwrap_or_else(|_| random_phone())
}

/// A random number ending in `last_four` (a carrier error code for the simulator).
pub fn phone_ending(last_four: u16) -> PhoneNumber {
    let base = random_phone().to_string();
    PhoneNumber::parse(&format!("{}{last_four:04}", &base[..8])).expect("valid")
}

/// An HTTP client for the tests: the functions' own stack (reqwest over
/// rustls with `ring`, `messaging_adapters::http`); reqwest alone has no
/// TLS provider in this workspace.
pub fn http() -> reqwest::Client {
    messaging_adapters::http::client_builder()
        .build()
        .expect("the TLS settings are valid")
}
