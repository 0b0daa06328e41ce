//! `POST /v1/conversations/{id}/messages`: staff answer in Patient Chat.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::find;
use crate::domain::error::AppError;
use crate::domain::practice::Practice;
use crate::ports::{ConversationStore, OptOutStore};

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
    use serde_json::json;

    use super::*;
    use crate::app::conversations::test_support::*;
    use crate::app::conversations::*;
    use crate::ports::PracticeStore;
    use crate::testing::{sample_practice, MemoryStore};

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
}
