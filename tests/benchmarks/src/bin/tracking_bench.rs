//! Benchmark of the tracking list (`GET /v1/communications`) on the running
//! local cloud.
//!
//! 1. Creates a fresh practice (`Endpoints::new_practice`).
//! 2. Seeds N direct messages, one recipient each, spread over 365 days,
//!    mostly delivered, some failed, some queued. They are written straight
//!    into the table with `BatchWriteItem` (25 items a request, several
//!    requests in flight, `UnprocessedItems` retried with backoff), encoded by
//!    the adapter's own `encode_message_item` / `encode_recipient_item`, so the
//!    items (tracking-index keys included) are exactly what the API writes.
//! 3. Times, through the deployed HTTP API with the practice's key, sequential
//!    requests after warm-up: (a) first page, (b) `status=failed&type=direct_message`,
//!    (c) a one-week `sent_from`/`sent_to` window in the middle of the year,
//!    (d) cursor pages of a walk 10 pages deep.
//! 4. Issues the same `Query` the adapter's `communications()` issues for
//!    (a)–(d), with `ReturnConsumedCapacity::Total`, and reports the consumed
//!    capacity the emulator returns, `ScannedCount` (items evaluated), and the
//!    read units AWS would charge for those items (sum of item sizes rounded
//!    up to 4 KB, × 0.5 for an eventually consistent read), and times that
//!    bare `Query`. A baseline route that reads nothing (`/v1/error-codes`)
//!    shows the API and function overhead alone.
//! 5. Prints a Markdown table, then deletes the seeded items (unless `--keep`).
//!
//! ```text
//! cargo build --profile local -p benchmarks --bin tracking-bench
//! target/local/tracking-bench --messages 100000 [--samples 50] [--concurrency 8] [--keep]
//! ```

use messaging_core::domain::message::Tab;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use benchmarks::seed::{delete_requests, put_requests, run_batches, Item};
use chrono::{DateTime, TimeDelta, Utc};
use cloud_tests::{random_phone, Api, Endpoints};
use messaging_adapters::dynamo::{encode_message_item, encode_recipient_item, tracking_index_keys};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::message::{
    Counts, Message, MessageType, Recipient, RecipientError, RecipientStatus,
};
use messaging_core::domain::practice::Channel;
use messaging_core::domain::text::Encoding;
use messaging_core::ports::TrackingIndex;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Page size asked of the API.
const PAGE: u32 = 50;
/// Warm-up requests before each timed scenario.
const WARM_UP: usize = 3;
/// Pages in one walk of scenario (d).
const DEPTH: usize = 10;

struct Args {
    messages: usize,
    samples: usize,
    concurrency: usize,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        messages: 100_000,
        samples: 50,
        concurrency: 8,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> usize {
        v.and_then(|v| v.replace('_', "").parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| usage(&format!("{flag} needs a positive whole number")))
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--messages" => a.messages = number("--messages", it.next()),
            "--samples" => a.samples = number("--samples", it.next()),
            "--concurrency" => a.concurrency = number("--concurrency", it.next()),
            "--keep" => a.keep = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("tracking-bench: {problem}");
    }
    eprintln!(
        "usage: tracking-bench [--messages N (100000)] [--samples N (50)] \
         [--concurrency N (8)] [--keep]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

// ---------------------------------------------------------------- seeding

/// One seeded direct message and its recipient, as the API and dispatcher
/// would have left them. Tracking time: `sent_at` once sent, else `created_at`.
fn seeded_message(
    practice_id: &str,
    created_at: DateTime<Utc>,
    status: RecipientStatus,
    rng: &mut impl Rng,
) -> (Message, Recipient) {
    let millis = u64::try_from(created_at.timestamp_millis()).expect("after 1970");
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).expect("millis") * 1_000_000,
    ))
    .to_string();
    let sent = status != RecipientStatus::Queued;
    let sent_at = sent.then(|| created_at + TimeDelta::milliseconds(rng.random_range(500..5_000)));
    let from = random_phone();
    let text = format!("Reminder: your appointment is coming up ({})", &id[..8]);
    let message = Message {
        id: id.clone(),
        practice_id: practice_id.to_string(),
        message_type: MessageType::DirectMessage,
        channel: Channel::SmsMain,
        from: from.clone(),
        text: text.clone(),
        template_id: None,
        encoding: Encoding::Gsm7,
        segments: 1,
        send_at: None,
        created_at,
        target_count: 1,
        status: status.into(),
        counts: Counts::of([status].iter()),
        sent_at,
        bulk: None,
        appointment_ids: Vec::new(),
    };
    let recipient = Recipient {
        practice_id: practice_id.to_string(),
        message_id: id.clone(),
        recipient_id: "00001".into(),
        patient_id: None,
        to: random_phone(),
        from,
        text,
        status,
        not_before: None,
        carrier_message_id: sent.then(|| format!("carrier-{id}")),
        sent_at,
        delivered_at: (status == RecipientStatus::Delivered)
            .then(|| sent_at.map(|t| t + TimeDelta::seconds(rng.random_range(2..30))))
            .flatten(),
        error: (status == RecipientStatus::Failed)
            .then(|| RecipientError::from_carrier_code([4720, 4406, 4470][rng.random_range(0..3)])),
        skip_reason: None,
        attempts: u32::from(sent),
        claimed_at: sent_at,
        message_type: MessageType::DirectMessage,
        origin: None,
        version: if sent { 2 } else { 0 },
        appointment_ids: Vec::new(),
    };
    (message, recipient)
}

struct Seeded {
    items: Vec<Item>,
    by_status: HashMap<&'static str, usize>,
}

/// N messages over [start, start + span): 88 % delivered, 8 % failed, 4 % queued.
fn build_items(practice_id: &str, n: usize, start: DateTime<Utc>, span: TimeDelta) -> Seeded {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7ac4);
    let span_ms = span.num_milliseconds();
    let mut items = Vec::with_capacity(2 * n);
    let mut by_status = HashMap::new();
    for _ in 0..n {
        let created = start + TimeDelta::milliseconds(rng.random_range(0..span_ms));
        let status = match rng.random_range(0..100) {
            0..88 => RecipientStatus::Delivered,
            88..96 => RecipientStatus::Failed,
            _ => RecipientStatus::Queued,
        };
        *by_status.entry(status.as_str()).or_insert(0) += 1;
        let (m, r) = seeded_message(practice_id, created, status, &mut rng);
        items.push(encode_message_item(&m).expect("encode message"));
        items.push(encode_recipient_item(&r).expect("encode recipient"));
    }
    Seeded { items, by_status }
}

// ---------------------------------------------------------------- latency

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    median: f64,
    p95: f64,
    max: f64,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    // Nearest rank.
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    Stats {
        n: ms.len(),
        median: rank(0.5),
        p95: rank(0.95),
        max: ms[ms.len() - 1],
    }
}

async fn timed_get(api: &Api, path: &str) -> (Duration, Value) {
    let started = Instant::now();
    let r = api.get(path).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "GET {path}: {} {}", r.status, r.body);
    (took, r.body)
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items array")
}

/// Times `samples` sequential requests of `path` after the warm-up; checks
/// every answer with `check`. Returns the timings and the last body.
async fn measure(
    api: &Api,
    path: &str,
    samples: usize,
    check: impl Fn(&Value),
) -> (Vec<Duration>, Value) {
    for _ in 0..WARM_UP {
        check(&timed_get(api, path).await.1);
    }
    let mut times = Vec::with_capacity(samples);
    let mut last = Value::Null;
    for _ in 0..samples {
        let (took, body) = timed_get(api, path).await;
        check(&body);
        times.push(took);
        last = body;
    }
    (times, last)
}

struct Walk {
    /// Each cursor-following request (pages 2..=DEPTH of every walk).
    cursor_pages: Vec<Duration>,
    /// Each whole walk of DEPTH pages.
    walks: Vec<Duration>,
    /// The cursor page DEPTH was read with.
    last_cursor: String,
    /// Items seen on the first walk.
    seen: usize,
}

/// Walks `DEPTH` pages via `next_cursor`, `walks` times (after one warm-up walk).
async fn walk_deep(api: &Api, walks: usize) -> Walk {
    let base = format!("/v1/communications?limit={PAGE}");
    let mut out = Walk {
        cursor_pages: Vec::new(),
        walks: Vec::new(),
        last_cursor: String::new(),
        seen: 0,
    };
    for w in 0..=walks {
        let started = Instant::now();
        let mut path = base.clone();
        let mut ids = HashSet::new();
        let mut last_key: Option<String> = None;
        for page in 1..=DEPTH {
            let (took, body) = timed_get(api, &path).await;
            if w > 0 && page > 1 {
                out.cursor_pages.push(took);
            }
            for i in items(&body) {
                assert!(
                    ids.insert(i["id"].as_str().expect("id").to_string()),
                    "an item repeated across pages"
                );
                let key = tracking_time(i);
                assert!(
                    last_key.as_ref().is_none_or(|k| *k >= key),
                    "not newest first"
                );
                last_key = Some(key);
            }
            match body["next_cursor"].as_str() {
                Some(c) if page < DEPTH => {
                    path = format!("{base}&cursor={c}");
                    if page == DEPTH - 1 {
                        out.last_cursor = c.to_string();
                    }
                }
                _ => break,
            }
        }
        if w > 0 {
            out.walks.push(started.elapsed());
        }
        out.seen = ids.len();
    }
    out
}

/// The time the list sorts on, as the API shows it.
fn tracking_time(item: &Value) -> String {
    item["sent_at"]
        .as_str()
        .or(item["send_at"].as_str())
        .or(item["created_at"].as_str())
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------- read cost

#[derive(Clone, Copy, Default)]
struct Cost {
    /// `ConsumedCapacity.CapacityUnits` as the emulator reported it.
    reported: Option<f64>,
    scanned: i32,
    count: i32,
    bytes: usize,
    /// Median time of the bare `Query` against the emulator, in ms.
    query_ms: f64,
}

impl Cost {
    /// What AWS would charge: item sizes summed, rounded up to 4 KB, 0.5 RCU
    /// per 4 KB for an eventually consistent read (GSI reads always are).
    fn aws_rcu(&self) -> f64 {
        (self.bytes.div_ceil(4096).max(1)) as f64 * 0.5
    }
}

/// DynamoDB's item size rules: names + values; lists and maps 3 bytes plus 1
/// per element; numbers about one byte per two digits plus one.
fn attr_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + attr_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + attr_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(s) => s.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(s) => s.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + attr_size(v)).sum()
}

/// The `Query` `DynamoStore::communications` sends for one partition read,
/// with `limit + 2` as `tracking::list` asks; sent `samples` times
/// (after the warm-up) to time it without the API and the function.
async fn query_cost(
    client: &Client,
    table: &str,
    practice_id: &str,
    index: &TrackingIndex,
    (low, high): (&str, &str),
    samples: usize,
) -> Cost {
    let mut times = Vec::with_capacity(samples);
    let mut cost = Cost::default();
    for i in 0..WARM_UP + samples {
        let started = Instant::now();
        cost = query_once(client, table, practice_id, index, low, high).await;
        if i >= WARM_UP {
            times.push(started.elapsed());
        }
    }
    cost.query_ms = stats(&times).median;
    cost
}

async fn query_once(
    client: &Client,
    table: &str,
    practice_id: &str,
    index: &TrackingIndex,
    low: &str,
    high: &str,
) -> Cost {
    let (index_name, pk_name, sk_name, pk) = tracking_index_keys(practice_id, index);
    let out = client
        .query()
        .table_name(table)
        .index_name(index_name)
        .key_condition_expression(format!(
            "{pk_name} = :pk AND {sk_name} BETWEEN :low AND :high"
        ))
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .expression_attribute_values(":low", AttributeValue::S(low.into()))
        .expression_attribute_values(":high", AttributeValue::S(high.into()))
        .scan_index_forward(false)
        .limit(i32::try_from(PAGE + 2).expect("limit"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap_or_else(|e| panic!("query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)));
    Cost {
        reported: out.consumed_capacity().and_then(|c| c.capacity_units()),
        scanned: out.scanned_count(),
        count: out.count(),
        bytes: out.items().iter().map(item_size).sum(),
        query_ms: 0.0,
    }
}

// ---------------------------------------------------------------- main

struct Row {
    name: &'static str,
    query: String,
    latency: Stats,
    items: usize,
    cost: Option<Cost>,
}

#[tokio::main]
async fn main() {
    let a = args();
    let local = Endpoints::load();
    let client = Client::new(&local.aws().await);
    let t = local.new_practice().await;
    let practice_id = t.practice.practice_id.clone();
    println!(
        "practice {practice_id}; seeding {} messages into {}",
        a.messages, local.table_name
    );

    let now = DateTime::<Utc>::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let span = TimeDelta::days(365);
    let start = now - span;
    let built = Instant::now();
    let seeded = build_items(&practice_id, a.messages, start, span);
    println!(
        "  built {} items in {:.1} s ({:?})",
        seeded.items.len(),
        built.elapsed().as_secs_f64(),
        seeded.by_status
    );
    let (seed_time, seed_retries) = run_batches(
        &client,
        &local.table_name,
        put_requests(&seeded.items),
        a.concurrency,
        "seeded",
    )
    .await;
    println!(
        "seeding: {} messages ({} items) in {:.1} s, {seed_retries} batch retries",
        a.messages,
        seeded.items.len(),
        seed_time.as_secs_f64()
    );

    // The scenarios, through the API.
    let api = &t.api;
    let failed_expected = seeded.by_status.get("failed").copied().unwrap_or(0);
    let full = |expected: usize| {
        move |b: &Value| {
            assert_eq!(
                items(b).len(),
                expected.min(PAGE as usize),
                "page size: {b}"
            );
        }
    };
    let mut rows = Vec::new();

    // The API and function overhead alone: an authenticated route that reads
    // nothing from the table (the key lookup is cached in a warm function).
    let (lat, _) = measure(api, "/v1/error-codes", a.samples, |_| {}).await;
    let baseline = stats(&lat);
    println!("baseline done: median {:.1} ms", baseline.median);

    let q_a = format!("limit={PAGE}");
    let (lat, body) = measure(
        api,
        &format!("/v1/communications?{q_a}"),
        a.samples,
        full(a.messages),
    )
    .await;
    rows.push(Row {
        name: "(a) first page, no filter",
        query: q_a,
        latency: stats(&lat),
        items: items(&body).len(),
        cost: None,
    });
    println!("(a) done: median {:.1} ms", stats(&lat).median);

    let q_b = format!("limit={PAGE}&status=failed&type=direct_message");
    let check_b = move |b: &Value| {
        full(failed_expected)(b);
        assert!(items(b).iter().all(|i| i["status"] == "failed"), "{b}");
    };
    let (lat, body) = measure(
        api,
        &format!("/v1/communications?{q_b}"),
        a.samples,
        check_b,
    )
    .await;
    rows.push(Row {
        name: "(b) status=failed&type=direct_message",
        query: q_b,
        latency: stats(&lat),
        items: items(&body).len(),
        cost: None,
    });
    println!("(b) done: median {:.1} ms", stats(&lat).median);

    let mid = start + span / 2;
    let (from, to) = (
        to_api_time(&(mid - TimeDelta::hours(84))),
        to_api_time(&(mid + TimeDelta::hours(84))),
    );
    let q_c = format!("limit={PAGE}&sent_from={from}&sent_to={to}");
    let (f2, t2) = (from.clone(), to.clone());
    let check_c = move |b: &Value| {
        assert!(!items(b).is_empty(), "empty week: {b}");
        assert!(
            items(b).iter().all(|i| {
                let k = tracking_time(i);
                f2 <= k && k <= t2
            }),
            "outside the window: {b}"
        );
    };
    let (lat, body) = measure(
        api,
        &format!("/v1/communications?{q_c}"),
        a.samples,
        check_c,
    )
    .await;
    rows.push(Row {
        name: "(c) one week in the middle",
        query: q_c,
        latency: stats(&lat),
        items: items(&body).len(),
        cost: None,
    });
    println!("(c) done: median {:.1} ms", stats(&lat).median);

    let walks = a.samples.div_ceil(DEPTH - 1);
    let walk = walk_deep(api, walks).await;
    let deep_items = walk.seen;
    rows.push(Row {
        name: "(d) pages 2-10 via next_cursor",
        query: format!("limit={PAGE}&cursor=..."),
        latency: stats(&walk.cursor_pages),
        items: PAGE as usize,
        cost: None,
    });
    let walk_stats = stats(&walk.walks);
    println!(
        "(d) done: {walks} walks, {deep_items} distinct items per walk, cursor page median {:.1} ms",
        stats(&walk.cursor_pages).median
    );

    // Read cost: the adapter's query for each scenario's partition read.
    let table = &local.table_name;
    let n = a.samples;
    rows[0].cost = Some(
        query_cost(
            &client,
            table,
            &practice_id,
            &TrackingIndex::All(Tab::Manual),
            ("0", "~"),
            n,
        )
        .await,
    );
    rows[1].cost = Some(
        query_cost(
            &client,
            table,
            &practice_id,
            &TrackingIndex::TypeStatus(MessageType::DirectMessage, "failed".into()),
            ("0", "~"),
            n,
        )
        .await,
    );
    rows[2].cost = Some(
        query_cost(
            &client,
            table,
            &practice_id,
            &TrackingIndex::All(Tab::Manual),
            (&from, &format!("{to}#~")),
            n,
        )
        .await,
    );
    if !walk.last_cursor.is_empty() {
        let position =
            messaging_core::paging::decode_cursor(&walk.last_cursor).expect("our cursor");
        rows[3].cost = Some(
            query_cost(
                &client,
                table,
                &practice_id,
                &TrackingIndex::All(Tab::Manual),
                ("0", &position),
                n,
            )
            .await,
        );
    }
    let reported = rows
        .iter()
        .filter_map(|r| r.cost)
        .any(|c| c.reported.is_some());

    // Results.
    println!();
    println!(
        "### N = {} messages ({} items), practice `{practice_id}`",
        a.messages,
        seeded.items.len()
    );
    println!();
    println!(
        "Seeding: {:.1} s ({:.0} items/s, {} in flight, {seed_retries} retried batches). \
         Mix: {} delivered, {} failed, {} queued, over 365 days.",
        seed_time.as_secs_f64(),
        seeded.items.len() as f64 / seed_time.as_secs_f64(),
        a.concurrency,
        seeded.by_status.get("delivered").copied().unwrap_or(0),
        failed_expected,
        seeded.by_status.get("queued").copied().unwrap_or(0),
    );
    println!();
    println!(
        "| scenario | requests | median ms | p95 ms | max ms | items/page | Query Count / ScannedCount | ConsumedCapacity (emulator) | AWS RCU (est.) | bare Query median ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        let (scan, reported, est, bare) = match r.cost {
            Some(c) => (
                format!("{} / {}", c.count, c.scanned),
                c.reported.map_or("not reported".into(), |u| format!("{u}")),
                format!("{} ({:.1} KB)", c.aws_rcu(), c.bytes as f64 / 1024.0),
                format!("{:.1}", c.query_ms),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {scan} | {reported} | {est} | {bare} |",
            r.name, r.latency.n, r.latency.median, r.latency.p95, r.latency.max, r.items
        );
    }
    println!(
        "| (d) whole walk, {DEPTH} pages | {} | {:.1} | {:.1} | {:.1} | {deep_items} | - | - | - | - |",
        walk_stats.n, walk_stats.median, walk_stats.p95, walk_stats.max
    );
    println!(
        "| baseline: GET /v1/error-codes (reads no table) | {} | {:.1} | {:.1} | {:.1} | - | - | - | - | - |",
        baseline.n, baseline.median, baseline.p95, baseline.max
    );
    println!();
    for r in &rows {
        println!("- {}: `GET /v1/communications?{}`", r.name, r.query);
    }
    println!(
        "- Read cost: the adapter's `Query` (`Limit` {} = page + 2, as `tracking::list` asks) \
         for each scenario's one partition read, `ReturnConsumedCapacity: TOTAL`; (d) at page {DEPTH}'s cursor.",
        PAGE + 2
    );
    if !reported {
        println!("- The emulator reported no consumed capacity; see ScannedCount.");
    }
    println!(
        "- Bare Query: the same `Query` sent straight to the emulator (no API, no function), \
         median of {} after {WARM_UP} warm-up.",
        a.samples
    );

    if a.keep {
        println!("\nkept the seeded items (--keep)");
    } else {
        let (took, _) = run_batches(
            &client,
            &local.table_name,
            delete_requests(&seeded.items),
            a.concurrency,
            "deleted",
        )
        .await;
        println!(
            "\ndeleted the {} seeded items in {:.1} s",
            seeded.items.len(),
            took.as_secs_f64()
        );
    }
}
