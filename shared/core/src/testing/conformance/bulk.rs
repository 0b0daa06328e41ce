//! Bulk messages: their recipients, the pump, their status.

use crate::domain::message::Tab;
use chrono::{DateTime, Duration, Utc};

use super::{
    bulk, carrier_id, create, create_bulk, delivered, direct, idempotency, ids, now, read,
    read_message, send, step, Store,
};
use crate::domain::message::{
    bulk_status_of, BulkStatus, Counts, MessageType, Recipient, RecipientError, RecipientStatus,
    Transition,
};
use crate::ports::{tracking_key, CreateOutcome, TrackingIndex};

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
        .communications(practice_id, &TrackingIndex::All(Tab::Manual), "0", "~", 10)
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
