//! `PATCH /v1/settings`: what the office itself may change about its
//! practice (the HELP reply, the after-hours reply, the review and
//! scheduling links, the automatic window). Numbers, the bulk
//! cap and quiet hours stay with the administrator.

use serde_json::Value;

use crate::domain::error::AppError;
use crate::domain::merge::check_practice_fields;
use crate::domain::office_hours::AutoReply;
use crate::domain::practice::{AutomaticWindow, Links, Practice, SettingsChange};
use crate::domain::text::MAX_TEXT_CHARS;
use crate::ports::PracticeStore;

/// Fields `GET /v1/settings` shows that only the administrator changes.
const READ_ONLY: [&str; 9] = [
    "practice_id",
    "carrier",
    "name",
    "timezone",
    "channels",
    "hourly_cap",
    "cap_window_seconds",
    "max_bulk_recipients",
    "quiet_hours",
];

/// Applies a settings change to `practice`: checks everything first, then
/// writes only the fields the body names onto the practice as stored (never
/// the whole practice from a copy that may be a minute old, which could
/// undo an administrator's change), and returns the practice as stored.
pub async fn update<S: PracticeStore>(
    store: &S,
    practice: &Practice,
    body: &Value,
) -> Result<Practice, AppError> {
    let fields = body
        .as_object()
        .ok_or_else(|| AppError::bad_request("invalid_json", "the body must be a JSON object"))?;
    let mut change = SettingsChange::default();
    for (name, value) in fields {
        match name.as_str() {
            "help_text" => change.help_text = Some(help_text(value)?),
            "links" => change.links = Some(links(value, &practice.links)?),
            "automatic_window" => change.automatic_window = Some(automatic_window(value)?),
            "auto_reply" => {
                let auto_reply = AutoReply::from_json(value, "auto_reply")?;
                check_practice_fields(&auto_reply.text, "auto_reply.text")?;
                change.auto_reply = Some(auto_reply);
            }
            other if READ_ONLY.contains(&other) => {
                return Err(AppError::invalid(
                    "read_only_field",
                    format!(
                        "{other} is changed by the practice's administrator, not through the API"
                    ),
                )
                .at(other))
            }
            other => {
                return Err(AppError::bad_request(
                    "unknown_field",
                    format!("{other} is not a setting; the API changes help_text, auto_reply, links and automatic_window"),
                )
                .at(other))
            }
        }
    }
    if change.is_empty() {
        return Ok(practice.clone());
    }
    store
        .update_settings(&practice.practice_id, &change)
        .await?
        .ok_or_else(|| AppError::unavailable("the practice could not be read; try again"))
}

/// Longest link.
const MAX_LINK_CHARS: usize = 200;

/// `links`: `{"review": url|null, "schedule": url|null}`; a key left out
/// keeps its link.
fn links(value: &Value, current: &Links) -> Result<Links, AppError> {
    let object = value.as_object().ok_or_else(|| {
        AppError::invalid(
            "invalid_field",
            "links must be an object with review and schedule",
        )
        .at("links")
    })?;
    let mut next = current.clone();
    for (name, link) in object {
        let field = format!("links.{name}");
        let url = match link {
            Value::Null => None,
            Value::String(url) => {
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() > "https://".len()
                    && url.chars().count() <= MAX_LINK_CHARS
                    && !url.chars().any(char::is_whitespace);
                if !ok {
                    return Err(AppError::invalid(
                        "invalid_field",
                        format!("{field} must be a web address (https://…) of at most {MAX_LINK_CHARS} characters, or null"),
                    )
                    .at(field));
                }
                Some(url.clone())
            }
            _ => {
                return Err(AppError::invalid(
                    "invalid_field",
                    format!("{field} must be a string or null"),
                )
                .at(field))
            }
        };
        match name.as_str() {
            "review" => next.review = url,
            "schedule" => next.schedule = url,
            _ => {
                return Err(AppError::bad_request(
                    "unknown_field",
                    format!("{field} is not a link; links are review and schedule"),
                )
                .at(field))
            }
        }
    }
    Ok(next)
}

/// `automatic_window`: `{"start","end","day_of_start"}` (HH:MM, practice
/// time) or null for any time.
fn automatic_window(value: &Value) -> Result<Option<AutomaticWindow>, AppError> {
    if value.is_null() {
        return Ok(None);
    }
    let window: AutomaticWindow = serde_json::from_value(value.clone()).map_err(|e| {
        AppError::invalid(
            "invalid_field",
            format!("automatic_window must be null or {{\"start\": \"09:00\", \"end\": \"20:00\", \"day_of_start\": \"08:00\"}}: {e}"),
        )
        .at("automatic_window")
    })?;
    window.validate().map_err(|e| {
        AppError::invalid("invalid_field", format!("automatic_window: {e}")).at("automatic_window")
    })?;
    Ok(Some(window))
}

/// `help_text`: a text with practice merge fields, or null for the default.
fn help_text(value: &Value) -> Result<Option<String>, AppError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            let chars = text.chars().count();
            if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
                return Err(AppError::invalid(
                    "invalid_text",
                    format!("help_text must have 1 to {MAX_TEXT_CHARS} characters (or be null for the default)"),
                )
                .at("help_text"));
            }
            check_practice_fields(text, "help_text")?;
            Ok(Some(text.clone()))
        }
        _ => Err(
            AppError::invalid("invalid_field", "help_text must be a string or null")
                .at("help_text"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{sample_practice, MemoryStore};

    async fn stored(store: &MemoryStore) -> Practice {
        store.get_practice("p1").await.unwrap().unwrap()
    }

    async fn setup() -> (MemoryStore, Practice) {
        let store = MemoryStore::default();
        let practice = sample_practice("p1");
        store.put_practice(&practice).await.unwrap();
        (store, practice)
    }

    fn hours() -> Value {
        json!({"mon": {"open": "08:00", "close": "17:00"}, "tue": null, "wed": null, "thu": null,
               "fri": {"open": "08:00", "close": "12:00"}, "sat": null, "sun": null})
    }

    #[tokio::test]
    async fn a_change_from_a_stale_copy_keeps_what_the_administrator_changed_since() {
        let (store, cached) = setup().await;
        // The administrator changes the cap after the API cached the practice.
        let mut by_admin = cached.clone();
        by_admin.hourly_cap = 40;
        store.put_practice(&by_admin).await.unwrap();
        let updated = update(
            &store,
            &cached,
            &json!({"help_text": "Call {practice_phone}."}),
        )
        .await
        .unwrap();
        assert_eq!(
            updated.hourly_cap, 40,
            "the answer is the practice as stored"
        );
        let now_stored = stored(&store).await;
        assert_eq!(
            now_stored.hourly_cap, 40,
            "the administrator's change stays"
        );
        assert_eq!(
            now_stored.help_text.as_deref(),
            Some("Call {practice_phone}.")
        );
    }

    #[tokio::test]
    async fn help_text_and_auto_reply_are_changed_and_stored() {
        let (store, practice) = setup().await;
        let body = json!({"help_text": "{practice_name}: call {practice_phone}.",
                          "auto_reply": {"enabled": true, "text": "We are closed; we will answer in the morning.", "office_hours": hours()}});
        let updated = update(&store, &practice, &body).await.unwrap();
        assert_eq!(
            updated.help_text.as_deref(),
            Some("{practice_name}: call {practice_phone}.")
        );
        assert!(updated.auto_reply.enabled);
        assert!(updated.auto_reply.office_hours.tue.is_none());
        assert_eq!(stored(&store).await, updated);
        // null brings the default HELP text back.
        let reset = update(&store, &updated, &json!({"help_text": null}))
            .await
            .unwrap();
        assert_eq!(reset.help_text, None);
        assert_eq!(stored(&store).await.help_text, None);
    }

    #[tokio::test]
    async fn administrator_fields_are_read_only_and_nothing_is_stored() {
        let (store, practice) = setup().await;
        for field in ["hourly_cap", "quiet_hours", "channels", "timezone", "name"] {
            let body = json!({"help_text": "Call us.", field: 1});
            let e = update(&store, &practice, &body).await.unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("read_only_field", Some(field))
            );
            assert_eq!(stored(&store).await, practice, "{field}: nothing stored");
        }
        let e = update(&store, &practice, &json!({"colour": "blue"}))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("colour"))
        );
    }

    #[tokio::test]
    async fn bad_values_name_their_field_and_store_nothing() {
        let (store, practice) = setup().await;
        let cases = [
            (
                json!({"help_text": "Hi {first_name}"}),
                "unknown_merge_field",
                "help_text",
            ),
            (json!({"help_text": "  "}), "invalid_text", "help_text"),
            (json!({"help_text": 5}), "invalid_field", "help_text"),
            (
                json!({"auto_reply": {"enabled": true, "text": "Hi {first_name}", "office_hours": hours()}}),
                "unknown_merge_field",
                "auto_reply.text",
            ),
            (
                json!({"auto_reply": {"enabled": true, "text": "", "office_hours": hours()}}),
                "invalid_text",
                "auto_reply.text",
            ),
        ];
        for (body, code, field) in cases {
            let e = update(&store, &practice, &body).await.unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (code, Some(field)), "{body}");
        }
        let mut bad_hours = hours();
        bad_hours["mon"]["open"] = json!("8am");
        let e = update(
            &store,
            &practice,
            &json!({"auto_reply": {"enabled": true, "text": "Closed.", "office_hours": bad_hours}}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("auto_reply.office_hours.mon.open"));
        assert_eq!(stored(&store).await, practice);
    }
}
