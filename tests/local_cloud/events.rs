//! Events for the office's software, end to end: endpoints created through
//! the API, events recorded with the changes that cause them, fanned out by
//! the table's stream and delivered by the event-delivery function to a
//! receiver in this process — signatures checked by the published
//! `standardwebhooks` library, not by our code.

use std::time::{Duration, Instant};

use cloud_tests::receiver::{verify_independently, Receiver, Script};
use cloud_tests::{phone_ending, poll, random_phone, Endpoints, TestPractice};
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

async fn endpoint(t: &TestPractice, url: &str, types: Value) -> Value {
    let r = t
        .api
        .post(
            "/v1/event-endpoints",
            &json!({"url": url, "event_types": types}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

/// The practice's events of `kind`, newest first.
async fn events(t: &TestPractice, kind: &str) -> Vec<Value> {
    let r = t.api.get(&format!("/v1/events?type={kind}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until one of the practice's events of `kind` satisfies `done`.
async fn wait_for_event(t: &TestPractice, kind: &str, done: impl Fn(&Value) -> bool) -> Value {
    let found = poll(WITHIN, || async {
        events(t, kind).await.into_iter().find(|e| done(e))
    })
    .await;
    match found {
        Some(e) => e,
        None => panic!(
            "no {kind} event reached the expected state: {:?}",
            events(t, kind).await
        ),
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_patient_reply_reaches_the_office_signed_as_the_standard_says() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    let created = endpoint(
        &t,
        &receiver.url("ok", Script::Always(204)),
        json!(["message.received"]),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["status"], "enabled");
    // Shown once: the list and the endpoint never show it again.
    let listed = t.api.get("/v1/event-endpoints").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("secret").is_none());

    let patient = random_phone().to_string();
    let office = t.practice.channels.sms_main.to_string();
    let texted = Instant::now();
    local
        .patient_texts(&patient, &office, "Running 10 minutes late", Value::Null)
        .await;
    let got = receiver.wait_for("ok", 1, WITHIN).await;
    println!(
        "first attempt reached the receiver {:?} after the text was recorded",
        got[0].at - texted
    );
    let body = got[0].json();
    assert_eq!(body["type"], "message.received");
    assert_eq!(body["data"]["phone"], patient.as_str());
    assert_eq!(body["data"]["text"], "Running 10 minutes late");
    assert_eq!(
        body["data"]["conversation_id"],
        format!("c{}", patient.trim_start_matches('+'))
    );
    assert!(got[0].header("webhook-id").starts_with("evt_"));
    assert_eq!(got[0].header("content-type"), "application/json");
    assert_eq!(verify_independently(&[(&secret, &got[0])]), vec![Ok(())]);
    // A tampered body or another secret does not verify.
    let mut tampered = got[0].clone();
    tampered.body = tampered.body.replace("late", "early");
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let verdicts = verify_independently(&[(&secret, &tampered), (other, &got[0])]);
    assert!(verdicts.iter().all(Result::is_err), "{verdicts:?}");

    let listed = wait_for_event(&t, "message.received", |e| e["delivery"] == "delivered").await;
    assert_eq!(listed["id"], got[0].header("webhook-id"));
    assert_eq!(
        (listed["attempts"].as_u64(), listed["last_status"].as_u64()),
        (Some(1), Some(204))
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_receiver_that_fails_twice_gets_the_event_three_times_with_one_id() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    endpoint(
        &t,
        &receiver.url("flaky", Script::Then(vec![500, 503])),
        json!(["message.received"]),
    )
    .await;
    local
        .patient_texts(
            &random_phone().to_string(),
            t.practice.channels.sms_main.as_str(),
            "Is parking free?",
            Value::Null,
        )
        .await;
    let event = wait_for_event(&t, "message.received", |e| e["delivery"] == "delivered").await;
    assert_eq!(event["attempts"], 3);
    let got = receiver.received("flaky");
    assert_eq!(got.len(), 3, "three attempts and no other");
    assert!(got
        .iter()
        .all(|r| r.header("webhook-id") == event["id"].as_str().unwrap()));
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every retry carries the same body"
    );
    // The retries waited (1 s, then 2 s on the local cloud's schedule).
    assert!(got[1].at - got[0].at >= Duration::from_millis(900));
    assert!(got[2].at - got[1].at >= Duration::from_millis(1900));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn an_endpoint_that_hangs_delays_neither_another_endpoint_nor_a_text() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    endpoint(
        &t,
        &receiver.url("hang", Script::Hang(Duration::from_secs(25))),
        json!(["message.received"]),
    )
    .await;
    endpoint(
        &t,
        &receiver.url("fast", Script::Always(200)),
        json!(["message.received"]),
    )
    .await;
    local
        .patient_texts(
            &random_phone().to_string(),
            t.practice.channels.sms_main.as_str(),
            "Hello?",
            Value::Null,
        )
        .await;
    let hung = receiver.wait_for("hang", 1, WITHIN).await;
    let fast = receiver.wait_for("fast", 1, WITHIN).await;
    // Both attempts started together: the fast one did not wait for the hang.
    let gap = if fast[0].at > hung[0].at {
        fast[0].at - hung[0].at
    } else {
        hung[0].at - fast[0].at
    };
    assert!(
        gap < Duration::from_secs(5),
        "the fast endpoint waited {gap:?}"
    );
    // While the hang lasts, a text goes out at once.
    let to = random_phone().to_string();
    let sent = Instant::now();
    t.api
        .send(&json!({"to": to, "text": "Your appointment is confirmed"}))
        .await;
    poll(WITHIN, || async {
        (!local.carrier_messages(&to).await.is_empty()).then_some(())
    })
    .await
    .expect("the text reached the carrier");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "the text took {:?}",
        sent.elapsed()
    );
    assert!(
        hung[0].at.elapsed() < Duration::from_secs(25),
        "measured while the endpoint still hung"
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_410_disables_the_endpoint_and_nothing_more_is_sent_to_it() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    let created = endpoint(&t, &receiver.url("gone", Script::Always(410)), Value::Null).await;
    let id = created["id"].as_str().unwrap();
    let office = t.practice.channels.sms_main.to_string();
    local
        .patient_texts(&random_phone().to_string(), &office, "First", Value::Null)
        .await;
    let e = poll(WITHIN, || async {
        let r = t.api.get(&format!("/v1/event-endpoints/{id}")).await;
        (r.body["status"] == "disabled").then_some(r.body)
    })
    .await
    .expect("the endpoint was disabled");
    assert!(e["disabled_reason"].as_str().unwrap().contains("410"));
    let failed = wait_for_event(&t, "message.received", |e| e["delivery"] == "failed").await;
    assert_eq!(
        (failed["attempts"].as_u64(), failed["last_status"].as_u64()),
        (Some(1), Some(410))
    );
    // A later event is not sent to it.
    local
        .patient_texts(&random_phone().to_string(), &office, "Second", Value::Null)
        .await;
    poll(WITHIN, || async {
        let all = events(&t, "message.received").await;
        (all.len() == 2 && all[0]["delivery"] == "none").then_some(())
    })
    .await
    .expect("the second event has no endpoint to go to");
    assert_eq!(receiver.received("gone").len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_rotated_secret_signs_beside_the_new_one_and_redelivery_keeps_the_id() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    let created = endpoint(&t, &receiver.url("rot", Script::Always(200)), Value::Null).await;
    let old = created["secret"].as_str().unwrap().to_string();
    let rotated = t
        .api
        .post(
            &format!(
                "/v1/event-endpoints/{}/rotate-secret",
                created["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    local
        .patient_texts(
            &random_phone().to_string(),
            t.practice.channels.sms_main.as_str(),
            "Thanks!",
            Value::Null,
        )
        .await;
    let got = receiver.wait_for("rot", 1, WITHIN).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert_eq!(
        verify_independently(&[(&old, &got[0]), (&new, &got[0])]),
        vec![Ok(()), Ok(())]
    );

    let event = wait_for_event(&t, "message.received", |e| e["delivery"] == "delivered").await;
    let id = event["id"].as_str().unwrap();
    let r = t
        .api
        .post(&format!("/v1/events/{id}/redeliver"), &json!({}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let again = receiver.wait_for("rot", 2, WITHIN).await;
    assert_eq!(again[1].header("webhook-id"), id);
    assert_eq!(again[1].body, again[0].body);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn outcomes_opt_outs_and_bulk_completion_become_events_with_their_explanation() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let receiver = Receiver::start().await;
    endpoint(&t, &receiver.url("all", Script::Always(200)), Value::Null).await;
    let good = random_phone().to_string();
    let bad = phone_ending(4720).to_string();
    for to in [&good, &bad] {
        t.api
            .send(&json!({"to": to, "text": "Reminder: cleaning tomorrow"}))
            .await;
    }
    let delivered = wait_for_event(&t, "message.delivered", |e| {
        e["data"]["phone"] == good.as_str()
    })
    .await;
    assert!(delivered["data"]["message_id"].is_string());
    let failed = wait_for_event(&t, "message.failed", |e| e["data"]["phone"] == bad.as_str()).await;
    assert_eq!(failed["data"]["error"]["code"], "4720");
    assert!(!failed["data"]["error"]["title"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(!failed["data"]["error"]["resolution"]
        .as_str()
        .unwrap()
        .is_empty());

    let office = t.practice.channels.sms_main.to_string();
    local
        .patient_texts(&good, &office, "STOP", Value::Null)
        .await;
    let out = wait_for_event(&t, "contact.opted_out", |_| true).await;
    assert_eq!(
        (
            out["data"]["phone"].as_str(),
            out["data"]["source"].as_str()
        ),
        (Some(good.as_str()), Some("sms"))
    );
    // A second STOP changes nothing and makes no second event.
    local
        .patient_texts(&good, &office, "STOP", Value::Null)
        .await;
    local
        .patient_texts(&good, &office, "START", Value::Null)
        .await;
    wait_for_event(&t, "contact.opted_in", |_| true).await;
    assert_eq!(events(&t, "contact.opted_out").await.len(), 1);

    for (id, phone) in [("p-1", random_phone()), ("p-2", random_phone())] {
        let r = t
            .api
            .put(
                &format!("/v1/patients/{id}"),
                &json!({"first_name": "Kim", "phone": phone.to_string()}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = t
        .api
        .post("/v1/bulk-messages", &json!({"patient_ids": ["p-1", "p-2"], "text": "We are closed Friday", "acknowledge_bulk_limit": true}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let bulk_id = r.body["id"].as_str().unwrap().to_string();
    let completed = wait_for_event(&t, "bulk.completed", |e| {
        e["data"]["bulk_id"] == bulk_id.as_str()
    })
    .await;
    assert_eq!(events(&t, "bulk.completed").await.len(), 1);
    // Every one of them reached the endpoint.
    let ids: Vec<String> = receiver
        .received("all")
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    for e in [&delivered, &failed, &out, &completed] {
        let id = e["id"].as_str().unwrap();
        poll(WITHIN, || async {
            receiver
                .received("all")
                .iter()
                .any(|r| r.header("webhook-id") == id)
                .then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{id} not delivered; got {ids:?}"));
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn another_practices_endpoints_and_events_are_invisible() {
    let local = Endpoints::load();
    let a = local.new_practice().await;
    let b = local.new_practice().await;
    let receiver = Receiver::start().await;
    let created = endpoint(&a, &receiver.url("a", Script::Always(200)), Value::Null).await;
    let endpoint_id = created["id"].as_str().unwrap();
    local
        .patient_texts(
            &random_phone().to_string(),
            a.practice.channels.sms_main.as_str(),
            "Hi",
            Value::Null,
        )
        .await;
    let event = wait_for_event(&a, "message.received", |_| true).await;
    let event_id = event["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v1/event-endpoints/{endpoint_id}")),
        ("DELETE", format!("/v1/event-endpoints/{endpoint_id}")),
        (
            "POST",
            format!("/v1/event-endpoints/{endpoint_id}/rotate-secret"),
        ),
        ("GET", format!("/v1/events/{event_id}")),
        ("POST", format!("/v1/events/{event_id}/redeliver")),
    ] {
        let r = match method {
            "GET" => b.api.get(&path).await,
            "DELETE" => b.api.delete(&path).await,
            _ => b.api.post(&path, &json!({})).await,
        };
        assert_eq!(r.status, 404, "{method} {path}: {:?}", r.body);
    }
    assert_eq!(
        b.api.get("/v1/event-endpoints").await.body["items"],
        json!([])
    );
    assert_eq!(b.api.get("/v1/events").await.body["items"], json!([]));
    // A's endpoint is intact.
    assert_eq!(
        a.api
            .get(&format!("/v1/event-endpoints/{endpoint_id}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn endpoints_that_could_reach_inside_are_refused_at_creation() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    for url in [
        "http://localhost:8080/hooks",
        "https://localhost/hooks",
        "https://ip6-localhost/hooks",
        "http://127.0.0.2:8080/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.8/",
        "https://192.168.1.20/",
        "https://172.16.0.1/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://[::ffff:169.254.169.254]/",
        "https://[::1]/",
        "ftp://files.example.com/",
        "http://pm.example.com/hooks",
        "https://user:pass@pm.example.com/",
        "not a url",
    ] {
        let r = t
            .api
            .post("/v1/event-endpoints", &json!({"url": url}))
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (422, "invalid_url", "url"),
            "{url}: {:?}",
            r.body
        );
    }
    let r = t
        .api
        .post(
            "/v1/event-endpoints",
            &json!({"url": "https://x.example/", "event_types": ["message.sent"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "invalid_event_type", "event_types[0]")
    );
    let r = t
        .api
        .post(
            "/v1/event-endpoints",
            &json!({"url": "https://x.example/", "secret": "mine"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "unknown_field"));
    assert_eq!(
        t.api.get("/v1/event-endpoints").await.body["items"],
        json!([]),
        "nothing stored"
    );
    // At most five.
    let receiver = Receiver::start().await;
    for i in 0..5 {
        endpoint(
            &t,
            &receiver.url(&format!("e{i}"), Script::Always(200)),
            Value::Null,
        )
        .await;
    }
    let r = t
        .api
        .post(
            "/v1/event-endpoints",
            &json!({"url": receiver.url("e5", Script::Always(200))}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "too_many_endpoints"));
    let first = t.api.get("/v1/event-endpoints").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        t.api
            .delete(&format!("/v1/event-endpoints/{first}"))
            .await
            .status,
        204
    );
    assert_eq!(
        t.api
            .delete(&format!("/v1/event-endpoints/{first}"))
            .await
            .status,
        404
    );
    endpoint(&t, &receiver.url("e6", Script::Always(200)), Value::Null).await;
}
