//! Messages, recipients, idempotency records and the tracking list.

use crate::domain::message::Tab;
use chrono::Duration;

use super::{
    bulk, create, create_bulk, direct, idempotency, ids, now, read, read_message, step, Store,
};
use crate::domain::message::{Counts, MessageType, RecipientError, RecipientStatus, Transition};
use crate::ports::{tracking_key, CreateOutcome, IdempotencyRecord, TrackingIndex};

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
        .communications(
            practice_id,
            &TrackingIndex::All(Tab::Manual),
            &old_place,
            &old_place,
            10,
        )
        .await
        .unwrap();
    assert!(at_old_place.is_empty(), "not listed at its old time");
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
    let all = || TrackingIndex::All(Tab::Manual);
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
