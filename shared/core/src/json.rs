//! Strict JSON input: every request body and stored document is read through
//! [`parse_json`], so a refusal always names the field.

use serde::de::DeserializeOwned;

use crate::domain::error::AppError;

/// Parses a JSON body strictly: malformed → 400 `invalid_json`, unknown field
/// → 400 `unknown_field`, wrong type or missing field → 422 `invalid_field`,
/// each naming the field. Returns the typed value and the canonical JSON value
/// (for idempotency hashing).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, serde_json::Value), AppError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        AppError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(AppError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    let typed = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let quoted = inner.split('`').nth(1).map(str::to_string);
        // serde_path_to_error already ends the path with an unknown field's
        // name; a missing field's path is its parent object.
        let missing_at = |name: Option<String>| match (path.as_str(), name) {
            (".", Some(n)) => n,
            (p, Some(n)) => format!("{p}.{n}"),
            (p, None) => p.to_string(),
        };
        if inner.starts_with("unknown field") {
            AppError::bad_request(
                "unknown_field",
                format!(
                    "{} is not a field this request accepts",
                    quoted.clone().unwrap_or_default()
                ),
            )
            .at(path.clone())
        } else if inner.starts_with("missing field") {
            AppError::invalid(
                "invalid_field",
                format!("{} is required", quoted.clone().unwrap_or_default()),
            )
            .at(missing_at(quoted))
        } else {
            let field = path.clone();
            AppError::invalid("invalid_field", format!("{field}: {inner}")).at(field)
        }
    })?;
    Ok((typed, value))
}

/// For an optional field that may be left out but not given as `null`
/// (`#[serde(default, deserialize_with = "crate::json::non_null")]`): a
/// `null` is refused like any other value of the wrong type, naming the field.
///
/// # Errors
///
/// When the value is not a `T` (a `null` included).
pub fn non_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        text: String,
        count: Option<u32>,
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let e = parse_json::<Sample>(b"{\"text\": ").unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::BadRequest, "invalid_json"));
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse_json::<Sample>(br#"{"text": "hi", "colour": 1}"#).unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::BadRequest, "unknown_field"));
        assert_eq!(e.field.as_deref(), Some("colour"));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Sample>(br#"{"text": "hi", "count": "x"}"#).unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Unprocessable, "invalid_field")
        );
        assert_eq!(e.field.as_deref(), Some("count"));
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse_json::<Sample>(br#"{}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("text"));
    }

    #[test]
    fn non_object_body_is_refused() {
        assert_eq!(
            parse_json::<Sample>(b"[1]").unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn a_field_that_may_be_left_out_is_not_null() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patch {
            #[serde(default, deserialize_with = "super::non_null")]
            read: Option<bool>,
        }
        let (p, _) = parse_json::<Patch>(b"{}").unwrap();
        assert_eq!(p.read, None);
        let (p, _) = parse_json::<Patch>(br#"{"read": false}"#).unwrap();
        assert_eq!(p.read, Some(false));
        let e = parse_json::<Patch>(br#"{"read": null}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("read"))
        );
    }
}
