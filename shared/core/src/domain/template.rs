//! Quick Messages: saved texts with merge fields (the seed's "Load a Quick Message").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::merge;
use super::text::{self, InvalidText, MAX_TEXT_CHARS};

/// A saved Quick Message, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickMessage {
    /// Id given by the API.
    pub id: String,
    /// What the office calls it ("Running late").
    pub name: String,
    /// The text, with merge fields.
    pub body: String,
    /// When it was saved first.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The most characters (Unicode code points) a Quick Message's name may have.
pub use super::limits::MAX_NAME_CHARS;

/// Body of `POST /v1/templates` and `PUT /v1/templates/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// What the office calls it; 1 to 100 characters once trimmed.
    pub name: String,
    /// The text, with merge fields; the same rules as a message's text.
    pub body: String,
}

impl TemplateInput {
    /// Checks the input: `name` 1 to 100 characters once trimmed (422
    /// `invalid_field`), `body` not empty and at most 1600 characters (422
    /// `invalid_text`) and using only known merge fields (422
    /// `unknown_merge_field`). Each refusal names its field.
    pub fn validate(&self) -> Result<(), AppError> {
        let name_chars = self.name.trim().chars().count();
        if !(1..=MAX_NAME_CHARS).contains(&name_chars) {
            return Err(AppError::invalid(
                "invalid_field",
                format!("name must be 1 to {MAX_NAME_CHARS} characters"),
            )
            .at("name"));
        }
        text::validate_text(&self.body).map_err(|e| {
            let message = match e {
                InvalidText::Empty => "body must not be empty".to_string(),
                InvalidText::TooLong(n) => format!(
                    "body is {n} characters; the most a message can carry is {MAX_TEXT_CHARS}"
                ),
            };
            AppError::invalid("invalid_text", message).at("body")
        })?;
        merge::check_fields_in(&self.body, "body", &merge::all_fields())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    fn input(name: &str, body: &str) -> TemplateInput {
        TemplateInput {
            name: name.into(),
            body: body.into(),
        }
    }

    #[test]
    fn a_running_late_template_is_valid() {
        assert_eq!(
            input(
                "Running late",
                "Hi {first_name}, {practice_name} is running 15 minutes late."
            )
            .validate(),
            Ok(())
        );
    }

    #[test]
    fn blank_name_is_refused() {
        let e = input("   ", "Hello").validate().unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Unprocessable, "invalid_field")
        );
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn name_of_100_characters_is_accepted_and_101_refused() {
        assert_eq!(input(&"é".repeat(100), "Hello").validate(), Ok(()));
        let e = input(&"a".repeat(101), "Hello").validate().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn name_is_measured_after_trimming() {
        let padded = format!("  {}  ", "a".repeat(100));
        assert_eq!(input(&padded, "Hello").validate(), Ok(()));
    }

    #[test]
    fn empty_body_is_invalid_text() {
        let e = input("Empty", " \n").validate().unwrap_err();
        assert_eq!(e.code, "invalid_text");
        assert_eq!(e.field.as_deref(), Some("body"));
        assert_eq!(e.message, "body must not be empty");
    }

    #[test]
    fn body_over_1600_characters_is_invalid_text() {
        let e = input("Long", &"a".repeat(1601)).validate().unwrap_err();
        assert_eq!(e.code, "invalid_text");
        assert_eq!(e.field.as_deref(), Some("body"));
        assert!(e.message.contains("1601"));
    }

    #[test]
    fn unknown_merge_field_is_refused_at_body() {
        let e = input("Nick", "Hi {nickname}").validate().unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Unprocessable, "unknown_merge_field")
        );
        assert_eq!(e.field.as_deref(), Some("body"));
        assert!(e.message.contains("{nickname}"));
    }

    #[test]
    fn name_is_checked_before_body() {
        let e = input("", "").validate().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn unknown_json_field_is_refused() {
        let e = crate::json::parse_json::<TemplateInput>(
            br#"{"name": "a", "body": "b", "colour": "red"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert_eq!(e.field.as_deref(), Some("colour"));
    }
}
