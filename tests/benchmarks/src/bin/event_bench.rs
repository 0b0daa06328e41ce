//! What an event costs and how soon it arrives, on the local cloud.
//!
//!     cargo run --profile local -p benchmarks --bin event-bench -- [--events 20]
//!
//! Needs `make dev` running.
//!
//! 1. **First-attempt latency**: a practice with one endpoint (a receiver in
//!    this process); a patient texts the practice `--events` times through
//!    the carrier simulator, one after another. Latency = from the webhook's
//!    answer to the simulator (the text and its `message.received` event
//!    are stored) to the receiver getting the event — through the table's
//!    stream, the fan-out, the event queue and the delivery attempt.
//! 2. **Requests per event**: the same steps run in this process with SDK
//!    clients that count every request by operation: recording an opt-out
//!    (the change and its event, one transaction), the fan-out to one
//!    endpoint, and one successful delivery attempt.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use cloud_tests::receiver::{Receiver, Script};
use cloud_tests::{random_phone, Endpoints};
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::event_http::HttpEventPoster;
use messaging_adapters::sqs::SqsEventQueue;
use messaging_core::app::events::{self, Delivered, Deliverer};
use messaging_core::domain::event_endpoint::{
    EndpointStatus, EventEndpoint, SigningSecret, UrlPolicy,
};
use messaging_core::domain::events::{DeliveryJob, RetrySchedule};
use messaging_core::ports::{EventStore, OptOutChange, OptOutStore};
use serde_json::{json, Value};

/// Counts requests by operation (`X-Amz-Target`).
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
    fn take(&self) -> String {
        let counts = std::mem::take(&mut *self.0.lock().unwrap());
        let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
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
    let n: usize = arg("--events", "20").parse().expect("--events N");
    let local = Endpoints::load();
    let receiver = Receiver::start().await;

    // 1. First-attempt latency through the deployed stack.
    let t = local.new_practice().await;
    let r = t
        .api
        .post(
            "/v1/event-endpoints",
            &json!({"url": receiver.url("bench", Script::Always(200)), "event_types": ["message.received"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let office = t.practice.channels.sms_main.to_string();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        local
            .patient_texts(
                &random_phone().to_string(),
                &office,
                &format!("probe {i}"),
                Value::Null,
            )
            .await;
        let recorded = Instant::now();
        let got = receiver
            .wait_for("bench", i + 1, Duration::from_secs(60))
            .await;
        samples.push(got[i].at.saturating_duration_since(recorded));
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!("first attempt after the text was recorded ({n} events, one at a time):");
    println!(
        "  median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(*samples.last().unwrap())
    );

    // 2. Requests per event, counted.
    let aws = local.aws().await;
    let dynamo_count = Counter::default();
    let sqs_count = Counter::default();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&aws)
                .interceptor(dynamo_count.clone())
                .build(),
        ),
        local.table_name.clone(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(sqs_count.clone())
            .build(),
    );
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("event-bench-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("private queue")
        .queue_url
        .expect("queue url");
    sqs_count.take();
    let queue = SqsEventQueue::new(sqs.clone(), queue_url.clone(), None);
    let practice_id = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let endpoint = EventEndpoint {
        id: uuid::Uuid::now_v7().to_string(),
        practice_id: practice_id.clone(),
        url: receiver.url("counted", Script::Always(200)),
        event_types: None,
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secrets: vec![SigningSecret::generate()],
        created_at: chrono::Utc::now(),
    };
    store
        .create_endpoint(&endpoint, None)
        .await
        .expect("endpoint");
    dynamo_count.take();
    let phone = random_phone().to_string();
    store
        .record_opt_out(&OptOutChange {
            practice_id: practice_id.clone(),
            phone: phone.clone(),
            opted_out: true,
            keyword: "STOP".into(),
            source: "sms".into(),
            at: chrono::Utc::now(),
        })
        .await
        .expect("opt-out");
    println!("requests per event (one endpoint):");
    println!(
        "  the change and its event: DynamoDB {}",
        dynamo_count.take()
    );
    let (listed, _) = events::list_events(
        &store,
        &practice_id,
        &Default::default(),
        1,
        None,
        chrono::Utc::now(),
    )
    .await
    .expect("list");
    dynamo_count.take();
    let event_id = listed[0]["id"].as_str().unwrap().to_string();
    let event_type = messaging_core::domain::events::EventType::ContactOptedOut;
    events::fan_out(
        &store,
        &queue,
        &practice_id,
        &event_id,
        event_type,
        chrono::Utc::now(),
    )
    .await
    .expect("fan out");
    println!(
        "  fan-out (stream record): DynamoDB {}; SQS {}",
        dynamo_count.take(),
        sqs_count.take()
    );
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive");
    let body = received.messages.unwrap_or_default()[0]
        .body()
        .unwrap()
        .to_string();
    let job: DeliveryJob = serde_json::from_str(&body).unwrap();
    sqs_count.take();
    let client = HttpEventPoster::new(UrlPolicy { allow_local: true }).expect("client");
    let schedule = RetrySchedule::default();
    let deliverer = Deliverer {
        store: &store,
        queue: &queue,
        client: &client,
        policy: UrlPolicy { allow_local: true },
        schedule: &schedule,
    };
    let outcome = deliverer
        .deliver(&job, chrono::Utc::now())
        .await
        .expect("deliver");
    assert_eq!(outcome, Delivered::Delivered);
    println!(
        "  one successful attempt (queue record): DynamoDB {}; SQS {} (the event-source mapping's receive and delete come on top, per batch of up to 10)",
        dynamo_count.take(),
        sqs_count.take()
    );
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
}
