//! The port-conformance suite: what the use cases rely on from the store
//! ports, written once and run against every implementation —
//! [`MemoryStore`](super::MemoryStore) in this crate's unit tests and
//! `DynamoStore` on the local cloud (`tests/local_cloud/conformance.rs`).
//! Where the two ever disagree, DynamoDB's behaviour is the truth and the
//! in-memory store follows it.
//!
//! Each case takes a fresh store (or a shared table) and a practice id no
//! other case uses, so cases never see each other's items. Ids of items that
//! are global on DynamoDB (sending numbers, API keys) are random.
//! [`conformance_cases!`](crate::conformance_cases) names every case, so each
//! runner has one test per case and none can be forgotten.
//!
//! The cases live in one file per slice of [`crate::ports`]; every one is
//! re-exported here, so a runner names it `conformance::case`.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::Rng;

use crate::domain::bulk::BulkProgress;
use crate::domain::message::{
    Counts, Message, MessageStatus, MessageType, Recipient, RecipientStatus, Transition,
};
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channel, Channels, Practice};
use crate::domain::text::Encoding;
use crate::ports::{AppointmentStore, EventStore};
use crate::ports::{
    BulkStore, ConversationStore, CreateOutcome, IdempotencyRecord, MessageStore, OptOutStore,
    PracticeStore, RateStore, StaffStore, TemplateStore,
};

mod appointments;
mod bulk;
mod conversations;
mod events;
mod messages;
mod opt_outs;
mod practices;
mod rate;
mod staff;
mod templates;

pub use self::appointments::{
    a_confirmation_and_its_events_are_one_write, a_reminder_and_its_message_are_one_write,
    appointments_are_written_over_the_version_read, reminder_rules_are_the_defaults_until_changed,
    the_due_index_follows_pending_reminders,
};
pub use self::bulk::{
    bulk_completes_when_sending_and_every_recipient_is_final,
    bulk_does_not_complete_before_sending_began,
    bulk_is_stored_with_its_recipients_and_idempotency_record,
    bulk_status_changes_only_from_the_expected_status,
    many_transitions_are_all_or_nothing_and_move_counts_only,
    pump_advances_only_with_the_live_token_until_stopped,
    recipient_pages_follow_the_cursor_and_status_filter,
};
pub use self::conversations::{
    a_recorded_thread_entry_is_not_recorded_twice,
    conversation_is_created_once_and_saved_over_the_version_read,
    inbox_filters_by_status_unread_and_assignee,
    inbox_follows_changes_of_status_read_assignee_and_activity,
    inbox_pages_follow_the_cursor_across_both_statuses, media_status_is_recorded_on_its_attachment,
    patients_with_a_number_follow_number_changes, racing_number_changes_leave_one_listing,
    recipients_are_read_in_the_order_asked, thread_pages_newest_first_with_equal_times_in_id_order,
};
pub use self::events::{
    a_change_and_its_event_are_one_write,
    delivery_attempts_are_claimed_once_and_recorded_by_their_claimer,
    event_endpoints_are_limited_per_practice,
};
pub use self::messages::{
    expired_idempotency_record_is_absent_and_its_key_free,
    live_idempotency_record_replays_and_keeps_its_key_taken,
    message_and_recipients_are_stored_and_removed_together, reschedule_moves_the_message_send_time,
    tracking_list_pages_newest_first_within_bounds, transition_from_a_stale_read_is_refused,
    transitions_move_forward_only_and_keep_counts,
};
pub use self::opt_outs::{
    opt_outs_are_per_practice_and_reversible, sending_numbers_map_to_their_practice,
};
pub use self::practices::{
    a_settings_change_writes_only_its_own_fields, api_key_points_to_its_practice_until_replaced,
    patients_round_trip_and_page_in_id_order, practice_settings_round_trip,
    undeliverable_mark_applies_only_to_the_current_number,
};
pub use self::rate::rate_bucket_writes_are_conditioned_on_the_count;
pub use self::staff::{
    a_burst_of_login_failures_is_counted_once_each,
    login_failures_count_within_their_window_and_restart_after_it,
    sessions_are_read_by_digest_and_ended_alone_or_by_staff_member,
    staff_accounts_take_their_user_name_once,
};
pub use self::templates::templates_round_trip_page_and_delete;

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
    + AppointmentStore
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
        + AppointmentStore
{
}

/// Calls `$runner!(case)` for every case of the suite; a runner macro turns
/// each into a test. Adding a case here adds it to every runner.
#[macro_export]
macro_rules! conformance_cases {
    ($runner:ident) => {
        $runner!(practice_settings_round_trip);
        $runner!(a_settings_change_writes_only_its_own_fields);
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
        $runner!(a_burst_of_login_failures_is_counted_once_each);
        $runner!(appointments_are_written_over_the_version_read);
        $runner!(the_due_index_follows_pending_reminders);
        $runner!(a_reminder_and_its_message_are_one_write);
        $runner!(a_confirmation_and_its_events_are_one_write);
        $runner!(reminder_rules_are_the_defaults_until_changed);
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
        automatic_window: crate::domain::practice::AutomaticWindow::default_setting(),
        links: crate::domain::practice::Links::default(),
        carrier: Default::default(),
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
        appointment_ids: Vec::new(),
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
        appointment_ids: Vec::new(),
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
