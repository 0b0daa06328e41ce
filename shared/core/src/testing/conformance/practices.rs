//! Practices, their API keys and their patients.

use std::collections::HashSet;

use super::{ids, now, patient, phone, practice, Store};
use crate::app::auth::hash_key;
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::QuietHours;

/// Practice settings are stored whole and replaced whole.
pub async fn practice_settings_round_trip<S: Store>(store: S, practice_id: &str) {
    assert_eq!(store.get_practice(practice_id).await.unwrap(), None);
    let mut p = practice(practice_id);
    store.put_practice(&p).await.unwrap();
    assert_eq!(
        store.get_practice(practice_id).await.unwrap(),
        Some(p.clone())
    );

    p.name = "Conformance Dental & Ortho".into();
    p.quiet_hours = Some(QuietHours {
        start: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(20, 30, 0).unwrap(),
    });
    p.help_text = Some("Call us at {practice_name}".into());
    p.hourly_cap = 40;
    store.put_practice(&p).await.unwrap();
    assert_eq!(
        store.get_practice(practice_id).await.unwrap(),
        Some(p.clone())
    );

    // "Any time" stays any time (it is not the absent, default window);
    // links and a window change by name.
    p.automatic_window = None;
    store.put_practice(&p).await.unwrap();
    assert_eq!(
        store.get_practice(practice_id).await.unwrap(),
        Some(p.clone())
    );
    let change = crate::domain::practice::SettingsChange {
        automatic_window: Some(crate::domain::practice::AutomaticWindow::default_setting()),
        links: Some(crate::domain::practice::Links {
            review: Some("https://g.page/r/bright-smiles".into()),
            schedule: None,
        }),
        ..Default::default()
    };
    let changed = store.update_settings(practice_id, &change).await.unwrap();
    assert_eq!(changed, Some(change.applied_to(&p)));
    let cleared = crate::domain::practice::SettingsChange {
        automatic_window: Some(None),
        ..Default::default()
    };
    let changed = store
        .update_settings(practice_id, &cleared)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.automatic_window, None);
    assert_eq!(
        store
            .get_practice(practice_id)
            .await
            .unwrap()
            .unwrap()
            .automatic_window,
        None
    );
}

/// A settings change writes only the fields it names onto the practice as
/// stored: an administrator's change made after the caller read the
/// practice stays.
pub async fn a_settings_change_writes_only_its_own_fields<S: Store>(store: S, practice_id: &str) {
    use crate::domain::practice::SettingsChange;
    let missing = SettingsChange {
        help_text: Some(Some("Call us".into())),
        auto_reply: None,
        ..SettingsChange::default()
    };
    assert_eq!(
        store.update_settings(practice_id, &missing).await.unwrap(),
        None
    );
    let read_by_the_office = practice(practice_id);
    store.put_practice(&read_by_the_office).await.unwrap();
    // Meanwhile the administrator lowers the cap and sets a HELP reply.
    let mut by_admin = read_by_the_office.clone();
    by_admin.hourly_cap = 40;
    by_admin.help_text = Some("Admin's HELP".into());
    store.put_practice(&by_admin).await.unwrap();

    let mut auto_reply = read_by_the_office.auto_reply.clone();
    auto_reply.enabled = true;
    auto_reply.text = "Closed until 8 tomorrow.".into();
    let change = SettingsChange {
        help_text: None,
        auto_reply: Some(auto_reply.clone()),
        ..SettingsChange::default()
    };
    let stored = store
        .update_settings(practice_id, &change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.hourly_cap, 40, "the administrator's cap stays");
    assert_eq!(
        stored.help_text.as_deref(),
        Some("Admin's HELP"),
        "an unnamed field stays"
    );
    assert_eq!(stored.auto_reply, auto_reply);
    assert_eq!(
        store.get_practice(practice_id).await.unwrap(),
        Some(stored.clone())
    );

    // Back to the default HELP reply (null), nothing else moves.
    let reset = SettingsChange {
        help_text: Some(None),
        auto_reply: None,
        ..SettingsChange::default()
    };
    let after = store
        .update_settings(practice_id, &reset)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.help_text, None);
    assert_eq!(
        after,
        SettingsChange {
            help_text: Some(None),
            auto_reply: None,
            ..SettingsChange::default()
        }
        .applied_to(&stored)
    );
}

/// An API key (by digest) finds its practice; a new key replaces the old
/// one, and settings changes keep the key working.
pub async fn api_key_points_to_its_practice_until_replaced<S: Store>(store: S, practice_id: &str) {
    let mut p = practice(practice_id);
    store.put_practice(&p).await.unwrap();
    let first = hash_key(&uuid::Uuid::new_v4().to_string());
    let second = hash_key(&uuid::Uuid::new_v4().to_string());
    assert_eq!(store.practice_for_key(&first).await.unwrap(), None);

    store.set_api_key(practice_id, &first).await.unwrap();
    assert_eq!(
        store.practice_for_key(&first).await.unwrap(),
        Some(p.clone())
    );

    p.name = "Renamed Dental".into();
    store.put_practice(&p).await.unwrap();
    assert_eq!(
        store.practice_for_key(&first).await.unwrap(),
        Some(p.clone()),
        "a settings change keeps the key"
    );

    store.set_api_key(practice_id, &second).await.unwrap();
    assert_eq!(store.practice_for_key(&first).await.unwrap(), None);
    assert_eq!(store.practice_for_key(&second).await.unwrap(), Some(p));
}

/// Patients are stored whole, read singly or in batches, and listed in id
/// order in pages that continue after the last id shown.
pub async fn patients_round_trip_and_page_in_id_order<S: Store>(store: S, practice_id: &str) {
    let patients: Vec<Patient> = (1..=5).map(|i| patient(&format!("p-{i:02}"))).collect();
    // Stored out of order: the list is in id order regardless.
    for p in patients.iter().rev() {
        store.put_patient(practice_id, p).await.unwrap();
    }
    assert_eq!(
        store.get_patient(practice_id, "p-03").await.unwrap(),
        Some(patients[2].clone())
    );
    assert_eq!(store.get_patient(practice_id, "p-99").await.unwrap(), None);
    assert_eq!(
        store
            .get_patient(&format!("{practice_id}-other"), "p-03")
            .await
            .unwrap(),
        None,
        "another practice's id finds nothing"
    );

    let (page, next) = store.list_patients(practice_id, 2, None).await.unwrap();
    assert_eq!(page, patients[..2].to_vec());
    assert_eq!(next.as_deref(), Some("p-02"));
    let (page, next) = store
        .list_patients(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&page, |p| &p.patient_id), ["p-03", "p-04"]);
    assert_eq!(next.as_deref(), Some("p-04"));
    let (page, next) = store
        .list_patients(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&page, |p| &p.patient_id), ["p-05"]);
    assert_eq!(next, None);
    let (page, next) = store.list_patients(practice_id, 5, None).await.unwrap();
    assert_eq!(
        (page.len(), next),
        (5, None),
        "an exact fit has no next page"
    );

    let mut changed = patients[0].clone();
    changed.first_name = "Grace".into();
    changed.phone = phone();
    store.put_patient(practice_id, &changed).await.unwrap();
    assert_eq!(
        store.get_patient(practice_id, "p-01").await.unwrap(),
        Some(changed.clone())
    );

    let wanted = ["p-04", "p-01", "p-77"].map(str::to_string);
    let found: HashSet<String> = store
        .get_patients(practice_id, &wanted)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            if p.patient_id == "p-01" {
                assert_eq!(p, changed);
            }
            p.patient_id
        })
        .collect();
    assert_eq!(found, HashSet::from(["p-01".into(), "p-04".into()]));
    assert!(store
        .get_patients(practice_id, &[])
        .await
        .unwrap()
        .is_empty());
}

/// A carrier's "cannot receive texts" sticks to the patient only while the
/// patient still has that number.
pub async fn undeliverable_mark_applies_only_to_the_current_number<S: Store>(
    store: S,
    practice_id: &str,
) {
    let p = patient("p-1");
    store.put_patient(practice_id, &p).await.unwrap();
    let mark = |phone: PhoneNumber| UndeliverableNumber {
        phone,
        code: "4720".into(),
        title: "Invalid destination".into(),
        resolution: "Check the number".into(),
        since: now(),
    };

    let stale = mark(phone());
    store
        .mark_undeliverable(practice_id, "p-1", &stale)
        .await
        .unwrap();
    assert_eq!(
        store.get_patient(practice_id, "p-1").await.unwrap(),
        Some(p.clone()),
        "the office changed the number meanwhile"
    );

    let current = mark(p.phone.clone());
    store
        .mark_undeliverable(practice_id, "p-1", &current)
        .await
        .unwrap();
    let marked = store
        .get_patient(practice_id, "p-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marked.sms_undeliverable, Some(current.clone()));

    store
        .mark_undeliverable(practice_id, "nobody", &current)
        .await
        .unwrap();
    assert_eq!(
        store.get_patient(practice_id, "nobody").await.unwrap(),
        None
    );
}
