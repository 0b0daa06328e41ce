//! Fault soak: thousands of messages (direct, scheduled and bulk, mixed)
//! through the deployed local stack while the carrier misbehaves and the
//! send queue delivers duplicates; then the never-lost / never-twice
//! invariants.
//!
//!     cargo run --profile local -p benchmarks --bin fault-soak -- \
//!         [--messages 2000] [--concurrency 16] [--practices 8]
//!
//! Needs `make dev` running. Every message goes to a fresh number with one
//! carrier behaviour armed in the simulator for that number, drawn by the
//! weights in [`Fault::WEIGHTS`] (printed with the results): answers 500,
//! 429 or 400, hangs (with and without having taken the text), connections
//! cut before and after the carrier took the text, a 202 whose body is cut,
//! delivery reports sent twice or before the send's own answer, and numbers
//! the carrier fails by callback. On top of that, one direct or scheduled
//! message in ten gets a duplicate of its send job put on the send queue
//! (as SQS's at-least-once delivery would), and every direct POST carries
//! an `Idempotency-Key` and is sent twice, as a client retrying after a lost
//! answer would.
//!
//! Checked at the end, per recipient:
//! - it reaches a final status (else it is *lost*);
//! - the status (and error code) is the one its fault implies;
//! - the carrier *took* the text exactly once when it took it at all, and
//!   received exactly one submission when it acknowledged the first one;
//! - both POSTs with one key answered the same message.
//!
//! Prints the result tables and exits non-zero on any violation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud_tests::{phone_ending, poll, random_phone, Endpoints, TestPractice};
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::domain::message::SendJob;
use messaging_core::ports::SendQueue;
use rand::Rng;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    None,
    Http500Once,
    Http500Twice,
    Http429Once,
    Http500Exhausted,
    Http400,
    CarrierError4720,
    TimeoutNotTaken,
    TimeoutAfterTaking,
    CutBeforeTaking,
    CutAfterTaking,
    CutBodyAfter2xx,
    DuplicateReports,
    ReportBeforeAnswer,
}

/// What a fault must end in.
struct Expected {
    status: &'static str,
    code: &'static str,
    /// Texts the carrier must have taken (0 or 1).
    taken: usize,
    /// Send requests the carrier must have received.
    submissions: u64,
}

impl Fault {
    /// Per-mille weights: how often each behaviour is drawn.
    const WEIGHTS: [(Fault, u32); 14] = [
        (Fault::None, 400),
        (Fault::Http500Once, 80),
        (Fault::Http500Twice, 40),
        (Fault::Http429Once, 60),
        (Fault::Http500Exhausted, 20),
        (Fault::Http400, 20),
        (Fault::CarrierError4720, 40),
        (Fault::TimeoutNotTaken, 10),
        (Fault::TimeoutAfterTaking, 10),
        (Fault::CutBeforeTaking, 40),
        (Fault::CutAfterTaking, 40),
        (Fault::CutBodyAfter2xx, 40),
        (Fault::DuplicateReports, 100),
        (Fault::ReportBeforeAnswer, 100),
    ];

    fn draw(rng: &mut impl Rng) -> Fault {
        let total: u32 = Self::WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut pick = rng.random_range(0..total);
        for (fault, weight) in Self::WEIGHTS {
            if pick < weight {
                return fault;
            }
            pick -= weight;
        }
        Fault::None
    }

    /// The simulator mode and how many sends it applies to.
    fn armed(self) -> Option<(&'static str, u32)> {
        Some(match self {
            Fault::None | Fault::CarrierError4720 => return None,
            Fault::Http500Once => ("http_500", 1),
            Fault::Http500Twice => ("http_500", 2),
            Fault::Http429Once => ("http_429", 1),
            // More than the dispatcher's four attempts.
            Fault::Http500Exhausted => ("http_500", 5),
            Fault::Http400 => ("http_400", 1),
            Fault::TimeoutNotTaken => ("timeout", 1),
            Fault::TimeoutAfterTaking => ("accept_then_timeout", 1),
            Fault::CutBeforeTaking => ("cut_before_accept", 1),
            Fault::CutAfterTaking => ("cut_after_accept", 1),
            Fault::CutBodyAfter2xx => ("cut_body_after_2xx", 1),
            Fault::DuplicateReports => ("duplicate_callbacks", 1),
            Fault::ReportBeforeAnswer => ("early_callbacks", 1),
        })
    }

    fn expected(self) -> Expected {
        let delivered = |submissions| Expected {
            status: "delivered",
            code: "-",
            taken: 1,
            submissions,
        };
        match self {
            Fault::None
            | Fault::TimeoutAfterTaking
            | Fault::CutAfterTaking
            | Fault::CutBodyAfter2xx
            | Fault::DuplicateReports
            | Fault::ReportBeforeAnswer => delivered(1),
            Fault::Http500Once | Fault::Http429Once => delivered(2),
            Fault::Http500Twice => delivered(3),
            Fault::CarrierError4720 => Expected {
                status: "failed",
                code: "4720",
                taken: 1,
                submissions: 1,
            },
            Fault::Http500Exhausted => Expected {
                status: "failed",
                code: "retries_exhausted",
                taken: 0,
                submissions: 4,
            },
            Fault::Http400 => Expected {
                status: "failed",
                code: "http_400",
                taken: 0,
                submissions: 1,
            },
            Fault::TimeoutNotTaken | Fault::CutBeforeTaking => Expected {
                status: "failed",
                code: "send_interrupted",
                taken: 0,
                submissions: 1,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Direct,
    Scheduled,
    Bulk,
}

/// One recipient of the soak.
#[derive(Debug, Clone)]
struct Planned {
    kind: Kind,
    fault: Fault,
    to: String,
    practice: usize,
    duplicate_job: bool,
}

/// Where an accepted recipient can be read back.
#[derive(Debug, Clone)]
struct Accepted {
    planned: Planned,
    /// Message id (direct, scheduled) or bulk id.
    id: String,
}

fn arg(name: &str, default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--messages", "2000").parse().expect("--messages N");
    let concurrency: usize = arg("--concurrency", "16").parse().expect("--concurrency N");
    let practices: usize = arg("--practices", "8").parse().expect("--practices N");
    let local = Arc::new(Endpoints::load());
    let queue = Arc::new(SqsSendQueue::new(
        aws_sdk_sqs::Client::new(&local.aws().await),
        &local.send_queue_url,
    ));
    let mut tenants = Vec::new();
    for _ in 0..practices.max(1) {
        tenants.push(Arc::new(local.new_practice().await));
    }
    let started = Instant::now();

    // The plan: 70% direct, 15% scheduled, 15% bulk recipients.
    let mut rng = rand::rng();
    let mut plan = Vec::with_capacity(n);
    for i in 0..n {
        let kind = match rng.random_range(0..100) {
            0..=69 => Kind::Direct,
            70..=84 => Kind::Scheduled,
            _ => Kind::Bulk,
        };
        let fault = Fault::draw(&mut rng);
        let to = match fault {
            Fault::CarrierError4720 => phone_ending(4720).to_string(),
            _ => random_phone().to_string(),
        };
        plan.push(Planned {
            kind,
            fault,
            to,
            practice: i % tenants.len(),
            duplicate_job: kind != Kind::Bulk && rng.random_range(0..10) == 0,
        });
    }
    for p in &plan {
        if let Some((mode, times)) = p.fault.armed() {
            local.carrier_fault(&p.to, mode, times).await;
        }
    }

    let mut accepted: Vec<Accepted> = Vec::with_capacity(n);
    let mut violations: Vec<String> = Vec::new();

    // Bulks: one per practice, its share of the bulk recipients.
    for (index, t) in tenants.iter().enumerate() {
        let members: Vec<&Planned> = plan
            .iter()
            .filter(|p| p.kind == Kind::Bulk && p.practice == index)
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut ids = Vec::new();
        for (i, p) in members.iter().enumerate() {
            let id = format!("soak-{i:04}");
            let r = t
                .api
                .put(
                    &format!("/v1/patients/{id}"),
                    &json!({"first_name": format!("Pat{i}"), "phone": p.to}),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            ids.push(id);
        }
        let r = t
            .api
            .post(
                "/v1/bulk-messages",
                &json!({"patient_ids": ids, "text": "Soak: the office is closed Friday.", "acknowledge_bulk_limit": true}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        accepted.extend(members.into_iter().map(|p| Accepted {
            planned: p.clone(),
            id: id.clone(),
        }));
    }

    // Direct and scheduled messages, `concurrency` at a time.
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for p in plan.iter().filter(|p| p.kind != Kind::Bulk).cloned() {
        let t = Arc::clone(&tenants[p.practice]);
        let (semaphore, queue) = (Arc::clone(&semaphore), Arc::clone(&queue));
        tasks.spawn(async move {
            let _permit = semaphore.acquire().await.expect("semaphore");
            let outcome = send_one(&t, &p).await;
            if let Ok(id) = &outcome {
                if p.duplicate_job {
                    let job = SendJob {
                        practice_id: t.practice.practice_id.clone(),
                        message_id: id.clone(),
                        recipient_id: "00001".into(),
                    };
                    queue.enqueue(&[job]).await.expect("duplicate job");
                }
            }
            (p, outcome)
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done.expect("send task") {
            (planned, Ok(id)) => accepted.push(Accepted { planned, id }),
            (planned, Err(problem)) => violations.push(format!("{}: {problem}", planned.to)),
        }
    }
    let accepted_in = started.elapsed();

    // Wait for every recipient to be final (retries wait 10, 20, 40 s; an
    // unanswered send waits SendConfirmWaitSeconds for its report).
    let mut finals: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut per_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut submissions: BTreeMap<u64, usize> = BTreeMap::new();
    let mut lost = 0usize;
    let mut acknowledged_once = (0usize, 0usize);
    let deadline = Duration::from_secs(900);
    for a in &accepted {
        let p = &a.planned;
        let t = &tenants[p.practice];
        let Some(recipient) = final_recipient(t, a, deadline).await else {
            lost += 1;
            violations.push(format!(
                "{} ({:?} {:?}): not final within {} s: lost",
                p.to,
                p.kind,
                p.fault,
                deadline.as_secs()
            ));
            continue;
        };
        let status = recipient["status"].as_str().unwrap_or_default().to_string();
        let code = recipient["error"]["code"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        *finals
            .entry((format!("{:?}", p.fault), format!("{status} {code}")))
            .or_default() += 1;
        *per_status.entry(status.clone()).or_default() += 1;
        let expected = p.fault.expected();
        if status != expected.status || code != expected.code {
            violations.push(format!(
                "{} ({:?} {:?}): ended {status} {code}, expected {} {}",
                p.to, p.kind, p.fault, expected.status, expected.code
            ));
        }
        let taken = local.carrier_messages(&p.to).await.len();
        if taken != expected.taken {
            violations.push(format!(
                "{} ({:?} {:?}): the carrier took {taken} texts, expected {}",
                p.to, p.kind, p.fault, expected.taken
            ));
        }
        let sent = local.sent_attempts(&p.to).await;
        *submissions.entry(sent).or_default() += 1;
        if sent != expected.submissions {
            violations.push(format!(
                "{} ({:?} {:?}): {sent} submissions, expected {}",
                p.to, p.kind, p.fault, expected.submissions
            ));
        }
        if expected.taken == 1 && expected.submissions == 1 {
            acknowledged_once.0 += 1;
            if sent == 1 {
                acknowledged_once.1 += 1;
            }
        }
    }

    let count = |k: Kind| accepted.iter().filter(|a| a.planned.kind == k).count();
    println!(
        "{} recipients accepted ({} direct with 2 POSTs each, {} scheduled, {} bulk in {} bulks) in {:.1} s; all checked after {:.1} s",
        accepted.len(),
        count(Kind::Direct),
        count(Kind::Scheduled),
        count(Kind::Bulk),
        tenants.len(),
        accepted_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "duplicate send jobs put on the queue: {}",
        plan.iter().filter(|p| p.duplicate_job).count()
    );
    println!("\n| carrier behaviour | weight | outcome | recipients |\n|---|---|---|---|");
    for ((fault, outcome), recipients) in &finals {
        let weight = Fault::WEIGHTS
            .iter()
            .find(|(f, _)| format!("{f:?}") == *fault)
            .map_or(0, |(_, w)| *w);
        println!(
            "| {fault} | {:.1}% | {outcome} | {recipients} |",
            f64::from(weight) / 10.0
        );
    }
    println!("\n| final status | recipients |\n|---|---|");
    for (status, recipients) in &per_status {
        println!("| {status} | {recipients} |");
    }
    println!("\n| carrier submissions per recipient | recipients |\n|---|---|");
    for (sent, recipients) in &submissions {
        println!("| {sent} | {recipients} |");
    }
    println!(
        "\nfirst submission acknowledged by the carrier: {} recipients, exactly 1 submission: {}",
        acknowledged_once.0, acknowledged_once.1
    );
    println!("lost: {lost}");
    if violations.is_empty() {
        println!("never lost, never twice: no violation");
    } else {
        for v in &violations {
            println!("VIOLATION: {v}");
        }
        std::process::exit(1);
    }
}

/// POSTs one direct or scheduled message twice with one key; answers its id.
async fn send_one(t: &TestPractice, p: &Planned) -> Result<String, String> {
    let key = format!("soak-{}", uuid::Uuid::new_v4().simple());
    let mut body = json!({"to": p.to, "text": "Soak test: your appointment is confirmed"});
    if p.kind == Kind::Scheduled {
        let seconds = rand::rng().random_range(20..90);
        let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
        body["send_at"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
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
        if r.status != 202 {
            return Err(format!("POST answered {}: {:?}", r.status, r.body));
        }
        ids.push(r.body["id"].as_str().unwrap_or_default().to_string());
    }
    if ids[0] != ids[1] {
        return Err(format!("one key answered two messages {ids:?}"));
    }
    Ok(ids.swap_remove(0))
}

/// The recipient once final (`delivered` or `failed`), or `None` if it is
/// not by the deadline.
async fn final_recipient(t: &TestPractice, a: &Accepted, within: Duration) -> Option<Value> {
    poll(within, || async {
        let recipient = match a.planned.kind {
            Kind::Bulk => bulk_recipient(t, &a.id, &a.planned.to).await,
            _ => {
                let r = t.api.get(&format!("/v1/messages/{}", a.id)).await;
                r.body["recipients"][0].clone()
            }
        };
        let status = recipient["status"].as_str().unwrap_or_default();
        matches!(status, "delivered" | "failed").then_some(recipient)
    })
    .await
}

/// The bulk's recipient whose number is `to`.
async fn bulk_recipient(t: &TestPractice, bulk: &str, to: &str) -> Value {
    let base = format!("/v1/bulk-messages/{bulk}/recipients?limit=200");
    let mut path = base.clone();
    loop {
        let r = t.api.get(&path).await;
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if let Some(found) = items.into_iter().find(|i| i["to"] == to) {
            return found;
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("{base}&cursor={c}"),
            None => return Value::Null,
        }
    }
}
