//! Appointments, reminders and confirmations against the in-memory store.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::confirm::confirm;
use super::fire::{fire, sweep, Fired};
use super::Appointments;
use crate::app::dispatch::{Dispatcher, RetryPolicy};
use crate::domain::appointment::{Appointment, Confirmation, ReminderJob, ReminderStatus};
use crate::domain::events::EventType;
use crate::domain::message::{MessageType, RecipientStatus};
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::ports::{AppointmentStore, MessageStore, OptOutChange, OptOutStore, PracticeStore};
use crate::testing::{sample_practice, FixedClock, MemoryQueue, MemoryStore, ScriptedCarrier};

const FAMILY_PHONE: &str = "+14155550142";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2026-12-07, 10:00 in New York.
fn now() -> DateTime<Utc> {
    t("2026-12-07T10:00:00-05:00")
}

async fn setup() -> (MemoryStore, MemoryQueue, Practice) {
    let store = MemoryStore::default();
    let practice = sample_practice("p1");
    store.put_practice(&practice).await.unwrap();
    for (id, name) in [("ana", "Ana"), ("ben", "Ben")] {
        let patient = Patient {
            patient_id: id.into(),
            first_name: name.into(),
            last_name: None,
            phone: PhoneNumber::parse(FAMILY_PHONE).unwrap(),
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient("p1", &patient).await.unwrap();
    }
    (store, MemoryQueue::default(), practice)
}

fn appointments(
    store: &MemoryStore,
    queue: &MemoryQueue,
) -> Appointments<MemoryStore, MemoryQueue> {
    Appointments {
        store: store.clone(),
        queue: queue.clone(),
    }
}

async fn sync(
    store: &MemoryStore,
    queue: &MemoryQueue,
    practice: &Practice,
    id: &str,
    patient: &str,
    starts_at: &str,
    at: DateTime<Utc>,
) -> Appointment {
    appointments(store, queue)
        .sync(
            practice,
            id,
            &json!({"patient_id": patient, "starts_at": starts_at}),
            at,
        )
        .await
        .unwrap()
}

fn job(id: &str) -> ReminderJob {
    ReminderJob {
        practice_id: "p1".into(),
        appointment_id: id.into(),
    }
}

#[tokio::test]
async fn a_synced_appointment_gets_the_two_default_reminders() {
    let (store, queue, practice) = setup().await;
    let a = sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let dues: Vec<_> = a
        .reminders
        .iter()
        .map(|r| (r.rule_id.as_str(), r.due_at, r.status))
        .collect();
    assert_eq!(
        dues,
        [
            (
                "confirm-2d",
                t("2026-12-08T14:30:00-05:00"),
                ReminderStatus::Pending
            ),
            (
                "same-day-2h",
                t("2026-12-10T12:30:00-05:00"),
                ReminderStatus::Pending
            ),
        ]
    );
    assert!(
        queue.delayed.lock().await.is_empty(),
        "nothing due within 15 minutes"
    );
    let e = appointments(&store, &queue)
        .sync(
            &practice,
            "a2",
            &json!({"patient_id": "nobody", "starts_at": "2026-12-10T14:30:00-05:00"}),
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        ("unknown_patient", Some("patient_id"))
    );
    assert!(
        store.get_appointment("p1", "a2").await.unwrap().is_none(),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_repeated_sync_writes_nothing_and_a_move_re_times_and_unconfirms() {
    let (store, queue, practice) = setup().await;
    let first = sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let again = sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now() + Duration::minutes(5),
    )
    .await;
    assert_eq!(again.version, first.version, "no write");
    let mut confirmed = again.clone();
    confirmed.confirmation = Confirmation::Confirmed;
    confirmed.confirmed_at = Some(now());
    confirmed.version += 1;
    assert!(store.put_appointment(&confirmed).await.unwrap());
    let moved = sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-11T14:30:00-05:00",
        now(),
    )
    .await;
    assert_eq!(moved.confirmation, Confirmation::Unconfirmed);
    assert_eq!(moved.reminders[1].due_at, t("2026-12-11T12:30:00-05:00"));
    // And back: the original times again, still one pending reminder each.
    let back = sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    assert_eq!(back.reminders, first.reminders);
}

#[tokio::test]
async fn a_due_reminder_goes_once_as_one_message_asking_to_confirm() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let due = t("2026-12-08T14:30:00-05:00");
    let early = fire(&store, &job("a1"), due - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        early,
        Fired {
            sends: vec![],
            later: Some(60)
        }
    );
    let fired = fire(&store, &job("a1"), due).await.unwrap();
    assert_eq!(fired.sends.len(), 1);
    let (message, recipients) = store
        .get_message("p1", &fired.sends[0].message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.message_type, MessageType::AppointmentReminder);
    assert_eq!(message.appointment_ids, ["a1"]);
    assert_eq!(
        recipients[0].text,
        "Hi Ana, this is Bright Smiles Dental: a reminder of your appointment on Thu, Dec 10 at 2:30 PM. Reply C to confirm."
    );
    assert_eq!(recipients[0].status, RecipientStatus::Queued);
    let a = store.get_appointment("p1", "a1").await.unwrap().unwrap();
    assert_eq!(a.reminders[0].status, ReminderStatus::Sent);
    assert_eq!(
        a.reminders[0].message_id.as_deref(),
        Some(message.id.as_str())
    );
    // A duplicate job stores no second message; it hands over the same send.
    let again = fire(&store, &job("a1"), due + Duration::seconds(3))
        .await
        .unwrap();
    assert_eq!(again.sends, fired.sends);
    assert_eq!(store.message_count().await, 1);
}

#[tokio::test]
async fn concurrent_jobs_for_one_reminder_store_one_message() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let due = t("2026-12-08T14:30:00-05:00");
    let j = job("a1");
    let (a, b) = tokio::join!(fire(&store, &j, due), fire(&store, &j, due));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(store.message_count().await, 1);
    assert_eq!(a.sends, b.sends, "both hand over the one message");
}

#[tokio::test]
async fn a_job_that_dies_after_its_write_is_sent_once_when_it_comes_back() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let due = t("2026-12-08T14:30:00-05:00");
    // The first run writes, then "dies" before dispatching its send.
    fire(&store, &job("a1"), due).await.unwrap();
    let carrier = ScriptedCarrier::accepting();
    let dispatcher = Dispatcher {
        store: store.clone(),
        queue: queue.clone(),
        carrier: carrier.clone(),
        clock: FixedClock(due + Duration::seconds(30)),
        retry: RetryPolicy::default(),
        bulk_per_second: 1,
        inline_wait: Duration::zero(),
        practices: Default::default(),
    };
    // The queue delivers the job again, twice.
    for _ in 0..2 {
        dispatcher.dispatch(&job("a1").to_send_job()).await.unwrap();
    }
    assert_eq!(carrier.calls().await, 1, "sent exactly once");
    assert_eq!(store.message_count().await, 1);
}

#[tokio::test]
async fn a_family_sharing_a_number_gets_one_text_naming_everyone() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    sync(
        &store,
        &queue,
        &practice,
        "a2",
        "ben",
        "2026-12-10T15:00:00-05:00",
        now(),
    )
    .await;
    let fired = fire(&store, &job("a1"), t("2026-12-08T14:30:00-05:00"))
        .await
        .unwrap();
    let (message, recipients) = store
        .get_message("p1", &fired.sends[0].message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.appointment_ids, ["a1", "a2"]);
    assert!(
        recipients[0].text.starts_with("Hi Ana and Ben,"),
        "{}",
        recipients[0].text
    );
    assert!(
        recipients[0].text.contains("2:30 PM and 3:00 PM"),
        "{}",
        recipients[0].text
    );
    let b = store.get_appointment("p1", "a2").await.unwrap().unwrap();
    assert_eq!(
        b.reminders[0].message_id.as_deref(),
        Some(message.id.as_str())
    );
    // Ben's own job, at his time, sends nothing more.
    let later = fire(&store, &job("a2"), t("2026-12-08T15:00:00-05:00"))
        .await
        .unwrap();
    assert_eq!(later.sends, fired.sends);
    assert_eq!(store.message_count().await, 1);
}

#[tokio::test]
async fn opt_outs_and_the_window_are_checked_again_when_due() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    store
        .record_opt_out(&OptOutChange {
            practice_id: "p1".into(),
            phone: FAMILY_PHONE.into(),
            opted_out: true,
            keyword: "STOP".into(),
            source: "sms".into(),
            at: now(),
        })
        .await
        .unwrap();
    fire(&store, &job("a1"), t("2026-12-08T14:30:00-05:00"))
        .await
        .unwrap();
    let a = store.get_appointment("p1", "a1").await.unwrap().unwrap();
    assert_eq!(
        (a.reminders[0].status, a.reminders[0].skip_reason.as_deref()),
        (ReminderStatus::Skipped, Some("opted_out"))
    );
    assert_eq!(store.message_count().await, 0);

    // A job running at 21:30 (the window closed since): re-timed to the
    // next opening, 09:00, not sent at night.
    sync(
        &store,
        &queue,
        &practice,
        "a3",
        "ben",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let mut stored = store.get_appointment("p1", "a3").await.unwrap().unwrap();
    stored.reminders[0].due_at = t("2026-12-07T21:30:00-05:00");
    stored.version += 1;
    assert!(store.put_appointment(&stored).await.unwrap());
    let fired = fire(&store, &job("a3"), t("2026-12-07T21:30:00-05:00"))
        .await
        .unwrap();
    assert!(fired.sends.is_empty());
    let a = store.get_appointment("p1", "a3").await.unwrap().unwrap();
    assert_eq!(
        (a.reminders[0].status, a.reminders[0].due_at),
        (ReminderStatus::Pending, t("2026-12-08T09:00:00-05:00"))
    );
}

#[tokio::test]
async fn a_reminder_due_soon_goes_on_the_queue_at_sync_and_the_sweep_finds_the_rest() {
    let (store, queue, practice) = setup().await;
    // Booked late: the 2-day reminder is overdue and goes at once.
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-08T15:00:00-05:00",
        now(),
    )
    .await;
    assert_eq!(
        queue.delayed.lock().await.as_slice(),
        [(job("a1").to_send_job(), 0)]
    );
    sync(
        &store,
        &queue,
        &practice,
        "a2",
        "ben",
        "2026-12-10T15:00:00-05:00",
        now(),
    )
    .await;
    let due = t("2026-12-08T15:00:00-05:00");
    let queued = sweep(&store, &queue, due - Duration::seconds(30))
        .await
        .unwrap();
    // a1's catch-up never ran (its job was lost, say): overdue, at once;
    // a2's is due in 30 s. a2's same-day reminder is days away: not swept.
    assert_eq!(queued, 2);
    let delayed = queue.delayed.lock().await.clone();
    assert_eq!(
        delayed[1..],
        [(job("a1").to_send_job(), 0), (job("a2").to_send_job(), 30)]
    );
}

#[tokio::test]
async fn yes_confirms_every_asked_appointment_of_the_number_once() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    sync(
        &store,
        &queue,
        &practice,
        "a2",
        "ben",
        "2026-12-10T15:00:00-05:00",
        now(),
    )
    .await;
    let phone = PhoneNumber::parse(FAMILY_PHONE).unwrap();
    let reply_at = t("2026-12-08T15:00:00-05:00");
    // Not asked yet: a "C" confirms nothing.
    assert!(confirm(&store, "p1", &phone, "C", reply_at, reply_at)
        .await
        .unwrap()
        .is_empty());
    fire(&store, &job("a1"), t("2026-12-08T14:30:00-05:00"))
        .await
        .unwrap();
    assert!(
        confirm(&store, "p1", &phone, "can we move it?", reply_at, reply_at)
            .await
            .unwrap()
            .is_empty()
    );
    let confirmed = confirm(&store, "p1", &phone, "Yes thanks", reply_at, reply_at)
        .await
        .unwrap();
    assert_eq!(
        confirmed
            .iter()
            .map(|a| a.appointment_id.as_str())
            .collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    assert!(confirmed
        .iter()
        .all(|a| a.confirmation == Confirmation::Confirmed && a.confirmed_at == Some(reply_at)));
    let events = store.events().await;
    let confirmations = events
        .iter()
        .filter(|e| e.event.event_type == EventType::AppointmentConfirmed)
        .count();
    assert_eq!(confirmations, 2);
    // The same callback again: the same appointments, no new events.
    let again = confirm(&store, "p1", &phone, "Yes thanks", reply_at, reply_at)
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(store.events().await.len(), events.len());
}

#[tokio::test]
async fn a_canceled_or_deleted_appointment_sends_nothing() {
    let (store, queue, practice) = setup().await;
    sync(
        &store,
        &queue,
        &practice,
        "a1",
        "ana",
        "2026-12-10T14:30:00-05:00",
        now(),
    )
    .await;
    let canceled = appointments(&store, &queue)
        .sync(
            &practice,
            "a1",
            &json!({"patient_id": "ana", "starts_at": "2026-12-10T14:30:00-05:00", "status": "canceled"}),
            now(),
        )
        .await
        .unwrap();
    assert!(canceled
        .reminders
        .iter()
        .all(|r| r.status == ReminderStatus::Canceled));
    assert_eq!(
        fire(&store, &job("a1"), t("2026-12-08T14:30:00-05:00"))
            .await
            .unwrap(),
        Fired::default()
    );
    appointments(&store, &queue)
        .delete(&practice, "a1")
        .await
        .unwrap();
    assert_eq!(
        fire(&store, &job("a1"), t("2026-12-08T14:30:00-05:00"))
            .await
            .unwrap(),
        Fired::default()
    );
    assert_eq!(store.message_count().await, 0);
}
