//! End to end on the deployed local stack: the error catalog, the tracking
//! list, STOP/START/HELP through the carrier simulator, Quick Messages sent
//! from a template, the alternate channel, undeliverable numbers.

use std::time::Duration;

use cloud_tests::{phone_ending, poll, random_phone, Api, Endpoints};
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::domain::message::RecipientStatus;
use messaging_core::ports::{MessageStore, SendQueue};
use serde_json::{json, Value};

const DELIVERY: Duration = Duration::from_secs(30);

async fn inbound(local: &Endpoints, from: &str, to: &str, text: &str) -> Value {
    let r = cloud_tests::http()
        .post(format!("{}/_sim/inbound", local.carrier_url))
        .json(&json!({"from": from, "to": to, "text": text}))
        .send()
        .await
        .expect("simulator");
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["callback_status"], 200, "webhook answered {body:?}");
    body
}

fn is_final(m: &Value) -> bool {
    ["delivered", "failed"].contains(&m["status"].as_str().unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn error_catalog_lists_the_seed_codes_with_their_titles() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t.api.get("/v1/error-codes").await;
    assert_eq!(r.status, 200);
    let items = r.body["items"].as_array().unwrap();
    let title = |code: &str| {
        items
            .iter()
            .find(|i| i["code"] == code)
            .map(|i| i["title"].as_str().unwrap().to_string())
    };
    for (code, expected) in [
        ("4720", "Carrier rejected as invalid destination address"),
        ("4452", "Invalid Application ID"),
        ("4795", "TFN Not Verified"),
        ("4470", "Rejected as Spam (Future)"),
        ("4406", "Unallocated to Number"),
        ("4405", "Unallocated from Number"),
        ("4700", "Invalid Service Type"),
    ] {
        assert_eq!(title(code).as_deref(), Some(expected), "{code}");
    }
    assert!(title("4775").is_some());
    for item in items {
        for field in ["description", "resolution"] {
            assert!(
                item[field].as_str().is_some_and(|s| !s.is_empty()),
                "{item}"
            );
        }
        assert!(item["permanent"].is_boolean() && item["billable"].is_boolean());
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn tracking_list_pages_newest_first_and_filters_exactly() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let mut ids = Vec::new();
    for to in [
        random_phone(),
        phone_ending(4720),
        random_phone(),
        phone_ending(4406),
        random_phone(),
    ] {
        ids.push(
            t.api
                .send(&json!({"to": to.as_str(), "text": format!("note for {to}")}))
                .await,
        );
    }
    for id in &ids {
        t.api.wait_for_message(id, DELIVERY, is_final).await;
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/v1/communications?limit=2".to_string();
    loop {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/communications?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut listed: Vec<String> = seen
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let times: Vec<&str> = seen
        .iter()
        .map(|i| i["sent_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "every message exactly once");
    let first = &seen[0];
    for field in [
        "type",
        "status",
        "content",
        "channel",
        "target_count",
        "counts",
    ] {
        assert!(!first[field].is_null(), "item lacks {field}: {first}");
    }
    assert_eq!(first["target_count"], 1);

    let failed = t
        .api
        .get("/v1/communications?status=failed&type=direct_message")
        .await;
    assert_eq!(failed.body["items"].as_array().unwrap().len(), 2);
    assert!(failed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "failed" && i["counts"]["failed"] == 1));
    let delivered = t.api.get("/v1/communications?status=delivered").await;
    assert_eq!(delivered.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        t.api.get("/v1/communications?type=bulk_message").await.body["items"],
        json!([])
    );

    // Inclusive bounds: from = to = one message's time selects exactly the
    // messages sent at that millisecond (two may share it).
    let at = seen[2]["sent_at"].as_str().unwrap().to_string();
    let one = t
        .api
        .get(&format!("/v1/communications?sent_from={at}&sent_to={at}"))
        .await;
    let selected = one.body["items"].as_array().unwrap();
    let expected = seen.iter().filter(|i| i["sent_at"] == at.as_str()).count();
    assert_eq!(selected.len(), expected, "{:?}", one.body);
    assert!(selected.iter().all(|i| i["sent_at"] == at.as_str()));
    assert!(selected.iter().any(|i| i["id"] == seen[2]["id"]));
    assert_eq!(one.body["items"][0]["id"], seen[2]["id"]);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("type=fax", "type"),
        ("sent_from=yesterday", "sent_from"),
    ] {
        let r = t.api.get(&format!("/v1/communications?{query}")).await;
        assert_eq!((r.status, r.field()), (422, field), "{query}: {:?}", r.body);
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn stop_opts_the_number_out_and_start_opts_it_back_in() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    let practice_number = t.practice.channels.sms_main.to_string();
    t.api
        .put(
            "/v1/patients/p-1",
            &json!({"first_name": "Ana", "phone": phone.as_str()}),
        )
        .await;

    inbound(&local, phone.as_str(), &practice_number, "  Stop ").await;
    assert_eq!(
        t.api.get("/v1/patients/p-1").await.body["sms_opted_out"],
        true
    );
    for body in [
        json!({"patient_id": "p-1", "text": "x"}),
        json!({"to": phone.as_str(), "text": "x"}),
    ] {
        let r = t.api.post("/v1/messages", &body).await;
        assert_eq!((r.status, r.code()), (422, "recipient_opted_out"));
    }
    inbound(&local, phone.as_str(), &practice_number, "UNSTOP").await;
    assert_eq!(
        t.api.get("/v1/patients/p-1").await.body["sms_opted_out"],
        false
    );
    t.api
        .send(&json!({"patient_id": "p-1", "text": "Welcome back"}))
        .await;

    // Another practice's STOP does not touch this one.
    let other = local.new_practice().await;
    inbound(
        &local,
        phone.as_str(),
        other.practice.channels.sms_main.as_str(),
        "STOP",
    )
    .await;
    assert_eq!(
        t.api.get("/v1/patients/p-1").await.body["sms_opted_out"],
        false
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn queued_send_stops_when_the_number_texts_stop() {
    let local = Endpoints::load();
    let store = local.store().await;
    let t = local.new_practice().await;
    let job = local
        .stored_recipient(&t.practice.practice_id, RecipientStatus::Queued)
        .await;
    let to = store.get_recipient(&job).await.unwrap().unwrap().to;
    inbound(
        &local,
        to.as_str(),
        t.practice.channels.sms_main.as_str(),
        "STOP",
    )
    .await;
    let queue = SqsSendQueue::new(
        aws_sdk_sqs::Client::new(&local.aws().await),
        &local.send_queue_url,
    );
    queue.enqueue(std::slice::from_ref(&job)).await.unwrap();
    let skipped = poll(DELIVERY, || async {
        let r = store.get_recipient(&job).await.unwrap().unwrap();
        (r.status == RecipientStatus::Skipped).then_some(r)
    })
    .await
    .expect("skipped by the dispatcher");
    assert!(skipped.skip_reason.unwrap().contains("STOP"));
    // Only the confirmation of the opt-out reached it.
    assert!(local
        .texts_besides_opt_out_confirmation(to.as_str(), &t.practice.name)
        .await
        .is_empty());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn help_is_answered_through_the_normal_send_path() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    inbound(
        &local,
        phone.as_str(),
        t.practice.channels.sms_main.as_str(),
        "help",
    )
    .await;
    let replies = poll(DELIVERY, || async {
        let m = local.carrier_messages(phone.as_str()).await;
        (!m.is_empty()).then_some(m)
    })
    .await
    .expect("a HELP reply");
    assert_eq!(replies.len(), 1);
    let text = replies[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Test Dental:"), "{text}");
    assert!(text.contains("STOP"));
    assert_eq!(replies[0]["from"], t.practice.channels.sms_main.as_str());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn quick_message_send_stores_the_rendered_text_and_template() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    t.api
        .put(
            "/v1/patients/p-9",
            &json!({"first_name": "Ana", "phone": phone.as_str()}),
        )
        .await;
    let tpl = t
        .api
        .post("/v1/templates", &json!({"name": "Running late", "body": "Hi {first_name}, {practice_name} is running 10 minutes late."}))
        .await;
    assert_eq!(tpl.status, 201, "{:?}", tpl.body);
    let template_id = tpl.body["id"].as_str().unwrap();
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"patient_id": "p-9", "template_id": template_id}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(
        r.body["text"],
        "Hi Ana, Test Dental is running 10 minutes late."
    );
    assert_eq!(r.body["template_id"], template_id);
    t.api
        .wait_for_message(r.body["id"].as_str().unwrap(), DELIVERY, |m| {
            m["status"] == "delivered"
        })
        .await;
    assert_eq!(
        local.carrier_messages(phone.as_str()).await[0]["text"],
        "Hi Ana, Test Dental is running 10 minutes late."
    );

    let missing = t
        .api
        .post(
            "/v1/messages",
            &json!({"patient_id": "p-9", "template_id": "nope"}),
        )
        .await;
    assert_eq!(
        (missing.status, missing.code(), missing.field()),
        (404, "template_not_found", "template_id")
    );
    let both = t
        .api
        .post(
            "/v1/messages",
            &json!({"patient_id": "p-9", "template_id": template_id, "text": "x"}),
        )
        .await;
    assert_eq!(both.status, 422);
    let needs_name = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": random_phone().as_str(), "template_id": template_id}),
        )
        .await;
    assert_eq!(
        (needs_name.status, needs_name.code()),
        (422, "missing_merge_data")
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn alt_channel_sends_from_the_alt_number() {
    let local = Endpoints::load();
    let demo = Api::new(&local.api_url, &local.api_key);
    let settings = demo.get("/v1/settings").await.body;
    let alt = settings["channels"]["sms_alt"]
        .as_str()
        .expect("demo practice has an alt number")
        .to_string();
    let to = random_phone();
    let r = demo
        .post(
            "/v1/messages",
            &json!({"to": to.as_str(), "text": "From the alt line", "channel": "sms_alt"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["from"].as_str()),
        (202, Some(alt.as_str()))
    );
    demo.wait_for_message(r.body["id"].as_str().unwrap(), DELIVERY, |m| {
        m["status"] == "delivered"
    })
    .await;
    assert_eq!(
        local.carrier_messages(to.as_str()).await[0]["from"],
        alt.as_str()
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn number_that_cannot_receive_texts_is_marked_until_it_changes() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let landline = phone_ending(4700);
    t.api
        .put(
            "/v1/patients/p-5",
            &json!({"first_name": "Bo", "phone": landline.as_str()}),
        )
        .await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"patient_id": "p-5", "text": "Hello"}),
        )
        .await;
    let m = t
        .api
        .wait_for_message(r.body["id"].as_str().unwrap(), DELIVERY, |m| {
            m["status"] == "failed"
        })
        .await;
    assert_eq!(m["recipients"][0]["error"]["title"], "Invalid Service Type");
    let mark = poll(DELIVERY, || async {
        let p = t.api.get("/v1/patients/p-5").await.body;
        (!p["sms_undeliverable"].is_null()).then_some(p["sms_undeliverable"].clone())
    })
    .await
    .expect("number marked undeliverable");
    assert_eq!(mark["code"], "4700");
    let same = t
        .api
        .put(
            "/v1/patients/p-5",
            &json!({"first_name": "Bo", "last_name": "Li", "phone": landline.as_str()}),
        )
        .await;
    assert_eq!(
        same.body["sms_undeliverable"]["code"], "4700",
        "kept while the number is the same"
    );
    let fixed = t
        .api
        .put(
            "/v1/patients/p-5",
            &json!({"first_name": "Bo", "phone": random_phone().as_str()}),
        )
        .await;
    assert_eq!(
        fixed.body["sms_undeliverable"],
        Value::Null,
        "cleared when the office updates the number"
    );
}
