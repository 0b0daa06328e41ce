//! Jobs the send queue gives up on: the dispatcher sets them aside from the
//! dead-letter queue, the office sees why, the repair requeues what is safe.

use std::time::Duration;

use cloud_tests::{random_phone, Endpoints};
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::dead_letters::requeue_parked;
use messaging_core::domain::message::{RecipientStatus, SendJob};
use serde_json::{json, Value};

/// Puts `job` on the send queue's dead-letter queue, as SQS's redrive would.
async fn dead_letter(local: &Endpoints, job: &SendJob) {
    aws_sdk_sqs::Client::new(&local.aws().await)
        .send_message()
        .queue_url(&local.dead_letter_queue_url)
        .message_body(serde_json::to_string(job).unwrap())
        .send()
        .await
        .expect("put on the dead-letter queue");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_dead_lettered_send_is_shown_failed_and_the_repair_sends_it_once() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let id = t
        .api
        .send(&json!({"to": to.as_str(), "text": "Set aside", "send_at": at.to_rfc3339()}))
        .await;
    let job = SendJob {
        practice_id: t.practice.practice_id.clone(),
        message_id: id.clone(),
        recipient_id: "00001".into(),
    };
    dead_letter(&local, &job).await;

    // The office sees it failed, in words it can act on.
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(60), |m| m["status"] == "failed")
        .await;
    let error = &m["recipients"][0]["error"];
    assert_eq!(error["code"], "job_dead_lettered", "{m}");
    assert_eq!(error["title"], "Set aside after repeated failures");
    assert!(error["resolution"]
        .as_str()
        .unwrap()
        .contains("requeue-dead-letters"));
    assert!(local.carrier_messages(to.as_str()).await.is_empty());

    // The repair (what `practice-admin requeue-dead-letters` runs) puts it
    // back; a second repair finds nothing to do.
    let store = local.store().await;
    let queue = SqsSendQueue::new(
        aws_sdk_sqs::Client::new(&local.aws().await),
        &local.send_queue_url,
    );
    let report = requeue_parked(&store, &queue, chrono::Utc::now())
        .await
        .unwrap();
    assert!(report.requeued.contains(&job.to_string()), "{report:?}");
    let again = requeue_parked(&store, &queue, chrono::Utc::now())
        .await
        .unwrap();
    assert!(!again.requeued.contains(&job.to_string()), "{again:?}");
    // Sent by a dispatcher: the send queue runs at most two, and other
    // tests' sends to a carrier that hangs or drops the connection keep
    // them busy; beside those tests the delivery came after more than 60 s.
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(150), |m| {
            m["status"] == "delivered"
        })
        .await;
    assert_eq!(m["recipients"][0]["error"], Value::Null);
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_dead_lettered_send_caught_mid_send_is_interrupted_never_requeued() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Sending)
        .await;
    dead_letter(&local, &job).await;
    let m = t
        .api
        .wait_for_message(&job.message_id, Duration::from_secs(60), |m| {
            m["status"] == "failed"
        })
        .await;
    assert_eq!(
        m["recipients"][0]["error"]["code"], "send_interrupted",
        "{m}"
    );
    let store = local.store().await;
    let queue = SqsSendQueue::new(
        aws_sdk_sqs::Client::new(&local.aws().await),
        &local.send_queue_url,
    );
    let report = requeue_parked(&store, &queue, chrono::Utc::now())
        .await
        .unwrap();
    assert!(!report.requeued.contains(&job.to_string()), "{report:?}");
}
