//! `GET/POST /v1/templates`, `GET/PUT/DELETE /v1/templates/{id}`: Quick
//! Messages, for whichever function serves those routes.

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::http;
use messaging_core::app::templates;
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::AppError;
use messaging_core::domain::practice::Practice;
use messaging_core::domain::template::{QuickMessage, TemplateInput};
use messaging_core::ports::TemplateStore;

/// A template as the API shows it: `{"id","name","body","created_at","updated_at"}`,
/// times in RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateView {
    /// Id given by the API.
    pub id: String,
    /// What the office calls it.
    pub name: String,
    /// The text, with merge fields.
    pub body: String,
    /// When it was saved first.
    pub created_at: String,
    /// When it was last changed.
    pub updated_at: String,
}

impl From<&QuickMessage> for TemplateView {
    fn from(t: &QuickMessage) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            body: t.body.clone(),
            created_at: to_api_time(&t.created_at),
            updated_at: to_api_time(&t.updated_at),
        }
    }
}

/// Serves the Quick Message routes for `practice` (taken from the API key).
/// Returns `None` for any other route key, so the calling function can try
/// its own routes.
pub async fn route<T: TemplateStore>(
    store: &T,
    practice: &Practice,
    route: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Option<Result<Response<Body>, AppError>> {
    let practice_id = practice.practice_id.as_str();
    let id = || http::path_param(req, "id").unwrap_or_default();
    let result = match route {
        "GET /v1/templates" => list(store, practice_id, req).await,
        "POST /v1/templates" => match input(req) {
            Ok(input) => templates::create(store, practice_id, input, now)
                .await
                .map(|t| view(StatusCode::CREATED, &t)),
            Err(e) => Err(e),
        },
        "GET /v1/templates/{id}" => templates::get(store, practice_id, &id())
            .await
            .map(|t| view(StatusCode::OK, &t)),
        "PUT /v1/templates/{id}" => match input(req) {
            Ok(input) => templates::replace(store, practice_id, &id(), input, now)
                .await
                .map(|t| view(StatusCode::OK, &t)),
            Err(e) => Err(e),
        },
        "DELETE /v1/templates/{id}" => templates::delete(store, practice_id, &id())
            .await
            .map(|()| http::empty(StatusCode::NO_CONTENT)),
        _ => return None,
    };
    Some(result)
}

/// The body of a POST or PUT, parsed strictly.
fn input(req: &Request) -> Result<TemplateInput, AppError> {
    let (input, _) = messaging_core::json::parse_json::<TemplateInput>(http::body_bytes(req)?)?;
    Ok(input)
}

fn view(status: StatusCode, template: &QuickMessage) -> Response<Body> {
    http::json(status, &TemplateView::from(template))
}

async fn list<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    req: &Request,
) -> Result<Response<Body>, AppError> {
    let (limit, cursor) = http::page_params(req)?;
    let (page, next) = templates::list(store, practice_id, limit, cursor.as_deref()).await?;
    let items: Vec<TemplateView> = page.iter().map(TemplateView::from).collect();
    Ok(http::page(&items, next))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use lambda_http::RequestExt;
    use serde_json::{json, Value};

    use super::*;
    use messaging_core::testing::sample_practice;
    use messaging_core::testing::MemoryStore as MemoryTemplates;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap()
    }

    fn request(body: &str) -> Request {
        lambda_http::http::Request::new(Body::from(body))
    }

    fn with_id(req: Request, id: &str) -> Request {
        req.with_path_parameters(HashMap::from([("id".to_string(), id.to_string())]))
    }

    async fn call(store: &MemoryTemplates, route_key: &str, req: Request) -> (u16, Value) {
        let response = match route(store, &sample_practice("p1"), route_key, &req, now()).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => http::error(&e),
            None => panic!("{route_key} not served"),
        };
        let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    async fn create(store: &MemoryTemplates, name: &str) -> Value {
        let body = json!({"name": name, "body": "Hi {first_name}"}).to_string();
        let (status, body) = call(store, "POST /v1/templates", request(&body)).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    #[tokio::test]
    async fn post_answers_201_with_the_template_in_api_shape() {
        let store = MemoryTemplates::default();
        let t = create(&store, "Running late").await;
        let mut fields: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["body", "created_at", "id", "name", "updated_at"]);
        assert_eq!(t["name"], "Running late");
        assert_eq!(t["body"], "Hi {first_name}");
        assert_eq!(t["created_at"], "2026-11-26T15:00:00.000Z");
        assert_eq!(t["updated_at"], "2026-11-26T15:00:00.000Z");
    }

    #[tokio::test]
    async fn get_put_and_delete_address_the_template_by_path_id() {
        let store = MemoryTemplates::default();
        let id = create(&store, "Late").await["id"]
            .as_str()
            .unwrap()
            .to_string();

        let (status, got) = call(&store, "GET /v1/templates/{id}", with_id(request(""), &id)).await;
        assert_eq!((status, got["id"].as_str()), (200, Some(id.as_str())));

        let put = json!({"name": "Later", "body": "Very late"}).to_string();
        let (status, changed) = call(
            &store,
            "PUT /v1/templates/{id}",
            with_id(request(&put), &id),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(
            (changed["name"].as_str(), changed["body"].as_str()),
            (Some("Later"), Some("Very late"))
        );

        let (status, body) = call(
            &store,
            "DELETE /v1/templates/{id}",
            with_id(request(""), &id),
        )
        .await;
        assert_eq!((status, body), (204, Value::Null));
        let (status, body) = call(
            &store,
            "DELETE /v1/templates/{id}",
            with_id(request(""), &id),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("template_not_found"))
        );
    }

    #[tokio::test]
    async fn list_answers_a_page_with_a_cursor() {
        let store = MemoryTemplates::default();
        for name in ["A", "B", "C"] {
            create(&store, name).await;
        }
        let req = request("")
            .with_query_string_parameters(HashMap::from([("limit".to_string(), "2".to_string())]));
        let (status, page) = call(&store, "GET /v1/templates", req).await;
        assert_eq!(status, 200);
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap().to_string();

        let req = request("").with_query_string_parameters(HashMap::from([
            ("limit".to_string(), "2".to_string()),
            ("cursor".to_string(), cursor),
        ]));
        let (_, page) = call(&store, "GET /v1/templates", req).await;
        assert_eq!(page["items"][0]["name"], "C");
        assert_eq!(page["next_cursor"], Value::Null);
    }

    #[tokio::test]
    async fn limit_out_of_range_is_invalid_limit() {
        let store = MemoryTemplates::default();
        for limit in ["0", "201", "x"] {
            let req = request("").with_query_string_parameters(HashMap::from([(
                "limit".to_string(),
                limit.to_string(),
            )]));
            let (status, body) = call(&store, "GET /v1/templates", req).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (422, Some("invalid_limit"))
            );
        }
    }

    #[tokio::test]
    async fn unknown_field_is_400_and_stores_nothing() {
        let store = MemoryTemplates::default();
        let body = json!({"name": "A", "body": "B", "tags": []}).to_string();
        let (status, body) = call(&store, "POST /v1/templates", request(&body)).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "unknown_field");
        assert_eq!(body["error"]["field"], "tags");
        assert_eq!(store.template_count().await, 0);
    }

    #[tokio::test]
    async fn other_routes_are_left_to_the_caller() {
        let store = MemoryTemplates::default();
        let req = request("");
        assert!(route(
            &store,
            &sample_practice("p1"),
            "GET /v1/settings",
            &req,
            now()
        )
        .await
        .is_none());
    }
}
