//! Conversations and their threads: saving, entries, the patients
//! behind a number, outbound recipients, attachments. Inbox and thread
//! paging are in `inbox.rs`.

use chrono::{DateTime, Duration, Utc};

use crate::domain::conversation::{
    Conversation, ConversationStatus, InboundEntry, InboxFilter, MediaItem, MediaStatus,
    OutboundEntry, OutboundKind, PatientRef, StoredConversation, ThreadItem,
};
use crate::domain::message::{RecipientStatus, SendJob};
use crate::domain::patient::Patient;
use crate::domain::phone::PhoneNumber;
use crate::ports::{inbox_key, SaveConversation};
use crate::testing::conformance::{
    bulk, create, create_bulk, direct, ids, now, patient, phone, send, Store,
};

mod inbox;

pub use self::inbox::{
    inbox_filters_by_status_unread_and_assignee,
    inbox_follows_changes_of_status_read_assignee_and_activity,
    inbox_pages_follow_the_cursor_across_both_statuses,
    thread_pages_newest_first_with_equal_times_in_id_order,
};

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
