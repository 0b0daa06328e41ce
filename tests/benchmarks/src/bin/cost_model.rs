//! What 1,000 messages cost on AWS, from counted requests.
//!
//!     NUMBER_MESSAGES_PER_SECOND=25 make dev        (in another terminal)
//!     cargo run --profile local -p benchmarks --bin cost-model -- [--n 20] [--bulk 1000]
//!         [--flows direct,scheduled,bulk,inbound,reminders,confirmed]
//!
//! Runs four flows through the deployed local stack, one after another, on
//! a practice of its own: `--n` direct messages (sent, then delivered by
//! the carrier's callback), `--n` scheduled ones (through EventBridge
//! Scheduler), one bulk of `--bulk` patients (cap 250 per window, the
//! window shortened so the waves take seconds, not hours), `--n`
//! patient replies, and `--n` appointment reminders (each appointment
//! synced, its reminder sent by itself and delivered), without and with
//! confirmations (each patient answers "C" and gets the acknowledgment;
//! the per-1,000 figure is per reminder, the reply and acknowledgment
//! included). The stack runs with `MeterAwsRequests=true` (the local
//! cloud's setting): after every invocation each function logs its AWS
//! requests by service and operation and its duration. After each flow,
//! once no function has run for a few seconds, this reads those lines and
//! every other log line of the flow from the emulator's CloudWatch Logs and
//! prices them with the table in docs/cost-model.md (the same numbers as
//! [`PRICES`]). Nothing is estimated except what AWS does on our behalf
//! and the emulator does not show, each stated in the output:
//!
//! - API Gateway requests: one per invocation of an API function.
//! - SQS requests the event-source mappings make: one receive and one
//!   delete per message queued (no batching: the most they can cost).
//! - One Scheduler invocation per schedule created.
//! - DynamoDB units: a read is 1 RRU (strongly consistent, ≤ 4 KB), a write
//!   `w` WRU, doubled in a transaction; `w` is the mean over the flow's
//!   changes (read from the table's stream) of ⌈larger of the item before
//!   and after / 1 KB⌉.
//! - DynamoDB index writes: every change the flow made, read from the
//!   table's stream, priced by DynamoDB's rules for global secondary
//!   indexes (`cloud_tests::billing`) against the indexes `DescribeTable`
//!   reports: the requests count the table's writes, not the index writes
//!   DynamoDB makes and bills for each of them.
//! - Lambda duration: the measured duration of each invocation here,
//!   rounded up to 1 ms, times the function's memory in template.yaml. The
//!   local functions are unoptimised builds calling an emulator, so this
//!   is an upper bound; AWS's own requests are faster.
//!
//! Needs an idle stack: every invocation in a flow's window is counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use cloud_tests::billing::{write_bill, Index, WriteBill};
use cloud_tests::{poll, random_phone, Endpoints, TestPractice};
use messaging_adapters::dynamo::DynamoStore;
use messaging_core::domain::message::RecipientStatus;
use messaging_core::domain::patient::Patient;
use messaging_core::ports::{MessageStore, PracticeStore};
use serde_json::{json, Value};

/// On-demand prices in us-east-1, in dollars (docs/cost-model.md has the
/// sources and the date they were read).
struct Prices {
    lambda_request: f64,
    gb_second_x86: f64,
    gb_second_arm: f64,
    http_api_request: f64,
    sqs_request: f64,
    dynamodb_wru: f64,
    dynamodb_rru: f64,
    scheduler_invocation: f64,
    secrets_api_call: f64,
    s3_put: f64,
    s3_get: f64,
    logs_gb: f64,
}

const PRICES: Prices = Prices {
    lambda_request: 0.20 / 1e6,
    gb_second_x86: 0.000_016_666_7,
    gb_second_arm: 0.000_013_333_4,
    http_api_request: 1.00 / 1e6,
    sqs_request: 0.40 / 1e6,
    dynamodb_wru: 0.625 / 1e6,
    dynamodb_rru: 0.125 / 1e6,
    scheduler_invocation: 1.00 / 1e6,
    secrets_api_call: 0.05 / 1e4,
    s3_put: 0.005 / 1e3,
    s3_get: 0.0004 / 1e3,
    logs_gb: 0.50,
};

/// Functions behind the HTTP API (one API Gateway request per invocation).
const API_FUNCTIONS: [&str; 4] = [
    "MessagesApiFunction",
    "PracticeApiFunction",
    "CarrierWebhookFunction",
    "ConsoleFunction",
];

fn arg(name: &str, default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_else(|| default.to_string())
}

/// One invocation's metering line.
#[derive(Debug)]
struct Invocation {
    function: String,
    requests: BTreeMap<String, u64>,
    duration_ms: f64,
}

/// What a flow's window holds.
#[derive(Debug, Default)]
struct Window {
    invocations: Vec<Invocation>,
    /// Bytes of every other log line (what CloudWatch Logs ingests).
    log_bytes: u64,
}

/// The emulator's CloudWatch Logs, through its JSON API.
struct Logs {
    http: reqwest::Client,
    url: String,
    stack: String,
}

impl Logs {
    async fn call(&self, operation: &str, body: &Value) -> Value {
        cloud_tests::emulator::logs(&self.http, &self.url, operation, body).await
    }

    /// Every function's log lines between `from` and `to` (ms since epoch).
    async fn window(&self, from: i64, to: i64) -> Window {
        let groups = self
            .call(
                "DescribeLogGroups",
                &json!({"logGroupNamePrefix": format!("/aws/lambda/{}-", self.stack)}),
            )
            .await;
        let mut window = Window::default();
        for group in groups["logGroups"].as_array().cloned().unwrap_or_default() {
            let name = group["logGroupName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let function = name
                .trim_start_matches(&format!("/aws/lambda/{}-", self.stack))
                .rsplit_once('-')
                .map_or(name.as_str(), |(f, _)| f)
                .to_string();
            let mut token: Option<String> = None;
            loop {
                let mut body = json!({"logGroupName": name, "startTime": from, "endTime": to});
                if let Some(t) = &token {
                    body["nextToken"] = json!(t);
                }
                let page = self.call("FilterLogEvents", &body).await;
                for event in page["events"].as_array().cloned().unwrap_or_default() {
                    let message = event["message"].as_str().unwrap_or_default();
                    match metering_line(message) {
                        Some((requests, duration_ms)) => window.invocations.push(Invocation {
                            function: function.clone(),
                            requests,
                            duration_ms,
                        }),
                        None => window.log_bytes += message.len() as u64,
                    }
                }
                token = page["nextToken"].as_str().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        window
    }

    /// Waits until no function has logged for `quiet`; returns that moment.
    async fn settle(&self, from: i64, quiet: Duration) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut last = (usize::MAX, Instant::now());
        loop {
            let now = Utc::now().timestamp_millis();
            let seen = self.window(from, now).await.invocations.len();
            if seen != last.0 {
                last = (seen, Instant::now());
            } else if last.1.elapsed() >= quiet {
                return now;
            }
            assert!(Instant::now() < deadline, "the stack did not settle");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `Some((requests, duration))` for a metering line.
fn metering_line(message: &str) -> Option<(BTreeMap<String, u64>, f64)> {
    let line: Value = serde_json::from_str(message).ok()?;
    let fields = line.get("fields")?;
    if fields.get("message")?.as_str()? != "invocation metered" {
        return None;
    }
    let requests = serde_json::from_str(fields.get("aws_requests")?.as_str()?).ok()?;
    Some((requests, fields.get("duration_ms")?.as_f64()?))
}

/// Memory (MB) of each function in template.yaml (128 when unset).
fn memory_sizes() -> BTreeMap<String, f64> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let mut sizes = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in template.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            current = Some(line.trim().trim_end_matches(':').to_string());
        }
        if let (Some(name), Some(mb)) = (&current, line.trim().strip_prefix("MemorySize: ")) {
            if line.starts_with("      ") {
                sizes.insert(name.clone(), mb.trim().parse().unwrap_or(128.0));
            }
        }
    }
    sizes
}

/// The table's global secondary indexes and key attributes, as deployed.
async fn indexes(local: &Endpoints) -> (Vec<Index>, Vec<String>, String) {
    let dynamo = aws_sdk_dynamodb::Client::new(&local.aws().await);
    let table = dynamo
        .describe_table()
        .table_name(&local.table_name)
        .send()
        .await
        .expect("describe table")
        .table
        .expect("table");
    let names = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema
            .iter()
            .map(|k| k.attribute_name().to_string())
            .collect::<Vec<_>>()
    };
    let indexes = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let projection = g.projection();
            let all = projection
                .and_then(|p| p.projection_type())
                .is_none_or(|t| t.as_str() == "ALL");
            Index {
                name: g.index_name().unwrap_or_default().to_string(),
                keys: names(g.key_schema()),
                projected: (!all).then(|| {
                    projection
                        .map(|p| p.non_key_attributes().to_vec())
                        .unwrap_or_default()
                }),
            }
        })
        .collect();
    let stream = table
        .latest_stream_arn()
        .expect("the table's stream")
        .to_string();
    (indexes, names(table.key_schema()), stream)
}

/// Every change made to the table from the moment it is opened, read from
/// the table's stream (a task reads it every few seconds: an iterator
/// expires after 15 minutes, and a bulk takes longer).
struct StreamTap {
    records: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl StreamTap {
    async fn call(http: &reqwest::Client, url: &str, operation: &str, body: &Value) -> Value {
        cloud_tests::emulator::call(
            http,
            url,
            &format!("DynamoDBStreams_20120810.{operation}"),
            "dynamodb",
            "1.0",
            body,
        )
        .await
    }

    async fn open(local: &Endpoints, stream_arn: &str) -> StreamTap {
        let http = cloud_tests::http();
        let url = local.aws_endpoint_url.clone();
        let shard = Self::call(
            &http,
            &url,
            "DescribeStream",
            &json!({"StreamArn": stream_arn}),
        )
        .await["StreamDescription"]["Shards"][0]["ShardId"]
            .as_str()
            .expect("a shard")
            .to_string();
        let mut iterator = Self::call(
            &http,
            &url,
            "GetShardIterator",
            &json!({"StreamArn": stream_arn, "ShardId": shard, "ShardIteratorType": "LATEST"}),
        )
        .await["ShardIterator"]
            .as_str()
            .expect("an iterator")
            .to_string();
        let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let sink = records.clone();
        let reader = tokio::spawn(async move {
            loop {
                let done = *stopped.borrow();
                // Read until a page comes back empty.
                loop {
                    let page = Self::call(
                        &http,
                        &url,
                        "GetRecords",
                        &json!({"ShardIterator": iterator}),
                    )
                    .await;
                    let got = page["Records"].as_array().cloned().unwrap_or_default();
                    iterator = page["NextShardIterator"]
                        .as_str()
                        .expect("an open shard")
                        .to_string();
                    if got.is_empty() {
                        break;
                    }
                    sink.lock().expect("records").extend(got);
                }
                if done {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), stopped.changed()).await;
            }
        });
        StreamTap {
            records,
            reader,
            stop,
        }
    }

    /// Reads what is left and returns every record since `open`.
    async fn close(self) -> Vec<Value> {
        let _ = self.stop.send(true);
        self.reader.await.expect("the stream reader");
        std::mem::take(&mut *self.records.lock().expect("records"))
    }
}

/// A flow's counts and what they cost.
#[derive(Debug, Default)]
struct Bill {
    messages: u64,
    invocations: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    /// The same requests by function.
    by_function: BTreeMap<String, BTreeMap<String, u64>>,
    gb_seconds: f64,
    log_bytes: u64,
    /// The flow's changes, from the table's stream.
    writes: WriteBill,
}

impl Bill {
    fn from_window(messages: u64, window: &Window, memory: &BTreeMap<String, f64>) -> Bill {
        let mut bill = Bill {
            messages,
            log_bytes: window.log_bytes,
            ..Bill::default()
        };
        for i in &window.invocations {
            *bill.invocations.entry(i.function.clone()).or_default() += 1;
            for (k, v) in &i.requests {
                *bill.requests.entry(k.clone()).or_default() += v;
                *bill
                    .by_function
                    .entry(i.function.clone())
                    .or_default()
                    .entry(k.clone())
                    .or_default() += v;
            }
            let mb = memory.get(&i.function).copied().unwrap_or(128.0);
            bill.gb_seconds += i.duration_ms.ceil() / 1000.0 * mb / 1024.0;
        }
        bill
    }

    fn count(&self, key: &str) -> f64 {
        self.requests.get(key).copied().unwrap_or(0) as f64
    }

    fn sum(&self, keys: &[&str]) -> f64 {
        keys.iter().map(|k| self.count(k)).sum()
    }

    /// Dollars by component, `gb_second` being the architecture's price.
    fn dollars(&self, gb_second: f64) -> Vec<(&'static str, f64)> {
        let p = &PRICES;
        let invocations: u64 = self.invocations.values().sum();
        let api: u64 = API_FUNCTIONS
            .iter()
            .map(|f| self.invocations.get(*f).copied().unwrap_or(0))
            .sum();
        let queued = self.sum(&[
            "sqs:SendMessage",
            "sqs:SendMessageBatch.items",
            "scheduler:POST",
        ]);
        let sqs = self
            .requests
            .iter()
            .filter(|(k, _)| k.starts_with("sqs:") && !k.ends_with(".items"))
            .map(|(_, v)| *v as f64)
            .sum::<f64>()
            + 2.0 * queued;
        let w = self.writes.units_per_write();
        let wru = w * self.sum(&[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem.items",
        ]) + 2.0 * w * self.count("dynamodb:TransactWriteItems.items");
        let index_wru = self.writes.index_total();
        let rru = self.sum(&[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:BatchGetItem.items",
        ]) + 2.0 * self.count("dynamodb:TransactGetItems.items");
        let secrets: f64 = self
            .requests
            .iter()
            .filter(|(k, _)| k.starts_with("secretsmanager:"))
            .map(|(_, v)| *v as f64)
            .sum();
        vec![
            ("Lambda requests", invocations as f64 * p.lambda_request),
            ("Lambda GB-s", self.gb_seconds * gb_second),
            ("API Gateway", api as f64 * p.http_api_request),
            ("SQS", sqs * p.sqs_request),
            ("DynamoDB writes", wru * p.dynamodb_wru),
            ("DynamoDB index writes", index_wru * p.dynamodb_wru),
            ("DynamoDB reads", rru * p.dynamodb_rru),
            (
                "Scheduler",
                self.count("scheduler:POST") * p.scheduler_invocation,
            ),
            ("Secrets Manager", secrets * p.secrets_api_call),
            (
                "S3",
                self.count("s3:PUT") * p.s3_put + self.count("s3:GET") * p.s3_get,
            ),
            ("CloudWatch Logs", self.log_bytes as f64 / 1e9 * p.logs_gb),
        ]
    }

    fn per_thousand(&self, gb_second: f64) -> f64 {
        self.dollars(gb_second).iter().map(|(_, d)| d).sum::<f64>() * 1000.0 / self.messages as f64
    }

    /// The same without what only a cold start does: a function reads its
    /// secrets once per instance, and a flow on a fresh stack starts
    /// instances that a busy one already has warm.
    fn per_thousand_warm(&self, gb_second: f64) -> f64 {
        self.dollars(gb_second)
            .iter()
            .filter(|(what, _)| *what != "Secrets Manager")
            .map(|(_, d)| d)
            .sum::<f64>()
            * 1000.0
            / self.messages as f64
    }

    fn print(&self, name: &str) {
        let per = self.messages as f64;
        println!("\n### {name}: {} messages\n", self.messages);
        let inv: Vec<String> = self
            .invocations
            .iter()
            .map(|(f, n)| format!("{} {:.2}", f.trim_end_matches("Function"), *n as f64 / per))
            .collect();
        println!("invocations per message: {}", inv.join(", "));
        let req: Vec<String> = self
            .requests
            .iter()
            .map(|(k, n)| format!("{k} {:.2}", *n as f64 / per))
            .collect();
        println!("AWS requests per message: {}", req.join(", "));
        for (function, requests) in &self.by_function {
            let req: Vec<String> = requests
                .iter()
                .map(|(k, n)| format!("{k} {:.2}", *n as f64 / per))
                .collect();
            println!(
                "  {}: {}",
                function.trim_end_matches("Function"),
                req.join(", ")
            );
        }
        println!(
            "GB-s per message {:.6}; log bytes per message {:.0}; WRU per table write {:.2} (largest item {} bytes)\n",
            self.gb_seconds / per,
            self.log_bytes as f64 / per,
            self.writes.units_per_write(),
            self.writes.largest_item
        );
        let by_index: Vec<String> = self
            .writes
            .by_index
            .iter()
            .filter(|(_, u)| **u > 0.0)
            .map(|(name, u)| format!("{name} {:.2}", u / per))
            .collect();
        println!(
            "item changes per message {:.2} (from the stream; {} of items older than the flow); index WRU per message {:.2}: {}\n",
            self.writes.changes as f64 / per,
            self.writes.unknown_before,
            self.writes.index_total() / per,
            by_index.join(", ")
        );
        println!("| component | $ per 1,000 (x86_64) | $ per 1,000 (arm64) |");
        println!("|---|---|---|");
        let x86 = self.dollars(PRICES.gb_second_x86);
        let arm = self.dollars(PRICES.gb_second_arm);
        for ((what, a), (_, b)) in x86.iter().zip(&arm) {
            // `+ 0.0`: an empty sum is -0.0.
            println!(
                "| {what} | {:.5} | {:.5} |",
                a * 1000.0 / per + 0.0,
                b * 1000.0 / per + 0.0
            );
        }
        println!(
            "| **total** | **{:.4}** | **{:.4}** |",
            self.per_thousand(PRICES.gb_second_x86),
            self.per_thousand(PRICES.gb_second_arm)
        );
        println!(
            "| total, warm stack (no cold-start secret reads) | {:.4} | {:.4} |",
            self.per_thousand_warm(PRICES.gb_second_x86),
            self.per_thousand_warm(PRICES.gb_second_arm)
        );
    }
}

/// Waits until every recipient of the message is delivered or failed, reading the
/// table directly: polling the API would count as invocations of the flow.
async fn wait_delivered(
    store: &DynamoStore,
    practice_id: &str,
    message_id: &str,
    within: Duration,
) {
    poll(within, || async {
        let (_, recipients) = store.get_message(practice_id, message_id).await.ok()??;
        recipients
            .iter()
            // The simulator fails numbers ending in a carrier error code,
            // and random numbers sometimes do: a failure is an end too.
            .all(|r| {
                matches!(
                    r.status,
                    RecipientStatus::Delivered | RecipientStatus::Failed
                )
            })
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{message_id} did not finish within {within:?}"));
}

/// `n` messages to fresh numbers (`extra` added to each body), then waits
/// for each to finish.
async fn messages(store: &DynamoStore, t: &TestPractice, n: usize, extra: Value, within: Duration) {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut body = json!({"to": random_phone().to_string(), "text": "Your crown is ready"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = t.api.post("/v1/messages", &body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_string());
    }
    for id in ids {
        wait_delivered(store, &t.practice.practice_id, &id, within).await;
    }
}

async fn direct(store: &DynamoStore, t: &TestPractice, n: usize) {
    messages(store, t, n, json!({}), Duration::from_secs(120)).await;
}

async fn scheduled(store: &DynamoStore, t: &TestPractice, n: usize) {
    let send_at = (Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    messages(
        store,
        t,
        n,
        json!({"send_at": send_at}),
        Duration::from_secs(180),
    )
    .await;
}

async fn bulk(store: &DynamoStore, t: &TestPractice, ids: &[String], window: u32) {
    let r = t
        .api
        .post(
            "/v1/bulk-messages",
            &json!({"patient_ids": ids, "text": "Hi {first_name}, we are closed Friday.", "acknowledge_bulk_limit": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id");
    let waves = ids.len().div_ceil(250) as u64;
    // Generous: a loaded machine slows the emulator, not the counts.
    // The local dispatcher sends about one bulk recipient a second
    // (docs/cost-model.md), so allow two seconds each.
    let within =
        Duration::from_secs((3 * waves * u64::from(window)).max(2 * ids.len() as u64) + 600);
    wait_delivered(store, &t.practice.practice_id, id, within).await;
}

/// Before a reminder flow (not counted): `n` patients, and one rule, two
/// hours before, asking to confirm when `confirm`.
async fn reminder_setup(
    store: &DynamoStore,
    t: &TestPractice,
    n: usize,
    confirm: bool,
) -> Vec<Patient> {
    let r = t.api.delete("/v1/reminder-rules/confirm-2d").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let text = "Hi {first_name}, see you today at {appointment_time} at {practice_name}.";
    let r = t
        .api
        .put(
            "/v1/reminder-rules/same-day-2h",
            &json!({"before": "PT2H", "text": text, "ask_to_confirm": confirm}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut patients = Vec::new();
    for i in 0..n {
        let p = Patient {
            patient_id: format!("rem-{i:05}"),
            first_name: format!("Pat{i}"),
            last_name: None,
            phone: random_phone(),
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store
            .put_patient(&t.practice.practice_id, &p)
            .await
            .expect("patient");
        patients.push(p);
    }
    patients
}

/// The reminder flow: each patient's appointment synced two hours and
/// 20 s ahead (its reminder due in 20 s, queued at the sync), sent by
/// itself and delivered; with `confirm`, each patient then answers "C" and
/// gets the acknowledgment.
async fn reminders(
    local: &Endpoints,
    store: &DynamoStore,
    t: &TestPractice,
    patients: &[Patient],
    confirm: bool,
) {
    use messaging_core::ports::AppointmentStore;
    let starts_at = (Utc::now() + chrono::Duration::seconds(7220)).to_rfc3339();
    for p in patients {
        let r = t
            .api
            .put(
                &format!("/v1/appointments/{}", p.patient_id),
                &json!({"patient_id": p.patient_id, "starts_at": starts_at}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for p in patients {
        let message_id = poll(Duration::from_secs(180), || async {
            let a = store
                .get_appointment(&t.practice.practice_id, &p.patient_id)
                .await
                .ok()??;
            a.reminders.first()?.message_id.clone()
        })
        .await
        .expect("the reminder went");
        wait_delivered(
            store,
            &t.practice.practice_id,
            &message_id,
            Duration::from_secs(120),
        )
        .await;
    }
    if !confirm {
        return;
    }
    let to = t.practice.channels.sms_main.to_string();
    for p in patients {
        local
            .patient_texts(p.phone.as_str(), &to, "C", Value::Null)
            .await;
    }
    for p in patients {
        poll(Duration::from_secs(120), || async {
            (local.carrier_messages(p.phone.as_str()).await.len() >= 2).then_some(())
        })
        .await
        .expect("the acknowledgment went");
    }
}

async fn inbound(local: &Endpoints, t: &TestPractice, n: usize) {
    let to = t.practice.channels.sms_main.to_string();
    for i in 0..n {
        let from = random_phone().to_string();
        local
            .patient_texts(
                &from,
                &to,
                &format!("Can I move my cleaning to Tuesday? ({i})"),
                Value::Null,
            )
            .await;
    }
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--n", "20").parse().expect("--n N");
    let bulk_size: usize = arg("--bulk", "1000").parse().expect("--bulk N");
    let local = Endpoints::load();
    let per_second = local.number_messages_per_second.max(1);
    // Four waves of 250 like an hour's cap, each wave twice as long as its
    // sends take at the stack's pace.
    let window = (2 * 250 / per_second).max(20);
    if per_second < 10 {
        println!(
            "note: the stack paces bulks at {per_second}/s, so the bulk of {bulk_size} takes about {} min; \
             `NUMBER_MESSAGES_PER_SECOND=25 make dev` makes it about a minute",
            bulk_size as u32 / per_second / 60
        );
    }
    let logs = Logs {
        http: cloud_tests::http(),
        url: local.aws_endpoint_url.clone(),
        stack: local.stack_name.clone(),
    };
    let memory = memory_sizes();
    let store = local.store().await;
    let (table_indexes, table_keys, stream_arn) = indexes(&local).await;

    let mut bills: Vec<(&str, Bill)> = Vec::new();
    let flows = arg(
        "--flows",
        "direct,scheduled,bulk,inbound,reminders,confirmed",
    );
    for flow in flows.split(',') {
        let t = local
            .new_practice_with(|p| {
                p.hourly_cap = 250;
                p.cap_window_seconds = window;
                p.max_bulk_recipients = bulk_size.max(1000) as u32;
            })
            .await;
        let mut ids = Vec::new();
        if flow == "bulk" {
            for i in 0..bulk_size {
                let p = Patient {
                    patient_id: format!("cost-{i:05}"),
                    first_name: format!("Pat{i}"),
                    last_name: Some("Model".into()),
                    phone: random_phone(),
                    birth_date: None,
                    sms_opted_out: false,
                    sms_undeliverable: None,
                };
                store
                    .put_patient(&t.practice.practice_id, &p)
                    .await
                    .expect("patient");
                ids.push(p.patient_id);
            }
        }
        let mut patients = Vec::new();
        if flow == "reminders" || flow == "confirmed" {
            patients = reminder_setup(&store, &t, n, flow == "confirmed").await;
        }
        let from = logs
            .settle(Utc::now().timestamp_millis() - 1000, Duration::from_secs(3))
            .await;
        let tap = StreamTap::open(&local, &stream_arn).await;
        let started = Instant::now();
        let messages = match flow {
            "direct" => {
                direct(&store, &t, n).await;
                n
            }
            "scheduled" => {
                scheduled(&store, &t, n).await;
                n
            }
            "bulk" => {
                bulk(&store, &t, &ids, window).await;
                bulk_size
            }
            "reminders" | "confirmed" => {
                reminders(&local, &store, &t, &patients, flow == "confirmed").await;
                n
            }
            _ => {
                inbound(&local, &t, n).await;
                n
            }
        };
        let to = logs.settle(from, Duration::from_secs(8)).await;
        let window_lines = logs.window(from, to).await;
        let mut bill = Bill::from_window(messages as u64, &window_lines, &memory);
        bill.writes = write_bill(&tap.close().await, &table_indexes, &table_keys);
        println!(
            "{flow}: {messages} messages, {} invocations, {:.0} s",
            window_lines.invocations.len(),
            started.elapsed().as_secs_f64()
        );
        bills.push((flow, bill));
    }

    println!("\n## Cost per 1,000 messages (infrastructure only, carrier fees apart; prices in docs/cost-model.md)");
    for (name, bill) in &bills {
        bill.print(name);
    }
    println!("\n## Summary\n");
    println!(
        "| flow | $ per 1,000 x86_64 | $ per 1,000 arm64 | arm64, warm stack | ≤ $0.01 (arm64) |"
    );
    println!("|---|---|---|---|---|");
    for (name, bill) in &bills {
        let arm = bill.per_thousand(PRICES.gb_second_arm);
        println!(
            "| {name} | {:.4} | {arm:.4} | {:.4} | {} |",
            bill.per_thousand(PRICES.gb_second_x86),
            bill.per_thousand_warm(PRICES.gb_second_arm),
            if arm <= 0.01 { "yes" } else { "no" }
        );
    }
}
