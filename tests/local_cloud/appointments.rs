//! Appointments on the deployed local stack: reminders that go out by
//! themselves through the real dispatcher and carrier simulator (at once
//! when due soon, or found by the minute's EventBridge Scheduler sweep), one
//! text per family, a "C" that confirms, and the two tabs of tracking.

use std::time::Duration;

use chrono::Utc;
use cloud_tests::{poll, random_phone, Endpoints, TestPractice};
use messaging_core::domain::appointment::{Appointment, AppointmentStatus, Confirmation, Reminder};
use messaging_core::ports::AppointmentStore;
use serde_json::{json, Value};

fn at(offset_seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn patient(t: &TestPractice, id: &str, name: &str, phone: &str) {
    let r = t
        .api
        .put(
            &format!("/v1/patients/{id}"),
            &json!({"first_name": name, "phone": phone}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn sync(t: &TestPractice, id: &str, body: Value) -> Value {
    let r = t.api.put(&format!("/v1/appointments/{id}"), &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// The texts the carrier received for `to`, once there are `n`.
async fn texts(local: &Endpoints, to: &str, n: usize, within: Duration) -> Vec<String> {
    poll(within, || async {
        let got = local.carrier_messages(to).await;
        (got.len() >= n).then(|| {
            got.iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
    })
    .await
    .unwrap_or_else(|| panic!("{to} did not get {n} texts within {within:?}"))
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_reminder_goes_by_itself_and_a_c_confirms_the_appointment() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    patient(&t, "ana", "Ana", phone.as_str()).await;
    // Booked late, 2 h 20 s ahead: the 2-day reminder is overdue and goes
    // at once (it asks to confirm); the 2-hour one is due in 20 s.
    let a = sync(
        &t,
        "a1",
        json!({"patient_id": "ana", "starts_at": at(7220), "provider": "Dr. Lee"}),
    )
    .await;
    assert_eq!(a["reminders"][0]["status"], "pending");
    assert_eq!(a["confirmation"], "unconfirmed");
    let sent = texts(&local, phone.as_str(), 2, Duration::from_secs(90)).await;
    assert!(sent[0].ends_with("Reply C to confirm."), "{sent:?}");
    assert!(sent[1].starts_with("Hi Ana, see you today at"), "{sent:?}");
    let a = t.api.get("/v1/appointments/a1").await.body;
    assert_eq!(a["reminders"][0]["status"], "sent", "{a}");
    assert_eq!(a["reminders"][1]["status"], "sent", "{a}");
    let reminder_id = a["reminders"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let m = t.api.get(&format!("/v1/messages/{reminder_id}")).await.body;
    assert_eq!(m["type"], "appointment_reminder", "{m}");

    local
        .patient_texts(
            phone.as_str(),
            t.practice.channels.sms_main.as_str(),
            "C, see you then",
            Value::Null,
        )
        .await;
    let a = t.api.get("/v1/appointments/a1").await.body;
    assert_eq!(a["confirmation"], "confirmed", "{a}");
    let acknowledged = texts(&local, phone.as_str(), 3, Duration::from_secs(30)).await;
    assert!(
        acknowledged[2].starts_with("Thank you! Your appointment on"),
        "{acknowledged:?}"
    );
    assert!(acknowledged[2].contains("is confirmed"), "{acknowledged:?}");
    // In the thread as a confirmation: not unread, not awaiting a reply.
    let conversation = &t.api.get("/v1/conversations").await.body["items"][0];
    assert_eq!(conversation["unread_count"], 0, "{conversation}");
    assert_eq!(conversation["awaiting_reply"], false, "{conversation}");
    let id = conversation["id"].as_str().unwrap();
    let thread = t
        .api
        .get(&format!("/v1/conversations/{id}/messages"))
        .await
        .body;
    let reply = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "inbound")
        .cloned()
        .unwrap();
    assert_eq!(reply["intent"], "confirm", "{thread}");
    // The office's software hears of it.
    let events = t
        .api
        .get("/v1/events?type=appointment.confirmed")
        .await
        .body;
    assert_eq!(
        events["items"][0]["data"]["appointment_id"], "a1",
        "{events}"
    );
    // The Automatic tab lists the reminders, the Manual tab does not.
    let automatic = t.api.get("/v1/communications?tab=automatic").await.body;
    assert_eq!(
        automatic["items"].as_array().unwrap().len(),
        2,
        "{automatic}"
    );
    let manual = t.api.get("/v1/communications").await.body;
    assert!(
        manual["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "appointment_reminder"),
        "{manual}"
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_minute_sweep_finds_a_due_reminder_nobody_queued() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    patient(&t, "ben", "Ben", phone.as_str()).await;
    // Stored as a sync would store it, but with nothing put on the queue
    // (as if that hand-over had failed): only the sweep can find it.
    let now = Utc::now();
    let appointment = Appointment {
        practice_id: t.practice.practice_id.clone(),
        appointment_id: "swept".into(),
        patient_id: "ben".into(),
        phone: phone.clone(),
        starts_at: now + chrono::Duration::hours(3),
        duration_minutes: None,
        provider: None,
        location: None,
        status: AppointmentStatus::Scheduled,
        confirmation: Confirmation::Unconfirmed,
        confirmed_at: None,
        updated_at: now,
        reminders: vec![Reminder::pending(
            "same-day-2h",
            now + chrono::Duration::seconds(5),
        )],
        version: 1,
    };
    assert!(local
        .store()
        .await
        .put_appointment(&appointment)
        .await
        .unwrap());
    // The sweep runs every minute; allow two.
    let sent = texts(&local, phone.as_str(), 1, Duration::from_secs(150)).await;
    assert!(sent[0].starts_with("Hi Ben, see you today at"), "{sent:?}");
    let a = t.api.get("/v1/appointments/swept").await.body;
    assert_eq!(a["reminders"][0]["status"], "sent", "{a}");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_family_sharing_a_number_gets_one_reminder_naming_both() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    patient(&t, "mia", "Mia", phone.as_str()).await;
    patient(&t, "leo", "Leo", phone.as_str()).await;
    // Only the 2-hour rule, so each appointment has one reminder.
    let r = t.api.delete("/v1/reminder-rules/confirm-2d").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    sync(
        &t,
        "m1",
        json!({"patient_id": "mia", "starts_at": at(7225)}),
    )
    .await;
    sync(
        &t,
        "l1",
        json!({"patient_id": "leo", "starts_at": at(7260)}),
    )
    .await;
    let sent = texts(&local, phone.as_str(), 1, Duration::from_secs(90)).await;
    assert!(
        sent[0].starts_with("Hi Mia and Leo, see you today at"),
        "{sent:?}"
    );
    let (m1, l1) = (
        t.api.get("/v1/appointments/m1").await.body,
        t.api.get("/v1/appointments/l1").await.body,
    );
    assert_eq!(
        m1["reminders"][0]["message_id"],
        l1["reminders"][0]["message_id"]
    );
    // Leo's own reminder time passes: still the one text.
    let due = l1["reminders"][0]["due_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<Utc>>()
        .unwrap();
    while Utc::now() < due + chrono::Duration::seconds(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(local.carrier_messages(phone.as_str()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn staff_send_a_reminder_now_and_a_review_request_with_the_practice_link() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let phone = random_phone();
    patient(&t, "ivy", "Ivy", phone.as_str()).await;
    sync(
        &t,
        "i1",
        json!({"patient_id": "ivy", "starts_at": at(86_400 * 5), "location": "Main St"}),
    )
    .await;
    let r = t
        .api
        .post("/v1/appointments/i1/reminders", &json!({}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["type"], "manual_reminder");
    let r = t
        .api
        .post("/v1/messages", &json!({"type": "review_request", "patient_id": "ivy", "text": "Thanks! {review_link}"}))
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "missing_merge_data", "review_link")
    );
    let r = t
        .api
        .patch(
            "/v1/settings",
            &json!({"links": {"review": "https://g.page/r/test-dental/review"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = t
        .api
        .post("/v1/messages", &json!({"type": "review_request", "patient_id": "ivy", "text": "Thanks! {review_link}"}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let sent = texts(&local, phone.as_str(), 2, Duration::from_secs(60)).await;
    assert!(
        sent.iter()
            .any(|s| s.contains("a reminder from Test Dental")),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|s| s == "Thanks! https://g.page/r/test-dental/review"),
        "{sent:?}"
    );
    let manual = t
        .api
        .get("/v1/communications?type=manual_reminder")
        .await
        .body;
    assert_eq!(manual["items"].as_array().unwrap().len(), 1, "{manual}");
    let e = t
        .api
        .put(
            "/v1/appointments/i2",
            &json!({"patient_id": "nobody", "starts_at": at(3600)}),
        )
        .await;
    assert_eq!(
        (e.status, e.code(), e.field()),
        (404, "unknown_patient", "patient_id")
    );
    let listed = t.api.get("/v1/appointments").await.body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}
