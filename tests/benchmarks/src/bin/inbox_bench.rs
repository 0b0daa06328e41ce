//! Benchmark of the Inbox and Patient Chat (`GET /v1/conversations...`) on
//! the running local cloud.
//!
//! 1. Creates a fresh practice (`Endpoints::new_practice`).
//! 2. Seeds C conversations holding M thread entries in all, spread unevenly
//!    (a few threads of thousands, most of a handful), over the last 365 days:
//!    55 % inbound texts, 45 % outbound ones (replies, scheduled, bulk,
//!    after-hours), each outbound one with the message and recipient it was
//!    sent as (`encode_message_item` / `encode_recipient_item`, so outbound
//!    entries show a live delivery status). Every conversation is written with
//!    `ConversationStore::save_conversation` (the adapter's own item, Inbox
//!    index keys included) together with its newest entry; the older entries,
//!    messages and recipients go in with `BatchWriteItem`. Mix: about 12 %
//!    unread (all open), a third of the rest open, half assigned to one of four
//!    staff members (unevenly).
//! 3. Times, through the deployed HTTP API with the practice's key, sequential
//!    requests after warm-up: the Inbox unfiltered (first page and a page
//!    1,000 conversations deep via a cursor), filtered by status, unread,
//!    assignee, all three, by phone; one conversation; the biggest thread
//!    (first page and a page 2,000 entries deep).
//! 4. Runs the same use cases (`app::conversations::list / get / thread`) in
//!    this process against a `DynamoStore` whose SDK client has an
//!    interceptor that counts every request and the items it read
//!    (`ScannedCount` for a `Query`, the item for a `GetItem`, the items of a
//!    `BatchGetItem`) and estimates what AWS would charge for them.
//! 5. Times a patient's text through the carrier simulator (to the
//!    practice's main number, from the number of a seeded conversation) until
//!    `GET /v1/conversations/{id}/messages` shows it.
//! 6. Prints a Markdown table, then deletes the seeded items (unless `--keep`).
//!
//! ```text
//! cargo build --profile local -p benchmarks --bin inbox-bench
//! target/local/inbox-bench --conversations 10000 --messages 100000
//!     [--samples 20] [--inbound 20] [--concurrency 32] [--keep]
//! ```
//!
//! Results in docs/measurements-inbox.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use benchmarks::seed::{delete_requests, put_requests, run_batches, Item};
use chrono::{DateTime, TimeDelta, Utc};
use cloud_tests::{random_phone, Api, Endpoints};
use messaging_adapters::dynamo::{encode_message_item, encode_recipient_item, DynamoStore};
use messaging_core::app::conversations::{self, InboxQuery};
use messaging_core::domain::conversation::{
    Conversation, ConversationId, ConversationStatus, InboundEntry, OutboundEntry, OutboundKind,
    ThreadItem,
};
use messaging_core::domain::message::{
    Counts, Message, MessageType, Recipient, RecipientError, RecipientStatus, SendJob,
};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::domain::practice::{Channel, Practice};
use messaging_core::domain::text::Encoding;
use messaging_core::paging::encode_cursor;
use messaging_core::ports::{inbox_key, ConversationStore, SaveConversation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Page size asked of the API (its default).
const PAGE: u32 = 50;
/// Warm-up requests before each timed scenario.
const WARM_UP: usize = 3;
/// How deep the deep Inbox page is (conversations before it).
const INBOX_DEPTH: usize = 1_000;
/// How deep the deep thread page is (entries before it).
const THREAD_DEPTH: usize = 2_000;
/// Staff the conversations are assigned to, with their share (in tenths)
/// of the assigned ones.
const STAFF: [(&str, u32); 4] = [("amy", 4), ("ben", 3), ("carla", 2), ("dev", 1)];

struct Args {
    conversations: usize,
    messages: usize,
    samples: usize,
    inbound: usize,
    concurrency: usize,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        conversations: 10_000,
        messages: 100_000,
        samples: 20,
        inbound: 20,
        concurrency: 32,
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
            "--conversations" => a.conversations = number("--conversations", it.next()),
            "--messages" => a.messages = number("--messages", it.next()),
            "--samples" => a.samples = number("--samples", it.next()),
            "--inbound" => a.inbound = number("--inbound", it.next()),
            "--concurrency" => a.concurrency = number("--concurrency", it.next()),
            "--keep" => a.keep = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.messages < a.conversations {
        usage("--messages must be at least --conversations (every thread has an entry)");
    }
    a
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("inbox-bench: {problem}");
    }
    eprintln!(
        "usage: inbox-bench [--conversations N (10000)] [--messages N (100000)] \
         [--samples N (20)] [--inbound N (20)] [--concurrency N (32)] [--keep]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

// ---------------------------------------------------------------- counting

/// What one read request cost, as the interceptor saw it.
#[derive(Debug, Clone)]
struct Read {
    op: &'static str,
    /// Items read: `ScannedCount` of a `Query`, the item of a `GetItem`, the
    /// items of a `BatchGetItem`.
    items: usize,
    /// Their DynamoDB size.
    bytes: usize,
    /// Read units AWS would charge (see [`aws_rcu`]).
    aws_rcu: f64,
    /// `ConsumedCapacity` as the emulator reported it.
    reported: f64,
}

/// Whether the request being sent reads consistently; carried from
/// serialisation to deserialisation in the operation's config bag.
#[derive(Debug, Clone, Copy)]
struct Consistent(bool);

impl Storable for Consistent {
    type Storer = StoreReplace<Self>;
}

/// Asks every read for its consumed capacity and records what each read.
#[derive(Debug, Clone, Default)]
struct ReadCounter(Arc<Mutex<Vec<Read>>>);

impl ReadCounter {
    fn take(&self) -> Vec<Read> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for ReadCounter {
    fn name(&self) -> &'static str {
        "read-counter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let total = Some(ReturnConsumedCapacity::Total);
        let consistent = if let Some(q) = input.downcast_mut::<QueryInput>() {
            q.return_consumed_capacity = total;
            q.consistent_read == Some(true)
        } else if let Some(g) = input.downcast_mut::<GetItemInput>() {
            g.return_consumed_capacity = total;
            g.consistent_read == Some(true)
        } else if let Some(b) = input.downcast_mut::<BatchGetItemInput>() {
            b.return_consumed_capacity = total;
            b.request_items
                .as_ref()
                .is_some_and(|r| r.values().all(|k| k.consistent_read == Some(true)))
        } else {
            false
        };
        cfg.interceptor_state().store_put(Consistent(consistent));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let consistent = cfg.load::<Consistent>().is_some_and(|c| c.0);
        let unit = if consistent { 1.0 } else { 0.5 };
        let read = if let Some(q) = output.downcast_ref::<QueryOutput>() {
            let bytes: usize = q.items().iter().map(item_size).sum();
            Read {
                op: "Query",
                items: usize::try_from(q.scanned_count()).unwrap_or(0),
                bytes,
                // A Query is charged on the sum of the item sizes.
                aws_rcu: bytes.div_ceil(4096).max(1) as f64 * unit,
                reported: q
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(0.0),
            }
        } else if let Some(g) = output.downcast_ref::<GetItemOutput>() {
            let bytes = g.item().map_or(0, item_size);
            Read {
                op: "GetItem",
                items: usize::from(g.item().is_some()),
                bytes,
                // Charged even when there is no item.
                aws_rcu: bytes.div_ceil(4096).max(1) as f64 * unit,
                reported: g
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(0.0),
            }
        } else if let Some(b) = output.downcast_ref::<BatchGetItemOutput>() {
            let items: Vec<&Item> = b
                .responses()
                .map(|r| r.values().flatten().collect())
                .unwrap_or_default();
            Read {
                op: "BatchGetItem",
                items: items.len(),
                bytes: items.iter().map(|i| item_size(i)).sum(),
                // Each item is rounded up on its own.
                aws_rcu: items
                    .iter()
                    .map(|i| item_size(i).div_ceil(4096).max(1) as f64 * unit)
                    .sum(),
                reported: b
                    .consumed_capacity()
                    .iter()
                    .filter_map(|c| c.capacity_units())
                    .sum(),
            }
        } else {
            return Ok(());
        };
        self.0.lock().unwrap().push(read);
        Ok(())
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

/// The reads of one use-case call, summed.
#[derive(Debug, Clone, Default)]
struct Cost {
    requests: BTreeMap<&'static str, usize>,
    items: BTreeMap<&'static str, usize>,
    bytes: usize,
    aws_rcu: f64,
    reported: f64,
}

impl Cost {
    fn of(reads: &[Read]) -> Cost {
        let mut c = Cost::default();
        for r in reads {
            *c.requests.entry(r.op).or_default() += 1;
            *c.items.entry(r.op).or_default() += r.items;
            c.bytes += r.bytes;
            c.aws_rcu += r.aws_rcu;
            c.reported += r.reported;
        }
        c
    }

    fn requests_text(&self) -> String {
        self.requests
            .iter()
            .map(|(op, n)| format!("{n} {op}"))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn items_text(&self) -> String {
        let total: usize = self.items.values().sum();
        let parts: Vec<String> = self
            .items
            .iter()
            .map(|(op, n)| format!("{n} {}", short(op)))
            .collect();
        if parts.len() > 1 {
            format!("{total} ({})", parts.join(" + "))
        } else {
            total.to_string()
        }
    }
}

fn short(op: &str) -> &str {
    match op {
        "BatchGetItem" => "batch",
        "GetItem" => "get",
        "Query" => "query",
        other => other,
    }
}

// ---------------------------------------------------------------- seeding

/// One seeded conversation: its thread (oldest first) and the conversation
/// as the rules leave it after those texts, with the office's handling.
struct SeededConversation {
    conversation: Conversation,
    thread: Vec<ThreadItem>,
}

/// How many entries each thread gets: a few heads of thousands (5 %, 3 %,
/// 2 %... of all entries), one for every other conversation, and the rest
/// spread by a heavy-tailed weight.
fn thread_sizes(conversations: usize, entries: usize, rng: &mut StdRng) -> Vec<usize> {
    let heads = [5.0, 3.0, 2.0, 1.5, 1.0, 1.0, 0.8, 0.6, 0.5, 0.5];
    let mut sizes = vec![1usize; conversations];
    let mut left = entries - conversations;
    if conversations > heads.len() * 4 {
        for (i, pct) in heads.iter().enumerate() {
            let n = ((entries as f64 * pct / 100.0) as usize).clamp(1, left + 1);
            left -= n - 1;
            sizes[i] = n;
        }
    }
    // Pareto weights (alpha 1.2) for the others.
    let first = if conversations > heads.len() * 4 {
        heads.len()
    } else {
        0
    };
    let weights: Vec<f64> = (first..conversations)
        .map(|_| {
            let u: f64 = rng.random_range(1e-9..1.0);
            u.powf(-1.0 / 1.2)
        })
        .collect();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut sum = 0.0;
    for w in &weights {
        sum += w;
        cumulative.push(sum);
    }
    for _ in 0..left {
        let x = rng.random_range(0.0..sum);
        let i = cumulative
            .partition_point(|c| *c < x)
            .min(weights.len() - 1);
        sizes[first + i] += 1;
    }
    debug_assert_eq!(sizes.iter().sum::<usize>(), entries);
    sizes
}

fn message_id_at(at: DateTime<Utc>) -> String {
    let millis = u64::try_from(at.timestamp_millis()).expect("after 1970");
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).expect("millis") * 1_000_000,
    ))
    .to_string()
}

/// The direct message and recipient an outbound entry was sent as.
fn sent_message(
    practice: &Practice,
    to: &PhoneNumber,
    entry: &OutboundEntry,
    rng: &mut StdRng,
) -> (Message, Recipient) {
    let status = if rng.random_range(0..100) < 95 {
        RecipientStatus::Delivered
    } else {
        RecipientStatus::Failed
    };
    let from = practice.channels.sms_main.clone();
    let id = entry.job.message_id.clone();
    let message = Message {
        id: id.clone(),
        practice_id: practice.practice_id.clone(),
        message_type: MessageType::DirectMessage,
        channel: Channel::SmsMain,
        from: from.clone(),
        text: entry.text.clone(),
        template_id: None,
        encoding: Encoding::Gsm7,
        segments: 1,
        send_at: None,
        created_at: entry.at,
        target_count: 1,
        status: status.into(),
        counts: Counts::of([status].iter()),
        sent_at: Some(entry.at),
        bulk: None,
        appointment_ids: Vec::new(),
    };
    let recipient = Recipient {
        practice_id: practice.practice_id.clone(),
        message_id: id.clone(),
        recipient_id: entry.job.recipient_id.clone(),
        patient_id: None,
        to: to.clone(),
        from,
        text: entry.text.clone(),
        status,
        not_before: None,
        carrier_message_id: Some(format!("carrier-{id}")),
        sent_at: Some(entry.at),
        delivered_at: (status == RecipientStatus::Delivered)
            .then(|| entry.at + TimeDelta::seconds(rng.random_range(2..30))),
        error: (status == RecipientStatus::Failed)
            .then(|| RecipientError::from_carrier_code([4720, 4406, 4470][rng.random_range(0..3)])),
        skip_reason: None,
        attempts: 1,
        claimed_at: Some(entry.at),
        message_type: MessageType::DirectMessage,
        origin: None,
        version: 2,
        appointment_ids: Vec::new(),
    };
    (message, recipient)
}

const INBOUND_TEXTS: [&str; 6] = [
    "Can I move my cleaning to next week?",
    "Running 10 minutes late, sorry!",
    "Thanks, see you then",
    "Is Dr. Patel in on Friday?",
    "My crown feels loose, should I come in?",
    "Yes",
];
const OUTBOUND_TEXTS: [&str; 4] = [
    "Hi! Your appointment is confirmed for Tuesday at 3:00 PM.",
    "Reminder: your cleaning is tomorrow at 10:00 AM. Reply C to confirm.",
    "Sure, we have openings Thursday at 9 or 11. Which works?",
    "We're closed now and will answer when we open at 8 AM.",
];

struct Seed {
    conversations: Vec<SeededConversation>,
    /// Message and recipient items of the outbound entries.
    message_items: Vec<Item>,
}

fn build_seed(
    practice: &Practice,
    conversations: usize,
    entries: usize,
    now: DateTime<Utc>,
) -> Seed {
    let mut rng = StdRng::seed_from_u64(0x1b0c5);
    let sizes = thread_sizes(conversations, entries, &mut rng);
    let mut phones = HashSet::new();
    let span_ms = TimeDelta::days(365).num_milliseconds();
    let mut out = Seed {
        conversations: Vec::with_capacity(conversations),
        message_items: Vec::new(),
    };
    for (c, &size) in sizes.iter().enumerate() {
        let phone = loop {
            let p = random_phone();
            if phones.insert(p.clone()) {
                break p;
            }
        };
        // The newest text anywhere in the year; big threads reach back the
        // whole year, small ones a few weeks.
        let last = now - TimeDelta::milliseconds(rng.random_range(0..span_ms));
        let reach = if size > 100 {
            (last - (now - TimeDelta::days(365))).num_milliseconds()
        } else {
            rng.random_range(1..TimeDelta::days(30).num_milliseconds())
        };
        let mut times: Vec<DateTime<Utc>> = (0..size)
            .map(|i| {
                if i == 0 {
                    last
                } else {
                    last - TimeDelta::milliseconds(rng.random_range(0..reach.max(1)))
                }
            })
            .collect();
        times.sort();
        let mut conversation = Conversation::new(phone.clone(), times[0]);
        let mut thread = Vec::with_capacity(size);
        for (k, at) in times.into_iter().enumerate() {
            if rng.random_range(0..100) < 55 {
                let entry = InboundEntry::new(
                    format!("bench-{c}-{k}"),
                    phone.clone(),
                    practice.channels.sms_main.clone(),
                    INBOUND_TEXTS[rng.random_range(0..INBOUND_TEXTS.len())],
                    at,
                    Vec::new(),
                );
                conversation.record_inbound(&entry);
                thread.push(ThreadItem::Inbound(entry));
            } else {
                let kind = match rng.random_range(0..100) {
                    0..50 => OutboundKind::Reply,
                    50..60 => OutboundKind::Direct,
                    60..85 => OutboundKind::Scheduled,
                    85..95 => OutboundKind::Bulk,
                    _ => OutboundKind::AutoReply,
                };
                let entry = OutboundEntry {
                    job: SendJob {
                        practice_id: practice.practice_id.clone(),
                        message_id: message_id_at(at),
                        recipient_id: "00001".into(),
                    },
                    text: OUTBOUND_TEXTS[rng.random_range(0..OUTBOUND_TEXTS.len())].into(),
                    at,
                    kind,
                };
                let (m, r) = sent_message(practice, &phone, &entry, &mut rng);
                out.message_items
                    .push(encode_message_item(&m).expect("encode message"));
                out.message_items
                    .push(encode_recipient_item(&r).expect("encode recipient"));
                conversation.record_outbound(at, &entry.text, kind);
                thread.push(ThreadItem::Outbound(entry));
            }
        }
        // The office's handling: ~12 % unread (and so open), a third of the
        // rest open, half assigned.
        if rng.random_range(0..100) < 12 {
            conversation.mark_read();
            conversation.unread_count = rng.random_range(1..=3);
            conversation.set_status(ConversationStatus::Open);
        } else {
            conversation.mark_read();
            conversation.set_status(if rng.random_range(0..3) == 0 {
                ConversationStatus::Open
            } else {
                ConversationStatus::Closed
            });
        }
        if rng.random_range(0..2) == 0 {
            let mut pick = rng.random_range(0..10);
            let name = STAFF
                .iter()
                .find(|(_, share)| {
                    let hit = pick < *share;
                    pick = pick.saturating_sub(*share);
                    hit
                })
                .map_or("amy", |(n, _)| *n);
            conversation.set_assignee(Some(name)).expect("assignee");
        }
        out.conversations.push(SeededConversation {
            conversation,
            thread,
        });
    }
    out
}

/// A thread entry as the adapter stores it (`dynamo_conversations::thread_item`):
/// the entry with its `NULL`s kept, under `THREAD#{phone}#{position}`.
fn thread_entry_item(practice_id: &str, phone: &PhoneNumber, entry: &ThreadItem) -> Item {
    let mut item: Item = serde_dynamo::to_item(entry).expect("encode thread entry");
    item.insert(
        "pk".into(),
        AttributeValue::S(format!("PRACTICE#{practice_id}")),
    );
    item.insert(
        "sk".into(),
        AttributeValue::S(format!("THREAD#{}#{}", phone.as_str(), entry.position())),
    );
    item
}

fn key_of(pk: String, sk: String) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk)),
        ("sk".to_string(), AttributeValue::S(sk)),
    ])
}

/// Saves every conversation with its newest entry through
/// `ConversationStore::save_conversation`, `concurrency` at a time.
async fn save_conversations(
    store: &DynamoStore,
    practice_id: &str,
    conversations: &[SeededConversation],
    concurrency: usize,
) -> Duration {
    let started = Instant::now();
    let total = conversations.len();
    let report_every = (total / 10).max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut done = 0usize;
    let finish = |r: Result<(), tokio::task::JoinError>, done: &mut usize| {
        r.expect("save task");
        *done += 1;
        if (*done).is_multiple_of(report_every) || *done == total {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  conversations: {done}/{total}, {secs:.1} s, {:.0}/s",
                *done as f64 / secs.max(1e-9)
            );
        }
    };
    for c in conversations {
        while set.len() >= concurrency {
            if let Some(r) = set.join_next().await {
                finish(r, &mut done);
            }
        }
        let (store, practice_id) = (store.clone(), practice_id.to_string());
        let conversation = c.conversation.clone();
        let newest = c.thread.last().expect("a thread has an entry").clone();
        set.spawn(async move {
            let outcome = store
                .save_conversation(
                    &practice_id,
                    &conversation,
                    true,
                    &[],
                    Some(&newest),
                    chrono::Utc::now(),
                )
                .await
                .expect("save conversation");
            assert_eq!(outcome, SaveConversation::Saved, "{}", conversation.id);
        });
    }
    while let Some(r) = set.join_next().await {
        finish(r, &mut done);
    }
    started.elapsed()
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

async fn timed_get(api: &Api, path: &str) -> (Duration, u16, Value) {
    let started = Instant::now();
    let r = api.get(path).await;
    (started.elapsed(), r.status, r.body)
}

/// Sequential requests of one path: the timings of the answers that were
/// 200 (each checked with `check`), and the status and time of the others.
struct Measured {
    ok: Vec<Duration>,
    failed: Vec<(u16, Duration)>,
    last: Value,
}

/// Times `samples` sequential requests of `path` after the warm-up.
async fn measure(api: &Api, path: &str, samples: usize, check: &dyn Fn(&Value)) -> Measured {
    for _ in 0..WARM_UP {
        let (_, status, body) = timed_get(api, path).await;
        if status == 200 {
            check(&body);
        }
    }
    let mut m = Measured {
        ok: Vec::with_capacity(samples),
        failed: Vec::new(),
        last: Value::Null,
    };
    for _ in 0..samples {
        let (took, status, body) = timed_get(api, path).await;
        if status == 200 {
            check(&body);
            m.ok.push(took);
            m.last = body;
        } else {
            eprintln!("  GET {path}: {status} after {took:?}: {body}");
            m.failed.push((status, took));
            // A route that keeps failing (the function timing out on the
            // emulator) is not measured further.
            if m.ok.is_empty() && m.failed.len() >= GIVE_UP_AFTER {
                eprintln!("  giving up on {path} after {GIVE_UP_AFTER} failures");
                break;
            }
        }
    }
    m
}

/// Consecutive failures after which a route is not measured further.
const GIVE_UP_AFTER: usize = 3;

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items array")
}

// ---------------------------------------------------------------- scenarios

/// What a scenario asks: a list, one conversation, or a thread page.
enum Call {
    List(InboxQuery, Option<String>),
    Get(String),
    Thread(String, Option<String>),
}

struct Scenario {
    name: String,
    path: String,
    call: Call,
    /// How many items the page must hold (checked on every answer), and the
    /// first item's id when known.
    expect_len: usize,
    expect_first: Option<String>,
}

struct Row {
    name: String,
    path: String,
    /// None when no request answered 200.
    latency: Option<Stats>,
    failed: Vec<(u16, Duration)>,
    items: usize,
    cost: Cost,
    /// The use case in this process (no API, no function), in ms.
    in_process_ms: f64,
}

/// The use case behind a scenario, in this process, through the counting
/// store: what it read.
async fn count_reads(
    store: &DynamoStore,
    counter: &ReadCounter,
    practice: &Practice,
    call: &Call,
) -> (Cost, usize, Duration) {
    counter.take();
    let started = Instant::now();
    let n = match call {
        Call::List(query, cursor) => {
            conversations::list(store, practice, query, PAGE, cursor.as_deref())
                .await
                .expect("list")
                .0
                .len()
        }
        Call::Get(id) => {
            conversations::get(store, practice, id).await.expect("get");
            1
        }
        Call::Thread(id, cursor) => {
            conversations::thread(store, practice, id, PAGE, cursor.as_deref())
                .await
                .expect("thread")
                .0
                .len()
        }
    };
    let took = started.elapsed();
    (Cost::of(&counter.take()), n, took)
}

fn encode_query(v: &str) -> String {
    v.replace('+', "%2B")
}

// ---------------------------------------------------------------- inbound

struct Inbound {
    /// Simulator request sent → `GET …/messages` shows the text.
    visible: Vec<Duration>,
    /// Texts `GET …/messages` did not show within the deadline.
    not_visible: usize,
    /// Non-200 answers of `GET …/messages` while polling.
    thread_errors: Vec<u16>,
    /// Simulator request sent → `GET /v1/conversations/{id}` shows it as
    /// the last message.
    in_conversation: Vec<Duration>,
    /// Simulator request sent → simulator answered (webhook callback done).
    callback: Vec<Duration>,
    /// Polls of `GET …/messages` until visible.
    polls: Vec<usize>,
    /// Keys of the entries the texts added (deleted with the seed).
    keys: Vec<Item>,
}

/// How long a text may take to show before it counts as not visible.
const VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// Texts from `phones` (conversations of the practice) one at a time; from
/// the moment the text is sent, polls the thread's first page and the
/// conversation, each back to back (10 ms apart).
async fn inbound_latency(
    local: &Endpoints,
    api: &Api,
    practice: &Practice,
    phones: &[PhoneNumber],
) -> Inbound {
    let mut out = Inbound {
        visible: Vec::new(),
        not_visible: 0,
        thread_errors: Vec::new(),
        in_conversation: Vec::new(),
        callback: Vec::new(),
        polls: Vec::new(),
        keys: Vec::new(),
    };
    let to = practice.channels.sms_main.to_string();
    // Set once the thread route failed GIVE_UP_AFTER times in a row: the
    // later texts are only watched in the conversation.
    let mut thread_gave_up = false;
    for (i, phone) in phones.iter().enumerate() {
        let id = ConversationId::from_phone(phone);
        let thread_path = format!("/v1/conversations/{id}/messages?limit=5");
        let conversation_path = format!("/v1/conversations/{id}");
        let text = format!("inbox-bench {i} {}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let send = async {
            local
                .patient_texts(phone.as_str(), &to, &text, Value::Null)
                .await;
            started.elapsed()
        };
        let watch_thread = async {
            let mut polls = 0usize;
            let mut errors = Vec::new();
            let mut in_a_row = 0usize;
            while !thread_gave_up && started.elapsed() < VISIBLE_WITHIN {
                polls += 1;
                let r = api.get(&thread_path).await;
                if r.status != 200 {
                    errors.push(r.status);
                    in_a_row += 1;
                    if in_a_row >= GIVE_UP_AFTER {
                        break;
                    }
                    continue;
                }
                in_a_row = 0;
                if let Some(e) = items(&r.body).iter().find(|e| e["text"] == text.as_str()) {
                    return (Some((started.elapsed(), e.clone())), polls, errors);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (None, polls, errors)
        };
        let watch_conversation = async {
            while started.elapsed() < VISIBLE_WITHIN {
                let r = api.get(&conversation_path).await;
                if r.status == 200 && r.body["last_message"]["text"] == text.as_str() {
                    return Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            None
        };
        let (callback, (seen, polls, errors), in_conversation) =
            tokio::join!(send, watch_thread, watch_conversation);
        out.callback.push(callback);
        out.thread_errors.extend(errors.iter().copied());
        if seen.is_none() && errors.len() >= GIVE_UP_AFTER {
            thread_gave_up = true;
        }
        if let Some(t) = in_conversation {
            out.in_conversation.push(t);
        }
        match seen {
            Some((visible, entry)) => {
                let at: DateTime<Utc> = entry["at"].as_str().expect("at").parse().expect("time");
                let position = format!(
                    "{}#in-{}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    entry["id"].as_str().expect("id")
                );
                out.keys.push(key_of(
                    format!("PRACTICE#{}", practice.practice_id),
                    format!("THREAD#{}#{position}", phone.as_str()),
                ));
                println!(
                    "  text {i}: in thread after {:.0} ms ({polls} polls, {} errors), \
                     in conversation after {:.0} ms, callback answered after {:.0} ms",
                    visible.as_secs_f64() * 1e3,
                    errors.len(),
                    in_conversation.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
                    callback.as_secs_f64() * 1e3
                );
                out.visible.push(visible);
                out.polls.push(polls);
            }
            None => {
                println!(
                    "  text {i}: not seen in thread ({polls} polls, errors {errors:?}); \
                     in conversation after {:.0} ms, callback answered after {:.0} ms",
                    in_conversation.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
                    callback.as_secs_f64() * 1e3
                );
                out.not_visible += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() {
    let a = args();
    let run_started = Instant::now();
    let local = Endpoints::load();
    let aws = local.aws().await;
    let client = Client::new(&aws);
    let store = DynamoStore::new(client.clone(), local.table_name.clone());
    let counter = ReadCounter::default();
    let counting = DynamoStore::new(
        Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&aws)
                .interceptor(counter.clone())
                .build(),
        ),
        local.table_name.clone(),
    );
    let t = local.new_practice().await;
    let practice = t.practice.clone();
    let practice_id = practice.practice_id.clone();
    let pk = format!("PRACTICE#{practice_id}");
    println!(
        "practice {practice_id}; seeding {} conversations, {} thread entries into {}",
        a.conversations, a.messages, local.table_name
    );

    // ---- seed
    let now = DateTime::<Utc>::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let built = Instant::now();
    let seed = build_seed(&practice, a.conversations, a.messages, now);
    let mut thread_items = Vec::with_capacity(a.messages);
    let mut seeded_keys: Vec<Item> = Vec::new();
    for c in &seed.conversations {
        let phone = &c.conversation.phone;
        for (k, entry) in c.thread.iter().enumerate() {
            if k + 1 < c.thread.len() {
                thread_items.push(thread_entry_item(&practice_id, phone, entry));
            } else {
                seeded_keys.push(key_of(
                    pk.clone(),
                    format!("THREAD#{}#{}", phone.as_str(), entry.position()),
                ));
            }
        }
        seeded_keys.push(key_of(pk.clone(), format!("CONV#{}", phone.as_str())));
    }
    let open = seed
        .conversations
        .iter()
        .filter(|c| c.conversation.status == ConversationStatus::Open)
        .count();
    let unread = seed
        .conversations
        .iter()
        .filter(|c| c.conversation.unread_count > 0)
        .count();
    let mut sizes: Vec<usize> = seed.conversations.iter().map(|c| c.thread.len()).collect();
    sizes.sort_unstable_by(|x, y| y.cmp(x));
    println!(
        "  built in {:.1} s: {open} open, {unread} unread; biggest threads {:?}; median thread {}; \
         {} message + recipient items",
        built.elapsed().as_secs_f64(),
        &sizes[..sizes.len().min(10)],
        sizes[sizes.len() / 2],
        seed.message_items.len()
    );
    let seeding = Instant::now();
    let batch_items: Vec<Item> = thread_items
        .into_iter()
        .chain(seed.message_items.iter().cloned())
        .collect();
    let (batch_time, batch_retries) = run_batches(
        &client,
        &local.table_name,
        put_requests(&batch_items),
        a.concurrency,
        "thread entries, messages, recipients",
    )
    .await;
    let save_time =
        save_conversations(&store, &practice_id, &seed.conversations, a.concurrency).await;
    let seed_time = seeding.elapsed();
    seeded_keys.extend(batch_items.iter().map(|i| {
        key_of(
            i["pk"].as_s().expect("pk").clone(),
            i["sk"].as_s().expect("sk").clone(),
        )
    }));
    let total_items = batch_items.len() + 2 * seed.conversations.len();
    drop(batch_items);
    println!(
        "seeding: {total_items} items in {:.1} s (batch writes {:.1} s, {batch_retries} retried; \
         {} save_conversation {:.1} s)",
        seed_time.as_secs_f64(),
        batch_time.as_secs_f64(),
        seed.conversations.len(),
        save_time.as_secs_f64()
    );

    // ---- what the pages should hold, from the seed
    let mut by_key: Vec<&Conversation> =
        seed.conversations.iter().map(|c| &c.conversation).collect();
    by_key.sort_by_key(|c| std::cmp::Reverse(inbox_key(c)));
    let (assignee, _) = STAFF[0];
    let expected = |f: &dyn Fn(&Conversation) -> bool| -> Vec<&Conversation> {
        by_key.iter().copied().filter(|c| f(c)).collect()
    };
    let all = expected(&|_| true);
    let open_list = expected(&|c| c.status == ConversationStatus::Open);
    let unread_list = expected(&|c| c.unread_count > 0);
    let mine = expected(&|c| c.assignee.as_deref() == Some(assignee));
    let combined = expected(&|c| {
        c.unread_count > 0
            && c.assignee.as_deref() == Some(assignee)
            && c.status == ConversationStatus::Open
    });
    let big = seed
        .conversations
        .iter()
        .max_by_key(|c| c.thread.len())
        .expect("a conversation");
    let big_id = big.conversation.id.to_string();
    let big_phone = big.conversation.phone.to_string();
    let big_len = big.thread.len();
    let deep_inbox = INBOX_DEPTH.min(all.len().saturating_sub(1) / PAGE as usize * PAGE as usize);
    let deep_thread = THREAD_DEPTH.min(big_len.saturating_sub(1) / PAGE as usize * PAGE as usize);
    // The cursor of a page is the position of the item before it.
    let inbox_cursor = (deep_inbox > 0).then(|| encode_cursor(&inbox_key(all[deep_inbox - 1])));
    let mut newest_first: Vec<&ThreadItem> = big.thread.iter().collect();
    newest_first.sort_by_key(|i| std::cmp::Reverse(i.position()));
    let thread_cursor =
        (deep_thread > 0).then(|| encode_cursor(&newest_first[deep_thread - 1].position()));
    let thread_id = |i: &ThreadItem| match i {
        ThreadItem::Inbound(e) => e.carrier_message_id.clone(),
        ThreadItem::Outbound(_) => i.entry_id(),
    };
    let page_len = |n: usize| n.min(PAGE as usize);
    let first_id = |l: &[&Conversation], at: usize| l.get(at).map(|c| c.id.to_string());

    let q = |status: Option<&str>, unread: bool, assignee: Option<&str>, phone: Option<&str>| {
        InboxQuery {
            status: status.map(str::to_string),
            unread: unread.then(|| "true".to_string()),
            assignee: assignee.map(str::to_string),
            phone: phone.map(str::to_string),
        }
    };
    let mut scenarios = vec![
        Scenario {
            name: "Inbox, first page".into(),
            path: format!("/v1/conversations?limit={PAGE}"),
            call: Call::List(q(None, false, None, None), None),
            expect_len: page_len(all.len()),
            expect_first: first_id(&all, 0),
        },
        Scenario {
            name: format!("Inbox, page after {deep_inbox} (cursor)"),
            path: format!(
                "/v1/conversations?limit={PAGE}&cursor={}",
                inbox_cursor.clone().unwrap_or_default()
            ),
            call: Call::List(q(None, false, None, None), inbox_cursor.clone()),
            expect_len: page_len(all.len() - deep_inbox),
            expect_first: first_id(&all, deep_inbox),
        },
        Scenario {
            name: "status=open".into(),
            path: format!("/v1/conversations?limit={PAGE}&status=open"),
            call: Call::List(q(Some("open"), false, None, None), None),
            expect_len: page_len(open_list.len()),
            expect_first: first_id(&open_list, 0),
        },
        Scenario {
            name: "unread=true".into(),
            path: format!("/v1/conversations?limit={PAGE}&unread=true"),
            call: Call::List(q(None, true, None, None), None),
            expect_len: page_len(unread_list.len()),
            expect_first: first_id(&unread_list, 0),
        },
        Scenario {
            name: format!("assignee={assignee}"),
            path: format!("/v1/conversations?limit={PAGE}&assignee={assignee}"),
            call: Call::List(q(None, false, Some(assignee), None), None),
            expect_len: page_len(mine.len()),
            expect_first: first_id(&mine, 0),
        },
        Scenario {
            name: format!("unread=true&assignee={assignee}&status=open"),
            path: format!(
                "/v1/conversations?limit={PAGE}&unread=true&assignee={assignee}&status=open"
            ),
            call: Call::List(q(Some("open"), true, Some(assignee), None), None),
            expect_len: page_len(combined.len()),
            expect_first: first_id(&combined, 0),
        },
        Scenario {
            name: "phone=".into(),
            path: format!("/v1/conversations?phone={}", encode_query(&big_phone)),
            call: Call::List(q(None, false, None, Some(&big_phone)), None),
            expect_len: 1,
            expect_first: Some(big_id.clone()),
        },
        Scenario {
            name: "one conversation".into(),
            path: format!("/v1/conversations/{big_id}"),
            call: Call::Get(big_id.clone()),
            expect_len: 1,
            expect_first: Some(big_id.clone()),
        },
        Scenario {
            name: format!("thread of {big_len}, first page"),
            path: format!("/v1/conversations/{big_id}/messages?limit={PAGE}"),
            call: Call::Thread(big_id.clone(), None),
            expect_len: page_len(big_len),
            expect_first: newest_first.first().map(|i| thread_id(i)),
        },
        Scenario {
            name: format!("thread of {big_len}, page after {deep_thread} (cursor)"),
            path: format!(
                "/v1/conversations/{big_id}/messages?limit={PAGE}&cursor={}",
                thread_cursor.clone().unwrap_or_default()
            ),
            call: Call::Thread(big_id.clone(), thread_cursor.clone()),
            expect_len: page_len(big_len - deep_thread),
            expect_first: newest_first.get(deep_thread).map(|i| thread_id(i)),
        },
    ];
    if inbox_cursor.is_none() {
        scenarios.remove(1);
    }
    if thread_cursor.is_none() {
        scenarios.pop();
    }

    // ---- latency through the API, then the reads of the same use case
    let api = &t.api;
    let baseline = stats(&measure(api, "/v1/error-codes", a.samples, &|_| {}).await.ok);
    println!("baseline done: median {:.1} ms", baseline.median);
    let mut rows = Vec::new();
    for s in &scenarios {
        let (expect_len, expect_first) = (s.expect_len, s.expect_first.clone());
        let single = matches!(s.call, Call::Get(_));
        let check = move |b: &Value| {
            let (len, first) = if single {
                (1, b["id"].as_str().map(str::to_string))
            } else {
                let i = items(b);
                (
                    i.len(),
                    i.first().and_then(|e| e["id"].as_str()).map(str::to_string),
                )
            };
            assert_eq!(len, expect_len, "page size: {b}");
            if let Some(want) = &expect_first {
                assert_eq!(first.as_ref(), Some(want), "first item");
            }
        };
        let started = Instant::now();
        let m = measure(api, &s.path, a.samples, &check).await;
        // Twice: the first warms the connection; the second is reported.
        count_reads(&counting, &counter, &practice, &s.call).await;
        let (cost, n, took) = count_reads(&counting, &counter, &practice, &s.call).await;
        assert_eq!(
            n, s.expect_len,
            "{}: the use case answered another page",
            s.name
        );
        let latency = (!m.ok.is_empty()).then(|| stats(&m.ok));
        println!(
            "{}: median {:.1} ms, p95 {:.1} ms, {} failed; in process {:.0} ms; \
             reads {} = {} items, {:.1} RCU est. ({:.0} s)",
            s.name,
            latency.map_or(f64::NAN, |l| l.median),
            latency.map_or(f64::NAN, |l| l.p95),
            m.failed.len(),
            took.as_secs_f64() * 1e3,
            cost.requests_text(),
            cost.items_text(),
            cost.aws_rcu,
            started.elapsed().as_secs_f64()
        );
        rows.push(Row {
            name: s.name.clone(),
            path: s.path.clone(),
            latency,
            failed: m.failed,
            items: if single || m.last.is_null() {
                n
            } else {
                items(&m.last).len()
            },
            cost,
            in_process_ms: took.as_secs_f64() * 1e3,
        });
    }

    // ---- inbound text → visible in the thread
    let mut rng = StdRng::seed_from_u64(0x7e47);
    let mut small: Vec<&SeededConversation> = seed
        .conversations
        .iter()
        .filter(|c| c.thread.len() <= 20)
        .collect();
    let mut phones = Vec::new();
    while phones.len() < a.inbound && !small.is_empty() {
        let i = rng.random_range(0..small.len());
        phones.push(small.swap_remove(i).conversation.phone.clone());
    }
    println!("inbound: {} texts", phones.len());
    let inbound = inbound_latency(&local, api, &practice, &phones).await;
    seeded_keys.extend(inbound.keys.iter().cloned());

    // ---- results
    println!();
    println!(
        "### {} conversations, {} thread entries ({total_items} items), practice `{practice_id}`",
        a.conversations, a.messages
    );
    println!();
    println!(
        "Seeding: {:.1} s ({} in flight): {} items by `BatchWriteItem` in {:.1} s \
         ({batch_retries} retried batches), {} `save_conversation` in {:.1} s. \
         {open} open, {unread} unread, {} assigned to {assignee}; biggest threads {:?}, \
         median thread {}.",
        seed_time.as_secs_f64(),
        a.concurrency,
        total_items - 2 * seed.conversations.len(),
        batch_time.as_secs_f64(),
        seed.conversations.len(),
        save_time.as_secs_f64(),
        mine.len(),
        &sizes[..sizes.len().min(6)],
        sizes[sizes.len() / 2],
    );
    println!();
    println!(
        "| scenario | requests (non-200) | median ms | p95 ms | max ms | items | in process ms | DynamoDB requests | items read | KB read | AWS RCU (est.) | emulator ConsumedCapacity |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for r in &rows {
        let fmt = |f: fn(&Stats) -> f64| {
            r.latency
                .as_ref()
                .map_or("-".into(), |l| format!("{:.1}", f(l)))
        };
        let failed = if r.failed.is_empty() {
            String::new()
        } else {
            let mut codes: Vec<String> = r.failed.iter().map(|(c, _)| c.to_string()).collect();
            codes.dedup();
            format!(
                " ({} × {}, after {:.1} s)",
                r.failed.len(),
                codes.join("/"),
                r.failed
                    .iter()
                    .map(|(_, d)| d.as_secs_f64())
                    .fold(0.0, f64::max)
            )
        };
        println!(
            "| {} | {}{failed} | {} | {} | {} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} |",
            r.name,
            r.latency.map_or(0, |l| l.n) + r.failed.len(),
            fmt(|l| l.median),
            fmt(|l| l.p95),
            fmt(|l| l.max),
            r.items,
            r.in_process_ms,
            r.cost.requests_text(),
            r.cost.items_text(),
            r.cost.bytes as f64 / 1024.0,
            r.cost.aws_rcu,
            r.cost.reported
        );
    }
    println!(
        "| baseline: GET /v1/error-codes (reads no table) | {} | {:.1} | {:.1} | {:.1} | - | - | - | - | - | - | - |",
        baseline.n, baseline.median, baseline.p95, baseline.max
    );
    {
        let line = |what: &str, d: &[Duration]| {
            if d.is_empty() {
                println!("| {what} | 0 | - | - | - |");
            } else {
                let v = stats(d);
                println!(
                    "| {what} | {} | {:.0} | {:.0} | {:.0} |",
                    v.n, v.median, v.p95, v.max
                );
            }
        };
        println!();
        println!("| inbound text (simulator `POST /_sim/inbound` sent) → | texts | median ms | p95 ms | max ms |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        line(
            "`GET /v1/conversations/{id}/messages` shows it",
            &inbound.visible,
        );
        line(
            "`GET /v1/conversations/{id}` shows it as last message",
            &inbound.in_conversation,
        );
        line(
            "simulator answered (webhook callback done)",
            &inbound.callback,
        );
        let mut polls = inbound.polls.clone();
        polls.sort_unstable();
        println!();
        println!(
            "Not seen in the thread (within {VISIBLE_WITHIN:?}, or its route failing): {} of {}. Thread polls until visible: \
             median {}, max {} (back to back, 10 ms apart); non-200 thread answers while polling: {:?}.",
            inbound.not_visible,
            inbound.callback.len(),
            polls.get(polls.len() / 2).copied().unwrap_or(0),
            polls.last().copied().unwrap_or(0),
            inbound.thread_errors
        );
    }
    println!();
    for r in &rows {
        println!("- {}: `GET {}`", r.name, r.path);
    }
    println!(
        "- Reads: the same use case (`app::conversations::list / get / thread`, page {PAGE}) \
         run in this process against a `DynamoStore` whose client counts every read; \
         items read = `ScannedCount` of each `Query` + items a `GetItem` / `BatchGetItem` returned."
    );

    if a.keep {
        println!("\nkept the seeded items (--keep)");
    } else {
        let (took, _) = run_batches(
            &client,
            &local.table_name,
            delete_requests(&seeded_keys),
            a.concurrency,
            "deleted",
        )
        .await;
        println!(
            "\ndeleted the {} seeded items in {:.1} s",
            seeded_keys.len(),
            took.as_secs_f64()
        );
    }
    println!("whole run: {:.0} s", run_started.elapsed().as_secs_f64());
}
