//! `GET /v1/conversations`, `GET/PATCH /v1/conversations/{id}`,
//! `GET /v1/conversations/{id}/messages`: the Inbox and Patient Chat, for
//! whichever function serves those routes. (The reply,
//! `POST /v1/conversations/{id}/messages`, is a send and lives with the
//! other sends in the messages function.)
//!
//! The thread's attachments get their links here: each ready one a fresh
//! pre-signed URL from the [`MediaLinks`] the caller passes (the media
//! bucket in the practice function, memory in tests), valid for
//! [`LINK_LIFETIME`].

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http;
use messaging_core::app::conversations::{self, ConversationPatch, InboxQuery};
use messaging_core::app::media::{link_media, LINK_LIFETIME};
use messaging_core::domain::error::AppError;
use messaging_core::domain::practice::Practice;
use messaging_core::ports::{ConversationStore, MediaLinks, OptOutStore};

/// Serves the conversation routes for `practice` (taken from the API key),
/// with `links` for the thread's attachments. Returns `None` for any other
/// route key, so the calling function can try its own routes.
pub async fn route<S: ConversationStore + OptOutStore, L: MediaLinks + ?Sized>(
    store: &S,
    links: &L,
    practice: &Practice,
    route: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Option<Result<Response<Body>, AppError>> {
    let id = || http::path_param(req, "id").unwrap_or_default();
    let result = match route {
        "GET /v1/conversations" => list(store, practice, req).await,
        "GET /v1/conversations/{id}" => conversations::get(store, practice, &id())
            .await
            .map(|c| http::json(StatusCode::OK, &c)),
        "GET /v1/conversations/{id}/messages" => {
            thread(store, links, practice, &id(), req, now).await
        }
        "PATCH /v1/conversations/{id}" => {
            match messaging_core::json::parse_json::<ConversationPatch>(
                match http::body_bytes(req) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                },
            ) {
                Ok((patch, _)) => conversations::patch(store, practice, &id(), &patch, now)
                    .await
                    .map(|c| http::json(StatusCode::OK, &c)),
                Err(e) => Err(e),
            }
        }
        _ => return None,
    };
    Some(result)
}

async fn list<S: ConversationStore + OptOutStore>(
    store: &S,
    practice: &Practice,
    req: &Request,
) -> Result<Response<Body>, AppError> {
    let (limit, cursor) = http::page_params(req)?;
    http::check_query(req, &["status", "unread", "assignee", "phone"])?;
    let query = InboxQuery {
        status: http::query_param(req, "status"),
        unread: http::query_param(req, "unread"),
        assignee: http::query_param(req, "assignee"),
        phone: http::query_param(req, "phone"),
    };
    let (items, next) =
        conversations::list(store, practice, &query, limit, cursor.as_deref()).await?;
    Ok(http::page(&items, next))
}

async fn thread<S: ConversationStore, L: MediaLinks + ?Sized>(
    store: &S,
    links: &L,
    practice: &Practice,
    id: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let (limit, cursor) = http::page_params(req)?;
    let (mut items, next) =
        conversations::thread(store, practice, id, limit, cursor.as_deref()).await?;
    link_media(links, &mut items, LINK_LIFETIME, now).await?;
    Ok(http::page(&items, next))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use lambda_http::RequestExt;
    use serde_json::Value;

    use super::*;
    use messaging_core::app::conversations::record_inbound;
    use messaging_core::domain::conversation::{InboundEntry, MediaItem, MediaStatus};
    use messaging_core::domain::phone::PhoneNumber;
    use messaging_core::testing::{sample_practice, MemoryMediaStorage, MemoryStore};

    #[tokio::test]
    async fn the_thread_shows_links_for_ready_attachments_only() {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        let patient = PhoneNumber::parse("+14155550142").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap();
        let mut entry = InboundEntry::new(
            "bw-1",
            patient.clone(),
            practice.channels.sms_main.clone(),
            "my x-ray",
            at,
            vec![
                MediaItem::new("https://carrier/0", "image/png", "media/p1/bw-1/0.png"),
                MediaItem::new("https://carrier/1", "image/jpeg", "media/p1/bw-1/1.jpg"),
            ],
        );
        entry.media[0].status = MediaStatus::Ready;
        record_inbound(&store, "p1", &entry, entry.at)
            .await
            .unwrap();

        let req = lambda_http::http::Request::new(Body::Empty).with_path_parameters(HashMap::from(
            [("id".to_string(), "c14155550142".to_string())],
        ));
        let links = MemoryMediaStorage::default();
        let response = match route(
            &store,
            &links,
            &practice,
            "GET /v1/conversations/{id}/messages",
            &req,
            at,
        )
        .await
        {
            Some(Ok(r)) => r,
            Some(Err(e)) => http::error(&e),
            None => panic!("not served"),
        };
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        let media = &body["items"][0]["media"];
        assert_eq!(
            media[0]["url"],
            "memory://media/p1/bw-1/0.png?expires_in=900"
        );
        assert!(media[0]["expires_at"].is_string(), "{media}");
        assert_eq!(
            media[1],
            serde_json::json!({"url": null, "content_type": "image/jpeg", "status": "copying", "expires_at": null})
        );
        assert!(
            !body.to_string().contains("https://carrier"),
            "no carrier link shown"
        );
    }
}
