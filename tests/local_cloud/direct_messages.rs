//! End to end on the deployed local stack: HTTP API → Lambda → DynamoDB →
//! SQS → dispatcher → carrier simulator → callback → webhook → DynamoDB.

use std::time::Duration;

use cloud_tests::{phone_ending, random_phone, Endpoints};
use serde_json::{json, Value};

const DELIVERY: Duration = Duration::from_secs(30);

fn status_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["status"] == s
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn direct_message_to_a_number_is_delivered_and_tracked() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    // National format in, E.164 out.
    let national = format!(
        "({}) {}-{}",
        &to.as_str()[2..5],
        &to.as_str()[5..8],
        &to.as_str()[8..]
    );
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": national, "text": "Your crown is ready €5"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["type"], "direct_message");
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["from"], t.practice.channels.sms_main.as_str());
    assert_eq!(r.body["recipients"][0]["to"], to.as_str());
    assert_eq!(r.body["encoding"], "GSM-7");
    assert_eq!(r.body["segments"], 1);
    assert_eq!(r.body["target_count"], 1);

    let id = r.body["id"].as_str().unwrap().to_string();
    let m = t
        .api
        .wait_for_message(&id, DELIVERY, status_is("delivered"))
        .await;
    let rcpt = &m["recipients"][0];
    assert!(rcpt["carrier_message_id"].is_string());
    assert!(rcpt["sent_at"].is_string() && rcpt["delivered_at"].is_string());
    assert_eq!(m["counts"]["delivered"], 1);

    let at_carrier = local.carrier_messages(to.as_str()).await;
    assert_eq!(at_carrier.len(), 1, "sent exactly once: {at_carrier:?}");
    let sent = &at_carrier[0];
    assert_eq!(sent["to"], json!([to.as_str()]));
    assert_eq!(sent["from"], t.practice.channels.sms_main.as_str());
    assert_eq!(sent["text"], "Your crown is ready €5");
    assert_eq!(sent["id"], rcpt["carrier_message_id"]);
    assert!(sent["tag"].as_str().unwrap().contains(&id));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn patient_message_renders_merge_fields_and_counts_ucs2_segments() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    let p = t
        .api
        .put(
            "/v1/patients/p-1",
            &json!({"first_name": "Ana", "last_name": "Diaz", "phone": phone.as_str(), "birth_date": "1990-04-02"}),
        )
        .await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    assert_eq!(p.body["sms_opted_out"], false);

    let text = "Hi {first_name} 😀, {practice_name} will see you soon";
    let r = t
        .api
        .post("/v1/messages", &json!({"patient_id": "p-1", "text": text}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["text"], "Hi Ana 😀, Test Dental will see you soon");
    assert_eq!(r.body["encoding"], "UCS-2");
    assert_eq!(r.body["recipients"][0]["patient_id"], "p-1");
    let id = r.body["id"].as_str().unwrap();
    t.api
        .wait_for_message(id, DELIVERY, status_is("delivered"))
        .await;
    let sent = local.carrier_messages(phone.as_str()).await;
    assert_eq!(sent[0]["text"], "Hi Ana 😀, Test Dental will see you soon");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn carrier_failure_is_explained_in_the_offices_words() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = phone_ending(4720);
    let id = t
        .api
        .send(&json!({"to": to.as_str(), "text": "Reminder"}))
        .await;
    let m = t
        .api
        .wait_for_message(&id, DELIVERY, status_is("failed"))
        .await;
    let error = &m["recipients"][0]["error"];
    assert_eq!(error["code"], "4720");
    assert_eq!(error["carrier"], "bandwidth");
    assert_eq!(
        error["title"],
        "Carrier rejected as invalid destination address"
    );
    assert_eq!(error["permanent"], true);
    assert!(error["resolution"].as_str().unwrap().len() > 20);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn carrier_500_is_retried_and_sent_once() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    local.carrier_fault(to.as_str(), "http_500", 1).await;
    let id = t
        .api
        .send(&json!({"to": to.as_str(), "text": "Retry me"}))
        .await;
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(60), status_is("delivered"))
        .await;
    assert_eq!(m["recipients"][0]["error"], Value::Null);
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_send_the_carrier_took_but_never_answered_is_not_resent() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    // Accepted, then the connection dropped or hung: the delivery report
    // settles it, and the carrier gets the text exactly once.
    for mode in ["accept_then_timeout", "cut_after_accept"] {
        let to = random_phone();
        local.carrier_fault(to.as_str(), mode, 1).await;
        let id = t
            .api
            .send(&json!({"to": to.as_str(), "text": "Slow carrier"}))
            .await;
        t.api
            .wait_for_message(&id, Duration::from_secs(90), status_is("delivered"))
            .await;
        assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1, "{mode}");
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn an_unanswered_send_with_no_report_fails_with_advice_and_is_not_resent() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    local
        .carrier_fault(to.as_str(), "cut_before_accept", 1)
        .await;
    let id = t
        .api
        .send(&json!({"to": to.as_str(), "text": "Lost answer"}))
        .await;
    // The stack waits SendConfirmWaitSeconds (45 s here) for a report.
    let m = t
        .api
        .wait_for_message(&id, Duration::from_secs(120), status_is("failed"))
        .await;
    let error = &m["recipients"][0]["error"];
    assert_eq!(error["code"], "send_interrupted", "{m}");
    assert!(error["resolution"]
        .as_str()
        .unwrap()
        .contains("Check with the patient"));
    assert!(local.carrier_messages(to.as_str()).await.is_empty());
    assert_eq!(local.sent_attempts(to.as_str()).await, 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn carrier_refusing_the_request_fails_the_recipient_without_retry() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    local.carrier_fault(to.as_str(), "http_400", 5).await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": to.as_str(), "text": "Refused"}),
        )
        .await;
    let m = t
        .api
        .wait_for_message(
            r.body["id"].as_str().unwrap(),
            DELIVERY,
            status_is("failed"),
        )
        .await;
    assert_eq!(m["recipients"][0]["error"]["code"], "http_400");
    assert_eq!(m["recipients"][0]["error"]["permanent"], true);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn replayed_idempotency_key_returns_the_first_answer_and_sends_once() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    let body = json!({"to": to.as_str(), "text": "Only once"});
    let send = |b: Vec<u8>, key: &'static str| {
        let api = t.api.clone();
        async move {
            api.call("POST", "/v1/messages", Some(b), &[("Idempotency-Key", key)])
                .await
        }
    };
    let first = send(body.to_string().into_bytes(), "order-1").await;
    assert_eq!(first.status, 202);
    // Same JSON value, other key order and spacing.
    let reordered = format!(
        "{{ \"text\" : \"Only once\", \"to\" : \"{}\" }}",
        to.as_str()
    );
    let again = send(reordered.into_bytes(), "order-1").await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body, first.body, "the first answer is replayed");

    let other = send(
        json!({"to": to.as_str(), "text": "Something else"})
            .to_string()
            .into_bytes(),
        "order-1",
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (409, "idempotency_key_reused")
    );

    t.api
        .wait_for_message(
            first.body["id"].as_str().unwrap(),
            DELIVERY,
            status_is("delivered"),
        )
        .await;
    assert_eq!(local.carrier_messages(to.as_str()).await.len(), 1);

    // A refused request is not remembered: the client may fix it and reuse the key.
    let bad = send(
        json!({"to": "12", "text": "x"}).to_string().into_bytes(),
        "order-2",
    )
    .await;
    assert_eq!(bad.status, 422);
    let fixed = send(
        json!({"to": random_phone().as_str(), "text": "x"})
            .to_string()
            .into_bytes(),
        "order-2",
    )
    .await;
    assert_eq!(fixed.status, 202);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let store = local.store().await;
    let raw = |b: &str| {
        let api = t.api.clone();
        let b = b.to_string();
        async move {
            api.call("POST", "/v1/messages", Some(b.into_bytes()), &[])
                .await
        }
    };
    let cases: Vec<(cloud_tests::Reply, u16, &str, &str)> = vec![
        (raw("{\"to\": ").await, 400, "invalid_json", ""),
        (raw("[]").await, 400, "invalid_json", ""),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "x", "colour": "red"}),
                )
                .await,
            400,
            "unknown_field",
            "colour",
        ),
        (
            t.api
                .post("/v1/messages", &json!({"to": "+1415555014", "text": "x"}))
                .await,
            422,
            "invalid_phone",
            "to",
        ),
        (
            t.api
                .post("/v1/messages", &json!({"to": "555-0142", "text": "x"}))
                .await,
            422,
            "invalid_phone",
            "to",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "   "}),
                )
                .await,
            422,
            "invalid_text",
            "text",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "x".repeat(1601)}),
                )
                .await,
            422,
            "invalid_text",
            "text",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "x", "channel": "sms_alt"}),
                )
                .await,
            422,
            "channel_unavailable",
            "channel",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "x", "channel": "fax"}),
                )
                .await,
            422,
            "invalid_field",
            "channel",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "Hi {nickname}"}),
                )
                .await,
            422,
            "unknown_merge_field",
            "text",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"to": "+14155550142", "text": "Hi {first_name}"}),
                )
                .await,
            422,
            "missing_merge_data",
            "first_name",
        ),
        (
            t.api.post("/v1/messages", &json!({"text": "x"})).await,
            422,
            "invalid_field",
            "patient_id",
        ),
        (
            t.api
                .post(
                    "/v1/messages",
                    &json!({"patient_id": "nobody", "text": "x"}),
                )
                .await,
            404,
            "patient_not_found",
            "patient_id",
        ),
        (
            t.api
                .post("/v1/messages", &json!({"to": 4155550142u64, "text": "x"}))
                .await,
            422,
            "invalid_field",
            "to",
        ),
        (
            raw(&format!(
                "{{\"to\": \"+14155550142\", \"text\": \"{}\"}}",
                "x".repeat(300 * 1024)
            ))
            .await,
            413,
            "payload_too_large",
            "",
        ),
    ];
    for (i, (reply, status, code, field)) in cases.iter().enumerate() {
        assert_eq!(
            (reply.status, reply.code()),
            (*status, *code),
            "case {i}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
        if !field.is_empty() {
            assert_eq!(reply.field(), *field, "case {i}");
        }
    }
    use messaging_core::ports::MessageStore;
    // Nothing was stored for this practice: no message item exists at all.
    let none = store
        .get_message(&t.practice.practice_id, "anything")
        .await
        .unwrap();
    assert!(none.is_none());
    let count = count_items(&local, &t.practice.practice_id, "MSG#").await;
    assert_eq!(count, 0, "a rejected request stores nothing");
}

async fn count_items(local: &Endpoints, practice_id: &str, prefix: &str) -> usize {
    let client = aws_sdk_dynamodb::Client::new(&local.aws().await);
    let out = client
        .query()
        .table_name(&local.table_name)
        .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PRACTICE#{practice_id}")),
        )
        .expression_attribute_values(
            ":sk",
            aws_sdk_dynamodb::types::AttributeValue::S(prefix.into()),
        )
        .send()
        .await
        .unwrap();
    out.items().len()
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn missing_or_wrong_api_key_is_401_and_other_practices_are_invisible() {
    let local = Endpoints::load();
    let a = local.new_practice().await;
    let b = local.new_practice().await;
    let anonymous = cloud_tests::Api::new(&local.api_url, "");
    let wrong = cloud_tests::Api::new(&local.api_url, "pmk_not_a_key");
    for api in [&anonymous, &wrong] {
        let r = api
            .post("/v1/messages", &json!({"to": "+14155550142", "text": "x"}))
            .await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{:?}", r.body);
        assert_eq!(api.get("/v1/settings").await.status, 401);
    }
    let r = a
        .api
        .post(
            "/v1/messages",
            &json!({"to": random_phone().as_str(), "text": "private"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap();
    let seen_by_b = b.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(
        (seen_by_b.status, seen_by_b.code()),
        (404, "message_not_found")
    );
    assert_eq!(a.api.get("/v1/messages/no-such-id").await.status, 404);
    // Ids are checked by shape before any read: a prefix of every id, and a
    // recipient's key spelled into the path, name no message.
    for path in [
        "/v1/messages/0".to_string(),
        format!("/v1/messages/{id}%23R%2300001"),
        format!("/v1/bulk-messages/{id}%23R%2300001"),
        format!("/v1/messages/{}", id.to_uppercase()),
    ] {
        let r = a.api.get(&path).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "message_not_found"),
            "{path}: {:?}",
            r.body
        );
    }
    assert_eq!(a.api.delete("/v1/messages/0").await.status, 404);

    a.api
        .put(
            "/v1/patients/shared-id",
            &json!({"first_name": "A", "phone": random_phone().as_str()}),
        )
        .await;
    assert_eq!(b.api.get("/v1/patients/shared-id").await.status, 404);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn settings_and_patients_follow_the_contract() {
    let local = Endpoints::load();
    let demo = cloud_tests::Api::new(&local.api_url, &local.api_key);
    let s = demo.get("/v1/settings").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["practice_id"], local.practice_id);
    for field in [
        "name",
        "timezone",
        "channels",
        "hourly_cap",
        "cap_window_seconds",
        "max_bulk_recipients",
        "quiet_hours",
    ] {
        assert!(
            s.body.get(field).is_some(),
            "settings lack {field}: {:?}",
            s.body
        );
    }
    assert!(s.body["channels"]["sms_main"]
        .as_str()
        .unwrap()
        .starts_with("+1"));

    let t = local.new_practice().await;
    let bad = t
        .api
        .put(
            "/v1/patients/p-2",
            &json!({"first_name": "Bo", "phone": "not a phone"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code(), bad.field()),
        (422, "invalid_phone", "phone")
    );
    assert_eq!(
        t.api.get("/v1/patients/p-2").await.status,
        404,
        "a rejected PUT stores nothing"
    );
    let unknown = t
        .api
        .put(
            "/v1/patients/p-2",
            &json!({"first_name": "Bo", "phone": "4155550142", "age": 3}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code(), unknown.field()),
        (400, "unknown_field", "age")
    );
    let ok = t
        .api
        .put(
            "/v1/patients/p-2",
            &json!({"first_name": "Bo", "phone": "415-555-0142"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let got = t.api.get("/v1/patients/p-2").await;
    assert_eq!(got.body["phone"], "+14155550142");
    assert_eq!(got.body["last_name"], Value::Null);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn message_text_longer_than_a_segment_reports_segments() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": random_phone().as_str(), "text": "a".repeat(161)}),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        (r.body["encoding"].as_str(), r.body["segments"].as_u64()),
        (Some("GSM-7"), Some(2))
    );
}
