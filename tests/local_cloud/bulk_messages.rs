//! Bulk messages on the deployed local stack: waves under a small cap
//! (5 per 30 s), the number's pace, direct messages beside a bulk, cancel
//! and STOP mid-way, bad input, recipients skipped at acceptance and their
//! pages, idempotency, age audiences, scheduled bulks, bulk vs direct ids.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cloud_tests::{poll, random_phone, Endpoints, TestPractice};
use serde_json::{json, Value};

/// Syncs `n` patients with fresh numbers; returns their ids and numbers.
pub async fn patients(t: &TestPractice, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("bp-{i:03}");
        let phone = random_phone().to_string();
        let r = t
            .api
            .put(
                &format!("/v1/patients/{id}"),
                &json!({"first_name": format!("Pat{i}"), "phone": phone, "birth_date": "1990-04-02"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.push((id, phone));
    }
    out
}

/// When the carrier simulator received each text to these numbers.
async fn arrivals(local: &Endpoints, numbers: &[String]) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    for n in numbers {
        for m in local.carrier_messages(n).await {
            let t = m["received_at"].as_str().expect("received_at");
            times.push(t.parse().expect("time"));
        }
    }
    times.sort();
    times
}

fn fullest_window(times: &[DateTime<Utc>], window: chrono::Duration) -> usize {
    times
        .iter()
        .map(|a| {
            times
                .iter()
                .filter(|b| **b >= *a && **b < *a + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn wait_for_bulk(
    t: &TestPractice,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/bulk-messages/{id}");
    poll(within, || async {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        done(&r.body).then_some(r.body)
    })
    .await
    .unwrap_or_else(|| panic!("bulk {id} did not reach the expected state within {within:?}"))
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_bulk_goes_out_in_waves_under_the_cap_while_direct_messages_go_at_once() {
    let local = Endpoints::load();
    let t = local
        .new_practice_with(|p| {
            p.hourly_cap = 5;
            p.cap_window_seconds = 30;
        })
        .await;
    let people = patients(&t, 12).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let numbers: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let started = Utc::now();
    let r = t
        .api
        .post(
            "/v1/bulk-messages",
            &json!({"patient_ids": ids, "text": "Hi {first_name}, we are closed Friday.", "acknowledge_bulk_limit": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["type"], "bulk_message");
    assert_eq!(r.body["hourly_cap"], 5);
    assert_eq!(r.body["target_count"], 12);
    let estimate: DateTime<Utc> = r.body["estimated_completion_at"]
        .as_str()
        .expect("an estimate")
        .parse()
        .unwrap();
    // 12 at 5 per 30 s and 1 per second: two full windows, then 2 more.
    let expected = started + chrono::Duration::seconds(61);
    assert!(
        (estimate - expected).num_seconds().abs() <= 3,
        "{estimate} vs {expected}"
    );
    let id = r.body["id"].as_str().unwrap().to_string();

    // The first wave reaches the carrier, then the cap holds the rest.
    poll(Duration::from_secs(30), || async {
        (arrivals(&local, &numbers).await.len() >= 5).then_some(())
    })
    .await
    .expect("first wave");
    // A direct message now is not held behind the bulk.
    let direct_to = random_phone().to_string();
    let sent = Utc::now();
    let d = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": direct_to, "text": "Your crown is ready"}),
        )
        .await;
    assert_eq!(d.status, 202, "{:?}", d.body);
    t.api
        .wait_for_message(
            d.body["id"].as_str().unwrap(),
            Duration::from_secs(10),
            |m| m["status"] == "delivered",
        )
        .await;
    let direct_at: DateTime<Utc> = local.carrier_messages(&direct_to).await[0]["received_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        direct_at - sent < chrono::Duration::seconds(5),
        "direct message took {}",
        direct_at - sent
    );
    let mid = t.api.get(&format!("/v1/bulk-messages/{id}")).await.body;
    assert_eq!(mid["status"], "sending");

    let done = wait_for_bulk(&t, &id, Duration::from_secs(150), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(done["counts"]["delivered"], 12, "{done}");
    assert!(done["estimated_completion_at"].is_null());
    let times = arrivals(&local, &numbers).await;
    assert_eq!(times.len(), 12, "each patient got exactly one text");
    assert!(
        fullest_window(&times, chrono::Duration::seconds(30)) <= 5,
        "a 30 s window held more than 5: {times:?}"
    );
    // The dispatcher paces its requests 1 s apart; what is measured here is
    // their arrival at the simulator, which varies by the time each takes
    // to get there (claim, conversation write, HTTP) on a loaded machine.
    assert!(
        times
            .windows(2)
            .all(|w| w[1] - w[0] >= chrono::Duration::milliseconds(750)),
        "the number's pace of 1/s was exceeded: {times:?}"
    );
    // Done within ceil(12/5) = 3 windows plus 5 minutes.
    assert!(*times.last().unwrap() - started <= chrono::Duration::seconds(3 * 30 + 300));

    // Nothing of this bulk is in the dead-letter queue.
    let sqs = aws_sdk_sqs::Client::new(&local.aws().await);
    let dead = sqs
        .receive_message()
        .queue_url(&local.dead_letter_queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("read DLQ");
    assert!(
        dead.messages()
            .iter()
            .all(|m| !m.body().unwrap_or_default().contains(&id)),
        "bulk jobs in the DLQ"
    );
    // The tracking list shows it completed.
    let list = t
        .api
        .get("/v1/communications?type=bulk_message&status=completed")
        .await;
    assert_eq!(list.body["items"][0]["id"], id.as_str(), "{:?}", list.body);
}

/// A text from a patient's number to the practice, through the carrier simulator.
async fn inbound(local: &Endpoints, from: &str, to: &str, text: &str) {
    let r = cloud_tests::http()
        .post(format!("{}/_sim/inbound", local.carrier_url))
        .json(&json!({"from": from, "to": to, "text": text}))
        .send()
        .await
        .expect("simulator");
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["callback_status"], 200, "webhook answered {body:?}");
}

/// Syncs one patient.
async fn put_patient(t: &TestPractice, id: &str, body: Value) {
    let r = t.api.put(&format!("/v1/patients/{id}"), &body).await;
    assert_eq!(r.status, 200, "{id}: {:?}", r.body);
}

/// POSTs a bulk and expects it accepted; returns the resource.
async fn accept_bulk(t: &TestPractice, body: &Value) -> Value {
    let r = t.api.post("/v1/bulk-messages", body).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["type"], "bulk_message");
    assert!(r.body.get("recipients").is_none(), "{:?}", r.body);
    r.body
}

/// Every recipient of a bulk (`query` like `status=skipped`), following the
/// cursor `limit` at a time.
async fn recipients(t: &TestPractice, id: &str, query: &str, limit: u32) -> Vec<Value> {
    let base = format!("/v1/bulk-messages/{id}/recipients?limit={limit}&{query}");
    let mut out = Vec::new();
    let mut path = base.clone();
    for _ in 0..100 {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        let items = r.body["items"].as_array().expect("items");
        assert!(items.len() <= limit as usize, "{:?}", r.body);
        out.extend(items.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("{base}&cursor={c}"),
            None => {
                assert!(r.body["next_cursor"].is_null(), "{:?}", r.body);
                return out;
            }
        }
    }
    panic!("the cursor never ended");
}

/// Until `until`, checks every 250 ms that these numbers together have
/// received exactly `expected` texts, failing at once otherwise.
async fn no_more_texts(
    local: &Endpoints,
    numbers: &[String],
    expected: usize,
    until: std::time::Instant,
) {
    while std::time::Instant::now() < until {
        let got = arrivals(local, numbers).await.len();
        assert_eq!(got, expected, "texts arrived that should not have");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The bulk ids in the practice's tracking list.
async fn listed_bulks(t: &TestPractice) -> Vec<String> {
    let r = t.api.get("/v1/communications?type=bulk_message").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn cancel_mid_way_stops_the_rest_and_is_idempotent() {
    let local = Endpoints::load();
    let t = local
        .new_practice_with(|p| {
            p.hourly_cap = 3;
            p.cap_window_seconds = 12;
        })
        .await;
    let people = patients(&t, 8).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let numbers: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": ids, "text": "Hi {first_name}, the office is closed Monday.", "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["target_count"], 8);
    let id = bulk["id"].as_str().unwrap().to_string();
    let path = format!("/v1/bulk-messages/{id}");
    let accepted = std::time::Instant::now();

    // The first window's three reach the carrier; the cap holds the rest
    // until the window moves on, 12 s after the first.
    poll(Duration::from_secs(30), || async {
        (arrivals(&local, &numbers).await.len() >= 3).then_some(())
    })
    .await
    .expect("the first wave of three");
    let canceled = t.api.delete(&path).await;
    assert_eq!(canceled.status, 200, "{:?}", canceled.body);
    let counts = &canceled.body["counts"];
    assert_eq!(counts["canceled"], 5, "{:?}", canceled.body);
    assert_eq!(
        (counts["queued"].as_u64(), counts["scheduled"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(canceled.body["estimated_completion_at"].is_null());
    assert!(recipients(&t, &id, "status=queued", 200).await.is_empty());
    assert_eq!(arrivals(&local, &numbers).await.len(), 3);

    // The three sent are delivered; the bulk completes with the rest canceled.
    let settled = wait_for_bulk(&t, &id, Duration::from_secs(30), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(settled["counts"]["delivered"], 3, "{settled}");
    assert_eq!(settled["counts"]["canceled"], 5, "{settled}");

    let again = t.api.delete(&path).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["counts"], settled["counts"]);
    assert_eq!(again.body["status"], "completed");

    // Nothing more goes out, also once the cap's window has moved on
    // (the next wave would have been due 12 s after the first).
    no_more_texts(&local, &numbers, 3, accepted + Duration::from_secs(30)).await;
    let canceled = recipients(&t, &id, "status=canceled", 200).await;
    assert_eq!(canceled.len(), 5, "{canceled:?}");
    for r in &canceled {
        assert_eq!(r["status"], "canceled");
        assert!(
            r["sent_at"].is_null() && r["carrier_message_id"].is_null(),
            "{r}"
        );
        let to = r["to"].as_str().unwrap();
        assert!(numbers.iter().any(|n| n == to));
        assert!(
            local.carrier_messages(to).await.is_empty(),
            "{to} got a text"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn stop_mid_way_skips_that_number_and_the_rest_is_delivered() {
    let local = Endpoints::load();
    let t = local
        .new_practice_with(|p| {
            p.hourly_cap = 2;
            p.cap_window_seconds = 20;
        })
        .await;
    let people = patients(&t, 5).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": ids, "text": "Hi {first_name}, flu shots are in.", "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["counts"]["queued"], 5);
    let id = bulk["id"].as_str().unwrap().to_string();
    // The last patient, due in the third window, texts STOP now.
    let (stop_id, stop_number) = &people[4];
    inbound(
        &local,
        stop_number,
        t.practice.channels.sms_main.as_str(),
        "STOP",
    )
    .await;

    let done = wait_for_bulk(&t, &id, Duration::from_secs(90), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(done["counts"]["delivered"], 4, "{done}");
    assert_eq!(done["counts"]["skipped"], 1, "{done}");
    assert_eq!(done["target_count"], 5);
    assert!(
        local
            .texts_besides_opt_out_confirmation(stop_number, &t.practice.name)
            .await
            .is_empty(),
        "the number that texted STOP got a text besides the confirmation"
    );
    for (_, n) in &people[..4] {
        assert_eq!(local.carrier_messages(n).await.len(), 1, "{n}");
    }
    let skipped = recipients(&t, &id, "status=skipped", 50).await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["patient_id"], stop_id.as_str());
    assert_eq!(skipped[0]["to"], stop_number.as_str());
    assert!(
        skipped[0]["skip_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("opted_out")),
        "{skipped:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bad_bulk_requests_are_refused_by_field_and_store_nothing() {
    let local = Endpoints::load();
    let t = local.new_practice_with(|p| p.max_bulk_recipients = 3).await;
    // Four patients, one more than the limit, aged about 36 (born 1990).
    let people = patients(&t, 4).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let one = [ids[0]];
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"patient_ids": one, "text": "Hi"}),
            422,
            "bulk_acknowledgment_required",
            "acknowledge_bulk_limit",
        ),
        (
            json!({"patient_ids": one, "text": "Hi", "acknowledge_bulk_limit": false}),
            422,
            "bulk_acknowledgment_required",
            "acknowledge_bulk_limit",
        ),
        (
            json!({"patient_ids": one, "audience": {"min_age": 18}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "audience",
        ),
        (
            json!({"text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "patient_ids",
        ),
        (
            json!({"patient_ids": [], "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "patient_ids",
        ),
        (
            json!({"patient_ids": [ids[0], "nobody-1", "nobody-2"], "text": "Hi", "acknowledge_bulk_limit": true}),
            404,
            "unknown_patients",
            "patient_ids",
        ),
        (
            json!({"audience": {"min_age": -1}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "audience.min_age",
        ),
        (
            json!({"audience": {"max_age": -5}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "audience.max_age",
        ),
        (
            json!({"audience": {"min_age": 65, "max_age": 18}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "audience.min_age",
        ),
        (
            json!({"audience": {}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "invalid_field",
            "audience",
        ),
        (
            json!({"audience": {"min_age": 90}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "empty_audience",
            "audience",
        ),
        (
            json!({"patient_ids": ids, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "too_many_recipients",
            "patient_ids",
        ),
        (
            json!({"audience": {"min_age": 18}, "text": "Hi", "acknowledge_bulk_limit": true}),
            422,
            "too_many_recipients",
            "audience",
        ),
        (
            json!({"patient_ids": one, "text": "Hi", "acknowledge_bulk_limit": true, "priority": "high"}),
            400,
            "unknown_field",
            "",
        ),
    ];
    for (body, status, code, field) in &cases {
        let r = t.api.post("/v1/bulk-messages", body).await;
        assert_eq!(
            (r.status, r.code()),
            (*status, *code),
            "{body}: {:?}",
            r.body
        );
        if !field.is_empty() {
            assert_eq!(r.field(), *field, "{body}: {:?}", r.body);
        }
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        match *code {
            "unknown_patients" => assert!(
                message.contains("nobody-1")
                    && message.contains("nobody-2")
                    && !message.contains(ids[0]),
                "{message}"
            ),
            "too_many_recipients" => {
                assert!(message.contains("narrower age filter"), "{message}")
            }
            "unknown_field" => assert!(message.contains("priority"), "{message}"),
            _ => {}
        }
    }
    assert_eq!(
        listed_bulks(&t).await,
        Vec::<String>::new(),
        "nothing stored"
    );
    for (_, n) in &people {
        assert!(local.carrier_messages(n).await.is_empty(), "{n} got a text");
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn unsendable_patients_are_kept_as_skipped_last_and_recipients_page() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let practice_number = t.practice.channels.sms_main.to_string();
    let mut people = Vec::new();
    for (i, last) in ["Diaz", "Kim", "", "Ruiz", "Osei"].iter().enumerate() {
        let id = format!("sp-{i}");
        let phone = random_phone().to_string();
        let mut body = json!({"first_name": format!("Pat{i}"), "phone": phone});
        if !last.is_empty() {
            body["last_name"] = json!(last);
        }
        put_patient(&t, &id, body).await;
        people.push((id, phone));
    }
    // sp-1 opted out before the bulk; sp-2 has no last name.
    inbound(&local, &people[1].1, &practice_number, "STOP").await;
    let mut ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    ids.push("sp-3");
    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": ids, "text": "Dear {first_name} {last_name}, see you soon.", "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["target_count"], 5, "{bulk}");
    assert_eq!(bulk["counts"]["skipped"], 2, "{bulk}");
    assert_eq!(bulk["counts"]["queued"], 3, "{bulk}");
    let id = bulk["id"].as_str().unwrap().to_string();

    let all = recipients(&t, &id, "", 2).await;
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|r| {
            (
                r["recipient_id"].as_str().unwrap(),
                r["patient_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("00001", "sp-0"),
            ("00002", "sp-3"),
            ("00003", "sp-4"),
            ("00004", "sp-1"),
            ("00005", "sp-2"),
        ],
        "sendable in list order, skipped last"
    );
    for r in &all[..3] {
        assert!(
            r.get("skip_reason").is_none() || r["skip_reason"].is_null(),
            "{r}"
        );
    }

    let skipped = recipients(&t, &id, "status=skipped", 200).await;
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0]["patient_id"], "sp-1");
    assert_eq!(skipped[0]["to"], people[1].1.as_str());
    let reason = |r: &Value| r["skip_reason"].as_str().unwrap_or_default().to_string();
    assert!(reason(&skipped[0]).starts_with("opted_out:"), "{skipped:?}");
    assert_eq!(skipped[1]["patient_id"], "sp-2");
    assert!(
        reason(&skipped[1]).starts_with("missing_merge_data:"),
        "{skipped:?}"
    );
    assert!(skipped.iter().all(|r| r["status"] == "skipped"));

    // The three sendable ones get their own text, the skipped ones nothing.
    let done = wait_for_bulk(&t, &id, Duration::from_secs(60), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(
        (
            done["counts"]["delivered"].as_u64(),
            done["counts"]["skipped"].as_u64()
        ),
        (Some(3), Some(2)),
        "{done}"
    );
    for (i, last) in [(0, "Diaz"), (3, "Ruiz"), (4, "Osei")] {
        let got = local.carrier_messages(&people[i].1).await;
        assert_eq!(got.len(), 1, "sp-{i} is listed twice but texted once");
        assert_eq!(
            got[0]["text"],
            format!("Dear Pat{i} {last}, see you soon."),
            "{got:?}"
        );
    }
    for i in [1, 2] {
        assert!(
            local
                .texts_besides_opt_out_confirmation(&people[i].1, &t.practice.name)
                .await
                .is_empty(),
            "sp-{i}"
        );
    }

    for (query, code) in [
        ("status=lost", "invalid_field"),
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
    ] {
        let r = t
            .api
            .get(&format!("/v1/bulk-messages/{id}/recipients?{query}"))
            .await;
        assert_eq!((r.status, r.code()), (422, code), "{query}: {:?}", r.body);
        if code == "invalid_field" {
            assert_eq!(r.field(), "status");
        }
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_same_idempotency_key_answers_the_same_bulk() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let people = patients(&t, 2).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let body =
        json!({"patient_ids": ids, "text": "Hi {first_name}", "acknowledge_bulk_limit": true});
    let key = format!("bulk-{}", uuid::Uuid::new_v4().simple());
    let send = |body: Value| {
        let (api, key) = (t.api.clone(), key.clone());
        async move {
            api.call(
                "POST",
                "/v1/bulk-messages",
                Some(body.to_string().into_bytes()),
                &[("Idempotency-Key", key.as_str())],
            )
            .await
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let second = send(body.clone()).await;
    assert_eq!(second.status, 202, "{:?}", second.body);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body, first.body, "the first answer, replayed");
    let id = first.body["id"].as_str().unwrap().to_string();
    assert_eq!(listed_bulks(&t).await, std::slice::from_ref(&id));

    let mut other = body.clone();
    other["text"] = json!("Something else");
    let reused = send(other).await;
    assert_eq!(
        (reused.status, reused.code()),
        (409, "idempotency_key_reused"),
        "{:?}",
        reused.body
    );
    assert_eq!(listed_bulks(&t).await, std::slice::from_ref(&id));
    // Each patient gets the one text.
    wait_for_bulk(&t, &id, Duration::from_secs(60), |b| {
        b["status"] == "completed"
    })
    .await;
    for (_, n) in &people {
        assert_eq!(local.carrier_messages(n).await.len(), 1, "{n}");
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn an_age_audience_selects_patients_by_their_age_today() {
    use chrono::Datelike;
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let today = messaging_core::app::patients::practice_today(&t.practice, Utc::now());
    // Turning `years` today (29 February falls back to the 28th, when the
    // birthday has passed as well).
    let born = |years: i32| {
        let year = today.year() - years;
        today
            .with_year(year)
            .or_else(|| chrono::NaiveDate::from_ymd_opt(year, 2, 28))
            .unwrap()
            .to_string()
    };
    let mut numbers = std::collections::HashMap::new();
    for (id, birth) in [
        ("age-10", Some(born(10))),
        ("age-30", Some(born(30))),
        ("age-50", Some(born(50))),
        ("no-birth-date", None),
    ] {
        let phone = random_phone().to_string();
        let mut body = json!({"first_name": id, "phone": phone});
        if let Some(b) = birth {
            body["birth_date"] = json!(b);
        }
        put_patient(&t, id, body).await;
        numbers.insert(id, phone);
    }
    let bulk = accept_bulk(
        &t,
        &json!({"audience": {"min_age": 18, "max_age": 64}, "text": "Hi {first_name}, your cleaning is due.", "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["target_count"], 2, "{bulk}");
    let id = bulk["id"].as_str().unwrap().to_string();
    let mut selected: Vec<String> = recipients(&t, &id, "", 200)
        .await
        .iter()
        .map(|r| r["patient_id"].as_str().unwrap().to_string())
        .collect();
    selected.sort();
    assert_eq!(selected, ["age-30", "age-50"]);

    let done = wait_for_bulk(&t, &id, Duration::from_secs(60), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(done["counts"]["delivered"], 2, "{done}");
    for (id, n) in &numbers {
        let got = local.carrier_messages(n).await;
        if ["age-30", "age-50"].contains(id) {
            assert_eq!(got.len(), 1, "{id}");
            assert_eq!(got[0]["text"], format!("Hi {id}, your cleaning is due."));
        } else {
            assert!(got.is_empty(), "{id} got a text");
        }
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_scheduled_bulk_waits_for_its_time() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let people = patients(&t, 3).await;
    let ids: Vec<&str> = people.iter().map(|(id, _)| id.as_str()).collect();
    let numbers: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let send_at = (Utc::now() + chrono::Duration::seconds(20))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": ids, "text": "Hi {first_name}", "send_at": send_at, "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["status"], "scheduled", "{bulk}");
    assert_eq!(bulk["counts"]["scheduled"], 3, "{bulk}");
    let due = time(&bulk["send_at"]);
    assert_eq!(due, time(&json!(send_at)));
    let estimate = time(&bulk["estimated_completion_at"]);
    assert!(estimate >= due, "{estimate} before {due}");
    let id = bulk["id"].as_str().unwrap().to_string();
    for r in recipients(&t, &id, "", 200).await {
        assert_eq!(r["status"], "scheduled");
        assert_eq!(time(&r["not_before"]), due, "{r}");
    }
    let listed = t
        .api
        .get("/v1/communications?type=bulk_message&status=scheduled")
        .await;
    assert_eq!(
        listed.body["items"][0]["id"],
        id.as_str(),
        "{:?}",
        listed.body
    );

    // Nothing before its time.
    let until = std::time::Instant::now()
        + (due - Utc::now() - chrono::Duration::milliseconds(500))
            .to_std()
            .unwrap_or_default();
    no_more_texts(&local, &numbers, 0, until).await;
    assert_eq!(
        t.api.get(&format!("/v1/bulk-messages/{id}")).await.body["status"],
        "scheduled"
    );

    let done = wait_for_bulk(&t, &id, Duration::from_secs(120), |b| {
        b["status"] == "completed"
    })
    .await;
    assert_eq!(done["counts"]["delivered"], 3, "{done}");
    let times = arrivals(&local, &numbers).await;
    assert_eq!(times.len(), 3, "each patient got one text");
    assert!(
        times.iter().all(|at| *at >= due),
        "sent before {due}: {times:?}"
    );
    for r in recipients(&t, &id, "", 200).await {
        assert!(time(&r["sent_at"]) >= due, "{r}");
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bulk_and_direct_ids_are_not_interchangeable() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let people = patients(&t, 1).await;
    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": [people[0].0], "text": "Hi", "acknowledge_bulk_limit": true}),
    )
    .await;
    let bulk_id = bulk["id"].as_str().unwrap();
    let direct = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": random_phone().as_str(), "text": "Your crown is ready"}),
        )
        .await;
    assert_eq!(direct.status, 202, "{:?}", direct.body);
    let direct_id = direct.body["id"].as_str().unwrap();

    let r = t.api.get(&format!("/v1/messages/{bulk_id}")).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    for path in [
        format!("/v1/bulk-messages/{direct_id}"),
        format!("/v1/bulk-messages/{direct_id}/recipients"),
    ] {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.body);
    }
    let r = t
        .api
        .delete(&format!("/v1/bulk-messages/{direct_id}"))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    // Both still answer at their own paths.
    assert_eq!(
        t.api
            .get(&format!("/v1/bulk-messages/{bulk_id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        t.api.get(&format!("/v1/messages/{direct_id}")).await.status,
        200
    );
    // And another practice sees neither.
    let other = local.new_practice().await;
    assert_eq!(
        other
            .api
            .get(&format!("/v1/bulk-messages/{bulk_id}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_number_marked_undeliverable_is_skipped_and_carrier_failures_are_counted() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let landline = cloud_tests::phone_ending(4700).to_string();
    let spam = cloud_tests::phone_ending(4470).to_string();
    let fine = random_phone().to_string();
    for (id, phone) in [("land", &landline), ("spam", &spam), ("fine", &fine)] {
        put_patient(&t, id, json!({"first_name": id, "phone": phone})).await;
    }
    // A direct message to the landline fails and marks the number.
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"patient_id": "land", "text": "Hello"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    poll(Duration::from_secs(30), || async {
        let p = t.api.get("/v1/patients/land").await.body;
        (!p["sms_undeliverable"].is_null()).then_some(())
    })
    .await
    .expect("the landline marked undeliverable");

    let bulk = accept_bulk(
        &t,
        &json!({"patient_ids": ["land", "spam", "fine"], "text": "Hi {first_name}", "acknowledge_bulk_limit": true}),
    )
    .await;
    assert_eq!(bulk["target_count"], 3);
    assert_eq!(bulk["counts"]["skipped"], 1, "{bulk}");
    let id = bulk["id"].as_str().unwrap().to_string();
    let skipped = recipients(&t, &id, "status=skipped", 50).await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["patient_id"], "land");
    assert_eq!(skipped[0]["recipient_id"], "00003");
    let reason = skipped[0]["skip_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("invalid_phone:") && reason.contains("4700"),
        "{reason}"
    );

    let done = wait_for_bulk(&t, &id, Duration::from_secs(60), |b| {
        b["status"] == "completed"
    })
    .await;
    let c = &done["counts"];
    assert_eq!(
        (
            c["delivered"].as_u64(),
            c["failed"].as_u64(),
            c["skipped"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{done}"
    );
    let failed = recipients(&t, &id, "status=failed", 50).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["to"], spam.as_str());
    assert_eq!(failed[0]["error"]["code"], "4470", "{failed:?}");
    // Only the direct message reached the landline, never the bulk.
    assert_eq!(local.carrier_messages(&landline).await.len(), 1);
}
