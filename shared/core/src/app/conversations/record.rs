//! Recording texts and claims in a conversation, over the version read.

use chrono::{DateTime, Utc};

use crate::domain::conversation::{
    Conversation, InboundEntry, OutboundEntry, PatientRef, StoredConversation, ThreadItem,
};
use crate::domain::error::AppError;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::ports::{ConversationStore, SaveConversation};

/// How many times a change is reapplied when a concurrent write changed the
/// conversation between our read and our write. Each retry re-reads, so
/// only sustained contention on one conversation exhausts it.
const RACE_RETRIES: usize = 8;

/// What recording a text in its conversation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the conversation as it now stands.
    New(Box<Conversation>),
    /// The thread already had it (a redelivered callback or send job).
    Duplicate,
}

/// Reads the conversation with `phone`, applies `change` and writes it back
/// with `entry`, retrying on a concurrent change. A conversation that does
/// not exist yet is created when `create` is true (with the patients who
/// have the number), else the answer is `None`. `now` stamps the event
/// an inbound entry causes.
pub(super) async fn update<S, F>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    create_at: Option<DateTime<Utc>>,
    entry: Option<&ThreadItem>,
    now: DateTime<Utc>,
    change: F,
) -> Result<Option<(Recorded, Vec<PatientRef>)>, AppError>
where
    S: ConversationStore,
    F: Fn(&mut Conversation) -> Result<(), AppError>,
{
    for _ in 0..RACE_RETRIES {
        let (mut conversation, patients, created) =
            match store.get_conversation(practice_id, phone).await? {
                Some(StoredConversation {
                    conversation,
                    patients,
                }) => (conversation, patients, false),
                None => match create_at {
                    Some(at) => (
                        Conversation::new(phone.clone(), at),
                        store.patients_with_phone(practice_id, phone).await?,
                        true,
                    ),
                    None => return Ok(None),
                },
            };
        change(&mut conversation)?;
        match store
            .save_conversation(practice_id, &conversation, created, &patients, entry, now)
            .await?
        {
            SaveConversation::Saved => {
                if !created {
                    conversation.version += 1;
                }
                return Ok(Some((Recorded::New(Box::new(conversation)), patients)));
            }
            SaveConversation::DuplicateEntry => return Ok(Some((Recorded::Duplicate, patients))),
            SaveConversation::Conflict => continue,
        }
    }
    Err(AppError::unavailable(
        "the conversation kept changing; try again",
    ))
}

/// Records a text a patient sent in the conversation with their number
/// (created with the first text). A redelivered callback adds nothing.
/// `now` is when it is recorded (`entry.at` is the carrier's time).
pub async fn record_inbound<S: ConversationStore>(
    store: &S,
    practice_id: &str,
    entry: &InboundEntry,
    now: DateTime<Utc>,
) -> Result<Recorded, AppError> {
    let item = ThreadItem::Inbound(entry.clone());
    let recorded = update(
        store,
        practice_id,
        &entry.from,
        Some(entry.at),
        Some(&item),
        now,
        |c| {
            c.record_inbound(entry);
            Ok(())
        },
    )
    .await?;
    Ok(recorded.map_or(Recorded::Duplicate, |(r, _)| r))
}

/// Records a text the practice sent (when sending began) in the
/// conversation with `to`. A redelivered send job adds nothing.
pub async fn record_outbound<S: ConversationStore>(
    store: &S,
    to: &PhoneNumber,
    entry: &OutboundEntry,
) -> Result<Recorded, AppError> {
    let item = ThreadItem::Outbound(entry.clone());
    let recorded = update(
        store,
        &entry.job.practice_id,
        to,
        Some(entry.at),
        Some(&item),
        entry.at,
        |c| {
            c.record_outbound(entry.at, &entry.text, entry.kind);
            Ok(())
        },
    )
    .await?;
    Ok(recorded.map_or(Recorded::Duplicate, |(r, _)| r))
}

/// Claims an automatic answer on the conversation with `phone`: when
/// `due` holds for it, `mark` records the answer on the conversation, and
/// only if that write wins (version-checked) is the answer the caller's to
/// send. So of two texts arriving together, one gets it.
async fn claim<S, D, F>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    now: DateTime<Utc>,
    due: D,
    mark: F,
) -> Result<bool, AppError>
where
    S: ConversationStore,
    D: Fn(&Conversation) -> bool,
    F: Fn(&mut Conversation),
{
    for _ in 0..RACE_RETRIES {
        let Some(stored) = store.get_conversation(practice_id, phone).await? else {
            return Ok(false);
        };
        let mut conversation = stored.conversation;
        if !due(&conversation) {
            return Ok(false);
        }
        mark(&mut conversation);
        match store
            .save_conversation(
                practice_id,
                &conversation,
                false,
                &stored.patients,
                None,
                now,
            )
            .await?
        {
            SaveConversation::Saved => return Ok(true),
            SaveConversation::Conflict | SaveConversation::DuplicateEntry => continue,
        }
    }
    Err(AppError::unavailable(
        "the conversation kept changing; try again",
    ))
}

/// Claims the after-hours reply for the conversation with `phone`: true
/// when the practice's rule says the text just recorded gets it.
pub async fn claim_auto_reply<S: ConversationStore>(
    store: &S,
    practice: &Practice,
    phone: &PhoneNumber,
    keyword: Option<crate::domain::keywords::Keyword>,
    opted_out: bool,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let rule = &practice.auto_reply;
    let tz = practice.timezone.tz();
    claim(
        store,
        &practice.practice_id,
        phone,
        now,
        |c| c.should_auto_reply(now, rule, tz, keyword, opted_out),
        |c| {
            c.record_outbound(
                now,
                &rule.text,
                crate::domain::conversation::OutboundKind::AutoReply,
            )
        },
    )
    .await
}

/// Claims the answer to a HELP from `phone`: at most one a day per number.
pub async fn claim_help_reply<S: ConversationStore>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    claim(
        store,
        practice_id,
        phone,
        now,
        |c| c.should_answer_help(now),
        |c| c.last_help_reply_at = Some(now),
    )
    .await
}

/// After a patient was saved: the conversations with the patient's old and
/// new numbers list the patients who have those numbers now, so a changed
/// number moves the patient to the new number's thread from then on. A
/// number with no conversation yet is left alone (its first text lists
/// them).
pub async fn refresh_patients<S: ConversationStore>(
    store: &S,
    practice_id: &str,
    phones: &[&PhoneNumber],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for phone in phones {
        for _ in 0..RACE_RETRIES {
            let Some(stored) = store.get_conversation(practice_id, phone).await? else {
                break;
            };
            let patients = store.patients_with_phone(practice_id, phone).await?;
            if patients == stored.patients {
                break;
            }
            match store
                .save_conversation(
                    practice_id,
                    &stored.conversation,
                    false,
                    &patients,
                    None,
                    now,
                )
                .await?
            {
                SaveConversation::Saved => break,
                SaveConversation::Conflict | SaveConversation::DuplicateEntry => continue,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::app::conversations::test_support::*;
    use crate::app::conversations::*;
    use crate::testing::{sample_practice, MemoryStore};

    #[tokio::test]
    async fn texts_land_in_time_order_and_a_redelivery_counts_once() {
        let store = MemoryStore::default();
        // The later text arrives first.
        let later = text("b", "+14155550142", "Never mind, 4 is fine", 5);
        let earlier = text("a", "+14155550142", "Can I come at 3?", 1);
        assert!(matches!(
            record_inbound(&store, "p1", &later, at(10)).await.unwrap(),
            Recorded::New(_)
        ));
        assert!(matches!(
            record_inbound(&store, "p1", &earlier, at(10))
                .await
                .unwrap(),
            Recorded::New(_)
        ));
        assert_eq!(
            record_inbound(&store, "p1", &later, at(10)).await.unwrap(),
            Recorded::Duplicate
        );
        let c = store
            .get_conversation("p1", &phone("+14155550142"))
            .await
            .unwrap()
            .unwrap()
            .conversation;
        assert_eq!(c.unread_count, 2);
        assert_eq!(c.last_message.unwrap().text, "Never mind, 4 is fine");
        let practice = sample_practice("p1");
        let (entries, _) = thread(&store, &practice, c.id.as_str(), 10, None)
            .await
            .unwrap();
        let texts: Vec<_> = entries.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["Never mind, 4 is fine", "Can I come at 3?"]);
    }

    #[tokio::test]
    async fn concurrent_texts_and_reads_keep_the_unread_count_exact() {
        let store = MemoryStore::default();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20u32 {
            let store = store.clone();
            tasks.spawn(async move {
                let entry = text(&format!("m{i}"), "+14155550142", "hello", i % 50);
                record_inbound(&store, "p1", &entry, at(10)).await.unwrap();
            });
        }
        while tasks.join_next().await.is_some() {}
        let c = store
            .get_conversation("p1", &phone("+14155550142"))
            .await
            .unwrap()
            .unwrap()
            .conversation;
        assert_eq!(c.unread_count, 20);
    }

    #[tokio::test]
    async fn a_patients_new_number_moves_them_to_that_numbers_thread() {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        patient(&store, "ana", "+14155550142").await;
        record_inbound(&store, "p1", &text("a", "+14155550142", "hi", 1), at(10))
            .await
            .unwrap();
        record_inbound(&store, "p1", &text("b", "+14155550143", "hi", 1), at(10))
            .await
            .unwrap();
        assert_eq!(
            get(&store, &practice, "c14155550142")
                .await
                .unwrap()
                .patients
                .len(),
            1
        );
        patient(&store, "ana", "+14155550143").await;
        refresh_patients(
            &store,
            "p1",
            &[&phone("+14155550143"), &phone("+14155550142")],
            at(10),
        )
        .await
        .unwrap();
        assert!(get(&store, &practice, "c14155550142")
            .await
            .unwrap()
            .patients
            .is_empty());
        let moved = get(&store, &practice, "c14155550143")
            .await
            .unwrap()
            .patients;
        assert_eq!(moved[0].patient_id, "ana");
    }
}
