//! An office's event receiver for the tests: an HTTP server on
//! 127.0.0.1 that records every request and answers by a per-path script,
//! and the independent Standard Webhooks verifier (the published
//! `standardwebhooks` Python package) to check what it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path's last segment (which script answered).
    pub path: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// How a path answers, request after request.
#[derive(Debug, Clone)]
pub enum Script {
    /// Always this status.
    Always(u16),
    /// These statuses in order, then 200.
    Then(Vec<u16>),
    /// Holds every request this long, then answers 200.
    Hang(Duration),
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    scripts: HashMap<String, Script>,
}

/// The receiver; its URLs are `http://127.0.0.1:{port}/hooks/{name}`.
#[derive(Clone)]
pub struct Receiver {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

async fn hook(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received = Received {
        path: name.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let answer = {
        let mut s = shared.lock().unwrap();
        s.received.push(received);
        match s.scripts.get_mut(&name) {
            None => Script::Always(200),
            Some(Script::Then(statuses)) if !statuses.is_empty() => {
                Script::Always(statuses.remove(0))
            }
            Some(Script::Then(_)) => Script::Always(200),
            Some(other) => other.clone(),
        }
    };
    match answer {
        Script::Always(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Script::Then(_) => StatusCode::OK,
        Script::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    }
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start() -> Receiver {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = axum::Router::new()
            .route("/hooks/{name}", post(hook))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { port, shared }
    }

    /// The URL of path `name`, answering by `script`.
    pub fn url(&self, name: &str, script: Script) -> String {
        self.shared
            .lock()
            .unwrap()
            .scripts
            .insert(name.to_string(), script);
        format!("http://127.0.0.1:{}/hooks/{name}", self.port)
    }

    /// Every request to path `name` so far.
    pub fn received(&self, name: &str) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == name)
            .cloned()
            .collect()
    }

    /// Waits until path `name` got at least `n` requests.
    pub async fn wait_for(&self, name: &str, n: usize, within: Duration) -> Vec<Received> {
        crate::poll(within, || async {
            let got = self.received(name);
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{name} got {} requests, expected {n} within {within:?}",
                self.received(name).len()
            )
        })
    }
}

/// Checks each `(secret, request)` with the published `standardwebhooks`
/// Python package (installed by `make tools`): `Ok` per request it accepts,
/// its error otherwise.
pub fn verify_independently(cases: &[(&str, &Received)]) -> Vec<Result<(), String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, r)| {
            serde_json::json!({
                "secret": secret,
                "body": r.body,
                "headers": {
                    "webhook-id": r.header("webhook-id"),
                    "webhook-timestamp": r.header("webhook-timestamp"),
                    "webhook-signature": r.header("webhook-signature"),
                },
            })
        })
        .collect();
    let file = std::env::temp_dir().join(format!("webhooks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec(&input).unwrap()).unwrap();
    let out = std::process::Command::new(root.join(".tools/venv/bin/python"))
        .arg(root.join("tests/verify_webhooks.py"))
        .arg(&file)
        .output()
        .expect("run the standardwebhooks verifier (make tools installs it)");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    results
        .into_iter()
        .map(|r| match r {
            Value::Bool(true) => Ok(()),
            other => Err(other.to_string()),
        })
        .collect()
}
