//! MMS media, both sides of it.
//!
//! - **Inbound files.** `POST /_sim/inbound` may carry
//!   `"media": [{"content_type": "image/jpeg", "base64": "..."}]`.
//!   [`validate_media`] checks it the way Bandwidth would limit an MMS (at
//!   most [`MAX_MEDIA_ITEMS`] files, [`MAX_MEDIA_TOTAL_BYTES`] in all, only
//!   [`MMS_CONTENT_TYPES`]); the files are kept in memory under media ids
//!   `{messageId}/{index}/file{index}.{ext}`, like Bandwidth's
//!   `14762070468292kw2fuqty55yp2b2/0/bw.png`.
//! - **Media API.** `GET /api/v2/users/{accountId}/media/{mediaId}` serves a
//!   stored file with its `Content-Type`, behind the same HTTP Basic
//!   credentials as the send API: 401 without them, 403 for another
//!   account, 404 for an unknown id, and 503 while a test has armed
//!   download failures (`PUT /_sim/config` with `media_failures`). Every
//!   request is recorded for `GET /_sim/media-requests`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::api::{basic_credentials, ApiError, FieldError};
use crate::sim::{now_rfc3339, AppState, MediaRequestRecord, StoredMedia};

/// Most files one MMS may carry.
pub const MAX_MEDIA_ITEMS: usize = 10;
/// Most bytes (decoded) all files of one MMS may add up to: 3.5 MB.
pub const MAX_MEDIA_TOTAL_BYTES: usize = 3_500_000;
/// Request body limit of `/_sim/inbound`: room for
/// [`MAX_MEDIA_TOTAL_BYTES`] in base64 (4/3 larger) plus the JSON around it,
/// so an oversized MMS gets the 422 that names `media` rather than a bare 413.
pub const INBOUND_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Content types Bandwidth accepts for MMS, with the file extension used in
/// the media id. Matched case-insensitively, ignoring parameters such as
/// `; charset=utf-8`.
pub const MMS_CONTENT_TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/bmp", "bmp"),
    ("video/mp4", "mp4"),
    ("video/3gpp", "3gp"),
    ("video/mpeg", "mpeg"),
    ("video/quicktime", "mov"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/amr", "amr"),
    ("audio/ogg", "ogg"),
    ("text/vcard", "vcf"),
    ("text/x-vcard", "vcf"),
    ("text/calendar", "ics"),
    ("text/plain", "txt"),
    ("application/pdf", "pdf"),
    ("application/smil", "smil"),
];

/// One inbound file that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMedia {
    /// Content type as the test gave it (trimmed).
    pub content_type: String,
    /// Extension for the media id.
    pub extension: &'static str,
    /// Decoded file.
    pub bytes: Vec<u8>,
}

/// The extension for an accepted MMS content type, `None` if Bandwidth
/// would refuse it.
pub fn mms_extension(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    MMS_CONTENT_TYPES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(essence))
        .map(|&(_, extension)| extension)
}

/// Checks the `media` array of `/_sim/inbound`, collecting every problem
/// with the field it is about (`media`, `media[1].content_type`,
/// `media[0].base64`).
pub fn validate_media(media: &Value) -> Result<Vec<NewMedia>, Vec<FieldError>> {
    let Some(items) = media.as_array() else {
        return Err(vec![FieldError::new(
            "media",
            "'media' must be an array of {content_type, base64} objects",
        )]);
    };
    let mut errors = Vec::new();
    if items.len() > MAX_MEDIA_ITEMS {
        errors.push(FieldError::new(
            "media",
            &format!(
                "an MMS carries at most {MAX_MEDIA_ITEMS} files, got {}",
                items.len()
            ),
        ));
    }
    let mut files = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("media[{index}].{name}");
        let Some(object) = item.as_object() else {
            errors.push(FieldError::new(
                &format!("media[{index}]"),
                "must be an object with 'content_type' and 'base64'",
            ));
            continue;
        };
        let content_type = match object.get("content_type").and_then(Value::as_str) {
            None => {
                errors.push(FieldError::new(
                    &field("content_type"),
                    "'content_type' is required and must be a string",
                ));
                None
            }
            Some(content_type) => match mms_extension(content_type) {
                Some(extension) => Some((content_type.trim().to_owned(), extension)),
                None => {
                    errors.push(FieldError::new(
                        &field("content_type"),
                        &format!(
                            "{content_type:?} is not a content type Bandwidth accepts for MMS"
                        ),
                    ));
                    None
                }
            },
        };
        let bytes = match object.get("base64").and_then(Value::as_str) {
            None => {
                errors.push(FieldError::new(
                    &field("base64"),
                    "'base64' is required and must be a string",
                ));
                None
            }
            Some(encoded) => {
                // Tolerate line breaks, as `base64` the command writes them.
                let compact: String = encoded
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(compact) {
                    Ok(bytes) if bytes.is_empty() => {
                        errors.push(FieldError::new(&field("base64"), "the file is empty"));
                        None
                    }
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        errors.push(FieldError::new(
                            &field("base64"),
                            &format!("not valid standard base64: {e}"),
                        ));
                        None
                    }
                }
            }
        };
        if let (Some((content_type, extension)), Some(bytes)) = (content_type, bytes) {
            files.push(NewMedia {
                content_type,
                extension,
                bytes,
            });
        }
    }
    let total: usize = files.iter().map(|f| f.bytes.len()).sum();
    if total > MAX_MEDIA_TOTAL_BYTES {
        errors.push(FieldError::new(
            "media",
            &format!(
                "the files add up to {total} bytes; an MMS carries at most {MAX_MEDIA_TOTAL_BYTES}"
            ),
        ));
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Media id of file `index` of message `message_id`.
pub fn media_id(message_id: &str, index: usize, extension: &str) -> String {
    format!("{message_id}/{index}/file{index}.{extension}")
}

/// Full media URL, as Bandwidth's
/// `https://messaging.bandwidth.com/api/v2/users/{accountId}/media/{mediaId}`
/// but on the simulator's own base URL.
pub fn media_url(base_url: &str, account_id: &str, media_id: &str) -> String {
    format!(
        "{}/api/v2/users/{account_id}/media/{media_id}",
        base_url.trim_end_matches('/')
    )
}

/// `GET /api/v2/users/{accountId}/media/{mediaId}`.
pub async fn get_media(
    State(state): State<AppState>,
    Path((account_id, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let response = answer_media(&state, &account_id, &media_id, &headers).await;
    let status = response.status().as_u16();
    tracing::info!(account_id, media_id, status, "media request");
    state
        .record_media_request(MediaRequestRecord {
            media_id,
            status,
            at: now_rfc3339(),
        })
        .await;
    response
}

async fn answer_media(
    state: &AppState,
    account_id: &str,
    media_id: &str,
    headers: &HeaderMap,
) -> Response {
    let authorized = basic_credentials(headers)
        .is_some_and(|(user, password)| state.credentials_match(&user, &password));
    if !authorized {
        return ApiError::Unauthorized.into_response();
    }
    if account_id != state.account_id() {
        return ApiError::Forbidden(account_id.to_owned()).into_response();
    }
    let Some(media) = state.media(media_id).await else {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"type": "not-found", "description": format!("Media {media_id} not found")}),
            ),
        )
            .into_response();
    };
    if state.take_media_failure().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"type": "service-unavailable", "description": "Simulated media download failure"})),
        )
            .into_response();
    }
    let content_type = HeaderValue::from_str(&media.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        media.bytes,
    )
        .into_response()
}

/// Stores validated files for a new inbound message and returns their URLs,
/// in order.
pub async fn store_inbound_media(
    state: &AppState,
    base_url: &str,
    message_id: &str,
    files: Vec<NewMedia>,
) -> Vec<String> {
    let mut urls = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        let id = media_id(message_id, index, file.extension);
        urls.push(media_url(base_url, state.account_id(), &id));
        state
            .store_media(
                id,
                StoredMedia {
                    content_type: file.content_type,
                    bytes: Bytes::from(file.bytes),
                },
            )
            .await;
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn names(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field_name.as_str()).collect()
    }

    #[test]
    fn accepted_types_ignore_case_and_parameters() {
        assert_eq!(mms_extension("image/jpeg"), Some("jpg"));
        assert_eq!(mms_extension("Image/PNG"), Some("png"));
        assert_eq!(mms_extension("text/plain; charset=utf-8"), Some("txt"));
        assert_eq!(mms_extension("application/zip"), None);
        assert_eq!(mms_extension(""), None);
    }

    #[test]
    fn valid_media_is_decoded_in_order() {
        let files = validate_media(&json!([
            {"content_type": "image/jpeg", "base64": b64(b"jpeg bytes")},
            {"content_type": "application/pdf", "base64": "JVBE\nRi0=\n"},
        ]))
        .expect("valid");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].bytes, b"jpeg bytes");
        assert_eq!(files[0].extension, "jpg");
        assert_eq!(files[1].bytes, b"%PDF-");
        assert_eq!(files[1].content_type, "application/pdf");
    }

    #[test]
    fn every_bad_item_is_named() {
        let errors = validate_media(&json!([
            {"content_type": "application/zip", "base64": b64(b"x")},
            {"content_type": "image/png", "base64": "not base64!"},
            "nope",
            {"base64": ""},
        ]))
        .expect_err("invalid");
        assert_eq!(
            names(&errors),
            vec![
                "media[0].content_type",
                "media[1].base64",
                "media[2]",
                "media[3].content_type",
                "media[3].base64",
            ]
        );
        assert_eq!(
            names(&validate_media(&json!({})).expect_err("object")),
            vec!["media"]
        );
    }

    #[test]
    fn count_and_total_size_are_limited() {
        let one = json!({"content_type": "text/plain", "base64": b64(b"x")});
        let eleven = Value::Array(vec![one.clone(); MAX_MEDIA_ITEMS + 1]);
        assert_eq!(
            names(&validate_media(&eleven).expect_err("too many")),
            vec!["media"]
        );
        let ten = Value::Array(vec![one; MAX_MEDIA_ITEMS]);
        assert_eq!(validate_media(&ten).expect("ten").len(), MAX_MEDIA_ITEMS);

        let half = b64(&vec![0u8; MAX_MEDIA_TOTAL_BYTES / 2]);
        let at_limit = json!([
            {"content_type": "image/jpeg", "base64": half},
            {"content_type": "image/jpeg", "base64": half},
        ]);
        assert!(validate_media(&at_limit).is_ok());
        let over = json!([
            {"content_type": "image/jpeg", "base64": half},
            {"content_type": "image/jpeg", "base64": half},
            {"content_type": "text/plain", "base64": b64(b"x")},
        ]);
        assert_eq!(
            names(&validate_media(&over).expect_err("too big")),
            vec!["media"]
        );
    }

    #[test]
    fn ids_and_urls_look_like_bandwidth_ones() {
        let id = media_id("abc123sim", 0, "png");
        assert_eq!(id, "abc123sim/0/file0.png");
        assert_eq!(
            media_url("http://127.0.0.1:4599/", "9900000", &id),
            "http://127.0.0.1:4599/api/v2/users/9900000/media/abc123sim/0/file0.png"
        );
    }
}
