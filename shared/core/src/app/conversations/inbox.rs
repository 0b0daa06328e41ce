//! Reading the Inbox: the list of conversations, one conversation, and
//! its thread.

use super::{find, view, ConversationResource};
use crate::domain::conversation::{
    Conversation, ConversationStatus, InboxFilter, OutboundEntry, ThreadEntry, ThreadItem,
};
use crate::domain::error::AppError;
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::Practice;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{ConversationStore, OptOutStore};

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

pub(super) fn parse_status(value: &str, field: &str) -> Result<ConversationStatus, AppError> {
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
        intent: None,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::app::conversations::test_support::*;
    use crate::app::conversations::*;
    use crate::testing::{sample_practice, MemoryStore};

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
}
