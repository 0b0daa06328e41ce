//! Two-way texting end to end: a patient texts the practice through the
//! carrier simulator, the office reads the Inbox and Patient Chat, replies,
//! and the patient answers again — through the deployed stack.

use std::time::Duration;

use cloud_tests::{poll, random_phone, Endpoints, TestPractice};
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

fn conversation_id(phone: &str) -> String {
    format!("c{}", phone.trim_start_matches('+'))
}

async fn thread(t: &TestPractice, id: &str) -> Vec<Value> {
    let r = t.api.get(&format!("/v1/conversations/{id}/messages")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

async fn conversation(t: &TestPractice, id: &str) -> Value {
    let r = t.api.get(&format!("/v1/conversations/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn patient_texts_office_reads_and_replies_patient_answers_then_stops() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let office = t.practice.channels.sms_main.to_string();
    let patient = random_phone().to_string();
    let r = t
        .api
        .put(
            "/v1/patients/p-1",
            &json!({"first_name": "Ana", "last_name": "Diaz", "phone": patient}),
        )
        .await;
    assert_eq!(r.status, 200);
    let id = conversation_id(&patient);

    // The patient writes first: the Inbox shows it, unread and awaiting a reply.
    local
        .patient_texts(&patient, &office, "Can I come at 3 instead?", Value::Null)
        .await;
    let c = conversation(&t, &id).await;
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["phone"], patient.as_str());
    assert_eq!(
        c["patients"],
        json!([{"patient_id": "p-1", "first_name": "Ana", "last_name": "Diaz"}])
    );
    assert_eq!(
        (c["status"].as_str(), c["unread_count"].as_u64()),
        (Some("open"), Some(1))
    );
    assert_eq!(c["awaiting_reply"], true);
    assert_eq!(c["last_message"]["direction"], "inbound");
    assert_eq!(c["last_message"]["text"], "Can I come at 3 instead?");
    let inbox = t.api.get("/v1/conversations?unread=true").await;
    assert_eq!(inbox.status, 200);
    assert_eq!(inbox.body["items"][0]["id"], id.as_str());
    let by_phone = t
        .api
        .get(&format!(
            "/v1/conversations?phone={}",
            patient.replace('+', "%2B")
        ))
        .await;
    assert_eq!(by_phone.body["items"].as_array().map(Vec::len), Some(1));
    let entries = thread(&t, &id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0]["direction"].as_str(),
            entries[0]["keyword"].as_str()
        ),
        (Some("inbound"), None)
    );
    assert_eq!(entries[0]["opt_out_intent"], false);

    // The office replies with a merge field from the one linked patient.
    let reply = t
        .api
        .post(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"text": "Hi {first_name}, 3 works."}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let message_id = reply.body["id"].as_str().unwrap().to_string();
    let delivered = poll(WITHIN, || async {
        let entries = thread(&t, &id).await;
        let out = entries
            .iter()
            .find(|e| e["direction"] == "outbound")?
            .clone();
        (out["status"] == "delivered").then_some(out)
    })
    .await
    .expect("the reply shows in the thread as delivered");
    assert_eq!(delivered["text"], "Hi Ana, 3 works.");
    assert_eq!(delivered["message_id"], message_id.as_str());
    assert_eq!(delivered["auto_reply"], false);
    let received = local.carrier_messages(&patient).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["text"], "Hi Ana, 3 works.");
    assert_eq!(conversation(&t, &id).await["awaiting_reply"], false);

    // Read, closed and assigned; a new text reopens it, unread again.
    let r = t
        .api
        .patch(
            &format!("/v1/conversations/{id}"),
            &json!({"read": true, "status": "closed", "assignee": "maria"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (
            r.body["unread_count"].as_u64(),
            r.body["status"].as_str(),
            r.body["assignee"].as_str()
        ),
        (Some(0), Some("closed"), Some("maria"))
    );
    let closed = t
        .api
        .get("/v1/conversations?status=closed&assignee=maria")
        .await;
    assert_eq!(closed.body["items"][0]["id"], id.as_str());
    local
        .patient_texts(&patient, &office, "Thanks! See you then.", Value::Null)
        .await;
    let c = conversation(&t, &id).await;
    assert_eq!(
        (
            c["status"].as_str(),
            c["unread_count"].as_u64(),
            c["awaiting_reply"].as_bool()
        ),
        (Some("open"), Some(1), Some(true))
    );
    assert_eq!(
        thread(&t, &id).await[0]["text"],
        "Thanks! See you then.",
        "newest first"
    );

    // STOP in the middle: shown as a keyword, confirmed once, replies refused.
    local
        .patient_texts(&patient, &office, "STOP", Value::Null)
        .await;
    // (The confirmation may already be the newest entry.)
    let entries = thread(&t, &id).await;
    let stop = entries
        .iter()
        .find(|e| e["direction"] == "inbound" && e["text"] == "STOP");
    assert_eq!(stop.map(|e| e["keyword"].clone()), Some(json!("opt_out")));
    assert_eq!(conversation(&t, &id).await["sms_opted_out"], true);
    let confirmation = poll(WITHIN, || async {
        let received = local.carrier_messages(&patient).await;
        (received.len() == 2).then(|| received[1]["text"].as_str().unwrap_or_default().to_string())
    })
    .await
    .expect("an opt-out confirmation");
    assert!(
        confirmation.contains("Test Dental") && confirmation.contains("START"),
        "{confirmation}"
    );
    let refused = t
        .api
        .post(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"text": "Are you sure?"}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (422, "recipient_opted_out")
    );

    // Another practice cannot see or touch it.
    let other = local.new_practice().await;
    assert_eq!(
        other
            .api
            .get(&format!("/v1/conversations/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        other
            .api
            .get(&format!("/v1/conversations/{id}/messages"))
            .await
            .status,
        404
    );
    assert_eq!(
        other
            .api
            .patch(&format!("/v1/conversations/{id}"), &json!({"read": true}))
            .await
            .status,
        404
    );
    let listed = other.api.get("/v1/conversations").await;
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bad_requests_name_their_field_and_change_nothing() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let office = t.practice.channels.sms_main.to_string();
    let patient = random_phone().to_string();
    local
        .patient_texts(&patient, &office, "please stop texting me", Value::Null)
        .await;
    let id = conversation_id(&patient);
    let before = conversation(&t, &id).await;
    // A sentence asking to stop is flagged for staff, not a keyword.
    let entries = thread(&t, &id).await;
    assert_eq!(
        (
            entries[0]["opt_out_intent"].as_bool(),
            entries[0]["keyword"].as_str()
        ),
        (Some(true), None)
    );
    assert_eq!(before["sms_opted_out"], false);

    for path in [
        "/v1/conversations/c19999999999",
        "/v1/conversations/nonsense",
        "/v1/conversations/c14155550100%23x",
    ] {
        let r = t.api.get(path).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "conversation_not_found"),
            "{path}"
        );
    }
    let cases = [
        (json!({"colour": "red"}), 400, "unknown_field", "colour"),
        (
            json!({"sms_opted_out": false}),
            422,
            "invalid_field",
            "sms_opted_out",
        ),
        (
            json!({"status": "archived"}),
            422,
            "invalid_field",
            "status",
        ),
        (
            json!({"assignee": "x".repeat(101)}),
            422,
            "invalid_field",
            "assignee",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = t.api.patch(&format!("/v1/conversations/{id}"), &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{body}"
        );
    }
    let long = t
        .api
        .post(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"text": "x".repeat(1601)}),
        )
        .await;
    assert_eq!((long.status, long.code()), (422, "invalid_text"));
    let merge = t
        .api
        .post(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"text": "Hi {first_name}"}),
        )
        .await;
    assert_eq!(
        (merge.status, merge.code()),
        (422, "missing_merge_data"),
        "no patient has this number"
    );
    for query in ["unread=false", "status=maybe", "phone=123"] {
        let r = t.api.get(&format!("/v1/conversations?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {:?}", r.body);
    }
    assert_eq!(conversation(&t, &id).await, before, "nothing changed");
    assert_eq!(thread(&t, &id).await.len(), 1);
    assert!(
        local.carrier_messages(&patient).await.is_empty(),
        "nothing was sent"
    );

    // Staff may opt the number out (never in).
    let r = t
        .api
        .patch(
            &format!("/v1/conversations/{id}"),
            &json!({"sms_opted_out": true}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["sms_opted_out"].as_bool()),
        (200, Some(true))
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn after_hours_texts_get_the_practice_reply_once() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let closed_all_week = json!({"mon": null, "tue": null, "wed": null, "thu": null, "fri": null, "sat": null, "sun": null});
    let r = t
        .api
        .patch("/v1/settings", &json!({"auto_reply": {"enabled": true, "text": "{practice_name} is closed; we will answer in the morning.", "office_hours": closed_all_week}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["auto_reply"]["enabled"], true);
    assert_eq!(
        t.api.get("/v1/settings").await.body["auto_reply"],
        r.body["auto_reply"]
    );
    let read_only = t
        .api
        .patch("/v1/settings", &json!({"hourly_cap": 1000}))
        .await;
    assert_eq!(
        (read_only.status, read_only.code(), read_only.field()),
        (422, "read_only_field", "hourly_cap")
    );

    let office = t.practice.channels.sms_main.to_string();
    let patient = random_phone().to_string();
    local
        .patient_texts(&patient, &office, "Is my crown ready?", Value::Null)
        .await;
    local
        .patient_texts(&patient, &office, "Hello?", Value::Null)
        .await;
    let id = conversation_id(&patient);
    let auto = poll(WITHIN, || async {
        thread(&t, &id)
            .await
            .into_iter()
            .find(|e| e["auto_reply"] == true && e["status"] == "delivered")
    })
    .await
    .expect("the after-hours reply in the thread");
    assert_eq!(
        auto["text"],
        "Test Dental is closed; we will answer in the morning."
    );
    let received = local.carrier_messages(&patient).await;
    assert_eq!(received.len(), 1, "once, not once per text");
    let c = conversation(&t, &id).await;
    assert_eq!(
        (c["unread_count"].as_u64(), c["awaiting_reply"].as_bool()),
        (Some(2), Some(true))
    );
}
