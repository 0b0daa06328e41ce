//! `GET /v1/conversations`, `GET/PATCH /v1/conversations/{id}`,
//! `GET /v1/conversations/{id}/messages`: the Inbox and Patient Chat, for
//! whichever function serves those routes. (The reply,
//! `POST /v1/conversations/{id}/messages`, is a send and lives with the
//! other sends in the messages function.)

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http;
use messaging_core::app::conversations::{self, ConversationPatch, InboxQuery};
use messaging_core::domain::error::AppError;
use messaging_core::domain::practice::Practice;
use messaging_core::ports::{ConversationStore, OptOutStore};

/// Serves the conversation routes for `practice` (taken from the API key).
/// Returns `None` for any other route key, so the calling function can try
/// its own routes.
pub async fn route<S: ConversationStore + OptOutStore>(
    store: &S,
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
        "GET /v1/conversations/{id}/messages" => thread(store, practice, &id(), req).await,
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

async fn thread<S: ConversationStore>(
    store: &S,
    practice: &Practice,
    id: &str,
    req: &Request,
) -> Result<Response<Body>, AppError> {
    let (limit, cursor) = http::page_params(req)?;
    let (items, next) =
        conversations::thread(store, practice, id, limit, cursor.as_deref()).await?;
    Ok(http::page(&items, next))
}
