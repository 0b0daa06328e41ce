//! Request latency through the local API (API Gateway → Lambda → DynamoDB).
//!
//!     cargo run --profile local -p benchmarks --bin api-latency -- [--requests 200]
//!
//! Needs `make dev` running. Sequential requests after a warm-up; prints
//! median, p95 and max per route.

use std::time::{Duration, Instant};

use cloud_tests::{random_phone, Endpoints};
use serde_json::json;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(*samples.last().unwrap_or(&Duration::ZERO))
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip_while(|a| a != "--requests")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let first = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": random_phone().as_str(), "text": "warm-up"}),
        )
        .await;
    let id = first.body["id"].as_str().expect("message id").to_string();
    for _ in 0..5 {
        t.api.get("/v1/settings").await;
        t.api.get(&format!("/v1/messages/{id}")).await;
    }
    let mut settings = Vec::new();
    let mut get_message = Vec::new();
    let mut post_message = Vec::new();
    for _ in 0..n {
        let s = Instant::now();
        assert_eq!(t.api.get("/v1/settings").await.status, 200);
        settings.push(s.elapsed());
        let s = Instant::now();
        assert_eq!(t.api.get(&format!("/v1/messages/{id}")).await.status, 200);
        get_message.push(s.elapsed());
    }
    for _ in 0..n / 2 {
        let body = json!({"to": random_phone().as_str(), "text": "latency probe"});
        let s = Instant::now();
        assert_eq!(t.api.post("/v1/messages", &body).await.status, 202);
        post_message.push(s.elapsed());
    }
    println!("| route | requests | median | p95 | max |");
    println!("|---|---|---|---|---|");
    summary("GET /v1/settings", settings);
    summary("GET /v1/messages/{id}", get_message);
    summary("POST /v1/messages", post_message);
}
