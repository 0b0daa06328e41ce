//! Appointment reminders on the running local cloud.
//!
//!     DEMO_QUIET_HOURS=off NUMBER_MESSAGES_PER_SECOND=25 make dev    (in another terminal)
//!     cargo run --profile local -p benchmarks --bin reminder-bench -- latency [--n 200]
//!     cargo run --profile local -p benchmarks --bin reminder-bench -- sync [--n 5000]
//!     cargo run --profile local -p benchmarks --bin reminder-bench -- soak [--n 100]
//!
//! `latency`: `--n` appointments on a practice of its own, each with one
//! reminder due within the next few minutes; half synced through the API
//! (a reminder due within 15 minutes goes on the send queue at once, with
//! a delay), half written straight to the table with nothing queued, so
//! only the minute's EventBridge Scheduler sweep can find them. Reports,
//! per path, how long after its due time each reached the carrier
//! simulator: median, 95th percentile and worst.
//!
//! `sync`: a first sync of `--n` appointments (a practice's next three
//! months) through `PUT /v1/appointments/{id}`, 8 at a time. Counts the
//! DynamoDB write requests the deployed messages function made for them,
//! from its metering lines (`MeterAwsRequests`), and the wall time.
//!
//! `soak`: `--n` appointments whose reminders fall due in the next two
//! minutes, while the bench works against them: every appointment synced
//! three times at once, a third moved away and back, a tenth moved out of
//! reach, and each one's reminder job put on the send queue twice more by
//! hand (duplicate firings). Then checks the carrier: every reminder that
//! should go went exactly once, none that should not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cloud_tests::{emulator, poll, random_phone, Endpoints, TestPractice};
use messaging_core::domain::appointment::{
    Appointment, AppointmentStatus, Confirmation, Reminder, ReminderJob,
};
use messaging_core::ports::AppointmentStore;
use serde_json::json;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn api_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A practice of its own with only a 2-hour reminder rule, and `n`
/// patients with numbers of their own.
async fn practice(local: &Endpoints, n: usize) -> (TestPractice, Vec<String>) {
    let t = local.new_practice().await;
    let r = t.api.delete("/v1/reminder-rules/confirm-2d").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let phones: Vec<String> = (0..n).map(|_| random_phone().to_string()).collect();
    let mut pending = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let api = t.api.clone();
        let phone = phone.clone();
        pending.push(tokio::spawn(async move {
            let r = api
                .put(
                    &format!("/v1/patients/p{i}"),
                    &json!({"first_name": format!("Pat{i}"), "phone": phone}),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }));
        if pending.len() == 8 {
            for p in pending.drain(..) {
                p.await.unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap();
    }
    (t, phones)
}

/// When the simulator received the first text for `to`.
async fn received_at(local: &Endpoints, to: &str) -> Option<DateTime<Utc>> {
    let got = local.carrier_messages(to).await;
    got.first()
        .and_then(|m| m["received_at"].as_str())
        .and_then(|t| t.parse().ok())
}

fn stats(label: &str, mut lateness: Vec<f64>) {
    lateness.sort_by(f64::total_cmp);
    let pick = |q: f64| lateness[((lateness.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label}: {} reminders, after their due time: median {:.1} s, p95 {:.1} s, worst {:.1} s, earliest {:.1} s",
        lateness.len(),
        pick(0.5),
        pick(0.95),
        lateness.last().copied().unwrap_or_default(),
        lateness.first().copied().unwrap_or_default(),
    );
}

async fn latency(local: &Endpoints, n: usize) {
    let (t, phones) = practice(local, n).await;
    let store = local.store().await;
    let start = Utc::now() + chrono::Duration::seconds(60);
    let mut due: Vec<(String, DateTime<Utc>, &'static str)> = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        // Due times spread over three minutes, a few seconds apart.
        let at = start + chrono::Duration::milliseconds((i as i64) * 180_000 / n as i64);
        let starts_at = at + chrono::Duration::hours(2);
        if i % 2 == 0 {
            let r = t
                .api
                .put(
                    &format!("/v1/appointments/a{i}"),
                    &json!({"patient_id": format!("p{i}"), "starts_at": api_time(starts_at)}),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            due.push((phone.clone(), at, "queued at sync"));
        } else {
            let a = Appointment {
                practice_id: t.practice.practice_id.clone(),
                appointment_id: format!("a{i}"),
                patient_id: format!("p{i}"),
                phone: messaging_core::domain::phone::PhoneNumber::parse(phone).unwrap(),
                starts_at,
                duration_minutes: None,
                provider: None,
                location: None,
                status: AppointmentStatus::Scheduled,
                confirmation: Confirmation::Unconfirmed,
                confirmed_at: None,
                updated_at: Utc::now(),
                reminders: vec![Reminder::pending("same-day-2h", at)],
                version: 1,
            };
            assert!(store.put_appointment(&a).await.unwrap());
            due.push((phone.clone(), at, "found by the sweep"));
        }
    }
    println!("{n} reminders due from {} over 3 minutes", api_time(start));
    let deadline = Instant::now() + Duration::from_secs(480);
    let mut by_path: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (phone, at, path) in &due {
        let got = poll(deadline.saturating_duration_since(Instant::now()), || {
            received_at(local, phone)
        })
        .await
        .unwrap_or_else(|| panic!("no reminder reached {phone}"));
        by_path
            .entry(path)
            .or_default()
            .push((got - *at).num_milliseconds() as f64 / 1000.0);
    }
    let all: Vec<f64> = by_path.values().flatten().copied().collect();
    for (path, lateness) in by_path {
        stats(path, lateness);
    }
    stats("all", all);
}

/// DynamoDB write requests in the messages function's metering lines since `since`.
async fn writes_since(local: &Endpoints, since: i64) -> (u64, u64) {
    let records = emulator::function_log_records(
        &local.aws_endpoint_url,
        &local.stack_name,
        "MessagesApi",
        since,
    )
    .await;
    let mut writes = 0;
    let mut invocations = 0;
    for r in records {
        let fields = &r["fields"];
        if fields["message"] != "invocation metered" {
            continue;
        }
        invocations += 1;
        let requests: BTreeMap<String, u64> =
            serde_json::from_str(fields["aws_requests"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
        writes += requests
            .iter()
            .filter(|(k, _)| {
                let k = k.to_lowercase();
                k.contains("dynamodb")
                    && [
                        "putitem",
                        "updateitem",
                        "deleteitem",
                        "transactwriteitems",
                        "batchwriteitem",
                    ]
                    .iter()
                    .any(|op| k.ends_with(op))
            })
            .map(|(_, v)| v)
            .sum::<u64>();
    }
    (writes, invocations)
}

async fn sync(local: &Endpoints, n: usize) {
    let (t, _) = practice(local, 50).await;
    // Give the patient writes' metering lines their own window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = Utc::now().timestamp_millis();
    let began = Instant::now();
    let first = Utc::now() + chrono::Duration::days(1);
    let mut pending = Vec::new();
    for i in 0..n {
        let api = t.api.clone();
        // Spread over 90 days, 9:00 to 17:00.
        let starts_at = first + chrono::Duration::minutes(((i * 90 * 24 * 60) / n) as i64);
        pending.push(tokio::spawn(async move {
            let r = api
                .put(
                    &format!("/v1/appointments/s{i}"),
                    &json!({"patient_id": format!("p{}", i % 50), "starts_at": api_time(starts_at), "provider": "Dr. Lee"}),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }));
        if pending.len() == 8 {
            for p in pending.drain(..) {
                p.await.unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap();
    }
    let wall = began.elapsed();
    // The metering lines reach the emulator's logs shortly after.
    let mut counted = (0, 0);
    for _ in 0..60 {
        counted = writes_since(local, since).await;
        if counted.1 as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (writes, invocations) = counted;
    println!(
        "first sync of {n} appointments: {:.1} s wall ({:.1} appointments/s, 8 at a time); {invocations} metered invocations, {writes} DynamoDB write requests = {:.2} per appointment",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        writes as f64 / n as f64
    );
}

async fn soak(local: &Endpoints, n: usize) {
    let (t, phones) = practice(local, n).await;
    let queue = aws_sdk_sqs::Client::new(&local.aws().await);
    let start = Utc::now() + chrono::Duration::seconds(45);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut tasks = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let api = t.api.clone();
        let at = start + chrono::Duration::milliseconds((i as i64) * 90_000 / n as i64);
        let starts_at = api_time(at + chrono::Duration::hours(2));
        let far = api_time(at + chrono::Duration::days(20));
        let out_of_reach = i % 10 == 9;
        expected.insert(phone.clone(), usize::from(!out_of_reach));
        tasks.push(tokio::spawn(async move {
            let body = json!({"patient_id": format!("p{i}"), "starts_at": starts_at});
            // Three concurrent syncs of the same appointment.
            let path = format!("/v1/appointments/a{i}");
            let (a, b, c) = tokio::join!(
                api.put(&path, &body),
                api.put(&path, &body),
                api.put(&path, &body)
            );
            for r in [a, b, c] {
                assert!(r.status == 200 || r.status == 503, "{:?}", r.body);
            }
            if i % 3 == 1 {
                // Moved away and back.
                let away = json!({"patient_id": format!("p{i}"), "starts_at": far});
                assert_eq!(api.put(&path, &away).await.status, 200);
                assert_eq!(api.put(&path, &body).await.status, 200);
            }
            if i % 10 == 9 {
                let away = json!({"patient_id": format!("p{i}"), "starts_at": far});
                assert_eq!(api.put(&path, &away).await.status, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Duplicate firings: each reminder job twice more, now and at its time.
    for i in 0..n {
        let job = ReminderJob {
            practice_id: t.practice.practice_id.clone(),
            appointment_id: format!("a{i}"),
        }
        .to_send_job();
        let body = serde_json::to_string(&job).unwrap();
        for delay in [0, 60] {
            queue
                .send_message()
                .queue_url(&local.send_queue_url)
                .message_body(&body)
                .delay_seconds(delay)
                .send()
                .await
                .expect("enqueue a duplicate reminder job");
        }
    }
    println!(
        "{n} appointments, reminders due from {} over 90 s; waiting",
        api_time(start)
    );
    // Everything due has gone after 3 minutes past the last due time.
    let settle = start + chrono::Duration::seconds(90 + 180);
    while Utc::now() < settle {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let (mut lost, mut twice, mut unwanted) = (0, 0, 0);
    for (phone, want) in &expected {
        let got = local.carrier_messages(phone).await.len();
        match (*want, got) {
            (1, 0) => lost += 1,
            (1, g) if g > 1 => twice += 1,
            (0, g) if g > 0 => unwanted += 1,
            _ => {}
        }
    }
    println!(
        "soak: {} reminders expected, {} moved out of reach; lost {lost}, sent twice {twice}, sent when moved away {unwanted}",
        expected.values().sum::<usize>(),
        expected.values().filter(|w| **w == 0).count()
    );
    assert_eq!((lost, twice, unwanted), (0, 0, 0));
}

#[tokio::main]
async fn main() {
    let local = Endpoints::load();
    let mode = std::env::args().nth(1).unwrap_or_else(|| "latency".into());
    match mode.as_str() {
        "latency" => latency(&local, arg("--n", 200)).await,
        "sync" => sync(&local, arg("--n", 5000)).await,
        "soak" => soak(&local, arg("--n", 100)).await,
        other => panic!("unknown mode {other}: latency, sync or soak"),
    }
}
