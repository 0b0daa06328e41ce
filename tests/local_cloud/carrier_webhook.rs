//! The deployed carrier webhook: authentication, forward-only statuses,
//! callbacks for messages we do not know. Bodies come from `events/`, the
//! same files `sam local invoke -e` and `cargo lambda invoke` use.

use cloud_tests::Endpoints;
use messaging_core::domain::message::{RecipientStatus, SendJob};
use messaging_core::ports::MessageStore;
use serde_json::{json, Value};

/// The callback body of a sample API Gateway event in `events/carrier-webhook/`,
/// re-aimed at one of our recipients (its id, tag and numbers).
async fn callback_for(local: &Endpoints, sample: &str, carrier_id: &str, job: &SendJob) -> Vec<u8> {
    let r = local
        .store()
        .await
        .get_recipient(job)
        .await
        .unwrap()
        .unwrap();
    let mut body: Value =
        serde_json::from_slice(&callback_body(sample, carrier_id, &job.to_tag())).unwrap();
    body[0]["to"] = json!(r.to.as_str());
    body[0]["message"]["to"] = json!([r.to.as_str()]);
    body[0]["message"]["from"] = json!(r.from.as_str());
    body[0]["message"]["owner"] = json!(r.from.as_str());
    body.to_string().into_bytes()
}

/// The callback body of a sample API Gateway event in `events/carrier-webhook/`,
/// with another carrier id and tag.
fn callback_body(sample: &str, carrier_id: &str, tag: &str) -> Vec<u8> {
    let path = format!(
        "{}/../events/carrier-webhook/{sample}",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json");
    let mut body: Value =
        serde_json::from_str(event["body"].as_str().expect("body")).expect("callback json");
    body[0]["message"]["id"] = json!(carrier_id);
    body[0]["message"]["tag"] = json!(tag);
    body.to_string().into_bytes()
}

async fn post_callback(local: &Endpoints, body: Vec<u8>, credentials: Option<(&str, &str)>) -> u16 {
    let mut req = cloud_tests::http()
        .post(format!("{}/v1/webhooks/bandwidth", local.api_url))
        .header("content-type", "application/json")
        .body(body);
    if let Some((u, p)) = credentials {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.expect("webhook").status().as_u16()
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn webhook_requires_credentials_and_only_moves_statuses_forward() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Sent)
        .await;
    let carrier_id = format!("carrier-{}", job.message_id);
    let delivered_body = callback_for(&local, "message-delivered.json", &carrier_id, &job).await;
    let delivered = || delivered_body.clone();
    let status = || async { store.get_recipient(&job).await.unwrap().unwrap().status };

    assert_eq!(post_callback(&local, delivered(), None).await, 401);
    assert_eq!(
        post_callback(&local, delivered(), Some((&local.webhook.user, "wrong"))).await,
        401
    );
    assert_eq!(
        status().await,
        RecipientStatus::Sent,
        "nothing recorded without credentials"
    );

    let creds = Some((local.webhook.user.as_str(), local.webhook.password.as_str()));
    let someone_else =
        callback_for(&local, "message-delivered.json", "not-our-carrier-id", &job).await;
    assert_eq!(post_callback(&local, someone_else, creds).await, 200);
    assert_eq!(
        status().await,
        RecipientStatus::Sent,
        "an unknown carrier id changes nothing"
    );
    let untagged = callback_body("message-delivered.json", &carrier_id, "no-such/tag/here");
    assert_eq!(post_callback(&local, untagged, creds).await, 200);

    assert_eq!(post_callback(&local, delivered(), creds).await, 200);
    assert_eq!(status().await, RecipientStatus::Delivered);
    // Duplicate and late, out-of-order callbacks never move it back.
    assert_eq!(post_callback(&local, delivered(), creds).await, 200);
    let failed = callback_for(&local, "message-failed.json", &carrier_id, &job).await;
    assert_eq!(post_callback(&local, failed, creds).await, 200);
    let r = store.get_recipient(&job).await.unwrap().unwrap();
    assert_eq!(r.status, RecipientStatus::Delivered);
    assert!(r.error.is_none());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn failure_callback_records_the_catalog_entry() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Sent)
        .await;
    let carrier_id = format!("carrier-{}", job.message_id);
    let creds = Some((local.webhook.user.as_str(), local.webhook.password.as_str()));
    // Not believed: another application's event, or numbers that are not
    // the tagged recipient's (answered 2xx, nothing recorded).
    let genuine: Value = serde_json::from_slice(
        &callback_for(&local, "message-failed.json", &carrier_id, &job).await,
    )
    .unwrap();
    let mut other_app = genuine.clone();
    other_app[0]["message"]["applicationId"] = json!("someone-elses-application");
    let mut no_app = genuine.clone();
    no_app[0]["message"]
        .as_object_mut()
        .unwrap()
        .remove("applicationId");
    let mut other_number = genuine.clone();
    other_number[0]["to"] = json!("+14155550199");
    other_number[0]["message"]["to"] = json!(["+14155550199"]);
    let mut other_sender = genuine.clone();
    other_sender[0]["message"]["from"] = json!("+14155550177");
    for forged in [other_app, no_app, other_number, other_sender] {
        assert_eq!(
            post_callback(&local, forged.to_string().into_bytes(), creds).await,
            200
        );
        let r = store.get_recipient(&job).await.unwrap().unwrap();
        assert_eq!(r.status, RecipientStatus::Sent, "{forged}");
    }
    let body = genuine.to_string().into_bytes();
    assert_eq!(post_callback(&local, body, creds).await, 200);
    let r = store.get_recipient(&job).await.unwrap().unwrap();
    assert_eq!(r.status, RecipientStatus::Failed);
    let e = r.error.unwrap();
    assert_eq!(e.code, "4720");
    assert_eq!(e.title, "Carrier rejected as invalid destination address");
}
