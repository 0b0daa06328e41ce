//! How close to `send_at` scheduled messages reach the carrier, on the local
//! cloud (EventBridge Scheduler → SQS → dispatcher → carrier simulator).
//!
//!     cargo run --profile local -p benchmarks --bin schedule-bench -- [--messages 20]
//!
//! Needs `make dev` running. Prints each message's lateness and the median
//! and worst; any early send is reported as such.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cloud_tests::{poll, random_phone, Endpoints};
use serde_json::json;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip_while(|a| a != "--messages")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let start = Utc::now();
    let mut sends = Vec::new();
    for i in 0..n {
        // Spread over 40–80 s ahead, at odd milliseconds.
        let send_at = start + chrono::Duration::milliseconds(40_000 + (i as i64) * 2_037);
        let to = random_phone();
        let body = json!({"to": to.as_str(), "text": format!("bench {i}"),
                          "send_at": send_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
        let r = t.api.post("/v1/messages", &body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        sends.push((to, send_at));
    }
    println!(
        "scheduled {n} messages {:.0}–{:.0} s ahead; waiting for the carrier…",
        40.0,
        40.0 + (n as f64) * 2.037
    );
    let mut lateness_ms: Vec<i64> = Vec::new();
    for (to, send_at) in &sends {
        let arrived = poll(Duration::from_secs(180), || async {
            let m = local.carrier_messages(to.as_str()).await;
            m.first()
                .and_then(|m| m["received_at"].as_str())
                .map(|s| s.parse::<DateTime<Utc>>().expect("time"))
        })
        .await
        .expect("delivered to the carrier within 3 minutes");
        lateness_ms.push((arrived - *send_at).num_milliseconds());
    }
    let early = lateness_ms.iter().filter(|l| **l < 0).count();
    let mut sorted = lateness_ms.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let worst = *sorted.last().unwrap_or(&0);
    println!("lateness per message (ms): {lateness_ms:?}");
    println!("| messages | early | median late | worst late |");
    println!("|---|---|---|---|");
    println!(
        "| {n} | {early} | {:.2} s | {:.2} s |",
        median as f64 / 1000.0,
        worst as f64 / 1000.0
    );
}
