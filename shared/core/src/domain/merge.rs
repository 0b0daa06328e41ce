//! Merge fields (`{first_name}` ...) in message texts and Quick Messages.

use super::error::AppError;

/// Every merge field a text may use.
pub const MERGE_FIELDS: [&str; 4] = ["first_name", "last_name", "practice_name", "practice_phone"];

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
}

impl<'a> MergeData<'a> {
    fn value(&self, field: &str) -> Option<&'a str> {
        match field {
            "first_name" => self.first_name,
            "last_name" => self.last_name,
            "practice_name" => self.practice_name,
            "practice_phone" => self.practice_phone,
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

/// Refuses a text that uses a merge field we do not know, naming it.
pub fn check_fields(text: &str, field: &str) -> Result<(), AppError> {
    for (_, _, name) in placeholders(text) {
        if !MERGE_FIELDS.contains(&name) {
            return Err(AppError::invalid(
                "unknown_merge_field",
                format!(
                    "{{{name}}} is not a merge field; use {}",
                    MERGE_FIELDS.map(|f| format!("{{{f}}}")).join(", ")
                ),
            )
            .at(field));
        }
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
    check_fields(text, "text")?;
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
        }
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
