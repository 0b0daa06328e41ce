//! The second carrier end to end: practices on AWS End User Messaging SMS,
//! played by the carrier simulator (its JSON API, and its events and
//! inbound texts published to the stack's SNS topic, then queue, then the
//! carrier-events function). The carrier-independent acceptance once more
//! on AWS: sending and tracking with AWS's explained failures, a scheduled
//! text, a bulk under the cap, STOP/HELP/START and a conversation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cloud_tests::{phone_ending, poll, random_phone, Endpoints, TestPractice};
use serde_json::{json, Value};

async fn aws_practice(local: &Endpoints) -> TestPractice {
    local.new_aws_practice_with(|_| {}).await
}

/// Waits for the thread with `phone` to satisfy `done`.
async fn conversation(t: &TestPractice, phone: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/conversations?phone={}", phone.replace('+', "%2B"));
    poll(Duration::from_secs(30), || async {
        let r = t.api.get(&path).await;
        let item = r.body["items"].get(0).cloned()?;
        done(&item).then_some(item)
    })
    .await
    .unwrap_or_else(|| panic!("the conversation with {phone} did not reach the expected state"))
}

/// The texts the carrier received for `to` with `text`, once there are `n`.
async fn texts_to(local: &Endpoints, to: &str, n: usize) -> Vec<Value> {
    poll(Duration::from_secs(30), || async {
        let got = local.carrier_messages(to).await;
        (got.len() >= n).then_some(got)
    })
    .await
    .unwrap_or_else(|| panic!("{to} did not get {n} texts"))
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn texts_go_through_aws_and_its_failures_are_explained_in_its_words() {
    let local = Endpoints::load();
    let t = aws_practice(&local).await;
    let to = random_phone().to_string();
    let id = t
        .api
        .send(&json!({"to": to, "text": "Your crown is ready."}))
        .await;
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(30), |m| m["status"] == "delivered")
        .await;
    let r = &m["recipients"][0];
    let sent = local.carrier_messages(&to).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["carrier"], "aws",
        "sent through AWS's API: {sent:?}"
    );
    assert_eq!(r["carrier_message_id"], sent[0]["id"]);
    assert_eq!(sent[0]["from"], t.practice.channels.sms_main.to_string());

    // 4720's counterpart: AWS's TEXT_INVALID, explained, the number marked.
    let invalid = phone_ending(4720).to_string();
    let id = t.api.send(&json!({"to": invalid, "text": "Hello"})).await;
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(30), |m| m["status"] == "failed")
        .await;
    let e = &m["recipients"][0]["error"];
    assert_eq!(
        (e["code"].as_str(), e["carrier"].as_str()),
        (Some("TEXT_INVALID"), Some("aws")),
        "{e}"
    );
    assert_eq!(
        e["title"],
        "Carrier rejected as invalid destination address"
    );
    assert_eq!(e["permanent"], true);

    // 4775's counterpart: AWS refuses at once (its opt-out list); the number
    // is opted out here too, so the next text is refused by the API.
    let opted_out = phone_ending(4775).to_string();
    let id = t.api.send(&json!({"to": opted_out, "text": "Hello"})).await;
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(30), |m| m["status"] == "failed")
        .await;
    let e = &m["recipients"][0]["error"];
    assert_eq!(e["code"], "DESTINATION_PHONE_NUMBER_OPTED_OUT", "{e}");
    assert_eq!(e["carrier"], "aws");
    assert_eq!(local.carrier_messages(&opted_out).await.len(), 0);
    let again = t
        .api
        .post("/v1/messages", &json!({"to": opted_out, "text": "Hello?"}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (422, "recipient_opted_out"),
        "{:?}",
        again.body
    );

    // The tracking list and the catalog speak of both carriers.
    let listed = t.api.get("/v1/communications?type=direct_message").await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        listed.body
    );
    let codes = t.api.get("/v1/error-codes").await;
    let items = codes.body["items"].as_array().expect("items");
    assert!(items
        .iter()
        .any(|i| i["carrier"] == "aws" && i["code"] == "TEXT_INVALID"));
    assert!(items
        .iter()
        .any(|i| i["carrier"] == "bandwidth" && i["code"] == "4720"));
    assert_eq!(t.api.get("/v1/settings").await.body["carrier"], "aws");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn scheduled_and_bulk_texts_go_through_aws_under_the_cap() {
    let local = Endpoints::load();
    let t = local
        .new_aws_practice_with(|p| {
            p.hourly_cap = 2;
            p.cap_window_seconds = 10;
        })
        .await;
    // Scheduled: never early, then delivered.
    let to = random_phone().to_string();
    let send_at = Utc::now() + chrono::Duration::seconds(20);
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": to, "text": "See you soon", "send_at": send_at.to_rfc3339()}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (202, Some("scheduled")),
        "{:?}",
        r.body
    );
    let id = r.body["id"].as_str().unwrap().to_string();

    // Bulk of four at two per 10 s.
    let mut numbers = Vec::new();
    for i in 0..4 {
        let phone = random_phone().to_string();
        let put = t
            .api
            .put(
                &format!("/v1/patients/ap-{i}"),
                &json!({"first_name": format!("Pat{i}"), "phone": phone, "birth_date": "1990-04-02"}),
            )
            .await;
        assert_eq!(put.status, 200);
        numbers.push(phone);
    }
    let bulk = t
        .api
        .post(
            "/v1/bulk-messages",
            &json!({"patient_ids": ["ap-0", "ap-1", "ap-2", "ap-3"], "text": "Hi {first_name}, we are closed Friday.", "acknowledge_bulk_limit": true}),
        )
        .await;
    assert_eq!(bulk.status, 202, "{:?}", bulk.body);
    let bulk_id = bulk.body["id"].as_str().unwrap().to_string();
    let done = poll(Duration::from_secs(90), || async {
        let b = t.api.get(&format!("/v1/bulk-messages/{bulk_id}")).await;
        (b.body["status"] == "completed").then_some(b.body)
    })
    .await
    .expect("the bulk completes");
    assert_eq!(done["counts"]["delivered"], 4, "{done}");
    let mut arrivals: Vec<DateTime<Utc>> = Vec::new();
    for n in &numbers {
        for m in local.carrier_messages(n).await {
            assert_eq!(m["carrier"], "aws");
            arrivals.push(m["received_at"].as_str().unwrap().parse().unwrap());
        }
    }
    arrivals.sort();
    assert_eq!(arrivals.len(), 4);
    // No 10 s window holds more than the cap of two.
    assert!(
        arrivals[2] - arrivals[0] >= chrono::Duration::seconds(10),
        "{arrivals:?}"
    );
    assert!(
        arrivals[3] - arrivals[1] >= chrono::Duration::seconds(10),
        "{arrivals:?}"
    );

    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(90), |m| m["status"] == "delivered")
        .await;
    let sent = local.carrier_messages(&to).await;
    let received: DateTime<Utc> = sent[0]["received_at"].as_str().unwrap().parse().unwrap();
    assert!(received >= send_at, "sent early: {received} < {send_at}");
    assert_eq!(m["recipients"][0]["status"], "delivered");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn stop_help_start_and_a_conversation_through_aws_behave_as_with_bandwidth() {
    let local = Endpoints::load();
    let t = aws_practice(&local).await;
    let practice_number = t.practice.channels.sms_main.to_string();
    let patient = random_phone().to_string();

    // A question: a new conversation, unread, awaiting a reply.
    local
        .patient_texts(
            &patient,
            &practice_number,
            "Can I come at 3 instead?",
            Value::Null,
        )
        .await;
    let c = conversation(&t, &patient, |c| c["unread_count"] == 1).await;
    assert_eq!(c["awaiting_reply"], true);
    let conversation_id = c["id"].as_str().unwrap().to_string();
    let reply = t
        .api
        .post(
            &format!("/v1/conversations/{conversation_id}/messages"),
            &json!({"text": "Yes, 3 works."}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let reply_id = reply.body["id"].as_str().unwrap();
    t.api
        .wait_for_message(reply_id, Duration::from_secs(30), |m| {
            m["status"] == "delivered"
        })
        .await;
    conversation(&t, &patient, |c| c["awaiting_reply"] == false).await;

    // STOP: opted out, confirmed once, through AWS.
    local
        .patient_texts(&patient, &practice_number, "STOP", Value::Null)
        .await;
    conversation(&t, &patient, |c| c["sms_opted_out"] == true).await;
    let sent = texts_to(&local, &patient, 2).await;
    assert!(
        sent[1]["text"].as_str().unwrap().contains("START"),
        "{sent:?}"
    );
    assert!(sent.iter().all(|m| m["carrier"] == "aws"));
    let refused = t
        .api
        .post("/v1/messages", &json!({"to": patient, "text": "Hi"}))
        .await;
    assert_eq!(refused.code(), "recipient_opted_out");

    // HELP is still answered; START opts back in and is confirmed.
    local
        .patient_texts(&patient, &practice_number, "HELP", Value::Null)
        .await;
    texts_to(&local, &patient, 3).await;
    local
        .patient_texts(&patient, &practice_number, "START", Value::Null)
        .await;
    conversation(&t, &patient, |c| c["sms_opted_out"] == false).await;
    let sent = texts_to(&local, &patient, 4).await;
    assert!(
        sent[3]["text"].as_str().unwrap().contains("STOP"),
        "{sent:?}"
    );

    let thread = t
        .api
        .get(&format!(
            "/v1/conversations/{conversation_id}/messages?limit=50"
        ))
        .await;
    let mut keywords: Vec<&str> = thread.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["keyword"].as_str())
        .collect();
    // Texts sent within one second may share a time (ordered then by id).
    keywords.sort_unstable();
    assert_eq!(keywords, ["help", "opt_in", "opt_out"], "{:?}", thread.body);

    // AWS receives no MMS: a picture is refused, never silently dropped.
    let mms = cloud_tests::http()
        .post(format!("{}/_sim/inbound", local.carrier_url))
        .json(&json!({"from": patient, "to": practice_number, "text": "",
                      "media": [{"content_type": "image/png", "base64": "iVBORw0KGgo="}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(mms.status().as_u16(), 422);
}
