//! What a bulk message costs on the local cloud.
//!
//!     cargo run --profile local -p benchmarks --bin bulk-bench -- [--sizes 250,1000]
//!         [--cap 100] [--window 10] [--per-second 25]
//!
//! Needs `make dev` running. For each size:
//!
//! 1. **API latency** of `POST /v1/bulk-messages` on the deployed stack
//!    (three bulks, scheduled a day ahead so the deployed dispatcher sends
//!    nothing) and of `DELETE` on each.
//! 2. **Requests per recipient at acceptance**: the same use case
//!    (`BulkMessages::accept`) run in this process against the emulator with
//!    SDK clients that count every HTTP request by operation.
//! 3. **Receives per recipient until sent**: the bulk is then dispatched by
//!    the real `Dispatcher` (DynamoDB adapter, Bandwidth adapter to the
//!    carrier simulator) consuming a private SQS queue like the event-source
//!    mapping does (receive up to 10, delete on success, change visibility on
//!    retry), with a small cap so the bulk goes out in several waves. Every
//!    receive is counted, the pump's included.
//!
//! Results and their reading are in docs/measurements.md.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chrono::Utc;
use cloud_tests::{random_phone, Endpoints};
use messaging_adapters::bandwidth::{Bandwidth, BandwidthConfig};
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::bulk::{BulkMessages, BulkRequest};
use messaging_core::app::dispatch::{Dispatched, Dispatcher, RetryPolicy};
use messaging_core::app::messages::SendNowOnly;
use messaging_core::domain::message::SendJob;
use messaging_core::domain::patient::Patient;
use messaging_core::domain::practice::Practice;
use messaging_core::ports::{BulkStore, PracticeStore, SystemClock};
use serde_json::json;

/// Counts HTTP requests by operation (`X-Amz-Target`), retries included.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "request-counter"
    }
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn arg(name: &str, default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_else(|| default.to_string())
}

const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

fn describe(label: &str, counts: &BTreeMap<String, u64>, per: u64) {
    let list: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("{k} {v} ({:.3}/recipient)", *v as f64 / per as f64))
        .collect();
    println!("  {label}: {}", list.join(", "));
}

struct Clients {
    store: DynamoStore,
    sqs: aws_sdk_sqs::Client,
    dynamo_count: Counter,
    sqs_count: Counter,
}

async fn counting_clients(local: &Endpoints) -> Clients {
    let aws = local.aws().await;
    let dynamo_count = Counter::default();
    let sqs_count = Counter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(dynamo_count.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(sqs_count.clone())
            .build(),
    );
    Clients {
        store: DynamoStore::new(dynamo, local.table_name.clone()),
        sqs,
        dynamo_count,
        sqs_count,
    }
}

async fn seed_patients(store: &DynamoStore, practice_id: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let p = Patient {
            patient_id: format!("bench-{i:05}"),
            first_name: format!("Pat{i}"),
            last_name: Some("Bench".into()),
            phone: random_phone(),
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient(practice_id, &p).await.expect("patient");
        ids.push(p.patient_id);
    }
    ids
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn api_latency(local: &Endpoints, size: usize) {
    let t = local.new_practice().await;
    let ids = seed_patients(&local.store().await, &t.practice.practice_id, size).await;
    let send_at = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut posts = Vec::new();
    let mut deletes = Vec::new();
    for _ in 0..3 {
        let body = json!({"patient_ids": ids, "text": "Hi {first_name}, our office is closed Friday.",
            "acknowledge_bulk_limit": true, "send_at": send_at});
        let s = Instant::now();
        let r = t.api.post("/v1/bulk-messages", &body).await;
        posts.push(s.elapsed());
        assert_eq!(r.status, 202, "{:?}", r.body);
        let path = format!("/v1/bulk-messages/{}", r.body["id"].as_str().unwrap());
        let s = Instant::now();
        let r = t.api.delete(&path).await;
        deletes.push(s.elapsed());
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["counts"]["canceled"], size);
    }
    println!(
        "  API (deployed stack): POST /v1/bulk-messages median {:.0} ms (of {:?}), DELETE median {:.0} ms",
        median(posts.clone()).as_secs_f64() * 1000.0,
        posts.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        median(deletes).as_secs_f64() * 1000.0,
    );
}

#[allow(clippy::too_many_lines)]
async fn costs(local: &Endpoints, size: usize, cap: u32, window: u32, per_second: u32) {
    let c = counting_clients(local).await;
    let plain = local.store().await;
    let t = local
        .new_practice_with(|p| {
            p.hourly_cap = cap;
            p.cap_window_seconds = window;
        })
        .await;
    let practice: Practice = t.practice.clone();
    let ids = seed_patients(&plain, &practice.practice_id, size).await;
    let queue_url = c
        .sqs
        .create_queue()
        .queue_name(format!("bulk-bench-{}", uuid::Uuid::new_v4().simple()))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "60",
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let queue = SqsSendQueue::new(c.sqs.clone(), queue_url.clone());
    c.dynamo_count.take();
    c.sqs_count.take();

    // Acceptance.
    let bulk = BulkMessages {
        store: c.store.clone(),
        queue: queue.clone(),
        scheduler: SendNowOnly,
        queue_delay_max: chrono::Duration::seconds(900),
        per_second,
    };
    let value = json!({"patient_ids": ids, "text": "Hi {first_name}, our office is closed Friday.", "acknowledge_bulk_limit": true});
    let request: BulkRequest = serde_json::from_value(value.clone()).unwrap();
    let s = Instant::now();
    let answer = bulk
        .accept(&practice, request, &value, Some("bench"), Utc::now())
        .await
        .expect("accepted");
    let accept_time = s.elapsed();
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let message_id = body["id"].as_str().unwrap().to_string();
    let dynamo = c.dynamo_count.take();
    let sqs = c.sqs_count.take();
    let writes: u64 = WRITES.iter().filter_map(|w| dynamo.get(*w)).sum();
    let n = size as u64;
    println!(
        "  accept in process: {:.0} ms; DynamoDB write requests {writes} = 1 per {:.1} recipients (target: ≤ 1 per 20)",
        accept_time.as_secs_f64() * 1000.0,
        n as f64 / writes as f64
    );
    describe("DynamoDB at accept", &dynamo, n);
    describe("SQS at accept", &sqs, n);

    // Dispatch with the real dispatcher over a private queue.
    let dispatcher = Arc::new(Dispatcher {
        store: c.store.clone(),
        queue: queue.clone(),
        carrier: Bandwidth::new(BandwidthConfig {
            api_url: format!("{}/api/v2", local.carrier_url),
            account_id: "9900000".into(),
            application_id: "local-application".into(),
            username: "sim-user".into(),
            password: messaging_core::domain::secret::Secret::new("sim-password").into(),
            timeout: Duration::from_secs(10),
        })
        .expect("carrier"),
        clock: SystemClock,
        retry: RetryPolicy::default(),
        bulk_per_second: per_second,
        inline_wait: messaging_core::app::dispatch::INLINE_WAIT,
        practices: Default::default(),
    });
    let receives: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (d, sqs, url, receives, stop) = (
            dispatcher.clone(),
            c.sqs.clone(),
            queue_url.clone(),
            receives.clone(),
            stop.clone(),
        );
        workers.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("receive");
                for m in out.messages.unwrap_or_default() {
                    let job: SendJob = serde_json::from_str(m.body().unwrap()).unwrap();
                    *receives.lock().unwrap().entry(job.to_tag()).or_default() += 1;
                    let handle = m.receipt_handle().unwrap().to_string();
                    match d.dispatch(&job).await {
                        Ok(Dispatched::Done) => {
                            sqs.delete_message()
                                .queue_url(&url)
                                .receipt_handle(handle)
                                .send()
                                .await
                                .expect("delete");
                        }
                        Ok(Dispatched::RetryAfter(s)) => {
                            sqs.change_message_visibility()
                                .queue_url(&url)
                                .receipt_handle(handle)
                                .visibility_timeout(i32::try_from(s).unwrap())
                                .send()
                                .await
                                .expect("visibility");
                        }
                        Err(e) => eprintln!("dispatch error (will be redelivered): {e}"),
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let m = plain
            .get_message_only(&practice.practice_id, &message_id)
            .await
            .unwrap()
            .unwrap();
        let reached = m.counts.sent + m.counts.delivered + m.counts.failed;
        if reached as usize >= size || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = started.elapsed();
    // Let the pump's last run (just after the last wave) finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while workers.join_next().await.is_some() {}
    let dynamo = c.dynamo_count.take();
    let sqs = c.sqs_count.take();
    let receives = receives.lock().unwrap().clone();
    let pump: u32 = receives
        .iter()
        .filter(|(k, _)| k.rsplit('/').next().unwrap().starts_with('*'))
        .map(|(_, v)| v)
        .sum();
    let recipient: u32 = receives.values().sum::<u32>() - pump;
    let deferred: u32 = receives
        .iter()
        .filter(|(k, _)| !k.rsplit('/').next().unwrap().starts_with('*'))
        .map(|(_, v)| v - 1)
        .sum();
    println!(
        "  dispatch: all {size} reached the carrier in {:.0} s at cap {cap}/{window} s, {per_second}/s; \
         receives {} = {:.3}/recipient (recipients {recipient}, of them deferrals {deferred}; pump runs {pump}) (target: ≤ 2)",
        elapsed.as_secs_f64(),
        recipient + pump,
        f64::from(recipient + pump) / size as f64,
    );
    describe("DynamoDB while dispatching", &dynamo, n);
    describe("SQS while dispatching", &sqs, n);
    c.sqs
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("delete queue");
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = arg("--sizes", "250,1000")
        .split(',')
        .map(|s| s.parse().expect("size"))
        .collect();
    let cap: u32 = arg("--cap", "100").parse().expect("cap");
    let window: u32 = arg("--window", "10").parse().expect("window");
    let per_second: u32 = arg("--per-second", "25").parse().expect("per second");
    let local = Endpoints::load();
    for size in sizes {
        println!("bulk of {size}:");
        api_latency(&local, size).await;
        costs(&local, size, cap, window, per_second).await;
    }
}
