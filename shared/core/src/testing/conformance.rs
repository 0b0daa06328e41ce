//! The port-conformance suite: what the use cases rely on from the store
//! ports, written once and run against every implementation —
//! [`MemoryStore`](super::MemoryStore) in this crate's unit tests and
//! `DynamoStore` on the local cloud (`tests/tests/local_cloud/conformance.rs`).
//! Where the two ever disagree, DynamoDB's behaviour is the truth and the
//! in-memory store follows it.
//!
//! Each case takes a fresh store (or a shared table) and a practice id no
//! other case uses, so cases never see each other's items. Ids of items that
//! are global on DynamoDB (sending numbers, API keys) are random.
//! [`conformance_cases!`](crate::conformance_cases) names every case, so each
//! runner has one test per case and none can be forgotten.

use std::collections::HashSet;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::Rng;

use crate::app::auth::hash_key;
use crate::domain::bulk::BulkProgress;
use crate::domain::message::{
    bulk_status_of, BulkStatus, Counts, Message, MessageStatus, MessageType, Recipient,
    RecipientError, RecipientStatus, Transition,
};
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Channels, Practice, QuietHours};
use crate::domain::rate_limit::RateBucket;
use crate::domain::template::QuickMessage;
use crate::domain::text::Encoding;
use crate::ports::{
    tracking_key, BulkStore, CreateOutcome, IdempotencyRecord, MessageStore, OptOutChange,
    OptOutStore, PracticeStore, RateStore, TemplateStore, TrackingIndex,
};

/// Every store port the use cases need, as one bound.
pub trait Store:
    PracticeStore + MessageStore + BulkStore + OptOutStore + TemplateStore + RateStore
{
}

impl<T> Store for T where
    T: PracticeStore + MessageStore + BulkStore + OptOutStore + TemplateStore + RateStore
{
}

/// Calls `$runner!(case)` for every case of the suite; a runner macro turns
/// each into a test. Adding a case here adds it to every runner.
#[macro_export]
macro_rules! conformance_cases {
    ($runner:ident) => {
        $runner!(practice_settings_round_trip);
        $runner!(api_key_points_to_its_practice_until_replaced);
        $runner!(sending_numbers_map_to_their_practice);
        $runner!(patients_round_trip_and_page_in_id_order);
        $runner!(undeliverable_mark_applies_only_to_the_current_number);
        $runner!(message_and_recipients_are_stored_and_removed_together);
        $runner!(live_idempotency_record_replays_and_keeps_its_key_taken);
        $runner!(expired_idempotency_record_is_absent_and_its_key_free);
        $runner!(transitions_move_forward_only_and_keep_counts);
        $runner!(transition_from_a_stale_read_is_refused);
        $runner!(reschedule_moves_the_message_send_time);
        $runner!(bulk_is_stored_with_its_recipients_and_idempotency_record);
        $runner!(recipient_pages_follow_the_cursor_and_status_filter);
        $runner!(pump_advances_only_with_the_live_token_until_stopped);
        $runner!(bulk_status_changes_only_from_the_expected_status);
        $runner!(bulk_completes_when_sending_and_every_recipient_is_final);
        $runner!(bulk_does_not_complete_before_sending_began);
        $runner!(many_transitions_are_all_or_nothing_and_move_counts_only);
        $runner!(tracking_list_pages_newest_first_within_bounds);
        $runner!(opt_outs_are_per_practice_and_reversible);
        $runner!(rate_bucket_writes_are_conditioned_on_the_count);
        $runner!(templates_round_trip_page_and_delete);
    };
}

// ---------------------------------------------------------------- fixtures

/// Now, to the millisecond: what every store keeps of a time it writes
/// itself (DynamoDB's expressions store `to_api_time`).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A random valid NANP number (sending numbers are global on DynamoDB).
fn phone() -> PhoneNumber {
    let mut rng = rand::rng();
    loop {
        let n = format!(
            "+1{}{}{}{:04}",
            rng.random_range(2..=9),
            rng.random_range(20..=98),
            rng.random_range(200..=999),
            rng.random_range(0..10_000)
        );
        if let Ok(p) = PhoneNumber::parse(&n) {
            return p;
        }
    }
}

fn practice(practice_id: &str) -> Practice {
    Practice {
        practice_id: practice_id.to_string(),
        name: "Conformance Dental".into(),
        timezone: "America/New_York".parse().unwrap(),
        channels: Channels {
            sms_main: phone(),
            sms_alt: None,
        },
        hourly_cap: 250,
        cap_window_seconds: 3600,
        max_bulk_recipients: 1000,
        quiet_hours: None,
        help_text: None,
        auto_reply: Default::default(),
    }
}

fn patient(id: &str) -> Patient {
    Patient {
        patient_id: id.to_string(),
        first_name: "Ada".into(),
        last_name: Some("Lovelace".into()),
        phone: phone(),
        birth_date: chrono::NaiveDate::from_ymd_opt(1990, 5, 17),
        sms_opted_out: false,
        sms_undeliverable: None,
    }
}

fn recipient(
    message: &Message,
    n: u32,
    status: RecipientStatus,
    not_before: Option<DateTime<Utc>>,
) -> Recipient {
    Recipient {
        practice_id: message.practice_id.clone(),
        message_id: message.id.clone(),
        recipient_id: format!("{n:05}"),
        patient_id: Some(format!("p-{n}")),
        to: phone(),
        from: message.from.clone(),
        text: message.text.clone(),
        status,
        not_before,
        carrier_message_id: None,
        sent_at: None,
        delivered_at: None,
        error: None,
        skip_reason: (status == RecipientStatus::Skipped).then(|| "opted out".to_string()),
        attempts: 0,
        claimed_at: None,
        message_type: message.message_type,
        version: 0,
    }
}

fn message(practice_id: &str, message_type: MessageType, created_at: DateTime<Utc>) -> Message {
    Message {
        id: uuid::Uuid::now_v7().to_string(),
        practice_id: practice_id.to_string(),
        message_type,
        channel: Channel::SmsMain,
        from: phone(),
        text: "Your cleaning is tomorrow at 9".into(),
        template_id: None,
        encoding: Encoding::Gsm7,
        segments: 1,
        send_at: None,
        created_at,
        target_count: 0,
        status: MessageStatus::default(),
        counts: Counts::default(),
        sent_at: None,
        bulk: None,
    }
}

/// A direct message and its one recipient in `status`, as the API builds them.
fn direct(
    practice_id: &str,
    status: RecipientStatus,
    created_at: DateTime<Utc>,
) -> (Message, Recipient) {
    let mut m = message(practice_id, MessageType::DirectMessage, created_at);
    if status == RecipientStatus::Scheduled {
        m.send_at = Some(created_at + Duration::hours(2));
    }
    let r = recipient(&m, 1, status, m.send_at);
    m.target_count = 1;
    m.status = status.into();
    m.counts = Counts::of([status].iter());
    (m, r)
}

/// A bulk message with one recipient per status (numbered in that order),
/// stored with status `stored_status` and its pump token `pump`.
fn bulk(
    practice_id: &str,
    statuses: &[RecipientStatus],
    stored_status: &str,
    pump: Option<&str>,
) -> (Message, Vec<Recipient>) {
    let created_at = now();
    let mut m = message(practice_id, MessageType::BulkMessage, created_at);
    let recipients: Vec<Recipient> = statuses
        .iter()
        .zip(1..)
        .map(|(status, n)| recipient(&m, n, *status, None))
        .collect();
    m.target_count = u32::try_from(recipients.len()).unwrap();
    m.counts = Counts::of(statuses.iter());
    m.status = MessageStatus::parse(stored_status).unwrap();
    m.bulk = Some(BulkProgress {
        sendable: u32::try_from(
            statuses
                .iter()
                .filter(|s| **s != RecipientStatus::Skipped)
                .count(),
        )
        .unwrap(),
        released: 0,
        pump: pump.map(str::to_string),
        due: created_at,
        canceled_at: None,
    });
    (m, recipients)
}

fn idempotency(practice_id: &str, key: &str, created_at: DateTime<Utc>) -> IdempotencyRecord {
    IdempotencyRecord {
        practice_id: practice_id.to_string(),
        key: key.to_string(),
        request_hash: format!("hash-of-{key}-{}", created_at.timestamp_millis()),
        status: 202,
        response_body: format!("{{\"created_at\":\"{created_at}\"}}"),
        expires_at: created_at + crate::app::idempotency::RETENTION,
    }
}

async fn create<S: Store>(
    store: &S,
    m: &Message,
    rs: &[Recipient],
    idem: Option<&IdempotencyRecord>,
) {
    let outcome = store.create_message(m, rs, idem).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
}

async fn create_bulk<S: Store>(store: &S, m: &Message, rs: &[Recipient]) {
    let outcome = store.create_bulk(m, rs, None).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
}

async fn read<S: Store>(store: &S, r: &Recipient) -> Recipient {
    store.get_recipient(&r.job()).await.unwrap().unwrap()
}

async fn read_message<S: Store>(store: &S, m: &Message) -> Message {
    store
        .get_message_only(&m.practice_id, &m.id)
        .await
        .unwrap()
        .unwrap()
}

/// Applies `t` to the recipient as stored now; panics if refused.
async fn step<S: Store>(store: &S, r: &Recipient, t: Transition) -> Recipient {
    let current = read(store, r).await;
    store
        .transition(&current, &t)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{t:?} refused from {:?}", current.status))
}

/// Claim, carrier accepts: `queued → sending → sent`.
async fn send<S: Store>(store: &S, r: &Recipient) -> Recipient {
    let at = now();
    step(store, r, Transition::Claim { at }).await;
    step(
        store,
        r,
        Transition::Sent {
            carrier_message_id: carrier_id(r),
            at,
        },
    )
    .await
}

/// The carrier id [`send`] stores for `r`.
fn carrier_id(r: &Recipient) -> String {
    format!("c-{}-{}", r.message_id, r.recipient_id)
}

fn delivered(r: &Recipient) -> Transition {
    Transition::Delivered {
        carrier_message_id: carrier_id(r),
        at: now(),
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

// ------------------------------------------------------------------- cases

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
    assert_eq!(store.get_practice(practice_id).await.unwrap(), Some(p));
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

/// Inbound texts find their practice through the number they were sent to.
pub async fn sending_numbers_map_to_their_practice<S: Store>(store: S, practice_id: &str) {
    let mut p = practice(practice_id);
    let (main, alt, other) = (p.channels.sms_main.clone(), phone(), phone());
    p.channels.sms_alt = Some(alt.clone());
    store.put_practice(&p).await.unwrap();
    let owner = |n: PhoneNumber| {
        let store = &store;
        async move { store.practice_for_number(n.as_str()).await.unwrap() }
    };
    assert_eq!(owner(main.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(owner(alt.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(owner(other.clone()).await, None);

    p.channels.sms_alt = Some(other.clone());
    store.put_practice(&p).await.unwrap();
    assert_eq!(owner(main).await.as_deref(), Some(practice_id));
    assert_eq!(owner(alt).await, None, "the number given up is free");
    assert_eq!(owner(other).await.as_deref(), Some(practice_id));
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

/// A message and its recipients are stored together, read together (or the
/// message alone, or one recipient) and removed together.
pub async fn message_and_recipients_are_stored_and_removed_together<S: Store>(
    store: S,
    practice_id: &str,
) {
    let (m, r) = direct(practice_id, RecipientStatus::Queued, now());
    assert_eq!(store.get_message(practice_id, &m.id).await.unwrap(), None);
    create(&store, &m, std::slice::from_ref(&r), None).await;

    let (stored, recipients) = store
        .get_message(practice_id, &m.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, m);
    assert_eq!(recipients, vec![r.clone()]);
    assert_eq!(read_message(&store, &m).await, m);
    assert_eq!(read(&store, &r).await, r);
    assert_eq!(
        store
            .get_message(&format!("{practice_id}-other"), &m.id)
            .await
            .unwrap(),
        None,
        "another practice's id finds nothing"
    );

    store
        .remove_message(&m, std::slice::from_ref(&r), None)
        .await
        .unwrap();
    assert_eq!(store.get_message(practice_id, &m.id).await.unwrap(), None);
    assert_eq!(store.get_recipient(&r.job()).await.unwrap(), None);
}

/// A live idempotency record is read back as stored, keeps its key taken
/// (the second create stores nothing) until the message is removed with it.
pub async fn live_idempotency_record_replays_and_keeps_its_key_taken<S: Store>(
    store: S,
    practice_id: &str,
) {
    let at = now();
    let (m1, r1) = direct(practice_id, RecipientStatus::Queued, at);
    let rec1 = idempotency(practice_id, "order-1", at);
    assert_eq!(
        store.get_idempotency(practice_id, "order-1").await.unwrap(),
        None
    );
    create(&store, &m1, std::slice::from_ref(&r1), Some(&rec1)).await;
    assert_eq!(
        store.get_idempotency(practice_id, "order-1").await.unwrap(),
        Some(rec1.clone())
    );

    let later = at + Duration::seconds(5);
    let (m2, r2) = direct(practice_id, RecipientStatus::Queued, later);
    let rec2 = idempotency(practice_id, "order-1", later);
    assert_eq!(
        store
            .create_message(&m2, std::slice::from_ref(&r2), Some(&rec2))
            .await
            .unwrap(),
        CreateOutcome::IdempotencyKeyTaken
    );
    assert_eq!(store.get_message(practice_id, &m2.id).await.unwrap(), None);
    assert_eq!(store.get_recipient(&r2.job()).await.unwrap(), None);
    assert_eq!(
        store.get_idempotency(practice_id, "order-1").await.unwrap(),
        Some(rec1.clone()),
        "the first answer stays"
    );

    // A refused send is removed with its record: the key is free again.
    store
        .remove_message(&m1, std::slice::from_ref(&r1), Some(&rec1))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency(practice_id, "order-1").await.unwrap(),
        None
    );
    create(&store, &m2, std::slice::from_ref(&r2), Some(&rec2)).await;
    assert_eq!(
        store.get_idempotency(practice_id, "order-1").await.unwrap(),
        Some(rec2)
    );
}

/// An expired record (DynamoDB's TTL deletes it only eventually) is not
/// read back, and its key may be taken again.
pub async fn expired_idempotency_record_is_absent_and_its_key_free<S: Store>(
    store: S,
    practice_id: &str,
) {
    let long_ago = now() - Duration::hours(25);
    let (old, old_r) = direct(practice_id, RecipientStatus::Queued, long_ago);
    let expired = idempotency(practice_id, "order-7", long_ago);
    assert!(expired.expires_at < now());
    create(&store, &old, std::slice::from_ref(&old_r), Some(&expired)).await;
    assert_eq!(
        store.get_idempotency(practice_id, "order-7").await.unwrap(),
        None,
        "an expired record is absent"
    );

    let at = now();
    let (m, r) = direct(practice_id, RecipientStatus::Queued, at);
    let fresh = idempotency(practice_id, "order-7", at);
    create(&store, &m, std::slice::from_ref(&r), Some(&fresh)).await;
    assert_eq!(
        store.get_idempotency(practice_id, "order-7").await.unwrap(),
        Some(fresh)
    );

    // The same for a bulk.
    let (mut b, brs) = bulk(practice_id, &[RecipientStatus::Queued], "sending", None);
    b.created_at = long_ago;
    let expired = idempotency(practice_id, "bulk-7", long_ago);
    assert_eq!(
        store.create_bulk(&b, &brs, Some(&expired)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.get_idempotency(practice_id, "bulk-7").await.unwrap(),
        None
    );
    let (b2, brs2) = bulk(practice_id, &[RecipientStatus::Queued], "sending", None);
    let fresh = idempotency(practice_id, "bulk-7", b2.created_at);
    assert_eq!(
        store.create_bulk(&b2, &brs2, Some(&fresh)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.get_idempotency(practice_id, "bulk-7").await.unwrap(),
        Some(fresh)
    );
}

/// Transitions move a recipient forward only, each bumping its version, and
/// a direct message's counts, status and send time follow in the same write.
pub async fn transitions_move_forward_only_and_keep_counts<S: Store>(store: S, practice_id: &str) {
    let (m, r) = direct(practice_id, RecipientStatus::Queued, now());
    create(&store, &m, std::slice::from_ref(&r), None).await;
    let refused = |t: Transition| {
        let store = &store;
        let r = &r;
        async move {
            let current = read(store, r).await;
            assert_eq!(
                store.transition(&current, &t).await.unwrap(),
                None,
                "{t:?} from {:?}",
                current.status
            );
            assert_eq!(read(store, r).await, current, "a refusal changes nothing");
        }
    };
    let at = now();
    let sent = Transition::Sent {
        carrier_message_id: "c-1".into(),
        at,
    };
    refused(sent.clone()).await;
    refused(Transition::Release {
        reason: "not claimed".into(),
    })
    .await;

    let claimed = step(&store, &r, Transition::Claim { at }).await;
    assert_eq!(
        (claimed.status, claimed.attempts, claimed.version),
        (RecipientStatus::Sending, 1, 1)
    );
    assert_eq!(claimed.claimed_at, Some(at));
    assert_eq!(read(&store, &r).await, claimed);
    let stored = read_message(&store, &m).await;
    assert_eq!((stored.counts.queued, stored.counts.sending), (0, 1));
    assert_eq!(stored.status, "sending");
    assert_eq!(stored.sent_at, Some(at), "sending began");

    refused(Transition::Cancel { at }).await;
    let after_sent = step(&store, &r, sent).await;
    assert_eq!(after_sent.carrier_message_id.as_deref(), Some("c-1"));
    refused(Transition::Delivered {
        carrier_message_id: "someone-else".into(),
        at,
    })
    .await;
    let done = step(
        &store,
        &r,
        Transition::Delivered {
            carrier_message_id: "c-1".into(),
            at,
        },
    )
    .await;
    assert_eq!((done.status, done.version), (RecipientStatus::Delivered, 3));
    refused(Transition::Failed {
        carrier_message_id: Some("c-1".into()),
        error: RecipientError::from_carrier_code(4720),
        at,
    })
    .await;

    let stored = read_message(&store, &m).await;
    assert_eq!(stored.status, "delivered");
    assert_eq!(
        stored.counts,
        Counts::of([RecipientStatus::Delivered].iter())
    );
    assert_eq!(stored.sent_at, Some(at));
    let (_, recipients) = store
        .get_message(practice_id, &m.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recipients, vec![done]);
}

/// A transition computed from a read older than the stored version is
/// refused even when it would move the stored recipient forward.
pub async fn transition_from_a_stale_read_is_refused<S: Store>(store: S, practice_id: &str) {
    let (m, r) = direct(practice_id, RecipientStatus::Queued, now());
    create(&store, &m, std::slice::from_ref(&r), None).await;
    let first_claim = now();
    let stale = read(&store, &r).await;
    step(&store, &r, Transition::Claim { at: first_claim }).await;
    assert_eq!(
        store
            .transition(&stale, &Transition::Claim { at: now() })
            .await
            .unwrap(),
        None,
        "a concurrent claim loses"
    );
    let released = step(
        &store,
        &r,
        Transition::Release {
            reason: "carrier 503".into(),
        },
    )
    .await;
    assert_eq!(
        (released.status, released.version),
        (RecipientStatus::Queued, 2)
    );
    // Queued again, as in `stale`, but two versions on.
    assert_eq!(
        store
            .transition(&stale, &Transition::Claim { at: now() })
            .await
            .unwrap(),
        None
    );
    assert_eq!(read(&store, &r).await, released);

    let second_claim = first_claim + Duration::seconds(10);
    let again = step(&store, &r, Transition::Claim { at: second_claim }).await;
    assert_eq!((again.attempts, again.version), (2, 3));
    let stored = read_message(&store, &m).await;
    assert_eq!(stored.counts.sending, 1);
    assert_eq!(stored.counts.queued, 0);
    assert_eq!(
        stored.sent_at,
        Some(first_claim),
        "sending began at the first claim"
    );
}

/// Rescheduling moves the recipient's `not_before` and the message's
/// `send_at`, and with it the message's place in the tracking list.
pub async fn reschedule_moves_the_message_send_time<S: Store>(store: S, practice_id: &str) {
    let (m, r) = direct(practice_id, RecipientStatus::Scheduled, now());
    create(&store, &m, std::slice::from_ref(&r), None).await;
    let send_at = m.send_at.unwrap() + Duration::days(1);
    let not_before = send_at + Duration::hours(1);
    let moved = step(
        &store,
        &r,
        Transition::Reschedule {
            send_at,
            not_before,
        },
    )
    .await;
    assert_eq!(
        (moved.status, moved.not_before),
        (RecipientStatus::Scheduled, Some(not_before))
    );
    let stored = read_message(&store, &m).await;
    assert_eq!(stored.send_at, Some(send_at));
    assert_eq!(stored.status, "scheduled");
    assert_eq!(stored.counts, m.counts);
    let listed = store
        .communications(
            practice_id,
            &TrackingIndex::TypeStatus(MessageType::DirectMessage, "scheduled".into()),
            "0",
            "~",
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed, vec![stored.clone()]);
    assert!(tracking_key(&stored).starts_with(&crate::domain::clock::to_api_time(&send_at)));
    let old_place = tracking_key(&m);
    let at_old_place = store
        .communications(practice_id, &TrackingIndex::All, &old_place, &old_place, 10)
        .await
        .unwrap();
    assert!(at_old_place.is_empty(), "not listed at its old time");
}

/// A bulk is stored with its recipients and idempotency record; a second
/// bulk with the same key stores nothing, not even its recipients.
pub async fn bulk_is_stored_with_its_recipients_and_idempotency_record<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let statuses = [Queued, Queued, Queued, Skipped];
    let (mut m, rs) = bulk(practice_id, &statuses, "", Some("*pump-1"));
    m.status = bulk_status_of(&m).into();
    let rec = idempotency(practice_id, "bulk-1", m.created_at);
    assert_eq!(
        store.create_bulk(&m, &rs, Some(&rec)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(read_message(&store, &m).await, m);
    let (stored, recipients) = store
        .get_message(practice_id, &m.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored, recipients), (m.clone(), rs.clone()));
    assert_eq!(
        store.get_idempotency(practice_id, "bulk-1").await.unwrap(),
        Some(rec)
    );

    let (m2, rs2) = bulk(practice_id, &statuses, "sending", Some("*pump-2"));
    let rec2 = idempotency(practice_id, "bulk-1", m2.created_at);
    assert_eq!(
        store.create_bulk(&m2, &rs2, Some(&rec2)).await.unwrap(),
        CreateOutcome::IdempotencyKeyTaken
    );
    assert_eq!(
        store.get_message_only(practice_id, &m2.id).await.unwrap(),
        None
    );
    let (left, next) = store
        .recipients_page(practice_id, &m2.id, None, 10, None)
        .await
        .unwrap();
    assert!(left.is_empty() && next.is_none(), "its recipients are gone");
    for r in &rs2 {
        assert_eq!(store.get_recipient(&r.job()).await.unwrap(), None);
    }
}

/// Recipient pages are in list order, continue after the last id shown,
/// and can be limited to one status.
pub async fn recipient_pages_follow_the_cursor_and_status_filter<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let statuses = [Queued, Queued, Queued, Queued, Queued, Skipped, Skipped];
    let (m, rs) = bulk(practice_id, &statuses, "sending", None);
    create_bulk(&store, &m, &rs).await;
    let page = |status: Option<RecipientStatus>, limit: u32, after: Option<String>| {
        let store = &store;
        let m = &m;
        async move {
            let (page, next) = store
                .recipients_page(&m.practice_id, &m.id, status, limit, after.as_deref())
                .await
                .unwrap();
            (ids(&page, |r| &r.recipient_id), next)
        }
    };
    let (first, next) = page(None, 3, None).await;
    assert_eq!(first, ["00001", "00002", "00003"]);
    assert_eq!(next.as_deref(), Some("00003"));
    let (second, next) = page(None, 3, next).await;
    assert_eq!(second, ["00004", "00005", "00006"]);
    let (third, next) = page(None, 3, next).await;
    assert_eq!((third, next), (vec!["00007".to_string()], None));
    assert_eq!(page(None, 7, None).await.1, None, "an exact fit ends");
    assert_eq!(page(None, 6, None).await.1.as_deref(), Some("00006"));

    let (skipped, next) = page(Some(Skipped), 1, None).await;
    assert_eq!(
        (skipped, next.as_deref()),
        (vec!["00006".into()], Some("00006"))
    );
    let (skipped, next) = page(Some(Skipped), 1, next).await;
    assert_eq!((skipped, next), (vec!["00007".into()], None));
    let (queued, next) = page(Some(Queued), 10, None).await;
    assert_eq!((queued.len(), next), (5, None));
    let (queued, next) = page(Some(Queued), 2, Some("00003".into())).await;
    assert_eq!((queued, next), (vec!["00004".into(), "00005".into()], None));
    assert_eq!(page(Some(Sending), 10, None).await, (vec![], None));

    // Pages show each recipient as it is now.
    send(&store, &rs[1]).await;
    let (sent, _) = page(Some(Sent), 10, None).await;
    assert_eq!(sent, ["00002"]);
    let (full, _) = store
        .recipients_page(practice_id, &m.id, None, 2, None)
        .await
        .unwrap();
    assert_eq!(full[0], rs[0]);
    assert_eq!(full[1], read(&store, &rs[1]).await);
}

/// The pump records progress only while its token is the live one and the
/// bulk is not canceled; stopping is idempotent and needs a bulk.
pub async fn pump_advances_only_with_the_live_token_until_stopped<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let (m, rs) = bulk(practice_id, &[Queued; 5], "sending", Some("*a"));
    create_bulk(&store, &m, &rs).await;
    let progress = || async { read_message(&store, &m).await.bulk.unwrap() };
    let advance = |token: &'static str, released: u32, next: Option<&'static str>| {
        let store = &store;
        let m = &m;
        async move {
            store
                .advance_pump(&m.practice_id, &m.id, token, released, next)
                .await
                .unwrap()
        }
    };

    assert!(!advance("*wrong", 3, Some("*b")).await);
    assert!(advance("*a", 3, Some("*b")).await);
    let p = progress().await;
    assert_eq!((p.released, p.pump.as_deref()), (3, Some("*b")));
    assert!(!advance("*a", 4, Some("*c")).await, "a duplicate run loses");
    assert!(advance("*b", 5, None).await);
    let p = progress().await;
    assert_eq!((p.released, p.pump), (5, None));
    assert!(!advance("*b", 5, None).await);

    let (other, ors) = bulk(practice_id, &[Queued; 2], "sending", Some("*x"));
    create_bulk(&store, &other, &ors).await;
    let first = now();
    store
        .stop_bulk(practice_id, &other.id, first)
        .await
        .unwrap();
    let stopped = read_message(&store, &other).await.bulk.unwrap();
    assert_eq!((stopped.pump, stopped.canceled_at), (None, Some(first)));
    assert!(!store
        .advance_pump(practice_id, &other.id, "*x", 2, None)
        .await
        .unwrap());
    store
        .stop_bulk(practice_id, &other.id, first + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        read_message(&store, &other).await.bulk.unwrap().canceled_at,
        Some(first),
        "canceled when first stopped"
    );
    assert_eq!(read_message(&store, &other).await.status, "sending");

    assert!(!store
        .advance_pump(practice_id, "no-such-bulk", "*x", 1, None)
        .await
        .unwrap());
    assert!(store
        .stop_bulk(practice_id, "no-such-bulk", first)
        .await
        .is_err());
    let (d, dr) = direct(practice_id, Queued, now());
    create(&store, &d, &[dr], None).await;
    assert!(
        store.stop_bulk(practice_id, &d.id, first).await.is_err(),
        "a direct message is no bulk"
    );
}

/// A bulk's stored status moves only from the status the caller names, and
/// the time sending began is set once.
pub async fn bulk_status_changes_only_from_the_expected_status<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let (m, rs) = bulk(practice_id, &[Scheduled; 3], "scheduled", Some("*a"));
    create_bulk(&store, &m, &rs).await;
    let began = now();
    let set = |from: BulkStatus, to: BulkStatus, at: Option<DateTime<Utc>>| {
        let store = &store;
        let m = &m;
        async move {
            store
                .set_bulk_status(&m.practice_id, &m.id, from, to, at)
                .await
                .unwrap()
        }
    };
    let sending = || async { ids(&store.sending_bulks(practice_id).await.unwrap(), |m| &m.id) };
    assert!(sending().await.is_empty());

    assert!(!set(BulkStatus::Sending, BulkStatus::Sending, Some(began)).await);
    assert!(set(BulkStatus::Scheduled, BulkStatus::Sending, Some(began)).await);
    let stored = read_message(&store, &m).await;
    assert_eq!(
        (stored.status.as_str(), stored.sent_at),
        ("sending", Some(began))
    );
    assert_eq!(sending().await, vec![m.id.clone()]);
    assert!(
        !set(
            BulkStatus::Sending,
            BulkStatus::Sending,
            Some(began + Duration::seconds(9))
        )
        .await,
        "sending began once"
    );
    assert_eq!(read_message(&store, &m).await.sent_at, Some(began));
    let listed = store
        .communications(practice_id, &TrackingIndex::All, "0", "~", 10)
        .await
        .unwrap();
    assert_eq!(ids(&listed, |m| &m.id), vec![m.id.clone()]);
    assert_eq!(tracking_key(&listed[0]), tracking_key(&stored));

    assert!(set(BulkStatus::Sending, BulkStatus::Canceled, None).await);
    assert_eq!(read_message(&store, &m).await.status, "canceled");
    assert!(sending().await.is_empty());
    assert!(!set(BulkStatus::Sending, BulkStatus::Completed, None).await);
    assert!(!store
        .set_bulk_status(
            practice_id,
            "no-such-bulk",
            BulkStatus::Sending,
            BulkStatus::Completed,
            None
        )
        .await
        .unwrap());
}

/// The one completion rule (`domain::message::bulk_completes`): after a
/// recipient reaches a final status, a bulk stored as `sending` becomes
/// `completed` once no recipient is scheduled, queued, sending or sent.
pub async fn bulk_completes_when_sending_and_every_recipient_is_final<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let (m, rs) = bulk(practice_id, &[Queued, Queued, Skipped], "sending", None);
    create_bulk(&store, &m, &rs).await;
    let status = || async { read_message(&store, &m).await.status };

    send(&store, &rs[0]).await;
    let stored = read_message(&store, &m).await;
    assert_eq!(
        stored.sent_at, None,
        "a bulk's claims do not set its sent_at"
    );
    assert_eq!(stored.status, "sending");
    step(&store, &rs[0], delivered(&rs[0])).await;
    assert_eq!(status().await, "sending", "one is still queued");

    let sent = send(&store, &rs[1]).await;
    assert_eq!(status().await, "sending", "sent awaits its delivery report");
    step(
        &store,
        &rs[1],
        Transition::Failed {
            carrier_message_id: sent.carrier_message_id.clone(),
            error: RecipientError::from_carrier_code(4720),
            at: now(),
        },
    )
    .await;
    let stored = read_message(&store, &m).await;
    assert_eq!(stored.status, "completed");
    assert_eq!(
        stored.counts,
        Counts::of([Delivered, Failed, Skipped].iter())
    );
    assert!(store.sending_bulks(practice_id).await.unwrap().is_empty());
    let completed = store
        .communications(
            practice_id,
            &TrackingIndex::TypeStatus(MessageType::BulkMessage, "completed".into()),
            "0",
            "~",
            10,
        )
        .await
        .unwrap();
    assert_eq!(completed, vec![stored]);
}

/// Only the pump's first wave (and a cancel) change a bulk's stored status
/// before it completes: recipient transitions leave `scheduled` alone, and a
/// bulk whose recipients all ended before sending began stays as stored.
pub async fn bulk_does_not_complete_before_sending_began<S: Store>(store: S, practice_id: &str) {
    use RecipientStatus::*;
    let (m, rs) = bulk(practice_id, &[Scheduled, Scheduled], "scheduled", None);
    create_bulk(&store, &m, &rs).await;
    let status = || async { read_message(&store, &m).await.status };

    step(&store, &rs[0], Transition::Queue).await;
    assert_eq!(status().await, "scheduled");
    let sent = send(&store, &rs[0]).await;
    assert_eq!(status().await, "scheduled");
    step(&store, &rs[0], delivered(&sent)).await;
    step(&store, &rs[1], Transition::Cancel { at: now() }).await;
    let stored = read_message(&store, &m).await;
    assert_eq!(stored.counts, Counts::of([Delivered, Canceled].iter()));
    assert_eq!(stored.status, "scheduled", "completed only from sending");
    assert_eq!(stored.sent_at, None);
}

/// Several recipients of one message move together or not at all, and
/// only the recipients and the message's counts change (a cancel then sets
/// the bulk's status itself).
pub async fn many_transitions_are_all_or_nothing_and_move_counts_only<S: Store>(
    store: S,
    practice_id: &str,
) {
    use RecipientStatus::*;
    let (m, rs) = bulk(practice_id, &[Queued, Queued, Queued], "sending", None);
    create_bulk(&store, &m, &rs).await;
    let cancel = Transition::Cancel { at: now() };
    assert!(store.transition_many(&[], &cancel).await.unwrap());

    let stale: Vec<Recipient> = rs.clone();
    step(&store, &rs[1], Transition::Claim { at: now() }).await;
    assert!(
        !store.transition_many(&stale, &cancel).await.unwrap(),
        "one changed since read"
    );
    let fresh = vec![
        read(&store, &rs[0]).await,
        read(&store, &rs[1]).await,
        read(&store, &rs[2]).await,
    ];
    assert!(
        !store.transition_many(&fresh, &cancel).await.unwrap(),
        "a sending recipient cannot be canceled"
    );
    assert_eq!(fresh[0], rs[0]);
    assert_eq!(read(&store, &rs[0]).await, rs[0], "nothing moved");
    assert_eq!(read(&store, &rs[2]).await, rs[2]);

    let waiting = [fresh[0].clone(), fresh[2].clone()];
    assert!(store.transition_many(&waiting, &cancel).await.unwrap());
    for r in &waiting {
        let now_stored = read(&store, r).await;
        assert_eq!(
            (now_stored.status, now_stored.version),
            (Canceled, r.version + 1)
        );
    }
    let stored = read_message(&store, &m).await;
    assert_eq!(
        stored.counts,
        Counts::of([Canceled, Sending, Canceled].iter())
    );
    assert_eq!(stored.status, "sending");
    assert!(
        !store.transition_many(&waiting, &cancel).await.unwrap(),
        "done once"
    );

    // The last one finishing completes the bulk.
    let sent = step(
        &store,
        &rs[1],
        Transition::Sent {
            carrier_message_id: carrier_id(&rs[1]),
            at: now(),
        },
    )
    .await;
    step(&store, &rs[1], delivered(&sent)).await;
    assert_eq!(read_message(&store, &m).await.status, "completed");

    // Canceling every recipient leaves the stored status to the caller.
    let (all, all_rs) = bulk(practice_id, &[Queued, Scheduled], "sending", None);
    create_bulk(&store, &all, &all_rs).await;
    assert!(store.transition_many(&all_rs, &cancel).await.unwrap());
    let stored = read_message(&store, &all).await;
    assert_eq!(stored.counts, Counts::of([Canceled, Canceled].iter()));
    assert_eq!(stored.status, "sending");
}

/// The tracking list: newest first by tracking key, `[low, high]`
/// inclusive, at most `limit`, one partition per type and status that
/// follows every status change.
pub async fn tracking_list_pages_newest_first_within_bounds<S: Store>(store: S, practice_id: &str) {
    use RecipientStatus::*;
    let start = now() - Duration::minutes(10);
    let mut messages = Vec::new();
    for i in 0..4 {
        let (m, r) = direct(practice_id, Queued, start + Duration::minutes(i));
        create(&store, &m, std::slice::from_ref(&r), None).await;
        messages.push((m, r));
    }
    let (b, brs) = bulk(practice_id, &[Queued], "sending", None);
    create_bulk(&store, &b, &brs).await;
    let list = |index: TrackingIndex, low: String, high: String, limit: u32| {
        let store = &store;
        async move {
            let found = store
                .communications(practice_id, &index, &low, &high, limit)
                .await
                .unwrap();
            ids(&found, |m| &m.id)
        }
    };
    let id = |i: usize| messages[i].0.id.clone();
    let key = |i: usize| tracking_key(&messages[i].0);
    let all = || TrackingIndex::All;
    let queued = || TrackingIndex::TypeStatus(MessageType::DirectMessage, "queued".into());

    assert_eq!(
        list(all(), "0".into(), "~".into(), 10).await,
        [b.id.clone(), id(3), id(2), id(1), id(0)]
    );
    assert_eq!(
        list(all(), "0".into(), key(2), 2).await,
        [id(2), id(1)],
        "high is inclusive"
    );
    assert_eq!(
        list(all(), key(1), key(2), 10).await,
        [id(2), id(1)],
        "low is inclusive"
    );
    assert_eq!(
        list(queued(), "0".into(), "~".into(), 10).await,
        [id(3), id(2), id(1), id(0)]
    );
    assert_eq!(
        list(
            TrackingIndex::TypeStatus(MessageType::BulkMessage, "sending".into()),
            "0".into(),
            "~".into(),
            10
        )
        .await,
        vec![b.id.clone()]
    );

    // The oldest starts sending: it leaves `queued` and sorts by that time.
    let began = now() + Duration::seconds(1);
    step(&store, &messages[0].1, Transition::Claim { at: began }).await;
    assert_eq!(
        list(queued(), "0".into(), "~".into(), 10).await,
        [id(3), id(2), id(1)]
    );
    let sending = TrackingIndex::TypeStatus(MessageType::DirectMessage, "sending".into());
    let found = store
        .communications(practice_id, &sending, "0", "~", 10)
        .await
        .unwrap();
    assert_eq!(found, vec![read_message(&store, &messages[0].0).await]);
    assert_eq!(list(all(), "0".into(), "~".into(), 1).await, [id(0)]);
    assert!(list(all(), "0".into(), "~".into(), 10)
        .await
        .contains(&b.id));
    assert!(store
        .communications(&format!("{practice_id}-other"), &all(), "0", "~", 10)
        .await
        .unwrap()
        .is_empty());
}

/// STOP and START per practice and number, read back singly and as the set
/// of numbers opted out.
pub async fn opt_outs_are_per_practice_and_reversible<S: Store>(store: S, practice_id: &str) {
    let other = format!("{practice_id}-other");
    let (first, second) = (phone(), phone());
    let change = |practice: &str, phone: &PhoneNumber, opted_out: bool| OptOutChange {
        practice_id: practice.to_string(),
        phone: phone.to_string(),
        opted_out,
        keyword: if opted_out { "STOP" } else { "START" }.into(),
        source: "sms".into(),
        at: now(),
    };
    let opted_out = |practice: String, phone: PhoneNumber| {
        let store = &store;
        async move { store.is_opted_out(&practice, phone.as_str()).await.unwrap() }
    };
    assert!(!opted_out(practice_id.into(), first.clone()).await);
    assert!(store
        .opted_out_numbers(practice_id)
        .await
        .unwrap()
        .is_empty());

    store
        .record_opt_out(&change(practice_id, &first, true))
        .await
        .unwrap();
    store
        .record_opt_out(&change(practice_id, &second, true))
        .await
        .unwrap();
    assert!(opted_out(practice_id.into(), first.clone()).await);
    assert!(
        !opted_out(other.clone(), first.clone()).await,
        "per practice"
    );
    assert_eq!(
        store.opted_out_numbers(practice_id).await.unwrap(),
        HashSet::from([first.to_string(), second.to_string()])
    );

    store
        .record_opt_out(&change(practice_id, &second, false))
        .await
        .unwrap();
    assert!(!opted_out(practice_id.into(), second.clone()).await);
    assert_eq!(
        store.opted_out_numbers(practice_id).await.unwrap(),
        HashSet::from([first.to_string()])
    );
    store
        .record_opt_out(&change(practice_id, &second, true))
        .await
        .unwrap();
    assert!(opted_out(practice_id.into(), second).await, "STOP again");
    assert!(store.opted_out_numbers(&other).await.unwrap().is_empty());
}

/// A rate bucket is written only if its `count` is still the one read (or
/// it is still absent); buckets are per practice and key.
pub async fn rate_bucket_writes_are_conditioned_on_the_count<S: Store>(
    store: S,
    practice_id: &str,
) {
    let number_key = format!("number#{}", phone());
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (RateBucket::default(), None)
    );
    let one = RateBucket {
        count: 1,
        slots: vec![1_700_000_000_000],
    };
    let two = RateBucket {
        count: 2,
        slots: vec![1_700_000_000_000, 1_700_000_001_000],
    };
    assert!(!store
        .write_bucket(practice_id, "bulk", &one, Some(0))
        .await
        .unwrap());
    assert!(store
        .write_bucket(practice_id, "bulk", &one, None)
        .await
        .unwrap());
    assert!(
        !store
            .write_bucket(practice_id, "bulk", &one, None)
            .await
            .unwrap(),
        "another writer created it first"
    );
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (one.clone(), Some(1))
    );
    assert!(!store
        .write_bucket(practice_id, "bulk", &two, Some(0))
        .await
        .unwrap());
    assert!(store
        .write_bucket(practice_id, "bulk", &two, Some(1))
        .await
        .unwrap());
    assert_eq!(
        store.read_bucket(practice_id, "bulk").await.unwrap(),
        (two, Some(2))
    );

    assert_eq!(
        store.read_bucket(practice_id, &number_key).await.unwrap(),
        (RateBucket::default(), None)
    );
    assert!(store
        .write_bucket(practice_id, &number_key, &one, None)
        .await
        .unwrap());
    assert_eq!(
        store.read_bucket(practice_id, &number_key).await.unwrap(),
        (one, Some(1))
    );
    assert_eq!(
        store
            .read_bucket(&format!("{practice_id}-other"), "bulk")
            .await
            .unwrap(),
        (RateBucket::default(), None)
    );
}

/// Quick Messages: stored whole, replaced, listed in id order in pages,
/// deleted once.
pub async fn templates_round_trip_page_and_delete<S: Store>(store: S, practice_id: &str) {
    let at = now();
    let templates: Vec<QuickMessage> = (1..=5)
        .map(|i| QuickMessage {
            id: format!("0190-{i:02}"),
            name: format!("Template {i}"),
            body: format!("Hi {{first_name}}, reminder {i}"),
            created_at: at,
            updated_at: at,
        })
        .collect();
    for t in templates.iter().rev() {
        store.put_template(practice_id, t).await.unwrap();
    }
    assert_eq!(
        store.get_template(practice_id, "0190-02").await.unwrap(),
        Some(templates[1].clone())
    );
    assert_eq!(store.get_template(practice_id, "nope").await.unwrap(), None);

    let (page, next) = store.list_templates(practice_id, 2, None).await.unwrap();
    assert_eq!(page, templates[..2].to_vec());
    assert_eq!(next.as_deref(), Some("0190-02"));
    let (page, next) = store
        .list_templates(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&page, |t| &t.id), ["0190-03", "0190-04"]);
    let (page, next) = store
        .list_templates(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(
        (ids(&page, |t| &t.id), next),
        (vec!["0190-05".into()], None)
    );

    let mut changed = templates[2].clone();
    changed.name = "Running late".into();
    changed.updated_at = at + Duration::minutes(1);
    store.put_template(practice_id, &changed).await.unwrap();
    assert_eq!(
        store.get_template(practice_id, "0190-03").await.unwrap(),
        Some(changed)
    );

    assert!(store.delete_template(practice_id, "0190-03").await.unwrap());
    assert!(!store.delete_template(practice_id, "0190-03").await.unwrap());
    assert_eq!(
        store.get_template(practice_id, "0190-03").await.unwrap(),
        None
    );
    let (page, next) = store.list_templates(practice_id, 10, None).await.unwrap();
    assert_eq!(
        (ids(&page, |t| &t.id), next),
        (
            vec![
                "0190-01".into(),
                "0190-02".into(),
                "0190-04".into(),
                "0190-05".into()
            ],
            None
        )
    );
    assert!(store
        .list_templates(&format!("{practice_id}-other"), 10, None)
        .await
        .unwrap()
        .0
        .is_empty());
}

/// Runner 1: every case against a fresh [`MemoryStore`](super::MemoryStore).
#[cfg(test)]
mod memory_store {
    macro_rules! memory_case {
        ($case:ident) => {
            #[tokio::test]
            async fn $case() {
                super::$case(crate::testing::MemoryStore::default(), "conformance").await;
            }
        };
    }

    crate::conformance_cases!(memory_case);
}
