//! `PATCH /v1/conversations/{id}`: staff read, close, assign and opt out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::inbox::parse_status;
use super::record::{update, Recorded};
use super::{not_found, view, ConversationResource};
use crate::domain::conversation::{Conversation, ConversationId};
use crate::domain::error::AppError;
use crate::domain::practice::Practice;
use crate::ports::{ConversationStore, OptOutChange, OptOutStore};

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::app::conversations::test_support::*;
    use crate::app::conversations::*;
    use crate::testing::{sample_practice, MemoryStore};

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
}
