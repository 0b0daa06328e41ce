//! Fault soak: many messages through the deployed local stack while the
//! carrier misbehaves, then the never-lost / never-twice invariants.
//!
//!     cargo run --profile local -p benchmarks --bin fault-soak -- [--messages 200] [--concurrency 8]
//!
//! Needs `make dev` running. For each message (a fresh number each), one of:
//! no fault; the carrier answers 500 once or twice (retried, then sent);
//! 429 once (retried); 500 five times (more than the dispatcher's attempts:
//! `retries_exhausted`); 400 once (refused for good: `carrier_rejected`); a
//! destination whose last four digits are a carrier error (failed by
//! callback). Each POST carries an `Idempotency-Key` and is sent twice, as a
//! client retrying after a lost answer would.
//!
//! Checked at the end:
//! - every accepted message reaches a final status (never lost);
//! - the two POSTs with one key answered the same message;
//! - the carrier received each number at most once when it accepted it
//!   (never twice), and never for a refused or exhausted one beyond the
//!   attempts it refused;
//! - each final status is the one its fault implies.
//!
//! Prints a table of outcomes and exits non-zero on any violation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::{phone_ending, poll, random_phone, Endpoints};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    None,
    Http500Once,
    Http500Twice,
    Http429Once,
    Http500Exhausted,
    Http400,
    CarrierError4720,
}

impl Fault {
    const ALL: [Fault; 7] = [
        Fault::None,
        Fault::Http500Once,
        Fault::Http500Twice,
        Fault::Http429Once,
        Fault::Http500Exhausted,
        Fault::Http400,
        Fault::CarrierError4720,
    ];

    /// The final status it must end in, and how many requests the carrier
    /// must have *accepted* for the number (at most one; zero if refused).
    fn expected(self) -> (&'static str, usize) {
        match self {
            Fault::None | Fault::Http500Once | Fault::Http500Twice | Fault::Http429Once => {
                ("delivered", 1)
            }
            Fault::CarrierError4720 => ("failed", 1),
            Fault::Http500Exhausted | Fault::Http400 => ("failed", 0),
        }
    }
}

fn arg(name: &str, default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--messages", "200").parse().expect("--messages N");
    let concurrency: usize = arg("--concurrency", "8").parse().expect("--concurrency N");
    let local = Arc::new(Endpoints::load());
    let t = Arc::new(local.new_practice().await);
    let started = Instant::now();

    // Arm the faults, then send, `concurrency` at a time.
    let mut plan: Vec<(Fault, String)> = Vec::with_capacity(n);
    for i in 0..n {
        let fault = Fault::ALL[i % Fault::ALL.len()];
        let to = match fault {
            Fault::CarrierError4720 => phone_ending(4720).to_string(),
            _ => random_phone().to_string(),
        };
        match fault {
            Fault::Http500Once => local.carrier_fault(&to, "http_500", 1).await,
            Fault::Http500Twice => local.carrier_fault(&to, "http_500", 2).await,
            Fault::Http429Once => local.carrier_fault(&to, "http_429", 1).await,
            Fault::Http500Exhausted => local.carrier_fault(&to, "http_500", 5).await,
            Fault::Http400 => local.carrier_fault(&to, "http_400", 1).await,
            Fault::None | Fault::CarrierError4720 => {}
        }
        plan.push((fault, to));
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (fault, to) in plan.clone() {
        let (t, semaphore) = (Arc::clone(&t), Arc::clone(&semaphore));
        tasks.spawn(async move {
            let _permit = semaphore.acquire().await.expect("semaphore");
            let key = format!("soak-{}", uuid::Uuid::new_v4().simple());
            let body = json!({"to": to, "text": "Soak test: your appointment is confirmed"});
            let mut ids = Vec::new();
            for _ in 0..2 {
                let r = t
                    .api
                    .call(
                        "POST",
                        "/v1/messages",
                        Some(body.to_string().into_bytes()),
                        &[("idempotency-key", key.as_str())],
                    )
                    .await;
                assert_eq!(r.status, 202, "{:?}", r.body);
                ids.push(r.body["id"].as_str().unwrap_or_default().to_string());
            }
            (fault, to, ids)
        });
    }
    let mut sent = Vec::new();
    while let Some(done) = tasks.join_next().await {
        sent.push(done.expect("send task"));
    }
    let accepted_in = started.elapsed();

    // Wait for every message to be final (retries wait 10, 20, 40 s).
    let mut violations: Vec<String> = Vec::new();
    let mut outcomes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (fault, to, ids) in &sent {
        if ids[0] != ids[1] {
            violations.push(format!("{to}: one key answered two messages {ids:?}"));
        }
        let path = format!("/v1/messages/{}", ids[0]);
        let last = poll(Duration::from_secs(300), || async {
            let r = t.api.get(&path).await;
            let status = r.body["status"].as_str().unwrap_or_default().to_string();
            matches!(status.as_str(), "delivered" | "failed").then_some(r.body)
        })
        .await;
        let Some(message) = last else {
            violations.push(format!(
                "{to} ({fault:?}): not final within 5 minutes (lost?)"
            ));
            continue;
        };
        let status = message["status"].as_str().unwrap_or_default().to_string();
        let code = message["recipients"][0]["error"]["code"]
            .as_str()
            .or_else(|| message["error"]["code"].as_str())
            .unwrap_or("-")
            .to_string();
        *outcomes
            .entry((format!("{fault:?}"), format!("{status} {code}")))
            .or_default() += 1;
        let (expected_status, expected_accepted) = fault.expected();
        if status != expected_status {
            violations.push(format!(
                "{to} ({fault:?}): ended {status} {code}, expected {expected_status}"
            ));
        }
        let received: Vec<Value> = local.carrier_messages(to).await;
        if received.len() != expected_accepted {
            violations.push(format!(
                "{to} ({fault:?}): the carrier accepted {} texts, expected {expected_accepted}",
                received.len()
            ));
        }
    }

    println!(
        "{} messages ({} POSTs) accepted in {:.1} s, all final after {:.1} s",
        sent.len(),
        2 * sent.len(),
        accepted_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("| fault | outcome | messages |\n|---|---|---|");
    for ((fault, outcome), count) in &outcomes {
        println!("| {fault} | {outcome} | {count} |");
    }
    if violations.is_empty() {
        println!("never lost, never twice: no violation");
    } else {
        for v in &violations {
            println!("VIOLATION: {v}");
        }
        std::process::exit(1);
    }
}
