//! Quick Messages end to end on the deployed local stack:
//! HTTP API → Lambda → DynamoDB and back.

use std::collections::HashSet;

use cloud_tests::{Endpoints, TestPractice};
use serde_json::{json, Value};

async fn create(t: &TestPractice, name: &str, body: &str) -> Value {
    let r = t
        .api
        .post("/v1/templates", &json!({"name": name, "body": body}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

fn id_of(template: &Value) -> String {
    template["id"].as_str().expect("id").to_string()
}

/// RFC 3339, UTC, milliseconds, `Z`: `2026-11-26T15:00:00.123Z`.
fn is_api_time(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24
            && s.ends_with('Z')
            && s.as_bytes()[19] == b'.'
            && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn created_template_is_answered_201_and_read_back() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let body = "Hi {first_name}, {practice_name} is running 15 minutes late. Sorry!";
    let created = create(&t, "Running late", body).await;
    assert!(created["id"].is_string());
    assert_eq!(created["name"], "Running late");
    assert_eq!(created["body"], body);
    assert!(is_api_time(&created["created_at"]), "{created}");
    assert_eq!(created["updated_at"], created["created_at"]);

    let id = id_of(&created);
    let r = t.api.get(&format!("/v1/templates/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, created);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn pages_of_one_show_every_template_exactly_once() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let mut created = HashSet::new();
    for i in 0..4 {
        created.insert(id_of(
            &create(&t, &format!("Template {i}"), "See you soon").await,
        ));
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/templates?limit=1&cursor={c}"),
            None => "/v1/templates?limit=1".to_string(),
        };
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let items = r.body["items"].as_array().expect("items");
        assert!(items.len() <= 1, "{:?}", r.body);
        seen.extend(items.iter().map(id_of));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert_eq!(r.body["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(seen.len(), created.len(), "each exactly once: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);

    let all = t.api.get("/v1/templates").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(all.body["next_cursor"], Value::Null);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn limit_outside_1_to_200_is_invalid_limit() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    for limit in ["0", "201"] {
        let r = t.api.get(&format!("/v1/templates?limit={limit}")).await;
        assert_eq!(r.status, 422, "limit={limit}: {:?}", r.body);
        assert_eq!(r.code(), "invalid_limit");
    }
    assert_eq!(t.api.get("/v1/templates?limit=200").await.status, 200);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn put_changes_the_body_and_keeps_created_at() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let created = create(&t, "Running late", "We are running late").await;
    let id = id_of(&created);

    let r = t
        .api
        .put(
            &format!("/v1/templates/{id}"),
            &json!({"name": "Running late", "body": "We are running 30 minutes late"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["body"], "We are running 30 minutes late");
    assert_eq!(r.body["created_at"], created["created_at"]);
    assert!(is_api_time(&r.body["updated_at"]));
    assert!(r.body["updated_at"].as_str() >= created["updated_at"].as_str());

    let read = t.api.get(&format!("/v1/templates/{id}")).await;
    assert_eq!(read.body, r.body);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn put_of_an_unknown_template_is_404() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t
        .api
        .put(
            "/v1/templates/0193684b-0000-7000-8000-000000000000",
            &json!({"name": "Nope", "body": "Nope"}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(r.code(), "template_not_found");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn delete_answers_204_then_the_template_is_gone() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let id = id_of(&create(&t, "Closing early", "We close at 3pm today").await);
    let path = format!("/v1/templates/{id}");

    let r = t.api.call("DELETE", &path, None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(r.body, Value::Null);

    let r = t.api.get(&path).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "template_not_found");

    let r = t.api.call("DELETE", &path, None, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "template_not_found");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn unknown_merge_field_is_refused_when_saved() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t
        .api
        .post(
            "/v1/templates",
            &json!({"name": "Nickname", "body": "Hi {nickname}!"}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.code(), "unknown_merge_field");
    assert_eq!(r.field(), "body");
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("{nickname}")));

    let id = id_of(&create(&t, "Nickname", "Hi {first_name}!").await);
    let r = t
        .api
        .put(
            &format!("/v1/templates/{id}"),
            &json!({"name": "Nickname", "body": "Hi {nickname}!"}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.code(), "unknown_merge_field");
    let unchanged = t.api.get(&format!("/v1/templates/{id}")).await;
    assert_eq!(unchanged.body["body"], "Hi {first_name}!");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn empty_body_is_invalid_text_and_stores_nothing() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t
        .api
        .post("/v1/templates", &json!({"name": "Empty", "body": "   "}))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.code(), "invalid_text");
    assert_eq!(r.field(), "body");
    let list = t.api.get("/v1/templates").await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn unknown_json_field_is_400_unknown_field() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    let r = t
        .api
        .post(
            "/v1/templates",
            &json!({"name": "Late", "body": "Running late", "category": "ops"}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.code(), "unknown_field");
    assert_eq!(r.field(), "category");
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn another_practice_cannot_see_or_change_a_template() {
    let local = Endpoints::load();
    let owner = local.new_practice().await;
    let other = local.new_practice().await;
    let id = id_of(&create(&owner, "Private", "Only ours").await);
    let path = format!("/v1/templates/{id}");

    let r = other.api.get(&path).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(r.code(), "template_not_found");
    let r = other
        .api
        .put(&path, &json!({"name": "Mine now", "body": "Hijacked"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(other.api.call("DELETE", &path, None, &[]).await.status, 404);
    assert_eq!(
        other.api.get("/v1/templates").await.body["items"],
        json!([])
    );

    let r = owner.api.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["body"], "Only ours");
}
