//! Adapters against real services: DynamoDB and SQS in the emulator (real
//! condition expressions, transactions, batches) and the Bandwidth HTTP
//! adapter against the carrier simulator.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use cloud_tests::{random_phone, Endpoints};
use messaging_adapters::bandwidth::{Bandwidth, BandwidthConfig};
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dispatch::{Dispatched, Dispatcher, RetryPolicy};
use messaging_core::domain::message::{
    BulkStatus, RecipientError, RecipientStatus, SendJob, Transition,
};
use messaging_core::ports::{
    Carrier, CarrierOutcome, CreateOutcome, MessageStore, OutboundText, SendQueue, SystemClock,
};

fn bandwidth(local: &Endpoints, password: &str, timeout: Duration) -> Bandwidth {
    Bandwidth::new(BandwidthConfig {
        api_url: format!("{}/api/v2", local.carrier_url),
        account_id: "9900000".into(),
        application_id: "local-application".into(),
        username: "sim-user".into(),
        password: messaging_core::domain::secret::Secret::new(password).into(),
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
        carrier: Default::default(),
    }
}

/// The AWS End User Messaging adapter against the simulator's copy of the
/// service: signed calls, AWS's answers read into the carrier port's
/// outcomes (a number outside the account, an opt-out refusal, throttling).
#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn aws_sms_adapter_reads_awss_answers_from_the_simulator() {
    use messaging_adapters::aws_sms::{AwsSms, AwsSmsConfig};
    use messaging_core::domain::carrier::CarrierKind;
    let local = Endpoints::load();
    let aws = AwsSms::new(
        &local.aws().await,
        AwsSmsConfig {
            api_url: Some(local.carrier_url.clone()),
            configuration_set: "local-configuration-set".into(),
            opt_out_list: Some("local-opt-out-list".into()),
            timeout: std::time::Duration::from_secs(5),
        },
    )
    .unwrap();
    let from = cloud_tests::random_phone().to_string();
    let text = |to: &str| OutboundText {
        from: from.clone(),
        to: to.into(),
        text: "adapter test".into(),
        tag: "t/m/00001".into(),
        carrier: CarrierKind::Aws,
    };
    let code = |outcome: CarrierOutcome| match outcome {
        CarrierOutcome::Rejected { error: Some(e), .. } => e.code,
        other => panic!("{other:?}"),
    };
    // Not a number of the account yet.
    let to = cloud_tests::random_phone().to_string();
    assert_eq!(
        code(aws.send_text(&text(&to)).await),
        "ResourceNotFoundException"
    );
    local
        .new_aws_practice_with(|p| {
            p.channels.sms_main = messaging_core::domain::phone::PhoneNumber::parse(&from).unwrap()
        })
        .await;
    assert!(
        matches!(aws.send_text(&text(&to)).await, CarrierOutcome::Accepted { carrier_message_id } if !carrier_message_id.is_empty())
    );
    let sent = local.carrier_messages(&to).await;
    assert_eq!(
        (sent.len(), sent[0]["tag"].as_str()),
        (1, Some("t/m/00001"))
    );
    let opted_out = cloud_tests::phone_ending(4775).to_string();
    assert_eq!(
        code(aws.send_text(&text(&opted_out)).await),
        "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    );
    let busy = cloud_tests::random_phone().to_string();
    local.carrier_fault(&busy, "http_429", 1).await;
    assert!(matches!(
        aws.send_text(&text(&busy)).await,
        CarrierOutcome::Retryable { .. }
    ));
    // Taking a number off the opt-out list: one it is not on is fine.
    use messaging_core::ports::CarrierOptOuts;
    aws.remove_opt_out(&to)
        .await
        .expect("not on the list is fine");
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
                .transition(&current, &Transition::Claim { at: Utc::now() }, Utc::now())
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
            .transition(&read().await, &sent, Utc::now())
            .await
            .unwrap()
            .is_none(),
        "queued cannot jump to sent"
    );
    let queued = read().await;
    store
        .transition(&queued, &Transition::Claim { at: now }, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .transition(&queued, &Transition::Claim { at: now }, Utc::now())
            .await
            .unwrap()
            .is_none(),
        "a stale read cannot write"
    );
    store
        .transition(&read().await, &sent, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let wrong_id = Transition::Delivered {
        carrier_message_id: "c-2".into(),
        at: now,
    };
    assert!(
        store
            .transition(&read().await, &wrong_id, Utc::now())
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
        .transition(&read().await, &delivered, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RecipientStatus::Delivered);
    assert!(store
        .transition(&read().await, &sent, Utc::now())
        .await
        .unwrap()
        .is_none());
    let failed = Transition::Failed {
        carrier_message_id: Some("c-1".into()),
        error: RecipientError::from_carrier_code(4720),
        at: now,
    };
    assert!(store
        .transition(&read().await, &failed, Utc::now())
        .await
        .unwrap()
        .is_none());
    let mut unknown = read().await;
    unknown.recipient_id = "99999".into();
    unknown.status = RecipientStatus::Sent;
    assert!(
        store
            .transition(&unknown, &delivered, Utc::now())
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
    let record =
        messaging_core::app::idempotency::record(&pid, "k-1", "hash", 202, "{}", Utc::now());
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
            .get_idempotency(&pid, "k-1", Utc::now())
            .await
            .unwrap()
            .unwrap()
            .request_hash,
        "hash"
    );
    store.remove_message(&m1, &r1, Some(&record)).await.unwrap();
    assert!(store.get_message(&pid, "idem-1").await.unwrap().is_none());
    assert!(store
        .get_idempotency(&pid, "k-1", Utc::now())
        .await
        .unwrap()
        .is_none());
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
    let received = cloud_tests::poll(Duration::from_secs(20), || {
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
    // No answer: the carrier may have taken it, whether it did (the
    // simulator recorded it) or not.
    let quick = bandwidth(&local, "sim-password", Duration::from_millis(500));
    for (mode, accepted) in [
        ("timeout", 0),
        ("accept_then_timeout", 1),
        ("cut_before_accept", 0),
        ("cut_after_accept", 1),
    ] {
        let to = random_phone();
        local.carrier_fault(to.as_str(), mode, 1).await;
        let outcome = quick.send(&outbound(to.as_str())).await;
        assert!(
            matches!(outcome, CarrierOutcome::Unconfirmed { .. }),
            "{mode}: {outcome:?}"
        );
        assert_eq!(
            local.carrier_messages(to.as_str()).await.len(),
            accepted,
            "{mode}"
        );
    }
    // A 2xx whose body is cut off is still an acceptance.
    let to = random_phone();
    local
        .carrier_fault(to.as_str(), "cut_body_after_2xx", 1)
        .await;
    assert_eq!(
        carrier.send(&outbound(to.as_str())).await,
        CarrierOutcome::Accepted {
            carrier_message_id: String::new()
        }
    );
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
        bulk_per_second: messaging_core::app::rate_cap::DEFAULT_NUMBER_PER_SECOND,
        inline_wait: messaging_core::app::dispatch::INLINE_WAIT,
        practices: Default::default(),
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

/// What the deployed dispatcher logged as the end of handling `job` (one
/// line per queue delivery it finished) since `since_ms`.
async fn final_dispatch_lines(local: &Endpoints, job: &str, since_ms: i64) -> Vec<String> {
    const FINAL: [&str; 4] = [
        "sent",
        "callback arrived before the sent record",
        "claimed by another dispatcher",
        "nothing to send",
    ];
    cloud_tests::emulator::function_log_records(
        &local.aws_endpoint_url,
        &local.stack_name,
        "Dispatcher",
        since_ms,
    )
    .await
    .into_iter()
    .filter(|r| r["fields"]["job"].as_str() == Some(job))
    .filter_map(|r| r["fields"]["message"].as_str().map(str::to_string))
    .filter(|m| FINAL.contains(&m.as_str()))
    .collect()
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
    let since = Utc::now().timestamp_millis() - 1_000;
    queue.enqueue(&[job.clone(), job.clone()]).await.unwrap();
    queue.enqueue(std::slice::from_ref(&job)).await.unwrap();
    let delivered = cloud_tests::poll(Duration::from_secs(30), || async {
        let r = store.get_recipient(&job).await.unwrap().unwrap();
        (r.status == RecipientStatus::Delivered).then_some(())
    })
    .await;
    assert!(delivered.is_some());
    // Each of the three copies ends in one final log line of the deployed
    // dispatcher naming this job: one sent it, the others found it claimed
    // or already done. Waiting for those three (not for an empty queue,
    // which other tests keep filling) proves every copy was handled.
    let tag = job.to_string();
    let handled = cloud_tests::poll(Duration::from_secs(90), || async {
        let finals = final_dispatch_lines(&local, &tag, since).await;
        (finals.len() >= 3).then_some(finals)
    })
    .await;
    let finals = handled.unwrap_or_else(|| {
        panic!("the dispatcher did not handle all three copies of {tag} within 90 s")
    });
    assert_eq!(
        finals.iter().filter(|m| m.as_str() == "sent").count(),
        1,
        "one copy sent, the others dropped: {finals:?}"
    );
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn rate_bucket_in_dynamodb_grants_exactly_the_cap_under_concurrency() {
    use messaging_core::app::rate_cap::take_token;
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

/// A bulk message of `n` queued recipients as the API would build it, not
/// yet stored (and never queued: the deployed dispatcher does not see it).
fn bulk_fixture(
    practice_id: &str,
    n: u32,
) -> (
    messaging_core::domain::message::Message,
    Vec<messaging_core::domain::message::Recipient>,
) {
    use messaging_core::domain::message::{Counts, Message, MessageType, Recipient};
    let now = Utc::now();
    let message_id = messaging_core::app::messages::new_message_id();
    let from = random_phone();
    let recipients: Vec<Recipient> = (1..=n)
        .map(|i| Recipient {
            practice_id: practice_id.to_string(),
            message_id: message_id.clone(),
            recipient_id: messaging_core::app::bulk::recipient_id(i),
            patient_id: Some(format!("p-{i:03}")),
            to: random_phone(),
            from: from.clone(),
            text: format!("Hello {i}"),
            status: RecipientStatus::Queued,
            not_before: None,
            carrier_message_id: None,
            sent_at: None,
            delivered_at: None,
            error: None,
            skip_reason: None,
            attempts: 0,
            claimed_at: None,
            message_type: MessageType::BulkMessage,
            origin: None,
            version: 0,
            appointment_ids: Vec::new(),
        })
        .collect();
    let message = Message {
        id: message_id,
        practice_id: practice_id.to_string(),
        message_type: MessageType::BulkMessage,
        channel: messaging_core::domain::practice::Channel::SmsMain,
        from,
        text: "Hello {first_name}".into(),
        template_id: None,
        encoding: messaging_core::domain::text::Encoding::Gsm7,
        segments: 1,
        send_at: None,
        created_at: now,
        target_count: n,
        status: messaging_core::domain::message::MessageStatus::Sending,
        counts: Counts::of(recipients.iter().map(|r| &r.status)),
        sent_at: None,
        bulk: Some(messaging_core::domain::bulk::BulkProgress {
            sendable: n,
            released: 0,
            pump: Some("*tok".into()),
            due: now,
            canceled_at: None,
        }),
        appointment_ids: Vec::new(),
    };
    (message, recipients)
}

/// Every recipient of a message, walked `limit` at a time through the cursor.
async fn all_recipients(
    store: &messaging_adapters::dynamo::DynamoStore,
    practice_id: &str,
    message_id: &str,
    status: Option<RecipientStatus>,
    limit: u32,
) -> Vec<messaging_core::domain::message::Recipient> {
    use messaging_core::ports::BulkStore;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let (page, next) = store
            .recipients_page(practice_id, message_id, status, limit, after.as_deref())
            .await
            .unwrap();
        assert!(
            page.len() <= limit as usize,
            "a page holds at most the limit"
        );
        out.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
    panic!("the cursor never ended");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn create_bulk_stores_recipients_in_batches_and_pages_them_in_order() {
    use messaging_core::ports::BulkStore;
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let (mut message, mut recipients) = bulk_fixture(&pid, 60);
    // A few in other statuses, for the filter.
    for i in [4usize, 17, 33, 59] {
        recipients[i].status = RecipientStatus::Skipped;
        recipients[i].skip_reason = Some("opted_out: the number replied STOP".into());
    }
    message.counts =
        messaging_core::domain::message::Counts::of(recipients.iter().map(|r| &r.status));
    let record =
        messaging_core::app::idempotency::record(&pid, "bulk-k-1", "hash", 202, "{}", Utc::now());
    assert_eq!(
        store
            .create_bulk(&message, &recipients, Some(&record))
            .await
            .unwrap(),
        CreateOutcome::Created
    );

    let stored = store
        .get_message_only(&pid, &message.id)
        .await
        .unwrap()
        .expect("the bulk exists");
    assert_eq!(stored.target_count, 60);
    assert_eq!((stored.counts.queued, stored.counts.skipped), (56, 4));
    assert_eq!(stored.bulk, message.bulk);
    assert_eq!(
        store
            .get_idempotency(&pid, "bulk-k-1", Utc::now())
            .await
            .unwrap()
            .unwrap()
            .request_hash,
        "hash"
    );

    // Pages of 25 walk all 60 in order, each exactly as stored.
    let walked = all_recipients(&store, &pid, &message.id, None, 25).await;
    assert_eq!(walked, recipients);
    let (first, next) = store
        .recipients_page(&pid, &message.id, None, 25, None)
        .await
        .unwrap();
    assert_eq!(first.len(), 25);
    assert_eq!(next.as_deref(), Some("00025"));
    let (last, next) = store
        .recipients_page(&pid, &message.id, None, 25, Some("00050"))
        .await
        .unwrap();
    assert_eq!(last.len(), 10);
    assert_eq!(next, None, "no cursor after the last page");

    // The status filter returns only matching ones, in order, across pages.
    let skipped =
        all_recipients(&store, &pid, &message.id, Some(RecipientStatus::Skipped), 3).await;
    let ids: Vec<&str> = skipped.iter().map(|r| r.recipient_id.as_str()).collect();
    assert_eq!(ids, ["00005", "00018", "00034", "00060"]);
    let queued = all_recipients(&store, &pid, &message.id, Some(RecipientStatus::Queued), 25).await;
    assert_eq!(queued.len(), 56);
    assert!(queued.iter().all(|r| r.status == RecipientStatus::Queued));
    assert!(
        all_recipients(&store, &pid, &message.id, Some(RecipientStatus::Sent), 25)
            .await
            .is_empty()
    );

    // Another bulk with the same idempotency key is refused and leaves no
    // recipients behind.
    let (second, second_recipients) = bulk_fixture(&pid, 60);
    assert_eq!(
        store
            .create_bulk(&second, &second_recipients, Some(&record))
            .await
            .unwrap(),
        CreateOutcome::IdempotencyKeyTaken
    );
    assert!(store
        .get_message_only(&pid, &second.id)
        .await
        .unwrap()
        .is_none());
    let (left, next) = store
        .recipients_page(&pid, &second.id, None, 200, None)
        .await
        .unwrap();
    assert!(left.is_empty(), "{} recipients left behind", left.len());
    assert_eq!(next, None);
    // The first bulk is untouched.
    assert_eq!(
        all_recipients(&store, &pid, &message.id, None, 200)
            .await
            .len(),
        60
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn advance_pump_needs_the_live_token_and_a_bulk_not_canceled() {
    use messaging_core::ports::BulkStore;
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let (message, recipients) = bulk_fixture(&pid, 5);
    store
        .create_bulk(&message, &recipients, None)
        .await
        .unwrap();
    let progress = || async {
        store
            .get_message_only(&pid, &message.id)
            .await
            .unwrap()
            .unwrap()
            .bulk
            .unwrap()
    };

    assert!(store
        .advance_pump(&pid, &message.id, "*tok", 3, Some("*tok2"))
        .await
        .unwrap());
    let p = progress().await;
    assert_eq!((p.released, p.pump.as_deref()), (3, Some("*tok2")));

    // The old token is stale now: nothing changes.
    assert!(!store
        .advance_pump(&pid, &message.id, "*tok", 5, Some("*tok3"))
        .await
        .unwrap());
    let p = progress().await;
    assert_eq!((p.released, p.pump.as_deref()), (3, Some("*tok2")));

    // An unknown bulk is refused too.
    assert!(!store
        .advance_pump(&pid, "no-such-bulk", "*tok2", 5, None)
        .await
        .unwrap());

    // After stop_bulk even the live token is refused.
    let at = Utc::now();
    store.stop_bulk(&pid, &message.id, at).await.unwrap();
    assert!(!store
        .advance_pump(&pid, &message.id, "*tok2", 5, None)
        .await
        .unwrap());
    let p = progress().await;
    assert_eq!(p.pump, None, "the pump is stopped");
    assert_eq!(p.released, 3);
    let canceled_at = p.canceled_at.expect("canceled_at set");
    assert!(
        (canceled_at - at).num_milliseconds().abs() <= 1,
        "{canceled_at} vs {at}"
    );
    // Idempotent: a second stop keeps the first time.
    store
        .stop_bulk(&pid, &message.id, at + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(progress().await.canceled_at, Some(canceled_at));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn transition_many_moves_all_or_none_with_the_counts() {
    use messaging_core::ports::BulkStore;
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let (message, recipients) = bulk_fixture(&pid, 40);
    store
        .create_bulk(&message, &recipients, None)
        .await
        .unwrap();
    let counts = || async {
        store
            .get_message_only(&pid, &message.id)
            .await
            .unwrap()
            .unwrap()
            .counts
    };

    // 30 canceled in one call; the message's counts follow.
    let read = all_recipients(&store, &pid, &message.id, None, 200).await;
    let cancel = Transition::Cancel { at: Utc::now() };
    assert!(store
        .transition_many(&read[..30], &cancel, Utc::now())
        .await
        .unwrap());
    let c = counts().await;
    assert_eq!((c.queued, c.canceled), (10, 30));
    let now = all_recipients(&store, &pid, &message.id, None, 200).await;
    assert!(now[..30]
        .iter()
        .all(|r| r.status == RecipientStatus::Canceled && r.version == 1));
    assert!(now[30..]
        .iter()
        .all(|r| r.status == RecipientStatus::Queued));

    // One of the next three changes after it was read: the whole call is refused.
    let stale = now[30..33].to_vec();
    store
        .transition(&stale[1], &Transition::Claim { at: Utc::now() }, Utc::now())
        .await
        .unwrap()
        .expect("claimed");
    assert!(!store
        .transition_many(&stale, &cancel, Utc::now())
        .await
        .unwrap());
    let after = all_recipients(&store, &pid, &message.id, None, 200).await;
    assert_eq!(after[30].status, RecipientStatus::Queued);
    assert_eq!(after[30].version, 0);
    assert_eq!(after[31].status, RecipientStatus::Sending);
    assert_eq!(after[32].status, RecipientStatus::Queued);
    assert_eq!(after[32].version, 0);
    let c = counts().await;
    assert_eq!(
        (c.queued, c.sending, c.canceled),
        (9, 1, 30),
        "only the claim moved the counts"
    );

    // A transition that does not move one of them forward is refused as a whole.
    assert!(!store
        .transition_many(&[after[30].clone(), after[0].clone()], &cancel, Utc::now())
        .await
        .unwrap());
    assert_eq!(counts().await, c);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bulk_status_changes_only_from_the_expected_one_and_sending_bulks_follow() {
    use messaging_core::ports::BulkStore;
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    let (message, recipients) = bulk_fixture(&pid, 2);
    store
        .create_bulk(&message, &recipients, None)
        .await
        .unwrap();
    let (other, other_recipients) = bulk_fixture(&pid, 1);
    store
        .create_bulk(&other, &other_recipients, None)
        .await
        .unwrap();
    let sending_ids = || async {
        let mut ids: Vec<String> = store
            .sending_bulks(&pid)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![message.id.clone(), other.id.clone()];
    both.sort();
    let listed = cloud_tests::poll(Duration::from_secs(10), || async {
        let ids = sending_ids().await;
        (ids == both).then_some(ids)
    })
    .await;
    assert!(listed.is_some(), "both listed: {:?}", sending_ids().await);

    assert!(!store
        .set_bulk_status(
            &pid,
            &message.id,
            BulkStatus::Scheduled,
            BulkStatus::Completed,
            None
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .get_message_only(&pid, &message.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "sending"
    );
    assert!(store
        .set_bulk_status(
            &pid,
            &message.id,
            BulkStatus::Sending,
            BulkStatus::Completed,
            None
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .get_message_only(&pid, &message.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "completed"
    );
    assert!(
        !store
            .set_bulk_status(
                &pid,
                &message.id,
                BulkStatus::Sending,
                BulkStatus::Completed,
                None
            )
            .await
            .unwrap(),
        "no longer sending"
    );
    let only_other = cloud_tests::poll(Duration::from_secs(10), || async {
        let ids = sending_ids().await;
        (ids == [other.id.clone()]).then_some(ids)
    })
    .await;
    assert!(
        only_other.is_some(),
        "a completed bulk is not listed: {:?}",
        sending_ids().await
    );
    // An unknown bulk is refused.
    assert!(!store
        .set_bulk_status(
            &pid,
            "no-such-bulk",
            BulkStatus::Sending,
            BulkStatus::Completed,
            None
        )
        .await
        .unwrap());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn get_patients_reads_the_existing_ones_in_batches() {
    use messaging_core::domain::patient::Patient;
    use messaging_core::ports::{BulkStore, PracticeStore};
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let pid = t.practice.practice_id.clone();
    // 150 ids asked for; every third does not exist.
    let ids: Vec<String> = (0..150).map(|i| format!("gp-{i:03}")).collect();
    let mut expected = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 2 {
            continue;
        }
        let p = Patient {
            patient_id: id.clone(),
            first_name: format!("Pat{i}"),
            last_name: None,
            phone: random_phone(),
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient(&pid, &p).await.unwrap();
        expected.push(p);
    }
    let found = store.get_patients(&pid, &ids).await.unwrap();
    assert_eq!(found.len(), 100);
    let mut found_ids: Vec<&str> = found.iter().map(|p| p.patient_id.as_str()).collect();
    found_ids.sort();
    let expected_ids: Vec<&str> = expected.iter().map(|p| p.patient_id.as_str()).collect();
    assert_eq!(found_ids, expected_ids);
    for p in &expected {
        let got = found.iter().find(|f| f.patient_id == p.patient_id).unwrap();
        assert_eq!((&got.first_name, &got.phone), (&p.first_name, &p.phone));
    }
    // Another practice's patients are not found.
    let other = local.new_practice().await;
    assert!(store
        .get_patients(&other.practice.practice_id, &ids)
        .await
        .unwrap()
        .is_empty());
}

/// The event queue adapter: attempts go on the queue with their delay, and
/// beyond the queue's 15 minutes through a one-time schedule that puts the
/// same job on the same queue (here a private queue, scheduled 5 s ahead).
#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn event_queue_delays_attempts_and_schedules_late_ones_onto_itself() {
    use messaging_adapters::scheduler::{EventBridgeScheduler, SchedulerConfig};
    use messaging_adapters::sqs::SqsEventQueue;
    use messaging_core::domain::events::DeliveryJob;
    use messaging_core::ports::EventQueue;

    let local = Endpoints::load();
    let aws = local.aws().await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let url = client
        .create_queue()
        .queue_name(format!(
            "event-queue-test-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let scheduler = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(&aws),
        SchedulerConfig {
            group: format!("{}-sends", local.stack_name),
            queue_arn: arn.clone(),
            role_arn: "arn:aws:iam::000000000000:role/scheduler".into(),
            dead_letter_arn: arn,
        },
    );
    let queue = SqsEventQueue::new(client.clone(), &url, Some(scheduler));
    let job = |attempt: u32| DeliveryJob {
        practice_id: "p".into(),
        event_id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        endpoint_id: "e".into(),
        attempt,
        round: 1,
    };
    let (now_job, delayed_job, scheduled_job) = (job(1), job(2), job(3));
    queue
        .enqueue(&[(now_job.clone(), 0), (delayed_job.clone(), 2)])
        .await
        .unwrap();
    queue
        .enqueue_at(
            &scheduled_job,
            chrono::Utc::now() + chrono::Duration::seconds(5),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(DeliveryJob, Duration)>::new()));
    let all = cloud_tests::poll(Duration::from_secs(40), || {
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
                let job: DeliveryJob = serde_json::from_str(m.body().unwrap()).unwrap();
                seen.lock().unwrap().push((job, started.elapsed()));
                client
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            let n = seen.lock().unwrap().len();
            (n == 3).then_some(())
        }
    })
    .await;
    client.delete_queue().queue_url(&url).send().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(all.is_some(), "received {seen:?}");
    let when = |j: &DeliveryJob| seen.iter().find(|(s, _)| s == j).map(|(_, t)| *t).unwrap();
    assert!(
        when(&delayed_job) >= Duration::from_millis(1500),
        "the delay held it back"
    );
    assert!(
        when(&scheduled_job) >= Duration::from_secs(4),
        "the schedule fired at its time"
    );
    assert!(when(&now_job) < when(&scheduled_job));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_rotated_carrier_password_is_read_again_when_the_carrier_refuses_it() {
    use messaging_adapters::secrets::Password;
    let local = Endpoints::load();
    let sm = aws_sdk_secretsmanager::Client::new(&local.aws().await);
    let name = format!("test/carrier-{}", uuid::Uuid::new_v4().simple());
    let created = sm
        .create_secret()
        .name(&name)
        .secret_string("an-old-password")
        .send()
        .await
        .expect("create secret");
    let arn = created.arn().expect("an ARN").to_string();
    let password = Password::from_secrets_manager(sm.clone(), &arn)
        .await
        .expect("read at start")
        .with_refresh_spacing(Duration::ZERO);
    assert_eq!(password.current().await.expose(), "an-old-password");
    let carrier = Bandwidth::new(BandwidthConfig {
        api_url: format!("{}/api/v2", local.carrier_url),
        account_id: "9900000".into(),
        application_id: "local-application".into(),
        username: "sim-user".into(),
        password: password.clone(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    // Unchanged secret: the 401 stands, and nothing was taken.
    let to = random_phone();
    assert!(matches!(
        carrier.send(&outbound(to.as_str())).await,
        CarrierOutcome::Rejected { status: 401, .. }
    ));
    // Rotated to the right one: the refused send is repeated once with it.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string("sim-password")
        .send()
        .await
        .expect("rotate");
    let to = random_phone();
    assert!(matches!(
        carrier.send(&outbound(to.as_str())).await,
        CarrierOutcome::Accepted { .. }
    ));
    assert_eq!(password.current().await.expose(), "sim-password");
    // Taken once (the refused attempt never got past the credentials).
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
    assert_eq!(local.sent_attempts(to.as_str()).await, 1);
}
