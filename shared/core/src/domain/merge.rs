//! Merge fields (`{first_name}` ...) in message texts and Quick Messages.

use super::error::AppError;

/// The merge fields every text to a patient may use.
pub const MERGE_FIELDS: [&str; 4] = ["first_name", "last_name", "practice_name", "practice_phone"];

/// What an appointment reminder (a rule's, or one staff send) may use besides
/// [`MERGE_FIELDS`]: dates and times in the practice's time zone.
pub const APPOINTMENT_FIELDS: [&str; 4] = [
    "appointment_date",
    "appointment_time",
    "provider",
    "location",
];

/// What a review request or a schedule invitation may use besides
/// [`MERGE_FIELDS`]: the practice's links (settings `links`).
pub const LINK_FIELDS: [&str; 2] = ["review_link", "schedule_link"];

/// Every merge field there is: what a Quick Message may hold (it is checked
/// again for the kind of text it is used in).
pub fn all_fields() -> Vec<&'static str> {
    MERGE_FIELDS
        .iter()
        .chain(APPOINTMENT_FIELDS.iter())
        .chain(LINK_FIELDS.iter())
        .copied()
        .collect()
}

/// The fields of a reminder text.
pub fn reminder_fields() -> Vec<&'static str> {
    MERGE_FIELDS
        .iter()
        .chain(APPOINTMENT_FIELDS.iter())
        .copied()
        .collect()
}

/// The fields of a review request or a schedule invitation.
pub fn link_message_fields() -> Vec<&'static str> {
    MERGE_FIELDS
        .iter()
        .chain(LINK_FIELDS.iter())
        .copied()
        .collect()
}

/// The values a text is rendered with for one recipient.
#[derive(Debug, Clone, Default)]
pub struct MergeData<'a> {
    #[allow(missing_docs)]
    pub first_name: Option<&'a str>,
    #[allow(missing_docs)]
    pub last_name: Option<&'a str>,
    #[allow(missing_docs)]
    pub practice_name: Option<&'a str>,
    #[allow(missing_docs)]
    pub practice_phone: Option<&'a str>,
    /// "Tue, Dec 8" (practice time).
    pub appointment_date: Option<&'a str>,
    /// "9:30 AM" (practice time).
    pub appointment_time: Option<&'a str>,
    #[allow(missing_docs)]
    pub provider: Option<&'a str>,
    #[allow(missing_docs)]
    pub location: Option<&'a str>,
    #[allow(missing_docs)]
    pub review_link: Option<&'a str>,
    #[allow(missing_docs)]
    pub schedule_link: Option<&'a str>,
}

impl<'a> MergeData<'a> {
    fn value(&self, field: &str) -> Option<&'a str> {
        match field {
            "first_name" => self.first_name,
            "last_name" => self.last_name,
            "practice_name" => self.practice_name,
            "practice_phone" => self.practice_phone,
            "appointment_date" => self.appointment_date,
            "appointment_time" => self.appointment_time,
            "provider" => self.provider,
            "location" => self.location,
            "review_link" => self.review_link,
            "schedule_link" => self.schedule_link,
            _ => None,
        }
        .filter(|v| !v.trim().is_empty())
    }
}

/// A `{name}` placeholder: lowercase letters, digits and `_`, starting with a letter.
fn placeholders(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] == b'{' {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_lowercase()
                        || bytes[j].is_ascii_digit()
                        || bytes[j] == b'_')
                {
                    j += 1;
                }
                if j < bytes.len()
                    && bytes[j] == b'}'
                    && j > start + 1
                    && bytes[start + 1].is_ascii_lowercase()
                {
                    i = j + 1;
                    return Some((start, j + 1, &text[start + 1..j]));
                }
            }
            i += 1;
        }
        None
    })
}

/// Whether `text` uses any of `fields`.
pub fn uses_any(text: &str, fields: &[&str]) -> bool {
    placeholders(text).any(|(_, _, name)| fields.contains(&name))
}

/// Refuses a text that uses a merge field we do not know, naming it.
pub fn check_fields(text: &str, field: &str) -> Result<(), AppError> {
    check_fields_in(text, field, &MERGE_FIELDS)
}

/// Refuses a text that uses a merge field outside `allowed` (422
/// `unknown_merge_field`), saying where a field of another kind of text
/// belongs.
pub fn check_fields_in(text: &str, field: &str, allowed: &[&str]) -> Result<(), AppError> {
    for (_, _, name) in placeholders(text) {
        if allowed.contains(&name) {
            continue;
        }
        let list = allowed
            .iter()
            .map(|f| format!("{{{f}}}"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = if APPOINTMENT_FIELDS.contains(&name) {
            format!("{{{name}}} can be used in reminder rules and manual reminders only; here use {list}")
        } else if LINK_FIELDS.contains(&name) {
            format!("{{{name}}} can be used in review requests and schedule invitations only; here use {list}")
        } else {
            format!("{{{name}}} is not a merge field; use {list}")
        };
        return Err(AppError::invalid("unknown_merge_field", message).at(field));
    }
    Ok(())
}

/// The merge fields a practice-wide text (the HELP reply, the after-hours
/// reply) may use: it goes to numbers that may belong to no patient.
pub const PRACTICE_MERGE_FIELDS: [&str; 2] = ["practice_name", "practice_phone"];

/// Refuses a practice-wide text that uses anything but
/// [`PRACTICE_MERGE_FIELDS`], naming the field.
pub fn check_practice_fields(text: &str, field: &str) -> Result<(), AppError> {
    for (_, _, name) in placeholders(text) {
        if !PRACTICE_MERGE_FIELDS.contains(&name) {
            return Err(AppError::invalid(
                "unknown_merge_field",
                format!(
                    "{{{name}}} cannot be used here: this text also goes to numbers of no known patient; use {}",
                    PRACTICE_MERGE_FIELDS.map(|f| format!("{{{f}}}")).join(" or ")
                ),
            )
            .at(field));
        }
    }
    Ok(())
}

/// Renders `text` for one recipient. A field the text uses that `data`
/// lacks is refused with `missing_merge_data`, naming the field.
pub fn render(text: &str, data: &MergeData<'_>) -> Result<String, AppError> {
    check_fields_in(text, "text", &all_fields())?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, name) in placeholders(text) {
        let value = data.value(name).ok_or_else(|| {
            AppError::invalid(
                "missing_merge_data",
                format!("the text uses {{{name}}} but no {name} is known for this recipient"),
            )
            .at(name)
        })?;
        out.push_str(&text[last..start]);
        out.push_str(value.trim());
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ana() -> MergeData<'static> {
        MergeData {
            first_name: Some("Ana"),
            last_name: None,
            practice_name: Some("Bright Smiles"),
            practice_phone: Some("+14155550100"),
            ..MergeData::default()
        }
    }

    #[test]
    fn appointment_fields_belong_to_reminders_and_links_to_their_messages() {
        let e = check_fields("See you {appointment_date}", "text").unwrap_err();
        assert_eq!(e.code, "unknown_merge_field");
        assert!(e.message.contains("reminder rules"), "{}", e.message);
        assert!(check_fields_in("See you {appointment_date}", "text", &reminder_fields()).is_ok());
        let e =
            check_fields_in("Review us: {review_link}", "text", &reminder_fields()).unwrap_err();
        assert!(e.message.contains("review requests"), "{}", e.message);
        assert!(
            check_fields_in("Review us: {review_link}", "text", &link_message_fields()).is_ok()
        );
    }

    #[test]
    fn known_fields_are_replaced() {
        let t = render(
            "Hi {first_name}, {practice_name} here. Call {practice_phone}.",
            &ana(),
        )
        .unwrap();
        assert_eq!(t, "Hi Ana, Bright Smiles here. Call +14155550100.");
    }

    #[test]
    fn unknown_field_is_named() {
        let e = render("Hi {nickname}", &ana()).unwrap_err();
        assert_eq!(e.code, "unknown_merge_field");
        assert!(e.message.contains("{nickname}"));
    }

    #[test]
    fn missing_value_is_refused_not_left_blank() {
        let e = render("Dear {first_name} {last_name}", &ana()).unwrap_err();
        assert_eq!(e.code, "missing_merge_data");
        assert_eq!(e.field.as_deref(), Some("last_name"));
    }

    #[test]
    fn braces_that_are_not_fields_stay_literal() {
        let t = render("Use code {} or { x } or {A}", &ana()).unwrap();
        assert_eq!(t, "Use code {} or { x } or {A}");
    }
}
