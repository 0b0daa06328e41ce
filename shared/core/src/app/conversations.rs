//! Two-way texting: every text a patient sends is kept in the conversation
//! with that number (the Inbox), next to everything the practice sent to it
//! (Patient Chat), and the office reads, answers and sorts them.
//!
//! A conversation is changed by reading it, applying one rule of
//! [`Conversation`] and writing it back only over the version read, together
//! with the thread entry that caused the change (written only if new). So a
//! redelivered callback or send job adds nothing, and concurrent inbound
//! texts and replies never lose an update to the unread count or the
//! "awaiting reply" state: the loser of a race reads again and reapplies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::conversation::{
    Conversation, ConversationId, ConversationStatus, ConversationView, InboundEntry, InboxFilter,
    OutboundEntry, PatientRef, StoredConversation, ThreadEntry, ThreadItem,
};
use crate::domain::error::AppError;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{ConversationStore, OptOutChange, OptOutStore, SaveConversation};

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

/// 404 for a conversation this practice does not have.
pub fn not_found() -> AppError {
    AppError::not_found(
        "conversation_not_found",
        "no conversation with this id exists for this practice",
    )
}

/// Reads the conversation with `phone`, applies `change` and writes it back
/// with `entry`, retrying on a concurrent change. A conversation that does
/// not exist yet is created when `create` is true (with the patients who
/// have the number), else the answer is `None`. `now` stamps the event
/// an inbound entry causes.
async fn update<S, F>(
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

/// `GET /v1/conversations` query parameters, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxQuery {
    /// `open` or `closed`.
    pub status: Option<String>,
    /// `true`: only conversations with unread texts.
    pub unread: Option<String>,
    /// Only those assigned to this staff member.
    pub assignee: Option<String>,
    /// The one conversation with this number (any phone input).
    pub phone: Option<String>,
}

fn parse_status(value: &str, field: &str) -> Result<ConversationStatus, AppError> {
    match value {
        "open" => Ok(ConversationStatus::Open),
        "closed" => Ok(ConversationStatus::Closed),
        _ => Err(AppError::invalid(
            "invalid_field",
            format!("{field} must be \"open\" or \"closed\""),
        )
        .at(field)),
    }
}

impl InboxQuery {
    fn filter(&self) -> Result<InboxFilter, AppError> {
        let status = self
            .status
            .as_deref()
            .map(|s| parse_status(s, "status"))
            .transpose()?;
        let unread_only = match self.unread.as_deref() {
            None => false,
            Some("true") => true,
            // There is no index of "read" conversations; say so rather
            // than answer a list that ignores the parameter.
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    "unread accepts only true (leave it out to list every conversation)",
                )
                .at("unread"))
            }
        };
        let assignee = match self.assignee.as_deref().map(str::trim) {
            Some("") => {
                return Err(
                    AppError::invalid("invalid_field", "assignee must not be empty").at("assignee"),
                )
            }
            Some(a) => {
                crate::domain::limits::check_name(a, "assignee")?;
                Some(a.to_string())
            }
            None => None,
        };
        Ok(InboxFilter {
            status,
            unread_only,
            assignee,
        })
    }
}

/// A conversation as the API shows it.
pub type ConversationResource = ConversationView<PatientRef>;

async fn view<S: OptOutStore>(
    store: &S,
    practice_id: &str,
    conversation: &Conversation,
    patients: Vec<PatientRef>,
) -> Result<ConversationResource, AppError> {
    let opted_out = store
        .is_opted_out(practice_id, conversation.phone.as_str())
        .await?;
    Ok(conversation.view(patients, opted_out))
}

fn matches(filter: &InboxFilter, c: &Conversation) -> bool {
    filter.status.is_none_or(|s| s == c.status)
        && (!filter.unread_only || c.unread_count > 0)
        && filter
            .assignee
            .as_deref()
            .is_none_or(|a| c.assignee.as_deref() == Some(a))
}

/// The Inbox: a page of conversations, newest activity first.
pub async fn list<S>(
    store: &S,
    practice: &Practice,
    query: &InboxQuery,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<ConversationResource>, Option<String>), AppError>
where
    S: ConversationStore + OptOutStore,
{
    let filter = query.filter()?;
    let (conversations, next) = match query.phone.as_deref() {
        // One number has one conversation: a lookup, not a list.
        Some(phone) => {
            let phone = PhoneNumber::parse(phone).map_err(|e| {
                AppError::invalid("invalid_phone", format!("phone {e}")).at("phone")
            })?;
            let found = store
                .get_conversation(&practice.practice_id, &phone)
                .await?
                .filter(|s| matches(&filter, &s.conversation));
            (found.into_iter().collect(), None)
        }
        None => {
            let after = cursor.map(decode_cursor).transpose()?;
            store
                .list_conversations(&practice.practice_id, &filter, limit, after.as_deref())
                .await?
        }
    };
    let mut items = Vec::with_capacity(conversations.len());
    for s in conversations {
        items.push(view(store, &practice.practice_id, &s.conversation, s.patients).await?);
    }
    Ok((items, next.as_deref().map(encode_cursor)))
}

async fn find<S: ConversationStore>(
    store: &S,
    practice: &Practice,
    id: &str,
) -> Result<StoredConversation, AppError> {
    let id = ConversationId::parse(id)?;
    store
        .get_conversation(&practice.practice_id, id.phone())
        .await?
        .ok_or_else(not_found)
}

/// `GET /v1/conversations/{id}`.
pub async fn get<S>(
    store: &S,
    practice: &Practice,
    id: &str,
) -> Result<ConversationResource, AppError>
where
    S: ConversationStore + OptOutStore,
{
    let s = find(store, practice, id).await?;
    view(store, &practice.practice_id, &s.conversation, s.patients).await
}

/// `GET /v1/conversations/{id}/messages`: a page of the thread, newest
/// first, each outbound text with its live delivery status.
pub async fn thread<S>(
    store: &S,
    practice: &Practice,
    id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<ThreadEntry>, Option<String>), AppError>
where
    S: ConversationStore,
{
    let s = find(store, practice, id).await?;
    let after = cursor.map(decode_cursor).transpose()?;
    let (items, next) = store
        .thread(
            &practice.practice_id,
            &s.conversation.phone,
            limit,
            after.as_deref(),
        )
        .await?;
    let jobs: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            ThreadItem::Outbound(o) => Some(o.job.clone()),
            ThreadItem::Inbound(_) => None,
        })
        .collect();
    let mut recipients = store.recipients(&jobs).await?.into_iter();
    let entries = items
        .iter()
        .map(|item| match item {
            ThreadItem::Inbound(e) => e.view(),
            ThreadItem::Outbound(o) => {
                let recipient = recipients.next().flatten();
                outbound_view(o, recipient.as_ref())
            }
        })
        .collect();
    Ok((entries, next.as_deref().map(encode_cursor)))
}

fn outbound_view(
    o: &OutboundEntry,
    recipient: Option<&crate::domain::message::Recipient>,
) -> ThreadEntry {
    ThreadEntry {
        id: ThreadItem::Outbound(o.clone()).entry_id(),
        direction: crate::domain::conversation::Direction::Outbound,
        text: o.text.clone(),
        at: o.at,
        media: Vec::new(),
        keyword: None,
        opt_out_intent: false,
        message_id: Some(o.job.message_id.clone()),
        status: recipient.map(|r| r.status.as_str().to_string()),
        error: recipient
            .and_then(|r| r.error.as_ref())
            .and_then(|e| serde_json::to_value(e).ok()),
        auto_reply: o.kind.is_automatic(),
    }
}

/// Body of `PATCH /v1/conversations/{id}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    /// Mark read (`true`) or unread (`false`).
    #[serde(default, deserialize_with = "crate::json::non_null")]
    pub read: Option<bool>,
    /// `open` or `closed`.
    #[serde(default, deserialize_with = "crate::json::non_null")]
    pub status: Option<String>,
    /// A staff member, or null to unassign.
    #[serde(default, with = "double_option")]
    pub assignee: Option<Option<String>>,
    /// Only `true`: staff record that the patient asked not to be texted.
    #[serde(default, deserialize_with = "crate::json::non_null")]
    pub sms_opted_out: Option<bool>,
}

/// `Option<Option<T>>` from JSON: absent → `None`, null → `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Option::as_deref).serialize(s)
    }
}

/// `PATCH /v1/conversations/{id}`: read/unread, open/closed, assignee, and a
/// staff opt-out. Everything is checked before anything is stored.
pub async fn patch<S>(
    store: &S,
    practice: &Practice,
    id: &str,
    patch: &ConversationPatch,
    now: DateTime<Utc>,
) -> Result<ConversationResource, AppError>
where
    S: ConversationStore + OptOutStore,
{
    let id = ConversationId::parse(id)?;
    let status = patch
        .status
        .as_deref()
        .map(|s| parse_status(s, "status"))
        .transpose()?;
    if patch.sms_opted_out == Some(false) {
        return Err(AppError::invalid(
            "invalid_field",
            "only the patient can opt back in, by texting START; staff can only opt a number out",
        )
        .at("sms_opted_out"));
    }
    if let Some(Some(assignee)) = &patch.assignee {
        // The domain's rule, checked before any write.
        Conversation::new(id.phone().clone(), now).set_assignee(Some(assignee))?;
    }
    let change = |c: &mut Conversation| {
        match patch.read {
            Some(true) => c.mark_read(),
            Some(false) => c.mark_unread(),
            None => {}
        }
        if let Some(s) = status {
            c.set_status(s);
        }
        if let Some(assignee) = &patch.assignee {
            c.set_assignee(assignee.as_deref())?;
        }
        Ok(())
    };
    let (recorded, patients) = update(
        store,
        &practice.practice_id,
        id.phone(),
        None,
        None,
        now,
        change,
    )
    .await?
    .ok_or_else(not_found)?;
    let Recorded::New(conversation) = recorded else {
        return Err(not_found());
    };
    if patch.sms_opted_out == Some(true) {
        store
            .record_opt_out(&OptOutChange {
                practice_id: practice.practice_id.clone(),
                phone: conversation.phone.to_string(),
                opted_out: true,
                keyword: "staff".into(),
                source: "staff".into(),
                at: now,
            })
            .await?;
    }
    view(store, &practice.practice_id, &conversation, patients).await
}

/// Body of `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// The text, with optional merge fields, or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a saved Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
}

/// `POST /v1/conversations/{id}/messages`: a direct message to the
/// conversation's number, sent now through the normal send path (stored,
/// queued, tracked, idempotent). Not held by quiet hours (the patient wrote
/// first) and not counted against the bulk cap; refused for an opted-out
/// number. Merge fields come from the one patient with the number; with
/// none or several, a text that uses them is refused (`missing_merge_data`).
// The arguments are send_direct's plus the conversation store.
#[allow(clippy::too_many_arguments)]
pub async fn reply<P, M, Q, X, C>(
    messages: &crate::app::messages::Messages<P, M, Q, X>,
    conversations: &C,
    practice: &Practice,
    id: &str,
    request: ReplyRequest,
    request_value: &serde_json::Value,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<crate::app::sending::Answer, AppError>
where
    P: crate::ports::PracticeStore + OptOutStore + crate::ports::TemplateStore,
    M: crate::ports::MessageStore,
    Q: crate::ports::SendQueue,
    X: crate::ports::SendScheduler,
    C: ConversationStore,
{
    let stored = find(conversations, practice, id).await?;
    let only_patient = match stored.patients.as_slice() {
        [one] => Some(one.patient_id.clone()),
        _ => None,
    };
    let send = crate::app::messages::SendMessageRequest {
        to: only_patient
            .is_none()
            .then(|| stored.conversation.phone.to_string()),
        patient_id: only_patient,
        text: request.text,
        template_id: request.template_id,
        channel: request.channel,
        origin: Some(crate::domain::conversation::OutboundKind::Reply),
        ..Default::default()
    };
    // The conversation is part of what the idempotency key remembers: the
    // same key on another conversation is another request.
    let value = serde_json::json!({"conversation": stored.conversation.id, "reply": request_value});
    messages
        .send_direct(practice, send, &value, idempotency_key, now)
        .await
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::app::messages::{Messages, SendNowOnly};
    use crate::domain::patient::Patient;
    use crate::ports::PracticeStore;
    use crate::testing::{sample_practice, MemoryQueue, MemoryStore};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 15, minute, 0).unwrap()
    }

    fn phone(n: &str) -> PhoneNumber {
        PhoneNumber::parse(n).unwrap()
    }

    fn text(id: &str, from: &str, body: &str, minute: u32) -> InboundEntry {
        InboundEntry::new(
            id,
            phone(from),
            phone("+14155550100"),
            body,
            at(minute),
            Vec::new(),
        )
    }

    async fn patient(store: &MemoryStore, id: &str, number: &str) {
        let p = Patient {
            patient_id: id.into(),
            first_name: format!("Pat-{id}"),
            last_name: None,
            phone: phone(number),
            birth_date: None,
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        store.put_patient("p1", &p).await.unwrap();
    }

    fn messages(
        store: &MemoryStore,
    ) -> Messages<MemoryStore, MemoryStore, MemoryQueue, SendNowOnly> {
        Messages {
            practices: store.clone(),
            store: store.clone(),
            queue: MemoryQueue::default(),
            scheduler: SendNowOnly,
            queue_delay_max: chrono::Duration::zero(),
        }
    }

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
    async fn list_filters_are_checked_by_field() {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        let bad = [
            (
                InboxQuery {
                    unread: Some("false".into()),
                    ..Default::default()
                },
                "unread",
            ),
            (
                InboxQuery {
                    status: Some("archived".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                InboxQuery {
                    assignee: Some(" ".into()),
                    ..Default::default()
                },
                "assignee",
            ),
            (
                InboxQuery {
                    assignee: Some("a".repeat(101)),
                    ..Default::default()
                },
                "assignee",
            ),
            (
                InboxQuery {
                    phone: Some("12".into()),
                    ..Default::default()
                },
                "phone",
            ),
        ];
        for (query, field) in bad {
            let e = list(&store, &practice, &query, 50, None).await.unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field));
        }
        record_inbound(&store, "p1", &text("a", "+14155550142", "hi", 1), at(10))
            .await
            .unwrap();
        let found = list(
            &store,
            &practice,
            &InboxQuery {
                phone: Some("(415) 555-0142".into()),
                ..Default::default()
            },
            50,
            None,
        )
        .await
        .unwrap();
        assert_eq!(found.0.len(), 1);
        let closed_only = InboxQuery {
            phone: Some("4155550142".into()),
            status: Some("closed".into()),
            ..Default::default()
        };
        assert!(list(&store, &practice, &closed_only, 50, None)
            .await
            .unwrap()
            .0
            .is_empty());
    }

    #[tokio::test]
    async fn patch_checks_everything_before_storing_and_staff_can_only_opt_out() {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        record_inbound(&store, "p1", &text("a", "+14155550142", "hi", 1), at(10))
            .await
            .unwrap();
        let id = "c14155550142";
        let bad = ConversationPatch {
            read: Some(true),
            status: Some("archived".into()),
            ..Default::default()
        };
        assert_eq!(
            patch(&store, &practice, id, &bad, at(2))
                .await
                .unwrap_err()
                .field
                .as_deref(),
            Some("status")
        );
        let opt_in = ConversationPatch {
            sms_opted_out: Some(false),
            ..Default::default()
        };
        assert_eq!(
            patch(&store, &practice, id, &opt_in, at(2))
                .await
                .unwrap_err()
                .field
                .as_deref(),
            Some("sms_opted_out")
        );
        let c = get(&store, &practice, id).await.unwrap();
        assert_eq!(c.unread_count, 1, "nothing stored by refused changes");
        let ok = ConversationPatch {
            read: Some(true),
            assignee: Some(Some("maria".into())),
            sms_opted_out: Some(true),
            ..Default::default()
        };
        let c = patch(&store, &practice, id, &ok, at(2)).await.unwrap();
        assert_eq!(
            (c.unread_count, c.assignee.as_deref(), c.sms_opted_out),
            (0, Some("maria"), true)
        );
        let unassign: ConversationPatch =
            serde_json::from_value(json!({"assignee": null})).unwrap();
        assert_eq!(
            patch(&store, &practice, id, &unassign, at(3))
                .await
                .unwrap()
                .assignee,
            None
        );
        let audit = store.opt_audit().await;
        assert_eq!(audit[0].source, "staff");
        let missing = patch(&store, &practice, "c14155550199", &ok, at(2))
            .await
            .unwrap_err();
        assert_eq!(missing.code, "conversation_not_found");
    }

    #[tokio::test]
    async fn a_reply_uses_the_one_patients_merge_data_and_is_idempotent_per_conversation() {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        store.put_practice(&practice).await.unwrap();
        patient(&store, "ana", "+14155550142").await;
        record_inbound(&store, "p1", &text("a", "+14155550142", "hi", 1), at(10))
            .await
            .unwrap();
        let m = messages(&store);
        let now = at(12);
        let request = ReplyRequest {
            text: Some("Hi {first_name}!".into()),
            ..Default::default()
        };
        let value = json!({"text": "Hi {first_name}!"});
        let first = reply(
            &m,
            &store,
            &practice,
            "c14155550142",
            request.clone(),
            &value,
            Some("k1"),
            now,
        )
        .await
        .unwrap();
        let again = reply(
            &m,
            &store,
            &practice,
            "c14155550142",
            request.clone(),
            &value,
            Some("k1"),
            now,
        )
        .await
        .unwrap();
        assert_eq!((first.status, &first.body), (again.status, &again.body));
        assert_eq!(m.queue.jobs.lock().await.len(), 1, "sent once");
        let job = m.queue.jobs.lock().await[0].clone();
        let sent = store.recipient(&job).await.unwrap();
        assert_eq!(
            (sent.text.as_str(), sent.origin),
            (
                "Hi Pat-ana!",
                Some(crate::domain::conversation::OutboundKind::Reply)
            )
        );
        // A family sharing the number: no single name to merge.
        patient(&store, "ben", "+14155550142").await;
        refresh_patients(&store, "p1", &[&phone("+14155550142")], at(10))
            .await
            .unwrap();
        let e = reply(
            &m,
            &store,
            &practice,
            "c14155550142",
            request,
            &value,
            None,
            now,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "missing_merge_data");
        let plain = ReplyRequest {
            text: Some("See you at 3.".into()),
            ..Default::default()
        };
        assert_eq!(
            reply(
                &m,
                &store,
                &practice,
                "c14155550142",
                plain,
                &json!({}),
                None,
                now
            )
            .await
            .unwrap()
            .status,
            202
        );
        let unknown = reply(
            &m,
            &store,
            &practice,
            "c14155550199",
            ReplyRequest::default(),
            &json!({}),
            None,
            now,
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code, "conversation_not_found");
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
