//! Appointments, their due-reminder index and the reminder rules.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::Rng;

use super::{direct, now, phone, Store};
use crate::domain::appointment::rules::default_rules;
use crate::domain::appointment::{
    Appointment, AppointmentStatus, Confirmation, Reminder, ReminderStatus,
};
use crate::domain::events::appointment_confirmed;
use crate::domain::phone::PhoneNumber;
use crate::ports::DueAppointment;

fn appointment(
    practice_id: &str,
    id: &str,
    phone: &PhoneNumber,
    starts_at: DateTime<Utc>,
    reminders: Vec<Reminder>,
) -> Appointment {
    Appointment {
        practice_id: practice_id.into(),
        appointment_id: id.into(),
        patient_id: format!("pat-{id}"),
        phone: phone.clone(),
        starts_at,
        duration_minutes: Some(30),
        provider: Some("Dr. Lee".into()),
        location: None,
        status: AppointmentStatus::Scheduled,
        confirmation: Confirmation::Unconfirmed,
        confirmed_at: None,
        updated_at: now(),
        reminders,
        version: 1,
    }
}

fn next(a: &Appointment) -> Appointment {
    let mut n = a.clone();
    n.version += 1;
    n
}

/// A day far from any other case's, so the due index (one for every
/// practice of the table) holds nothing else near it.
fn lonely_day() -> DateTime<Utc> {
    let day = rand::rng().random_range(0..3000);
    Utc.with_ymd_and_hms(2031, 1, 1, 12, 0, 0).unwrap() + Duration::days(day * 3)
}

/// Each write is conditional on the version read; an appointment reads
/// back whole, lists by start time in pages, and by its number.
pub async fn appointments_are_written_over_the_version_read<S: Store>(store: S, practice_id: &str) {
    let number = phone();
    let start = now() + Duration::days(3);
    let a = appointment(practice_id, "a1", &number, start, vec![]);
    assert!(store.put_appointment(&a).await.unwrap());
    assert!(
        !store.put_appointment(&a).await.unwrap(),
        "a second create is refused"
    );
    assert_eq!(
        store.get_appointment(practice_id, "a1").await.unwrap(),
        Some(a.clone())
    );
    let b = next(&a);
    assert!(store.put_appointment(&b).await.unwrap());
    assert!(
        !store.put_appointment(&b).await.unwrap(),
        "a stale write is refused"
    );
    assert!(!store
        .delete_appointment(practice_id, "a1", a.version)
        .await
        .unwrap());
    assert!(store
        .delete_appointment(practice_id, "a1", b.version)
        .await
        .unwrap());
    assert_eq!(
        store.get_appointment(practice_id, "a1").await.unwrap(),
        None
    );

    // Listed by start, soonest first, a page at a time.
    let other = phone();
    for (i, hours) in [5, 1, 3, 2].iter().enumerate() {
        let phone = if i == 0 { &other } else { &number };
        let a = appointment(
            practice_id,
            &format!("b{i}"),
            phone,
            start + Duration::hours(*hours),
            vec![],
        );
        assert!(store.put_appointment(&a).await.unwrap());
    }
    let ids = |list: &[Appointment]| {
        list.iter()
            .map(|a| a.appointment_id.clone())
            .collect::<Vec<_>>()
    };
    let page = store
        .list_appointments(practice_id, start, start + Duration::days(1), None, 2)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["b1", "b3"]);
    let last = page.last().map(|a| (a.starts_at, a.appointment_id.clone()));
    let page = store
        .list_appointments(practice_id, start, start + Duration::days(1), last, 10)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["b2", "b0"]);
    let page = store
        .list_appointments(
            practice_id,
            start + Duration::hours(2),
            start + Duration::hours(3),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(ids(&page), ["b3", "b2"]);
    let of_number = store
        .appointments_of_number(practice_id, &number, start + Duration::minutes(90))
        .await
        .unwrap();
    assert_eq!(ids(&of_number), ["b3", "b2"]);
}

/// The due index lists an appointment under its earliest pending reminder
/// until nothing is pending, and only up to the time asked.
pub async fn the_due_index_follows_pending_reminders<S: Store>(store: S, practice_id: &str) {
    let day = lonely_day();
    let number = phone();
    let first = appointment(
        practice_id,
        "d1",
        &number,
        day + Duration::days(2),
        vec![
            Reminder::pending("r1", day),
            Reminder::pending("r2", day + Duration::hours(5)),
        ],
    );
    let second = appointment(
        practice_id,
        "d2",
        &number,
        day + Duration::days(2),
        vec![Reminder::pending("r1", day + Duration::minutes(10))],
    );
    let none = appointment(
        practice_id,
        "d3",
        &number,
        day + Duration::days(2),
        vec![Reminder::skipped("r1", day, "too_late")],
    );
    for a in [&first, &second, &none] {
        assert!(store.put_appointment(a).await.unwrap());
    }
    let mine = |found: Vec<DueAppointment>| {
        found
            .into_iter()
            .filter(|d| d.practice_id == practice_id)
            .map(|d| (d.appointment_id, d.due_at))
            .collect::<Vec<_>>()
    };
    let due = mine(
        store
            .due_appointments(day + Duration::minutes(5), 100)
            .await
            .unwrap(),
    );
    assert_eq!(due, [("d1".to_string(), day)]);
    let due = mine(
        store
            .due_appointments(day + Duration::minutes(10), 100)
            .await
            .unwrap(),
    );
    assert_eq!(
        due,
        [
            ("d1".to_string(), day),
            ("d2".to_string(), day + Duration::minutes(10))
        ]
    );
    // Its first reminder sent: listed under the second.
    let mut sent = next(&first);
    sent.reminders[0].status = ReminderStatus::Sent;
    assert!(store.record_reminder(&[sent.clone()], None).await.unwrap());
    let due = mine(
        store
            .due_appointments(day + Duration::hours(6), 100)
            .await
            .unwrap(),
    );
    assert_eq!(
        due,
        [
            ("d2".to_string(), day + Duration::minutes(10)),
            ("d1".to_string(), day + Duration::hours(5))
        ]
    );
    // More than two days late: no longer swept.
    let due = mine(
        store
            .due_appointments(day + Duration::days(3), 100)
            .await
            .unwrap(),
    );
    assert!(due.is_empty(), "{due:?}");
}

/// A reminder and its message are one write: refused whole when an
/// appointment changed since it was read.
pub async fn a_reminder_and_its_message_are_one_write<S: Store>(store: S, practice_id: &str) {
    let number = phone();
    let start = now() + Duration::days(2);
    let a = appointment(
        practice_id,
        "m1",
        &number,
        start,
        vec![Reminder::pending("r1", now())],
    );
    let b = appointment(
        practice_id,
        "m2",
        &number,
        start,
        vec![Reminder::pending("r1", now())],
    );
    for x in [&a, &b] {
        assert!(store.put_appointment(x).await.unwrap());
    }
    let (mut message, recipient) = direct(
        practice_id,
        crate::domain::message::RecipientStatus::Queued,
        now(),
    );
    let recipients = vec![recipient];
    message.appointment_ids = vec!["m1".into(), "m2".into()];
    let mut sent_a = next(&a);
    sent_a.reminders[0].status = ReminderStatus::Sent;
    sent_a.reminders[0].message_id = Some(message.id.clone());
    let mut sent_b = next(&b);
    sent_b.reminders[0].status = ReminderStatus::Sent;
    // b changed meanwhile: nothing is written, the message neither.
    assert!(store.put_appointment(&next(&b)).await.unwrap());
    assert!(!store
        .record_reminder(
            &[sent_a.clone(), sent_b.clone()],
            Some((&message, &recipients))
        )
        .await
        .unwrap());
    assert!(store
        .get_message(practice_id, &message.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.get_appointment(practice_id, "m1").await.unwrap(),
        Some(a)
    );
    // Read again: both, and the message, in one write.
    sent_b.version += 1;
    assert!(store
        .record_reminder(&[sent_a.clone(), sent_b], Some((&message, &recipients)))
        .await
        .unwrap());
    let (stored, _) = store
        .get_message(practice_id, &message.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.appointment_ids, ["m1", "m2"]);
    assert_eq!(
        store.get_appointment(practice_id, "m1").await.unwrap(),
        Some(sent_a)
    );
}

/// A confirmation and its events are one write, over the version read.
pub async fn a_confirmation_and_its_events_are_one_write<S: Store>(store: S, practice_id: &str) {
    let number = phone();
    let a = appointment(
        practice_id,
        "c1",
        &number,
        now() + Duration::days(1),
        vec![],
    );
    assert!(store.put_appointment(&a).await.unwrap());
    let mut confirmed = next(&a);
    confirmed.confirmation = Confirmation::Confirmed;
    confirmed.confirmed_at = Some(now());
    let event = appointment_confirmed(practice_id, "c1", &a.patient_id, now());
    assert!(store
        .record_confirmation(&[confirmed.clone()], std::slice::from_ref(&event))
        .await
        .unwrap());
    assert!(!store
        .record_confirmation(&[confirmed.clone()], &[event])
        .await
        .unwrap());
    assert_eq!(
        store.get_appointment(practice_id, "c1").await.unwrap(),
        Some(confirmed)
    );
    let (events, _) = store
        .list_events(
            practice_id,
            &Default::default(),
            &crate::domain::events::event_id_floor(now() - Duration::days(1)),
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the event of the first write only");
}

/// Rules: the defaults until first changed, then each change over the
/// version read.
pub async fn reminder_rules_are_the_defaults_until_changed<S: Store>(store: S, practice_id: &str) {
    let stored = store.reminder_rules(practice_id).await.unwrap();
    assert_eq!((stored.rules, stored.version), (default_rules(), None));
    let one = vec![default_rules().remove(1)];
    assert!(store
        .put_reminder_rules(practice_id, &one, None)
        .await
        .unwrap());
    assert!(!store
        .put_reminder_rules(practice_id, &[], None)
        .await
        .unwrap());
    let stored = store.reminder_rules(practice_id).await.unwrap();
    assert_eq!((stored.rules, stored.version), (one, Some(1)));
    assert!(store
        .put_reminder_rules(practice_id, &[], Some(1))
        .await
        .unwrap());
    assert!(store
        .reminder_rules(practice_id)
        .await
        .unwrap()
        .rules
        .is_empty());
}
