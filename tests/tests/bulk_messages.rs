//! Bulk messages on the deployed local stack: waves under a small cap
//! (5 per 30 s), the number's pace, direct messages beside a bulk, cancel
//! and STOP mid-way, bad input.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tests::{poll, random_phone, Endpoints, TestPractice};

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
    assert!(
        times
            .windows(2)
            .all(|w| w[1] - w[0] >= chrono::Duration::milliseconds(900)),
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
