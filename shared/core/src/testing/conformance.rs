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
use crate::domain::conversation::{
    Conversation, ConversationStatus, InboundEntry, InboxFilter, MediaItem, MediaStatus,
    OutboundEntry, OutboundKind, PatientRef, StoredConversation, ThreadItem,
};
use crate::domain::events::{Delivery, DeliveryJob, DeliveryState, EventDelivery, EventType};
use crate::domain::message::{
    bulk_status_of, BulkStatus, Counts, Message, MessageStatus, MessageType, Recipient,
    RecipientError, RecipientStatus, SendJob, Transition,
};
use crate::domain::patient::{Patient, UndeliverableNumber};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Channels, Practice, QuietHours};
use crate::domain::rate_limit::RateBucket;
use crate::domain::template::QuickMessage;
use crate::domain::text::Encoding;
use crate::domain::webhook::{EndpointStatus, EventEndpoint, SigningSecret, MAX_ENDPOINTS};
use crate::ports::{
    inbox_key, tracking_key, BulkStore, ConversationStore, CreateOutcome, IdempotencyRecord,
    MessageStore, OptOutChange, OptOutStore, PracticeStore, RateStore, SaveConversation,
    StaffCreated, StaffStore, TemplateStore, TrackingIndex,
};
use crate::ports::{CreateEndpoint, EventFilter, EventStore};

/// Every store port the use cases need, as one bound.
pub trait Store:
    PracticeStore
    + MessageStore
    + BulkStore
    + OptOutStore
    + TemplateStore
    + RateStore
    + ConversationStore
    + EventStore
    + StaffStore
{
}

impl<T> Store for T where
    T: PracticeStore
        + MessageStore
        + BulkStore
        + OptOutStore
        + TemplateStore
        + RateStore
        + ConversationStore
        + EventStore
        + StaffStore
{
}

/// Calls `$runner!(case)` for every case of the suite; a runner macro turns
/// each into a test. Adding a case here adds it to every runner.
#[macro_export]
macro_rules! conformance_cases {
    ($runner:ident) => {
        $runner!(practice_settings_round_trip);
        $runner!(a_change_and_its_event_are_one_write);
        $runner!(event_endpoints_are_limited_per_practice);
        $runner!(delivery_attempts_are_claimed_once_and_recorded_by_their_claimer);
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
        $runner!(conversation_is_created_once_and_saved_over_the_version_read);
        $runner!(a_recorded_thread_entry_is_not_recorded_twice);
        $runner!(inbox_filters_by_status_unread_and_assignee);
        $runner!(inbox_follows_changes_of_status_read_assignee_and_activity);
        $runner!(inbox_pages_follow_the_cursor_across_both_statuses);
        $runner!(thread_pages_newest_first_with_equal_times_in_id_order);
        $runner!(patients_with_a_number_follow_number_changes);
        $runner!(racing_number_changes_leave_one_listing);
        $runner!(recipients_are_read_in_the_order_asked);
        $runner!(media_status_is_recorded_on_its_attachment);
        $runner!(staff_accounts_take_their_user_name_once);
        $runner!(sessions_are_read_by_digest_and_ended_alone_or_by_staff_member);
        $runner!(login_failures_count_within_their_window_and_restart_after_it);
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
        origin: None,
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
    m.status = MessageStatus::parse(stored_status).unwrap_or_default();
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
        pending: true,
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
        .transition(&current, &t, now())
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
    assert_eq!(owner(main.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(
        owner(alt.clone()).await,
        None,
        "the number given up is free"
    );
    assert_eq!(owner(other.clone()).await.as_deref(), Some(practice_id));

    // Another practice cannot take a number over, as main or alt; what it
    // tried to store is not stored. A number given up is free to take.
    let second_id = format!("{practice_id}-second");
    for taken in [main.clone(), other.clone()] {
        let mut second = practice(&second_id);
        second.channels.sms_alt = Some(taken.clone());
        let e = store.put_practice(&second).await.unwrap_err();
        assert!(e.to_string().contains("belongs to another practice"), "{e}");
        assert_eq!(owner(taken).await.as_deref(), Some(practice_id));
        assert!(store.get_practice(&second_id).await.unwrap().is_none());
        assert_eq!(owner(second.channels.sms_main).await, None);
    }
    let mut second = practice(&second_id);
    second.channels.sms_alt = Some(alt.clone());
    store.put_practice(&second).await.unwrap();
    assert_eq!(owner(alt).await.as_deref(), Some(second_id.as_str()));
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
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
        None
    );
    create(&store, &m1, std::slice::from_ref(&r1), Some(&rec1)).await;
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
        Some(rec1.clone())
    );
    // Expiry is judged at the caller's `now`, never the machine's clock.
    let just_before = rec1.expires_at - Duration::milliseconds(1);
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", just_before)
            .await
            .unwrap(),
        Some(rec1.clone())
    );
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", rec1.expires_at)
            .await
            .unwrap(),
        None,
        "expired at the caller's now"
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
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
        Some(rec1.clone()),
        "the first answer stays"
    );
    // Settled once its message is handed over; settling again, or a key
    // with no record, changes nothing.
    store
        .settle_idempotency(practice_id, "order-1")
        .await
        .unwrap();
    store
        .settle_idempotency(practice_id, "order-1")
        .await
        .unwrap();
    store
        .settle_idempotency(practice_id, "no-such-key")
        .await
        .unwrap();
    let settled = IdempotencyRecord {
        pending: false,
        ..rec1.clone()
    };
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
        Some(settled)
    );
    assert_eq!(
        store
            .get_idempotency(practice_id, "no-such-key", now())
            .await
            .unwrap(),
        None
    );

    // A refused send is removed with its record: the key is free again.
    store
        .remove_message(&m1, std::slice::from_ref(&r1), Some(&rec1))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
        None
    );
    create(&store, &m2, std::slice::from_ref(&r2), Some(&rec2)).await;
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-1", now())
            .await
            .unwrap(),
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
        store
            .get_idempotency(practice_id, "order-7", now())
            .await
            .unwrap(),
        None,
        "an expired record is absent"
    );

    let at = now();
    let (m, r) = direct(practice_id, RecipientStatus::Queued, at);
    let fresh = idempotency(practice_id, "order-7", at);
    create(&store, &m, std::slice::from_ref(&r), Some(&fresh)).await;
    assert_eq!(
        store
            .get_idempotency(practice_id, "order-7", now())
            .await
            .unwrap(),
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
        store
            .get_idempotency(practice_id, "bulk-7", now())
            .await
            .unwrap(),
        None
    );
    let (b2, brs2) = bulk(practice_id, &[RecipientStatus::Queued], "sending", None);
    let fresh = idempotency(practice_id, "bulk-7", b2.created_at);
    assert_eq!(
        store.create_bulk(&b2, &brs2, Some(&fresh)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store
            .get_idempotency(practice_id, "bulk-7", now())
            .await
            .unwrap(),
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
                store.transition(&current, &t, now()).await.unwrap(),
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
            .transition(&stale, &Transition::Claim { at: now() }, now())
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
            .transition(&stale, &Transition::Claim { at: now() }, now())
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
        store
            .get_idempotency(practice_id, "bulk-1", now())
            .await
            .unwrap(),
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
    assert!(store.transition_many(&[], &cancel, now()).await.unwrap());

    let stale: Vec<Recipient> = rs.clone();
    step(&store, &rs[1], Transition::Claim { at: now() }).await;
    assert!(
        !store.transition_many(&stale, &cancel, now()).await.unwrap(),
        "one changed since read"
    );
    let fresh = vec![
        read(&store, &rs[0]).await,
        read(&store, &rs[1]).await,
        read(&store, &rs[2]).await,
    ];
    assert!(
        !store.transition_many(&fresh, &cancel, now()).await.unwrap(),
        "a sending recipient cannot be canceled"
    );
    assert_eq!(fresh[0], rs[0]);
    assert_eq!(read(&store, &rs[0]).await, rs[0], "nothing moved");
    assert_eq!(read(&store, &rs[2]).await, rs[2]);

    let waiting = [fresh[0].clone(), fresh[2].clone()];
    assert!(store
        .transition_many(&waiting, &cancel, now())
        .await
        .unwrap());
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
        !store
            .transition_many(&waiting, &cancel, now())
            .await
            .unwrap(),
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
    assert!(store
        .transition_many(&all_rs, &cancel, now())
        .await
        .unwrap());
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
    let asked = [first.to_string(), second.to_string(), phone().to_string()];
    assert!(store
        .opted_out_among(practice_id, &asked)
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
        store.opted_out_among(practice_id, &asked).await.unwrap(),
        HashSet::from([first.to_string(), second.to_string()])
    );

    store
        .record_opt_out(&change(practice_id, &second, false))
        .await
        .unwrap();
    assert!(!opted_out(practice_id.into(), second.clone()).await);
    assert_eq!(
        store.opted_out_among(practice_id, &asked).await.unwrap(),
        HashSet::from([first.to_string()])
    );
    store
        .record_opt_out(&change(practice_id, &second, true))
        .await
        .unwrap();
    assert!(opted_out(practice_id.into(), second).await, "STOP again");
    assert!(store
        .opted_out_among(&other, &asked)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .opted_out_among(practice_id, &[])
        .await
        .unwrap()
        .is_empty());
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

// ------------------------------------------------------ conversations

/// A conversation with a new random number, last active at `at`.
fn conversation_at(
    at: DateTime<Utc>,
    status: ConversationStatus,
    unread: bool,
    assignee: Option<&str>,
) -> Conversation {
    let mut c = Conversation::new(phone(), at);
    c.set_status(status);
    if unread {
        c.mark_unread();
    }
    c.set_assignee(assignee).expect("valid assignee");
    c
}

/// An inbound text from `from` (`STOP` is a keyword, stored as such).
fn inbound_entry(id: &str, from: &PhoneNumber, text: &str, at: DateTime<Utc>) -> ThreadItem {
    ThreadItem::Inbound(InboundEntry::new(
        id,
        from.clone(),
        phone(),
        text,
        at,
        Vec::new(),
    ))
}

fn outbound_entry(practice_id: &str, n: u32, at: DateTime<Utc>) -> ThreadItem {
    ThreadItem::Outbound(OutboundEntry {
        job: SendJob {
            practice_id: practice_id.to_string(),
            message_id: format!("m-{n}"),
            recipient_id: "00001".into(),
        },
        text: "See you at 3".into(),
        at,
        kind: OutboundKind::Reply,
    })
}

/// Saves `c` (created or over its version), expects it stored, and answers
/// it as now stored.
async fn save<S: Store>(
    store: &S,
    practice_id: &str,
    c: &Conversation,
    created: bool,
    entry: Option<&ThreadItem>,
) -> Conversation {
    let outcome = store
        .save_conversation(practice_id, c, created, &[], entry, now())
        .await
        .unwrap();
    assert_eq!(outcome, SaveConversation::Saved, "saving {}", c.id);
    let mut stored = c.clone();
    stored.version += 1;
    stored
}

async fn stored<S: Store>(store: &S, practice_id: &str, c: &Conversation) -> StoredConversation {
    store
        .get_conversation(practice_id, &c.phone)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} is stored", c.id))
}

fn numbers(page: &[StoredConversation]) -> Vec<String> {
    ids(page, |c| c.conversation.phone.as_str())
}

fn numbers_of(cs: &[&Conversation]) -> Vec<String> {
    ids(cs, |c| c.phone.as_str())
}

fn filter(
    status: Option<ConversationStatus>,
    unread_only: bool,
    assignee: Option<&str>,
) -> InboxFilter {
    InboxFilter {
        status,
        unread_only,
        assignee: assignee.map(str::to_string),
    }
}

/// The whole Inbox under `filter`, read in pages of `limit`, checking that
/// every page but the last is full and says where to continue.
async fn inbox<S: Store>(
    store: &S,
    practice_id: &str,
    filter: &InboxFilter,
    limit: u32,
) -> Vec<StoredConversation> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .list_conversations(practice_id, filter, limit, after.as_deref())
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        all.extend(page.iter().cloned());
        match next {
            Some(n) => {
                assert_eq!(page.len(), limit as usize, "only a full page continues");
                assert_eq!(
                    Some(n.clone()),
                    page.last().map(|c| inbox_key(&c.conversation)),
                    "the cursor is the last position returned"
                );
                after = Some(n);
            }
            None => return all,
        }
        assert!(all.len() < 1000, "paging does not end");
    }
}

/// The whole thread, read in pages of `limit`.
async fn whole_thread<S: Store>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    limit: u32,
) -> Vec<ThreadItem> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .thread(practice_id, phone, limit, after.as_deref())
            .await
            .unwrap();
        all.extend(page.iter().cloned());
        match next {
            Some(n) => {
                assert_eq!(page.len(), limit as usize, "only a full page continues");
                assert_eq!(Some(n.clone()), page.last().map(ThreadItem::position));
                after = Some(n);
            }
            None => return all,
        }
        assert!(all.len() < 1000, "paging does not end");
    }
}

/// A conversation exists once: a second creation is a conflict, and every
/// later save must name the version it read.
pub async fn conversation_is_created_once_and_saved_over_the_version_read<S: Store>(
    store: S,
    practice_id: &str,
) {
    let number = phone();
    assert_eq!(
        store.get_conversation(practice_id, &number).await.unwrap(),
        None
    );
    let family = vec![
        PatientRef {
            patient_id: "p-1".into(),
            first_name: "Ada".into(),
            last_name: Some("Lovelace".into()),
        },
        PatientRef {
            patient_id: "p-2".into(),
            first_name: "Byron".into(),
            last_name: None,
        },
    ];
    let mut first = Conversation::new(number.clone(), now());
    first.set_assignee(Some("dr-kim")).unwrap();
    let outcome = store
        .save_conversation(practice_id, &first, true, &family, None, now())
        .await
        .unwrap();
    assert_eq!(outcome, SaveConversation::Saved);
    let read = stored(&store, practice_id, &first).await;
    let mut expected = first.clone();
    expected.version = 1;
    assert_eq!(read.conversation, expected, "stored as version + 1");
    assert_eq!(read.patients, family);

    // A second creation (a racing callback) loses and changes nothing.
    let racing = Conversation::new(number.clone(), now() + Duration::seconds(1));
    assert_eq!(
        store
            .save_conversation(practice_id, &racing, true, &[], None, now())
            .await
            .unwrap(),
        SaveConversation::Conflict
    );
    assert_eq!(stored(&store, practice_id, &first).await, read);

    // Saved over the version read: stored as the next one.
    let mut closed = read.conversation.clone();
    closed.set_status(ConversationStatus::Closed);
    let outcome = store
        .save_conversation(practice_id, &closed, false, &family[..1], None, now())
        .await
        .unwrap();
    assert_eq!(outcome, SaveConversation::Saved);
    let now_stored = stored(&store, practice_id, &first).await;
    assert_eq!(now_stored.conversation.version, 2);
    assert_eq!(now_stored.conversation.status, ConversationStatus::Closed);
    assert_eq!(now_stored.patients, family[..1].to_vec());

    // A save from the stale read (version 1) is refused and changes nothing.
    let mut stale = read.conversation.clone();
    stale.mark_unread();
    assert_eq!(
        store
            .save_conversation(practice_id, &stale, false, &family, None, now())
            .await
            .unwrap(),
        SaveConversation::Conflict
    );
    assert_eq!(stored(&store, practice_id, &first).await, now_stored);

    // A save over a version of a conversation that does not exist.
    let missing = Conversation::new(phone(), now());
    assert_eq!(
        store
            .save_conversation(practice_id, &missing, false, &[], None, now())
            .await
            .unwrap(),
        SaveConversation::Conflict
    );
    assert_eq!(
        store
            .get_conversation(practice_id, &missing.phone)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_conversation(&format!("{practice_id}-other"), &number)
            .await
            .unwrap(),
        None,
        "another practice's conversation with the number is another one"
    );
}

/// A thread entry is recorded once: a redelivered callback finds it there
/// and nothing is stored, even when the conversation changed meanwhile.
pub async fn a_recorded_thread_entry_is_not_recorded_twice<S: Store>(store: S, practice_id: &str) {
    let number = phone();
    let at = now();
    let text = inbound_entry("bw-1", &number, "Can I come at 3?", at);
    let ThreadItem::Inbound(inbound) = &text else {
        unreachable!()
    };
    let mut c = Conversation::new(number.clone(), at);
    c.record_inbound(inbound);
    let c = save(&store, practice_id, &c, true, Some(&text)).await;
    let before = stored(&store, practice_id, &c).await;
    assert_eq!(before.conversation.unread_count, 1);

    // The redelivered callback, over the version it read.
    let mut again = c.clone();
    again.record_inbound(inbound);
    assert_eq!(
        store
            .save_conversation(practice_id, &again, false, &[], Some(&text), now())
            .await
            .unwrap(),
        SaveConversation::DuplicateEntry
    );
    // And over a stale version, or as a creation: still a duplicate.
    let mut stale = again.clone();
    stale.version = 0;
    assert_eq!(
        store
            .save_conversation(practice_id, &stale, false, &[], Some(&text), now())
            .await
            .unwrap(),
        SaveConversation::DuplicateEntry
    );
    assert_eq!(
        store
            .save_conversation(practice_id, &stale, true, &[], Some(&text), now())
            .await
            .unwrap(),
        SaveConversation::DuplicateEntry
    );
    assert_eq!(
        stored(&store, practice_id, &c).await,
        before,
        "nothing changed"
    );
    assert_eq!(
        whole_thread(&store, practice_id, &number, 10).await,
        vec![text.clone()]
    );

    // A new entry over a stale version: a conflict, and the entry is not kept.
    let reply = outbound_entry(practice_id, 1, at + Duration::seconds(5));
    let mut stale = c.clone();
    stale.version = 0;
    assert_eq!(
        store
            .save_conversation(practice_id, &stale, false, &[], Some(&reply), now())
            .await
            .unwrap(),
        SaveConversation::Conflict
    );
    assert_eq!(
        whole_thread(&store, practice_id, &number, 10).await,
        vec![text.clone()]
    );
    // Over the version read, it is.
    let mut replied = c.clone();
    replied.record_outbound(reply.at(), "See you at 3", OutboundKind::Reply);
    save(&store, practice_id, &replied, false, Some(&reply)).await;
    assert_eq!(
        whole_thread(&store, practice_id, &number, 10).await,
        vec![reply, text]
    );
}

/// Each filter of the Inbox, with both statuses merged newest first.
pub async fn inbox_filters_by_status_unread_and_assignee<S: Store>(store: S, practice_id: &str) {
    use ConversationStatus::*;
    let t = now() - Duration::hours(1);
    let at = |m: i64| t + Duration::minutes(m);
    let a = conversation_at(at(1), Open, true, Some("dr-kim"));
    let b = conversation_at(at(2), Open, false, Some("dr-kim"));
    let c = conversation_at(at(3), Open, true, None);
    let d = conversation_at(at(4), Closed, true, Some("dr-kim"));
    let e = conversation_at(at(5), Closed, false, None);
    let f = conversation_at(at(6), Open, false, Some("dr-kimball"));
    // Created in no particular order.
    for x in [&c, &f, &a, &e, &b, &d] {
        save(&store, practice_id, x, true, None).await;
    }
    let list = |status, unread, assignee| {
        let store = &store;
        async move { numbers(&inbox(store, practice_id, &filter(status, unread, assignee), 50).await) }
    };
    let kim = Some("dr-kim");
    assert_eq!(
        list(None, false, None).await,
        numbers_of(&[&f, &e, &d, &c, &b, &a])
    );
    assert_eq!(
        list(Some(Open), false, None).await,
        numbers_of(&[&f, &c, &b, &a])
    );
    assert_eq!(list(Some(Closed), false, None).await, numbers_of(&[&e, &d]));
    assert_eq!(list(None, true, None).await, numbers_of(&[&d, &c, &a]));
    assert_eq!(list(Some(Open), true, None).await, numbers_of(&[&c, &a]));
    assert_eq!(list(Some(Closed), true, None).await, numbers_of(&[&d]));
    assert_eq!(list(None, false, kim).await, numbers_of(&[&d, &b, &a]));
    assert_eq!(list(Some(Open), false, kim).await, numbers_of(&[&b, &a]));
    assert_eq!(list(Some(Closed), false, kim).await, numbers_of(&[&d]));
    assert_eq!(list(None, true, kim).await, numbers_of(&[&d, &a]));
    assert_eq!(list(Some(Open), true, kim).await, numbers_of(&[&a]));
    assert_eq!(list(Some(Closed), true, kim).await, numbers_of(&[&d]));
    assert_eq!(
        list(None, false, Some("dr-kimball")).await,
        numbers_of(&[&f]),
        "an assignee is matched whole, not as a prefix"
    );
    assert!(list(None, false, Some("dr-k")).await.is_empty());
    assert!(list(Some(Closed), true, Some("dr-kimball"))
        .await
        .is_empty());

    // The page holds the conversations as stored, with their patients.
    let page = inbox(&store, practice_id, &filter(Some(Closed), true, kim), 10).await;
    assert_eq!(page, vec![stored(&store, practice_id, &d).await]);
    assert!(inbox(
        &store,
        &format!("{practice_id}-other"),
        &InboxFilter::default(),
        10
    )
    .await
    .is_empty());
}

/// A conversation moves between the Inbox's lists as it is read, closed,
/// reassigned and texted.
pub async fn inbox_follows_changes_of_status_read_assignee_and_activity<S: Store>(
    store: S,
    practice_id: &str,
) {
    use ConversationStatus::*;
    let t = now() - Duration::hours(1);
    let at = |m: i64| t + Duration::minutes(m);
    let kim = Some("dr-kim");
    let a = save(
        &store,
        practice_id,
        &conversation_at(at(1), Open, true, kim),
        true,
        None,
    )
    .await;
    let b = save(
        &store,
        practice_id,
        &conversation_at(at(2), Open, true, None),
        true,
        None,
    )
    .await;
    let c = save(
        &store,
        practice_id,
        &conversation_at(at(3), Open, false, kim),
        true,
        None,
    )
    .await;
    let list = |status, unread, assignee| {
        let store = &store;
        async move { numbers(&inbox(store, practice_id, &filter(status, unread, assignee), 50).await) }
    };

    // b is assigned: it joins dr-kim's lists, unread ones included.
    let mut b2 = b.clone();
    b2.set_assignee(kim).unwrap();
    let b = save(&store, practice_id, &b2, false, None).await;
    assert_eq!(list(None, false, kim).await, numbers_of(&[&c, &b, &a]));
    assert_eq!(list(Some(Open), true, kim).await, numbers_of(&[&b, &a]));

    // a is reassigned: it leaves dr-kim's lists for the new assignee's.
    let mut a2 = a.clone();
    a2.set_assignee(Some("hygienist")).unwrap();
    let a = save(&store, practice_id, &a2, false, None).await;
    assert_eq!(list(None, false, kim).await, numbers_of(&[&c, &b]));
    assert_eq!(list(Some(Open), true, kim).await, numbers_of(&[&b]));
    assert_eq!(list(None, true, Some("hygienist")).await, numbers_of(&[&a]));

    // b is read: it leaves every unread list and stays in the others.
    let mut b2 = b.clone();
    b2.mark_read();
    let b = save(&store, practice_id, &b2, false, None).await;
    assert_eq!(list(None, true, None).await, numbers_of(&[&a]));
    assert!(list(None, true, kim).await.is_empty());
    assert_eq!(
        list(Some(Open), false, None).await,
        numbers_of(&[&c, &b, &a])
    );

    // a is unassigned and closed.
    let mut a2 = a.clone();
    a2.set_assignee(None).unwrap();
    a2.set_status(Closed);
    let a = save(&store, practice_id, &a2, false, None).await;
    assert!(list(None, false, Some("hygienist")).await.is_empty());
    assert_eq!(list(Some(Open), false, None).await, numbers_of(&[&c, &b]));
    assert_eq!(list(Some(Closed), true, None).await, numbers_of(&[&a]));
    assert_eq!(list(None, false, None).await, numbers_of(&[&c, &b, &a]));

    // The patient texts in a: it reopens and is now the newest.
    let mut a2 = a.clone();
    let ThreadItem::Inbound(text) = inbound_entry("bw-9", &a.phone, "Hello?", at(10)) else {
        unreachable!()
    };
    a2.record_inbound(&text);
    let a = save(
        &store,
        practice_id,
        &a2,
        false,
        Some(&ThreadItem::Inbound(text)),
    )
    .await;
    assert_eq!(list(None, false, None).await, numbers_of(&[&a, &c, &b]));
    assert_eq!(list(Some(Open), true, None).await, numbers_of(&[&a]));
    assert!(list(Some(Closed), false, None).await.is_empty());
    assert_eq!(
        stored(&store, practice_id, &a).await.conversation,
        a,
        "as saved, at version {}",
        a.version
    );
}

/// Paging the Inbox with its cursor: every conversation once, in order,
/// whatever the page size, both statuses merged, equal times by number.
pub async fn inbox_pages_follow_the_cursor_across_both_statuses<S: Store>(
    store: S,
    practice_id: &str,
) {
    use ConversationStatus::*;
    let t = now() - Duration::hours(1);
    let mut all = Vec::new();
    for i in 0..7 {
        let status = if i % 3 == 0 { Closed } else { Open };
        all.push(conversation_at(
            t + Duration::minutes(i),
            status,
            i % 2 == 0,
            None,
        ));
    }
    // Two more at the very same millisecond: ordered by number.
    let tie = t + Duration::seconds(90);
    all.push(conversation_at(tie, Open, true, None));
    all.push(conversation_at(tie, Closed, true, None));
    for c in &all {
        save(&store, practice_id, c, true, None).await;
    }
    let mut expected: Vec<&Conversation> = all.iter().collect();
    expected.sort_by_key(|c| std::cmp::Reverse(inbox_key(c)));
    let expected_for = |keep: &dyn Fn(&Conversation) -> bool| {
        numbers_of(
            &expected
                .iter()
                .copied()
                .filter(|c| keep(c))
                .collect::<Vec<_>>(),
        )
    };
    for limit in [1, 2, 3, 4, 9, 10] {
        assert_eq!(
            numbers(&inbox(&store, practice_id, &InboxFilter::default(), limit).await),
            expected_for(&|_| true),
            "pages of {limit}"
        );
        assert_eq!(
            numbers(&inbox(&store, practice_id, &filter(None, true, None), limit).await),
            expected_for(&|c| c.unread_count > 0),
            "unread, pages of {limit}"
        );
        assert_eq!(
            numbers(&inbox(&store, practice_id, &filter(Some(Open), false, None), limit).await),
            expected_for(&|c| c.status == Open),
            "open, pages of {limit}"
        );
    }
    // An exact fit has no next page; a cursor past the end reads nothing.
    let (page, next) = store
        .list_conversations(practice_id, &InboxFilter::default(), 9, None)
        .await
        .unwrap();
    assert_eq!((page.len(), next), (9, None));
    let last = inbox_key(&page[8].conversation);
    let (page, next) = store
        .list_conversations(practice_id, &InboxFilter::default(), 5, Some(&last))
        .await
        .unwrap();
    assert_eq!((page.len(), next), (0, None));
}

/// A thread reads newest first in pages; entries at the same instant are
/// ordered by their id (descending, as the whole thread is).
pub async fn thread_pages_newest_first_with_equal_times_in_id_order<S: Store>(
    store: S,
    practice_id: &str,
) {
    let number = phone();
    let t = now() - Duration::minutes(5);
    let s = |n: i64| t + Duration::seconds(n);
    let mut media = MediaItem::new("https://carrier.example/m/1", "image/jpeg", "media/x/0");
    media.status = MediaStatus::Ready;
    let with_media = ThreadItem::Inbound(InboundEntry::new(
        "bw-media",
        number.clone(),
        phone(),
        "",
        s(4),
        vec![media],
    ));
    // Recorded out of order, as callbacks arrive.
    let entries = vec![
        inbound_entry("bw-3", &number, "Running late", s(3)),
        inbound_entry("bw-1", &number, "Can I come at 3?", s(1)),
        outbound_entry(practice_id, 2, s(2)),
        inbound_entry("bw-b", &number, "STOP", s(2)),
        inbound_entry("bw-a", &number, "HELP", s(2)),
        with_media,
    ];
    let mut c = save(
        &store,
        practice_id,
        &Conversation::new(number.clone(), t),
        true,
        None,
    )
    .await;
    for e in &entries {
        c = save(&store, practice_id, &c, false, Some(e)).await;
    }
    let mut expected = entries.clone();
    expected.sort_by_key(|e| std::cmp::Reverse(e.position()));
    let order: Vec<String> = expected.iter().map(ThreadItem::entry_id).collect();
    assert_eq!(
        order,
        [
            "in-bw-media",
            "in-bw-3",
            "out-m-2-00001",
            "in-bw-b",
            "in-bw-a",
            "in-bw-1"
        ]
    );
    for limit in [1, 2, 4, 6, 7] {
        assert_eq!(
            whole_thread(&store, practice_id, &number, limit).await,
            expected,
            "pages of {limit}"
        );
    }
    let (page, next) = store.thread(practice_id, &number, 6, None).await.unwrap();
    assert_eq!(
        (page.len(), next),
        (6, None),
        "an exact fit has no next page"
    );
    assert!(whole_thread(&store, practice_id, &phone(), 10)
        .await
        .is_empty());
    assert!(
        whole_thread(&store, &format!("{practice_id}-other"), &number, 10)
            .await
            .is_empty()
    );
}

/// The patients listed for a number are those who have it now: a family
/// shares one, and a change of number moves the patient.
pub async fn patients_with_a_number_follow_number_changes<S: Store>(store: S, practice_id: &str) {
    let family = phone();
    let as_ref = |p: &Patient| PatientRef {
        patient_id: p.patient_id.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
    };
    let mut mother = patient("p-2");
    mother.phone = family.clone();
    let mut child = patient("p-1");
    child.first_name = "Byron".into();
    child.last_name = None;
    child.phone = family.clone();
    let stranger = patient("p-3");
    for p in [&mother, &stranger, &child] {
        store.put_patient(practice_id, p).await.unwrap();
    }
    let with = |number: &PhoneNumber| {
        let store = &store;
        let number = number.clone();
        async move {
            store
                .patients_with_phone(practice_id, &number)
                .await
                .unwrap()
        }
    };
    assert_eq!(with(&family).await, vec![as_ref(&child), as_ref(&mother)]);
    assert_eq!(with(&stranger.phone).await, vec![as_ref(&stranger)]);
    assert!(with(&phone()).await.is_empty());

    // The child gets a number of their own.
    let own = phone();
    child.phone = own.clone();
    store.put_patient(practice_id, &child).await.unwrap();
    assert_eq!(with(&family).await, vec![as_ref(&mother)]);
    assert_eq!(with(&own).await, vec![as_ref(&child)]);

    // A new name under the same number is what the number lists.
    mother.first_name = "Augusta".into();
    store.put_patient(practice_id, &mother).await.unwrap();
    assert_eq!(with(&family).await, vec![as_ref(&mother)]);

    // Back to the family number.
    child.phone = family.clone();
    store.put_patient(practice_id, &child).await.unwrap();
    assert_eq!(with(&family).await, vec![as_ref(&child), as_ref(&mother)]);
    assert!(with(&own).await.is_empty());
    assert!(store
        .patients_with_phone(&format!("{practice_id}-other"), &family)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_patient(practice_id, "p-1").await.unwrap(),
        Some(child)
    );
}

/// Number changes racing for one patient leave it listed under exactly the
/// number it ends up with (each write is conditioned on the number it read,
/// and tried again when another got there first).
pub async fn racing_number_changes_leave_one_listing<S: Store>(store: S, practice_id: &str) {
    let first = patient("p-1");
    store.put_patient(practice_id, &first).await.unwrap();
    let moves: Vec<Patient> = (0..4)
        .map(|_| Patient {
            phone: phone(),
            ..first.clone()
        })
        .collect();
    let (a, b, c, d) = tokio::join!(
        store.put_patient(practice_id, &moves[0]),
        store.put_patient(practice_id, &moves[1]),
        store.put_patient(practice_id, &moves[2]),
        store.put_patient(practice_id, &moves[3]),
    );
    for outcome in [a, b, c, d] {
        outcome.unwrap();
    }
    let now_stored = store
        .get_patient(practice_id, "p-1")
        .await
        .unwrap()
        .unwrap();
    assert!(moves.contains(&now_stored));
    for number in moves.iter().map(|p| &p.phone).chain([&first.phone]) {
        let listed = ids(
            &store
                .patients_with_phone(practice_id, number)
                .await
                .unwrap(),
            |p| &p.patient_id,
        );
        if *number == now_stored.phone {
            assert_eq!(listed, ["p-1"]);
        } else {
            assert!(listed.is_empty(), "{number:?} still lists {listed:?}");
        }
    }
}

/// The recipients behind thread entries, in the order asked, `None` where
/// there is none, more than one batch of them.
pub async fn recipients_are_read_in_the_order_asked<S: Store>(store: S, practice_id: &str) {
    let statuses = vec![RecipientStatus::Queued; 105];
    let (b, brs) = bulk(practice_id, &statuses, "sending", None);
    create_bulk(&store, &b, &brs).await;
    let (m, r) = direct(practice_id, RecipientStatus::Queued, now());
    create(&store, &m, std::slice::from_ref(&r), None).await;
    let sent = send(&store, &r).await;

    let unknown = SendJob {
        practice_id: practice_id.to_string(),
        message_id: m.id.clone(),
        recipient_id: "00002".into(),
    };
    let elsewhere = SendJob {
        practice_id: format!("{practice_id}-other"),
        ..r.job()
    };
    let mut jobs = vec![
        brs[7].job(),
        unknown,
        r.job(),
        elsewhere,
        brs[0].job(),
        r.job(),
    ];
    let mut expected = vec![
        Some(brs[7].clone()),
        None,
        Some(sent.clone()),
        None,
        Some(brs[0].clone()),
        Some(sent),
    ];
    for x in brs.iter().rev() {
        jobs.push(x.job());
        expected.push(Some(x.clone()));
    }
    assert_eq!(store.recipients(&jobs).await.unwrap(), expected);
    assert!(store.recipients(&[]).await.unwrap().is_empty());
}

/// The copy status of an inbound text's attachment is recorded on that
/// attachment; an unknown entry or attachment changes nothing.
pub async fn media_status_is_recorded_on_its_attachment<S: Store>(store: S, practice_id: &str) {
    let number = phone();
    let at = now();
    let text = ThreadItem::Inbound(InboundEntry::new(
        "bw-mms",
        number.clone(),
        phone(),
        "my x-ray",
        at,
        vec![
            MediaItem::new("https://carrier.example/m/0", "image/jpeg", "media/a/0"),
            MediaItem::new("https://carrier.example/m/1", "image/png", "media/a/1"),
        ],
    ));
    let reply = outbound_entry(practice_id, 1, at + Duration::seconds(1));
    let c = save(
        &store,
        practice_id,
        &Conversation::new(number.clone(), at),
        true,
        Some(&text),
    )
    .await;
    save(&store, practice_id, &c, false, Some(&reply)).await;
    let position = text.position();
    let statuses = || {
        let store = &store;
        let number = number.clone();
        async move {
            let (page, _) = store.thread(practice_id, &number, 10, None).await.unwrap();
            match &page[1] {
                ThreadItem::Inbound(e) => e.media.iter().map(|m| m.status).collect::<Vec<_>>(),
                other => panic!("not the inbound text: {other:?}"),
            }
        }
    };
    use MediaStatus::*;
    assert_eq!(statuses().await, [Copying, Copying]);
    store
        .set_media_status(practice_id, &number, &position, 1, Ready)
        .await
        .unwrap();
    assert_eq!(statuses().await, [Copying, Ready]);
    store
        .set_media_status(practice_id, &number, &position, 0, Failed)
        .await
        .unwrap();
    assert_eq!(statuses().await, [Failed, Ready]);
    // Nothing there: no error, no change.
    store
        .set_media_status(practice_id, &number, &position, 2, Ready)
        .await
        .unwrap();
    store
        .set_media_status(practice_id, &number, &reply.position(), 0, Ready)
        .await
        .unwrap();
    store
        .set_media_status(
            practice_id,
            &number,
            "2000-01-01T00:00:00.000Z#in-x",
            0,
            Ready,
        )
        .await
        .unwrap();
    store
        .set_media_status(
            &format!("{practice_id}-other"),
            &number,
            &position,
            0,
            Ready,
        )
        .await
        .unwrap();
    assert_eq!(statuses().await, [Failed, Ready]);
    let (page, _) = store.thread(practice_id, &number, 10, None).await.unwrap();
    assert_eq!(page[0], reply, "the outbound entry is untouched");
    assert!(store
        .thread(&format!("{practice_id}-other"), &number, 10, None)
        .await
        .unwrap()
        .0
        .is_empty());
}

/// The practice's events (of the last day), newest first.
async fn all_events<S: Store>(
    store: &S,
    practice_id: &str,
    filter: &EventFilter,
) -> Vec<crate::domain::events::StoredEvent> {
    let floor = crate::domain::events::event_id_floor(now() - Duration::days(1));
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .list_events(practice_id, filter, &floor, 2, after.as_deref())
            .await
            .unwrap();
        all.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return all,
        }
    }
}

fn types_of(events: &[crate::domain::events::StoredEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event.event_type).collect()
}

/// The outbox: a delivered or failed recipient, a new inbound text, an
/// opt-out state that changes and a completing bulk each store their event
/// in the same write; a refused write, a duplicate entry and an opt-out
/// that changes nothing store none. Events list newest first, by type.
pub async fn a_change_and_its_event_are_one_write<S: Store>(store: S, practice_id: &str) {
    let none = EventFilter::default();
    let (m, r) = direct(practice_id, RecipientStatus::Queued, now());
    create(&store, &m, std::slice::from_ref(&r), None).await;
    let at = now();
    let claimed = step(&store, &r, Transition::Claim { at }).await;
    // A transition from a stale read is refused, and records nothing.
    assert!(store
        .transition(&r, &Transition::Claim { at }, now())
        .await
        .unwrap()
        .is_none());
    assert!(
        all_events(&store, practice_id, &none).await.is_empty(),
        "claiming causes no event"
    );
    store
        .transition(
            &claimed,
            &Transition::Failed {
                carrier_message_id: None,
                error: RecipientError::from_carrier_code(4720),
                at,
            },
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    let events = all_events(&store, practice_id, &none).await;
    assert_eq!(types_of(&events), vec![EventType::MessageFailed]);
    let body = events[0].event.payload_json();
    assert_eq!(body["data"]["message_id"], m.id.as_str());
    assert_eq!(body["data"]["error"]["code"], "4720");
    // On a deployed stack the table's stream may already have relayed the
    // event (round 1); the in-memory store has no relay. Either way it was
    // recorded with the change, which is what this case is about.
    assert!(events[0].round <= 1, "round {}", events[0].round);
    if events[0].round == 0 {
        assert_eq!(events[0].deliveries, None, "not fanned out yet");
        assert_eq!(events[0].delivery(), EventDelivery::Pending);
    }

    let number = phone();
    let change = |opted_out: bool| OptOutChange {
        practice_id: practice_id.to_string(),
        phone: number.to_string(),
        opted_out,
        keyword: if opted_out { "STOP" } else { "START" }.into(),
        source: "sms".into(),
        at: now(),
    };
    store.record_opt_out(&change(false)).await.unwrap();
    store.record_opt_out(&change(true)).await.unwrap();
    store.record_opt_out(&change(true)).await.unwrap();
    store.record_opt_out(&change(false)).await.unwrap();
    assert!(!store
        .is_opted_out(practice_id, number.as_str())
        .await
        .unwrap());

    let patient = phone();
    let conversation = Conversation::new(patient.clone(), now());
    let entry = ThreadItem::Inbound(InboundEntry::new(
        format!("bw-{}", uuid::Uuid::new_v4().simple()),
        patient.clone(),
        phone(),
        "Can I come at 3?",
        now(),
        vec![],
    ));
    assert_eq!(
        store
            .save_conversation(practice_id, &conversation, true, &[], Some(&entry), now())
            .await
            .unwrap(),
        SaveConversation::Saved
    );
    let stored = store
        .get_conversation(practice_id, &patient)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .save_conversation(
                practice_id,
                &stored.conversation,
                false,
                &[],
                Some(&entry),
                now()
            )
            .await
            .unwrap(),
        SaveConversation::DuplicateEntry
    );

    let events = all_events(&store, practice_id, &none).await;
    assert_eq!(
        types_of(&events),
        vec![
            EventType::MessageReceived,
            EventType::ContactOptedIn,
            EventType::ContactOptedOut,
            EventType::MessageFailed,
        ],
        "newest first; one per change"
    );
    let received = all_events(
        &store,
        practice_id,
        &EventFilter {
            event_type: Some(EventType::MessageReceived),
            delivery: None,
        },
    )
    .await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].event.payload_json()["data"]["phone"],
        patient.as_str()
    );
    assert!(all_events(&store, &format!("{practice_id}-other"), &none)
        .await
        .is_empty());
}

fn event_endpoint(practice_id: &str) -> EventEndpoint {
    EventEndpoint {
        id: uuid::Uuid::now_v7().to_string(),
        practice_id: practice_id.to_string(),
        url: "https://pm.example.com/hooks".into(),
        event_types: Some(vec![EventType::MessageReceived]),
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secrets: vec![SigningSecret::generate()],
        created_at: now(),
    }
}

/// At most five endpoints per practice; a deleted one frees its place and
/// is gone once; a replaced one keeps its changes; an idempotency key
/// already taken stores nothing.
pub async fn event_endpoints_are_limited_per_practice<S: Store>(store: S, practice_id: &str) {
    let mut created = Vec::new();
    for _ in 0..MAX_ENDPOINTS {
        let e = event_endpoint(practice_id);
        assert_eq!(
            store.create_endpoint(&e, None).await.unwrap(),
            CreateEndpoint::Created
        );
        created.push(e);
    }
    assert_eq!(
        store
            .create_endpoint(&event_endpoint(practice_id), None)
            .await
            .unwrap(),
        CreateEndpoint::LimitReached
    );
    let listed = store.endpoints(practice_id).await.unwrap();
    assert_eq!(listed, created, "oldest first, as stored");
    assert!(store
        .endpoints(&format!("{practice_id}-other"))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .delete_endpoint(practice_id, &created[0].id)
        .await
        .unwrap());
    assert!(!store
        .delete_endpoint(practice_id, &created[0].id)
        .await
        .unwrap());
    assert!(store
        .get_endpoint(practice_id, &created[0].id)
        .await
        .unwrap()
        .is_none());

    let rec = IdempotencyRecord {
        practice_id: practice_id.to_string(),
        key: "k-endpoint".into(),
        request_hash: "h".into(),
        status: 201,
        response_body: "{}".into(),
        expires_at: now() + Duration::hours(24),
        pending: false,
    };
    let e = event_endpoint(practice_id);
    assert_eq!(
        store.create_endpoint(&e, Some(&rec)).await.unwrap(),
        CreateEndpoint::Created
    );
    assert_eq!(
        store
            .create_endpoint(&event_endpoint(practice_id), Some(&rec))
            .await
            .unwrap(),
        CreateEndpoint::IdempotencyKeyTaken
    );
    assert_eq!(
        store.endpoints(practice_id).await.unwrap().len(),
        MAX_ENDPOINTS
    );

    let mut changed = e.clone();
    changed.status = EndpointStatus::Disabled;
    changed.disabled_reason = Some("410".into());
    assert!(store.replace_endpoint(&changed).await.unwrap());
    assert_eq!(
        store.get_endpoint(practice_id, &e.id).await.unwrap(),
        Some(changed)
    );
    assert!(
        !store.replace_endpoint(&created[0]).await.unwrap(),
        "a deleted one stays deleted"
    );
}

/// A delivery round starts once; an attempt is claimed once (or again
/// only when the claim is stale), recorded only by its claimer, and a new
/// round drops the old round's jobs. The list's delivery filter follows.
pub async fn delivery_attempts_are_claimed_once_and_recorded_by_their_claimer<S: Store>(
    store: S,
    practice_id: &str,
) {
    let number = phone();
    store
        .record_opt_out(&OptOutChange {
            practice_id: practice_id.to_string(),
            phone: number.to_string(),
            opted_out: true,
            keyword: "STOP".into(),
            source: "sms".into(),
            at: now(),
        })
        .await
        .unwrap();
    let event = all_events(&store, practice_id, &EventFilter::default())
        .await
        .remove(0);
    let id = event.event.id.clone();
    let t0 = now();
    let deliveries = vec![Delivery::new("ep-a", t0), Delivery::new("ep-b", t0)];
    // On a deployed stack the table's stream relays the new event too: its
    // fan-out (to this practice's endpoints: none) starts round 1, and a
    // fan-out that finds a round started queues that round's unattempted
    // deliveries, whose attempts would then race this case's claims. So
    // wait (at most 10 s) for the relay to have done its round first; the
    // in-memory store has no relay, the wait runs out and the case's round
    // is the first. Either way the case's round is the one after.
    let relayed = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < relayed
        && store
            .get_event(practice_id, &id)
            .await
            .unwrap()
            .is_some_and(|e| e.round == 0)
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut round = 0;
    for _ in 0..3 {
        let current = store
            .get_event(practice_id, &id)
            .await
            .unwrap()
            .unwrap()
            .round;
        if store
            .start_round(practice_id, &id, current + 1, &deliveries)
            .await
            .unwrap()
        {
            round = current + 1;
            break;
        }
    }
    assert!(round > 0, "a round started");
    assert!(
        !store
            .start_round(practice_id, &id, round, &deliveries)
            .await
            .unwrap(),
        "once"
    );
    let job = |endpoint: &str, attempt: u32, round: u32| DeliveryJob {
        practice_id: practice_id.to_string(),
        event_id: id.clone(),
        endpoint_id: endpoint.to_string(),
        attempt,
        round,
    };
    let pending = EventFilter {
        event_type: None,
        delivery: Some(EventDelivery::Pending),
    };
    assert_eq!(all_events(&store, practice_id, &pending).await.len(), 1);

    let a1 = job("ep-a", 1, round);
    assert!(
        !store
            .claim_attempt(&job("ep-a", 2, round), t0, t0 - Duration::seconds(60))
            .await
            .unwrap(),
        "not its turn"
    );
    assert!(
        !store
            .claim_attempt(&job("ep-a", 1, round + 1), t0, t0 - Duration::seconds(60))
            .await
            .unwrap(),
        "not its round"
    );
    assert!(store
        .claim_attempt(&a1, t0, t0 - Duration::seconds(60))
        .await
        .unwrap());
    assert!(
        !store
            .claim_attempt(&a1, t0, t0 - Duration::seconds(60))
            .await
            .unwrap(),
        "claimed once"
    );
    // Stale after 60 s without an outcome: the job may be taken over.
    let later = t0 + Duration::seconds(61);
    assert!(store
        .claim_attempt(&a1, later, later - Duration::seconds(60))
        .await
        .unwrap());
    let mut done = Delivery::new("ep-a", t0);
    done.state = DeliveryState::Delivered;
    done.attempts = 1;
    done.last_status = Some(200);
    done.next_attempt_at = None;
    assert!(store.record_attempt(&a1, &done).await.unwrap());
    assert!(
        !store.record_attempt(&a1, &done).await.unwrap(),
        "recorded once"
    );

    let b1 = job("ep-b", 1, round);
    assert!(store
        .claim_attempt(&b1, t0, t0 - Duration::seconds(60))
        .await
        .unwrap());
    let mut retry = Delivery::new("ep-b", t0);
    retry.attempts = 1;
    retry.last_status = Some(500);
    retry.next_attempt_at = Some(t0 + Duration::seconds(5));
    assert!(store.record_attempt(&b1, &retry).await.unwrap());
    let b2 = job("ep-b", 2, round);
    assert!(store
        .claim_attempt(&b2, t0, t0 - Duration::seconds(60))
        .await
        .unwrap());
    let mut gave_up = retry.clone();
    gave_up.state = DeliveryState::Failed;
    gave_up.attempts = 2;
    gave_up.next_attempt_at = None;
    assert!(store.record_attempt(&b2, &gave_up).await.unwrap());

    let stored = store.get_event(practice_id, &id).await.unwrap().unwrap();
    assert_eq!(stored.round, round);
    assert_eq!(stored.deliveries.clone().unwrap(), vec![done, gave_up]);
    assert_eq!(stored.delivery(), EventDelivery::Failed);
    let failed = EventFilter {
        event_type: None,
        delivery: Some(EventDelivery::Failed),
    };
    assert_eq!(all_events(&store, practice_id, &failed).await.len(), 1);
    assert!(all_events(&store, practice_id, &pending).await.is_empty());

    // A redelivery: the next round; the last round's jobs find nothing to claim.
    assert!(store
        .start_round(practice_id, &id, round + 1, &[Delivery::new("ep-b", t0)])
        .await
        .unwrap());
    assert!(!store
        .claim_attempt(&job("ep-b", 1, round), t0, t0)
        .await
        .unwrap());
    assert!(store
        .claim_attempt(&job("ep-b", 1, round + 1), t0, t0)
        .await
        .unwrap());
    let delivered = EventFilter {
        event_type: None,
        delivery: Some(EventDelivery::Delivered),
    };
    assert!(all_events(&store, practice_id, &delivered).await.is_empty());
    assert_eq!(all_events(&store, practice_id, &pending).await.len(), 1);
}

// ------------------------------------------------------------------ staff

fn staff_member(practice_id: &str, user: &str) -> crate::domain::staff::StaffMember {
    crate::domain::staff::StaffMember {
        practice_id: practice_id.to_string(),
        staff_id: crate::domain::staff::new_staff_id(),
        user: user.to_string(),
        name: "Dana Front Desk".into(),
        role: crate::domain::staff::StaffRole::Staff,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now(),
    }
}

/// A random sign-in name (names are global on DynamoDB).
fn user_name() -> String {
    format!("user-{}", uuid::Uuid::new_v4().simple())
}

/// An account takes its sign-in name for the whole deployment, until it is
/// deleted; updates keep the name; a practice lists only its own accounts.
pub async fn staff_accounts_take_their_user_name_once<S: Store>(store: S, practice_id: &str) {
    let user = user_name();
    let dana = staff_member(practice_id, &user);
    assert_eq!(
        store.create_staff(&dana).await.unwrap(),
        StaffCreated::Created
    );
    let other_practice = format!("{practice_id}-other");
    let taken = staff_member(&other_practice, &user);
    assert_eq!(
        store.create_staff(&taken).await.unwrap(),
        StaffCreated::UserTaken
    );
    assert!(store.list_staff(&other_practice).await.unwrap().is_empty());
    assert_eq!(
        store.staff_for_user(&user).await.unwrap(),
        Some(dana.clone())
    );
    assert_eq!(
        store.get_staff(practice_id, &dana.staff_id).await.unwrap(),
        Some(dana.clone())
    );
    assert_eq!(
        store
            .get_staff(&other_practice, &dana.staff_id)
            .await
            .unwrap(),
        None
    );

    let mut renamed = dana.clone();
    renamed.name = "Dana R.".into();
    renamed.role = crate::domain::staff::StaffRole::Admin;
    renamed.user = "ignored-on-update".into();
    assert!(store.update_staff(&renamed).await.unwrap());
    let stored = store.staff_for_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.role, stored.user.as_str()),
        (
            "Dana R.",
            crate::domain::staff::StaffRole::Admin,
            user.as_str()
        )
    );
    assert!(!store
        .update_staff(&staff_member(practice_id, &user_name()))
        .await
        .unwrap());

    let lee = staff_member(practice_id, &user_name());
    store.create_staff(&lee).await.unwrap();
    let mut listed = ids(&store.list_staff(practice_id).await.unwrap(), |m| {
        m.staff_id.as_str()
    });
    listed.sort();
    let mut expected = vec![dana.staff_id.clone(), lee.staff_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    assert!(!store
        .delete_staff(&other_practice, &dana.staff_id)
        .await
        .unwrap());
    assert!(store
        .delete_staff(practice_id, &dana.staff_id)
        .await
        .unwrap());
    assert!(!store
        .delete_staff(practice_id, &dana.staff_id)
        .await
        .unwrap());
    assert_eq!(store.staff_for_user(&user).await.unwrap(), None);
    assert_eq!(
        store.create_staff(&taken).await.unwrap(),
        StaffCreated::Created,
        "the name is free again"
    );
}

fn session_of(
    member: &crate::domain::staff::StaffMember,
    expires_in: Duration,
) -> crate::domain::staff::Session {
    crate::domain::staff::Session {
        token_hash: hash_key(&uuid::Uuid::new_v4().to_string()),
        practice_id: member.practice_id.clone(),
        staff_id: member.staff_id.clone(),
        name: member.name.clone(),
        role: member.role,
        created_at: now(),
        expires_at: now() + expires_in,
    }
}

/// A session is found by its token's digest; it ends alone, with all its staff member's
/// sessions, or with the account.
pub async fn sessions_are_read_by_digest_and_ended_alone_or_by_staff_member<S: Store>(
    store: S,
    practice_id: &str,
) {
    let dana = staff_member(practice_id, &user_name());
    let lee = staff_member(practice_id, &user_name());
    store.create_staff(&dana).await.unwrap();
    store.create_staff(&lee).await.unwrap();
    let first = session_of(&dana, Duration::hours(12));
    let second = session_of(&dana, Duration::hours(12));
    let expired = session_of(&dana, Duration::seconds(-1));
    let lees = session_of(&lee, Duration::hours(12));
    for s in [&first, &second, &expired, &lees] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.get_session(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );
    // An expired session may still be read (DynamoDB's TTL deletes it some
    // time later; the emulator sooner): callers check `expires_at`.
    assert!(store
        .get_session(&expired.token_hash)
        .await
        .unwrap()
        .is_none_or(|s| !s.is_live(now())));
    assert_eq!(store.get_session(&hash_key("nobody")).await.unwrap(), None);

    store.delete_session(&first.token_hash).await.unwrap();
    store.delete_session(&first.token_hash).await.unwrap();
    assert_eq!(store.get_session(&first.token_hash).await.unwrap(), None);
    assert!(store
        .get_session(&second.token_hash)
        .await
        .unwrap()
        .is_some());

    store
        .delete_sessions_of(practice_id, &dana.staff_id)
        .await
        .unwrap();
    assert_eq!(store.get_session(&second.token_hash).await.unwrap(), None);
    assert_eq!(store.get_session(&expired.token_hash).await.unwrap(), None);
    assert!(store.get_session(&lees.token_hash).await.unwrap().is_some());

    store
        .delete_staff(practice_id, &lee.staff_id)
        .await
        .unwrap();
    assert_eq!(store.get_session(&lees.token_hash).await.unwrap(), None);
}

/// Failures count up within their window, start again after it, and are
/// forgotten when cleared; each key on its own.
pub async fn login_failures_count_within_their_window_and_restart_after_it<S: Store>(
    store: S,
    _practice_id: &str,
) {
    let key = hash_key(&user_name());
    let other = hash_key(&user_name());
    assert_eq!(store.login_failures(&key).await.unwrap(), None);
    let start = now();
    let first = store.record_login_failure(&key, start).await.unwrap();
    assert_eq!((first.failures, first.window_started_at), (1, start));
    let second = store
        .record_login_failure(&key, start + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!((second.failures, second.window_started_at), (2, start));
    assert_eq!(store.login_failures(&key).await.unwrap(), Some(second));
    assert_eq!(store.login_failures(&other).await.unwrap(), None);

    let later = start + crate::domain::staff::FAILURE_WINDOW;
    let restarted = store.record_login_failure(&key, later).await.unwrap();
    assert_eq!(
        (restarted.failures, restarted.window_started_at),
        (1, later)
    );

    store.clear_login_failures(&key).await.unwrap();
    assert_eq!(store.login_failures(&key).await.unwrap(), None);
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
