//! Opaque list cursors: a store position, base64url-encoded, so clients
//! cannot depend on (or forge meaningful) store keys.

use crate::domain::error::AppError;

/// An opaque cursor from a store position.
pub fn encode_cursor(position: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// The store position in an opaque cursor; 422 `invalid_cursor` if it is not one of ours.
pub fn decode_cursor(cursor: &str) -> Result<String, AppError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_cursor",
                "cursor is not one this API returned; start again without it",
            )
            .at("cursor")
        })
}
