//! The Inbox and thread pages: filters, changes and cursors.

use chrono::Duration;

use super::{
    conversation_at, filter, inbound_entry, inbox, numbers, numbers_of, outbound_entry, save,
    stored, whole_thread,
};
use crate::domain::conversation::{
    Conversation, ConversationStatus, InboundEntry, InboxFilter, MediaItem, MediaStatus, ThreadItem,
};
use crate::ports::inbox_key;
use crate::testing::conformance::{now, phone, Store};

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
