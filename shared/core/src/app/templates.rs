//! Quick Messages: save, read, change, delete and list a practice's templates,
//! and load one for sending.

use chrono::{DateTime, Utc};

use crate::domain::error::AppError;
use crate::domain::template::{QuickMessage, TemplateInput};
use crate::paging;
use crate::ports::TemplateStore;

/// Longest id looked up; anything longer cannot be one of ours (UUIDs are 36).
const MAX_ID_LEN: usize = 64;

fn not_found(template_id: &str) -> AppError {
    AppError::not_found("template_not_found", format!("no template {template_id}"))
}

/// The template, or `None` without asking the store for an id we never give.
async fn find<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    template_id: &str,
) -> Result<Option<QuickMessage>, AppError> {
    if template_id.is_empty() || template_id.len() > MAX_ID_LEN {
        return Ok(None);
    }
    Ok(store.get_template(practice_id, template_id).await?)
}

/// `POST /v1/templates`: validates and saves a new template with a fresh,
/// time-ordered id. The name is stored trimmed, the body as given.
pub async fn create<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    input: TemplateInput,
    now: DateTime<Utc>,
) -> Result<QuickMessage, AppError> {
    input.validate()?;
    let template = QuickMessage {
        id: uuid::Uuid::now_v7().to_string(),
        name: input.name.trim().to_string(),
        body: input.body,
        created_at: now,
        updated_at: now,
    };
    store.put_template(practice_id, &template).await?;
    Ok(template)
}

/// `GET /v1/templates/{id}`: the template, or 404 `template_not_found`.
pub async fn get<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    template_id: &str,
) -> Result<QuickMessage, AppError> {
    find(store, practice_id, template_id)
        .await?
        .ok_or_else(|| not_found(template_id))
}

/// `PUT /v1/templates/{id}`: replaces name and body of an existing template,
/// keeping `created_at` and setting `updated_at` to `now`. 404
/// `template_not_found` when there is none; the input is validated first, so
/// a refused change stores nothing.
pub async fn replace<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    template_id: &str,
    input: TemplateInput,
    now: DateTime<Utc>,
) -> Result<QuickMessage, AppError> {
    input.validate()?;
    let current = get(store, practice_id, template_id).await?;
    let template = QuickMessage {
        id: current.id,
        name: input.name.trim().to_string(),
        body: input.body,
        created_at: current.created_at,
        updated_at: now,
    };
    store.put_template(practice_id, &template).await?;
    Ok(template)
}

/// `DELETE /v1/templates/{id}`: removes the template; 404
/// `template_not_found` when there was none (also the second time).
pub async fn delete<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    template_id: &str,
) -> Result<(), AppError> {
    let deleted = !template_id.is_empty()
        && template_id.len() <= MAX_ID_LEN
        && store.delete_template(practice_id, template_id).await?;
    if deleted {
        Ok(())
    } else {
        Err(not_found(template_id))
    }
}

/// `GET /v1/templates`: one page of templates, oldest first, and the opaque
/// cursor of the next page (`None` on the last page). A cursor this API did
/// not give is 422 `invalid_cursor`.
pub async fn list<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<QuickMessage>, Option<String>), AppError> {
    let after = cursor.map(decode_position).transpose()?;
    let (templates, next) = store
        .list_templates(practice_id, limit, after.as_deref())
        .await?;
    Ok((templates, next.as_deref().map(paging::encode_cursor)))
}

/// The template id a cursor carries. Only ids (UUIDs) are positions, so a
/// forged cursor never reaches the store.
fn decode_position(cursor: &str) -> Result<String, AppError> {
    let position = paging::decode_cursor(cursor)?;
    if uuid::Uuid::try_parse(&position).is_ok() {
        Ok(position)
    } else {
        Err(AppError::invalid(
            "invalid_cursor",
            "cursor is not one this API returned; start again without it",
        )
        .at("cursor"))
    }
}

/// The template a message is sent with (`template_id` of a send request):
/// 404 `template_not_found` with field `template_id` when the practice has
/// no such template.
pub async fn load_for_send<T: TemplateStore>(
    store: &T,
    practice_id: &str,
    template_id: &str,
) -> Result<QuickMessage, AppError> {
    find(store, practice_id, template_id)
        .await?
        .ok_or_else(|| not_found(template_id).at("template_id"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::error::ErrorKind;

    /// The shared in-memory store stands in for DynamoDB here.
    pub(crate) type MemoryTemplates = crate::testing::MemoryStore;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 15, minute, 0).unwrap()
    }

    fn input(name: &str, body: &str) -> TemplateInput {
        TemplateInput {
            name: name.into(),
            body: body.into(),
        }
    }

    #[tokio::test]
    async fn create_stores_a_trimmed_name_and_the_body_as_given() {
        let store = MemoryTemplates::default();
        let t = create(
            &store,
            "p1",
            input("  Running late ", "Hi {first_name}, we are late."),
            at(0),
        )
        .await
        .unwrap();
        assert_eq!(t.name, "Running late");
        assert_eq!(t.body, "Hi {first_name}, we are late.");
        assert_eq!((t.created_at, t.updated_at), (at(0), at(0)));
        assert!(uuid::Uuid::try_parse(&t.id).is_ok());
        assert_eq!(get(&store, "p1", &t.id).await.unwrap(), t);
    }

    #[tokio::test]
    async fn refused_input_stores_nothing() {
        let store = MemoryTemplates::default();
        let e = create(&store, "p1", input("Nick", "Hi {nickname}"), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code, "unknown_merge_field");
        assert_eq!(store.template_count().await, 0);
    }

    #[tokio::test]
    async fn unknown_template_is_not_found() {
        let store = MemoryTemplates::default();
        let e = get(&store, "p1", "0193684b-0000-7000-8000-000000000000")
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::NotFound, "template_not_found")
        );
        let long = "x".repeat(1000);
        assert_eq!(
            get(&store, "p1", &long).await.unwrap_err().code,
            "template_not_found"
        );
    }

    #[tokio::test]
    async fn another_practice_cannot_read_change_or_delete_a_template() {
        let store = MemoryTemplates::default();
        let t = create(&store, "p1", input("Mine", "Hello"), at(0))
            .await
            .unwrap();
        assert_eq!(
            get(&store, "p2", &t.id).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        let e = replace(&store, "p2", &t.id, input("Theirs", "Bye"), at(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            delete(&store, "p2", &t.id).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(list(&store, "p2", 50, None).await.unwrap().0, vec![]);
        assert_eq!(get(&store, "p1", &t.id).await.unwrap(), t);
    }

    #[tokio::test]
    async fn replace_keeps_created_at_and_sets_updated_at() {
        let store = MemoryTemplates::default();
        let t = create(&store, "p1", input("Late", "Running late"), at(0))
            .await
            .unwrap();
        let changed = replace(
            &store,
            "p1",
            &t.id,
            input("Late", "Running very late"),
            at(5),
        )
        .await
        .unwrap();
        assert_eq!(changed.id, t.id);
        assert_eq!(changed.body, "Running very late");
        assert_eq!((changed.created_at, changed.updated_at), (at(0), at(5)));
        assert_eq!(get(&store, "p1", &t.id).await.unwrap(), changed);
    }

    #[tokio::test]
    async fn replace_of_a_missing_template_is_not_found_and_creates_nothing() {
        let store = MemoryTemplates::default();
        let e = replace(
            &store,
            "p1",
            "0193684b-0000-7000-8000-000000000000",
            input("Late", "Running late"),
            at(0),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "template_not_found");
        assert_eq!(store.template_count().await, 0);
    }

    #[tokio::test]
    async fn refused_replace_leaves_the_template_unchanged() {
        let store = MemoryTemplates::default();
        let t = create(&store, "p1", input("Late", "Running late"), at(0))
            .await
            .unwrap();
        let e = replace(&store, "p1", &t.id, input("Late", ""), at(1))
            .await
            .unwrap_err();
        assert_eq!(e.code, "invalid_text");
        assert_eq!(get(&store, "p1", &t.id).await.unwrap(), t);
    }

    #[tokio::test]
    async fn delete_removes_once_then_is_not_found() {
        let store = MemoryTemplates::default();
        let t = create(&store, "p1", input("Late", "Running late"), at(0))
            .await
            .unwrap();
        delete(&store, "p1", &t.id).await.unwrap();
        assert_eq!(
            get(&store, "p1", &t.id).await.unwrap_err().code,
            "template_not_found"
        );
        assert_eq!(
            delete(&store, "p1", &t.id).await.unwrap_err().code,
            "template_not_found"
        );
    }

    #[tokio::test]
    async fn list_pages_through_every_template_once_in_creation_order() {
        let store = MemoryTemplates::default();
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(
                create(&store, "p1", input(&format!("T{i}"), "Hello"), at(i))
                    .await
                    .unwrap()
                    .id,
            );
        }
        create(&store, "p2", input("Other", "Hello"), at(0))
            .await
            .unwrap();

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = list(&store, "p1", 2, cursor.as_deref()).await.unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.into_iter().map(|t| t.id));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, created);
    }

    #[tokio::test]
    async fn a_full_last_page_has_no_next_cursor() {
        let store = MemoryTemplates::default();
        for i in 0..2 {
            create(&store, "p1", input("T", "Hello"), at(i))
                .await
                .unwrap();
        }
        let (page, next) = list(&store, "p1", 2, None).await.unwrap();
        assert_eq!((page.len(), next), (2, None));
    }

    #[tokio::test]
    async fn the_cursor_is_opaque() {
        let store = MemoryTemplates::default();
        let first = create(&store, "p1", input("A", "Hello"), at(0))
            .await
            .unwrap();
        create(&store, "p1", input("B", "Hello"), at(1))
            .await
            .unwrap();
        let (_, next) = list(&store, "p1", 1, None).await.unwrap();
        let cursor = next.unwrap();
        assert_ne!(cursor, first.id);
        assert_eq!(paging::decode_cursor(&cursor).unwrap(), first.id);
    }

    #[tokio::test]
    async fn a_cursor_we_did_not_give_is_refused() {
        let store = MemoryTemplates::default();
        for bad in ["%%%", "bm90LWFuLWlk"] {
            let e = list(&store, "p1", 10, Some(bad)).await.unwrap_err();
            assert_eq!(
                (e.kind, e.code),
                (ErrorKind::Unprocessable, "invalid_cursor")
            );
            assert_eq!(e.field.as_deref(), Some("cursor"));
        }
    }

    #[tokio::test]
    async fn load_for_send_names_template_id_when_missing() {
        let store = MemoryTemplates::default();
        let t = create(&store, "p1", input("Late", "Hi {first_name}"), at(0))
            .await
            .unwrap();
        assert_eq!(load_for_send(&store, "p1", &t.id).await.unwrap(), t);
        let e = load_for_send(&store, "p2", &t.id).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::NotFound, "template_not_found")
        );
        assert_eq!(e.field.as_deref(), Some("template_id"));
    }
}
