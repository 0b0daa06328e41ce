//! Scheduled sends on the deployed local stack, through EventBridge
//! Scheduler (the local stack routes every scheduled send through it):
//! never early, delivered on time, canceled ones never sent, rescheduled
//! ones sent at the new time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cloud_tests::{random_phone, Endpoints, TestPractice};
use serde_json::{json, Value};

fn at(offset_seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

async fn schedule(t: &TestPractice, to: &str, send_at: &str) -> Value {
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"to": to, "text": "See you soon", "send_at": send_at}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    r.body
}

/// Waits until `until`, failing at once if the carrier receives anything for `to`.
async fn nothing_sent_until(local: &Endpoints, to: &str, until: DateTime<Utc>) {
    while Utc::now() < until {
        assert!(
            local.carrier_messages(to).await.is_empty(),
            "{to} got a text"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn scheduled_message_is_not_sent_early_and_is_delivered() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    let send_at = at(25);
    let m = schedule(&t, to.as_str(), &send_at).await;
    let due = time(&m["send_at"]);
    assert_eq!(m["recipients"][0]["not_before"], m["send_at"]);
    let done = t
        .api
        .wait_for_message(m["id"].as_str().unwrap(), Duration::from_secs(90), |m| {
            m["status"] == "delivered"
        })
        .await;
    let at_carrier = local.carrier_messages(to.as_str()).await;
    assert_eq!(at_carrier.len(), 1);
    let arrived = time(&at_carrier[0]["received_at"]);
    assert!(arrived >= due, "sent {} early", due - arrived);
    // How late is a benchmark's question (schedule-bench), not a test's.
    assert!(time(&done["recipients"][0]["sent_at"]) >= due);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn canceled_message_never_reaches_the_carrier() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    let m = schedule(&t, to.as_str(), &at(15)).await;
    let path = format!("/v1/messages/{}", m["id"].as_str().unwrap());
    let canceled = t.api.call("DELETE", &path, None, &[]).await;
    assert_eq!(
        (canceled.status, canceled.body["status"].as_str()),
        (200, Some("canceled"))
    );
    assert_eq!(canceled.body["counts"]["canceled"], 1);
    let again = t.api.call("DELETE", &path, None, &[]).await;
    assert_eq!(
        (again.status, again.body["status"].as_str()),
        (200, Some("canceled")),
        "cancel is idempotent"
    );
    nothing_sent_until(
        &local,
        to.as_str(),
        time(&m["send_at"]) + chrono::Duration::seconds(20),
    )
    .await;
    assert_eq!(t.api.get(&path).await.body["status"], "canceled");
    let late = t
        .api
        .call(
            "PATCH",
            &path,
            Some(json!({"send_at": at(60)}).to_string().into_bytes()),
            &[],
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "not_scheduled"));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn rescheduled_message_goes_at_the_new_time() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let to = random_phone();
    let m = schedule(&t, to.as_str(), &at(15)).await;
    let path = format!("/v1/messages/{}", m["id"].as_str().unwrap());
    let new_time = at(35);
    let moved = t
        .api
        .call(
            "PATCH",
            &path,
            Some(json!({"send_at": new_time}).to_string().into_bytes()),
            &[],
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let due = time(&moved.body["send_at"]);
    assert_eq!(
        moved.body["recipients"][0]["not_before"],
        moved.body["send_at"]
    );
    nothing_sent_until(&local, to.as_str(), due - chrono::Duration::seconds(1)).await;
    t.api
        .wait_for_message(m["id"].as_str().unwrap(), Duration::from_secs(60), |m| {
            m["status"] == "delivered"
        })
        .await;
    let at_carrier = local.carrier_messages(to.as_str()).await;
    assert_eq!(at_carrier.len(), 1);
    assert!(time(&at_carrier[0]["received_at"]) >= due);

    let after = t
        .api
        .call(
            "PATCH",
            &path,
            Some(json!({"send_at": at(60)}).to_string().into_bytes()),
            &[],
        )
        .await;
    assert_eq!((after.status, after.code()), (409, "not_scheduled"));
    let cancel = t.api.call("DELETE", &path, None, &[]).await;
    assert_eq!((cancel.status, cancel.code()), (409, "already_sent"));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn far_future_send_has_one_schedule_that_cancel_deletes() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let m = schedule(&t, random_phone().as_str(), &at(2 * 86_400)).await;
    let id = m["id"].as_str().unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&local.aws().await);
    let groups = scheduler.list_schedule_groups().send().await.unwrap();
    let group = groups
        .schedule_groups()
        .iter()
        .filter_map(|g| g.name())
        .find(|n| n.ends_with("-sends"))
        .expect("the stack's schedule group")
        .to_string();
    let s = scheduler
        .get_schedule()
        .group_name(&group)
        .name(format!("msg-{id}"))
        .send()
        .await
        .unwrap();
    let expected_fire = time(&m["send_at"]) - chrono::Duration::seconds(60);
    assert_eq!(
        s.schedule_expression(),
        Some(format!("at({})", expected_fire.format("%Y-%m-%dT%H:%M:%S")).as_str())
    );
    let target = s.target().unwrap();
    assert!(target.arn().contains("SendQueue"), "{}", target.arn());
    assert!(target.input().unwrap().contains(id));
    assert_eq!(
        s.action_after_completion().map(|a| a.as_str()),
        Some("DELETE")
    );

    let r = t
        .api
        .call("DELETE", &format!("/v1/messages/{id}"), None, &[])
        .await;
    assert_eq!(r.status, 200);
    let gone = scheduler
        .get_schedule()
        .group_name(&group)
        .name(format!("msg-{id}"))
        .send()
        .await;
    assert!(gone.is_err(), "schedule deleted with the cancel");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn bad_send_at_is_refused_and_stores_nothing() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    for bad in [
        at(-5),
        at(366 * 86_400),
        "next tuesday".to_string(),
        "2026-12-01T15:00:00".to_string(),
    ] {
        let r = t
            .api
            .post(
                "/v1/messages",
                &json!({"to": random_phone().as_str(), "text": "x", "send_at": bad}),
            )
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (422, "invalid_send_at", "send_at"),
            "{bad}"
        );
    }
    assert_eq!(
        t.api.get("/v1/communications").await.body["items"],
        json!([])
    );
    let m = schedule(&t, random_phone().as_str(), &at(3600)).await;
    let path = format!("/v1/messages/{}", m["id"].as_str().unwrap());
    let unknown = t
        .api
        .call(
            "PATCH",
            &path,
            Some(
                json!({"send_at": at(7200), "text": "x"})
                    .to_string()
                    .into_bytes(),
            ),
            &[],
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (400, "unknown_field"));
    let past = t
        .api
        .call(
            "PATCH",
            &path,
            Some(json!({"send_at": at(-60)}).to_string().into_bytes()),
            &[],
        )
        .await;
    assert_eq!((past.status, past.code()), (422, "invalid_send_at"));
    let listed = t.api.get("/v1/communications?status=scheduled").await;
    assert_eq!(
        listed.body["items"][0]["send_at"], m["send_at"],
        "tracking shows the scheduled time"
    );
    t.api.call("DELETE", &path, None, &[]).await;
}
