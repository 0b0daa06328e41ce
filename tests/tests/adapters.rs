//! Adapters against real services: DynamoDB and SQS in the emulator (real
//! condition expressions, transactions, batches) and the Bandwidth HTTP
//! adapter against the carrier simulator.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use shared::adapters::bandwidth::{Bandwidth, BandwidthConfig};
use shared::adapters::sqs::SqsSendQueue;
use shared::app::dispatch::{Dispatched, Dispatcher, RetryPolicy};
use shared::domain::clock::SystemClock;
use shared::domain::message::{RecipientError, RecipientStatus, SendJob, Transition};
use shared::ports::{
    Carrier, CarrierOutcome, CreateOutcome, MessageStore, OutboundText, SendQueue,
};
use tests::{random_phone, Endpoints};

fn bandwidth(local: &Endpoints, password: &str, timeout: Duration) -> Bandwidth {
    Bandwidth::new(BandwidthConfig {
        api_url: format!("{}/api/v2", local.carrier_url),
        account_id: "9900000".into(),
        application_id: "local-application".into(),
        username: "sim-user".into(),
        password: password.into(),
        timeout,
    })
    .unwrap()
}

fn outbound(to: &str) -> OutboundText {
    OutboundText {
        from: "+14155550100".into(),
        to: to.into(),
        text: "adapter test".into(),
        tag: "t/m/00001".into(),
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn concurrent_claims_are_won_by_exactly_one() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Queued)
        .await;
    let current = store.get_recipient(&job).await.unwrap().unwrap();
    let claims = (0..8).map(|_| {
        let (store, current) = (store.clone(), current.clone());
        tokio::spawn(async move {
            store
                .transition(&current, &Transition::Claim { at: Utc::now() })
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for c in claims {
        if c.await.unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let r = store.get_recipient(&job).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (RecipientStatus::Sending, 1));
    // The message's counts followed in the same transaction.
    let (message, _) = store
        .get_message(&job.practice_id, &job.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((message.counts.queued, message.counts.sending), (0, 1));
    assert_eq!(message.status, "sending");
    assert!(message.sent_at.is_some());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn statuses_only_move_forward_in_dynamodb() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Queued)
        .await;
    let read = || async { store.get_recipient(&job).await.unwrap().unwrap() };
    let now = Utc::now();
    let sent = Transition::Sent {
        carrier_message_id: "c-1".into(),
        at: now,
    };
    assert!(
        store
            .transition(&read().await, &sent)
            .await
            .unwrap()
            .is_none(),
        "queued cannot jump to sent"
    );
    let queued = read().await;
    store
        .transition(&queued, &Transition::Claim { at: now })
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .transition(&queued, &Transition::Claim { at: now })
            .await
            .unwrap()
            .is_none(),
        "a stale read cannot write"
    );
    store
        .transition(&read().await, &sent)
        .await
        .unwrap()
        .unwrap();
    let wrong_id = Transition::Delivered {
        carrier_message_id: "c-2".into(),
        at: now,
    };
    assert!(
        store
            .transition(&read().await, &wrong_id)
            .await
            .unwrap()
            .is_none(),
        "another carrier id"
    );
    let delivered = Transition::Delivered {
        carrier_message_id: "c-1".into(),
        at: now,
    };
    let r = store
        .transition(&read().await, &delivered)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RecipientStatus::Delivered);
    assert!(store
        .transition(&read().await, &sent)
        .await
        .unwrap()
        .is_none());
    let failed = Transition::Failed {
        carrier_message_id: Some("c-1".into()),
        error: RecipientError::from_carrier_code(4720),
        at: now,
    };
    assert!(store
        .transition(&read().await, &failed)
        .await
        .unwrap()
        .is_none());
    let mut unknown = read().await;
    unknown.recipient_id = "99999".into();
    unknown.status = RecipientStatus::Sent;
    assert!(
        store
            .transition(&unknown, &delivered)
            .await
            .unwrap()
            .is_none(),
        "unknown recipient"
    );
    assert_eq!(read().await.status, RecipientStatus::Delivered);
    let (message, _) = store
        .get_message(&job.practice_id, &job.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            message.status.as_str(),
            message.counts.delivered,
            message.counts.sent
        ),
        ("delivered", 1, 0)
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn second_message_with_a_taken_idempotency_key_stores_nothing() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let first = local.stored_recipient(&pid, RecipientStatus::Queued).await;
    let (message, recipients) = store
        .get_message(&pid, &first.message_id)
        .await
        .unwrap()
        .unwrap();
    let record = shared::app::idempotency::record(&pid, "k-1", "hash", 202, "{}", Utc::now());
    let mut m1 = message.clone();
    m1.id = "idem-1".into();
    let mut r1 = recipients.clone();
    r1[0].message_id = m1.id.clone();
    assert_eq!(
        store.create_message(&m1, &r1, Some(&record)).await.unwrap(),
        CreateOutcome::Created
    );
    let mut m2 = message.clone();
    m2.id = "idem-2".into();
    let mut r2 = recipients.clone();
    r2[0].message_id = m2.id.clone();
    assert_eq!(
        store.create_message(&m2, &r2, Some(&record)).await.unwrap(),
        CreateOutcome::IdempotencyKeyTaken
    );
    assert!(
        store.get_message(&pid, "idem-2").await.unwrap().is_none(),
        "transaction wrote nothing"
    );
    assert_eq!(
        store
            .get_idempotency(&pid, "k-1")
            .await
            .unwrap()
            .unwrap()
            .request_hash,
        "hash"
    );
    store.remove_message(&m1, &r1, Some(&record)).await.unwrap();
    assert!(store.get_message(&pid, "idem-1").await.unwrap().is_none());
    assert!(store.get_idempotency(&pid, "k-1").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn sqs_enqueue_batches_and_delivers_every_job() {
    let local = Endpoints::load();
    let client = aws_sdk_sqs::Client::new(&local.aws().await);
    let name = format!("adapter-test-{}", uuid::Uuid::new_v4().simple());
    let url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue = SqsSendQueue::new(client.clone(), &url);
    let jobs: Vec<SendJob> = (0..23)
        .map(|i| SendJob {
            practice_id: "p".into(),
            message_id: "m".into(),
            recipient_id: format!("{i:05}"),
        })
        .collect();
    queue.enqueue(&jobs).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let received = tests::poll(Duration::from_secs(20), || {
        let (client, url, seen) = (client.clone(), url.clone(), seen.clone());
        async move {
            let out = client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for m in out.messages() {
                let job: SendJob = serde_json::from_str(m.body().unwrap()).unwrap();
                seen.lock().unwrap().insert(job.recipient_id);
                client
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            let n = seen.lock().unwrap().len();
            (n == 23).then_some(())
        }
    })
    .await;
    client.delete_queue().queue_url(&url).send().await.unwrap();
    assert!(
        received.is_some(),
        "received {} of 23",
        seen.lock().unwrap().len()
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bandwidth_adapter_speaks_the_carrier_api() {
    let local = Endpoints::load();
    let carrier = bandwidth(&local, "sim-password", Duration::from_secs(5));
    let to = random_phone();
    let CarrierOutcome::Accepted { carrier_message_id } =
        carrier.send(&outbound(to.as_str())).await
    else {
        panic!("not accepted")
    };
    let at_carrier = local.carrier_messages(to.as_str()).await;
    assert_eq!(at_carrier[0]["id"], carrier_message_id.as_str());
    assert_eq!(at_carrier[0]["applicationId"], "local-application");
    assert_eq!(at_carrier[0]["tag"], "t/m/00001");

    let wrong = bandwidth(&local, "wrong", Duration::from_secs(5));
    assert!(matches!(
        wrong.send(&outbound(to.as_str())).await,
        CarrierOutcome::Rejected { status: 401, .. }
    ));

    for (mode, retryable) in [("http_500", true), ("http_429", true), ("http_400", false)] {
        let to = random_phone();
        local.carrier_fault(to.as_str(), mode, 1).await;
        let outcome = carrier.send(&outbound(to.as_str())).await;
        assert_eq!(
            matches!(outcome, CarrierOutcome::Retryable { .. }),
            retryable,
            "{mode}: {outcome:?}"
        );
    }
    let to = random_phone();
    local.carrier_fault(to.as_str(), "timeout", 1).await;
    let quick = bandwidth(&local, "sim-password", Duration::from_millis(500));
    assert!(matches!(
        quick.send(&outbound(to.as_str())).await,
        CarrierOutcome::Retryable { .. }
    ));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn dispatching_the_same_job_twice_sends_once() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Queued)
        .await;
    let to = store.get_recipient(&job).await.unwrap().unwrap().to;
    let queue = SqsSendQueue::new(
        aws_sdk_sqs::Client::new(&local.aws().await),
        &local.send_queue_url,
    );
    let dispatcher = Dispatcher {
        store: store.clone(),
        queue,
        carrier: bandwidth(&local, "sim-password", Duration::from_secs(5)),
        clock: SystemClock,
        retry: RetryPolicy::default(),
    };
    let (a, b) = tokio::join!(dispatcher.dispatch(&job), dispatcher.dispatch(&job));
    assert_eq!(a.unwrap(), Dispatched::Done);
    assert!(matches!(
        b.unwrap(),
        Dispatched::Done | Dispatched::RetryAfter(_)
    ));
    assert_eq!(dispatcher.dispatch(&job).await.unwrap(), Dispatched::Done);
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn duplicate_queue_delivery_through_the_deployed_dispatcher_sends_once() {
    let local = Endpoints::load();
    let client = aws_sdk_sqs::Client::new(&local.aws().await);
    let queue = SqsSendQueue::new(client.clone(), &local.send_queue_url);
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Queued)
        .await;
    let store = local.store().await;
    let to = store.get_recipient(&job).await.unwrap().unwrap().to;
    queue.enqueue(&[job.clone(), job.clone()]).await.unwrap();
    queue.enqueue(std::slice::from_ref(&job)).await.unwrap();
    let delivered = tests::poll(Duration::from_secs(30), || async {
        let r = store.get_recipient(&job).await.unwrap().unwrap();
        (r.status == RecipientStatus::Delivered).then_some(())
    })
    .await;
    assert!(delivered.is_some());
    // Wait for the deployed dispatcher to consume all three copies.
    let drained = tests::poll(Duration::from_secs(60), || async {
        let attrs = client
            .get_queue_attributes()
            .queue_url(&local.send_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let n = |k: aws_sdk_sqs::types::QueueAttributeName| {
            attrs
                .attributes()
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        use aws_sdk_sqs::types::QueueAttributeName::*;
        (n(ApproximateNumberOfMessages) + n(ApproximateNumberOfMessagesNotVisible) == 0)
            .then_some(())
    })
    .await;
    assert!(drained.is_some(), "queue not drained");
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn rate_bucket_in_dynamodb_grants_exactly_the_cap_under_concurrency() {
    use shared::app::rate_cap::take_token;
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let now = Utc::now();
    let window = chrono::Duration::seconds(60);
    let tries = (0..12).map(|_| {
        let (store, pid) = (store.clone(), pid.clone());
        tokio::spawn(async move {
            take_token(&store, &pid, "bulk", now, 5, window)
                .await
                .unwrap()
        })
    });
    let mut granted = 0;
    let mut waits = Vec::new();
    for t in tries {
        match t.await.unwrap() {
            None => granted += 1,
            Some(until) => waits.push(until),
        }
    }
    assert_eq!(granted, 5, "conditional writes let exactly the cap through");
    // Times are kept to the millisecond.
    let returns = now + window;
    assert_eq!(waits.len(), 7);
    assert!(
        waits
            .iter()
            .all(|w| (*w - returns).num_milliseconds().abs() <= 1),
        "capacity returns one window after the first grant: {waits:?} vs {returns}"
    );
    let later = take_token(&store, &pid, "bulk", now + window, 5, window)
        .await
        .unwrap();
    assert_eq!(later, None, "a full window later there is room again");
}
