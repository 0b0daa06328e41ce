//! `Idempotency-Key`: the same key with the same body within 24 h gets the
//! first answer again and creates nothing; with another body, 409.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::app::sending::Answer;
use crate::domain::error::AppError;
use crate::ports::{IdempotencyRecord, MessageStore};

/// How long an answer is remembered.
pub const RETENTION: Duration = Duration::hours(24);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Checks the header value: 1–255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), AppError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid_key());
    }
    Ok(())
}

/// 400 `invalid_idempotency_key`: the header is not 1–255 visible ASCII
/// characters (also when it is not text at all).
pub fn invalid_key() -> AppError {
    AppError::bad_request(
        "invalid_idempotency_key",
        format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
    )
    .at("Idempotency-Key")
}

/// Digest of what makes two requests "the same": route and JSON value.
/// `serde_json::Value` keeps object keys sorted, so key order and spacing
/// do not matter.
pub fn request_hash(route: &str, body: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// What a remembered record means for a new request.
pub fn replay(record: &IdempotencyRecord, hash: &str) -> Result<(u16, String), AppError> {
    if record.request_hash == hash {
        Ok((record.status, record.response_body.clone()))
    } else {
        Err(AppError::conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request; use a new key.",
        )
        .at("Idempotency-Key"))
    }
}

/// A record to store with an accepted answer.
pub fn record(
    practice_id: &str,
    key: &str,
    hash: &str,
    status: u16,
    body: &str,
    now: DateTime<Utc>,
) -> IdempotencyRecord {
    IdempotencyRecord {
        practice_id: practice_id.to_string(),
        key: key.to_string(),
        request_hash: hash.to_string(),
        status,
        response_body: body.to_string(),
        expires_at: now + RETENTION,
        pending: false,
    }
}

/// One POST's `Idempotency-Key` (if it carries one) and the digest of what
/// it asks: checked by [`IdempotentPost::open`] before the request is
/// handled, stored with its answer ([`IdempotentPost::record`]), and read
/// again when a concurrent request with the same key was stored first
/// ([`IdempotentPost::winner`]).
#[derive(Debug, Clone)]
pub struct IdempotentPost<'a> {
    practice_id: &'a str,
    key: Option<&'a str>,
    hash: String,
}

/// What a POST's key says before the request is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening<'a> {
    /// No key, or one not used within [`RETENTION`]: handle the request.
    Fresh,
    /// The same request was answered already: answer the same again.
    Replay(Answer),
    /// The same request was answered, but its record is still pending: the
    /// first request may not have handed its work over. Finish that under
    /// `key`, then answer the same again.
    Pending {
        /// The request's key.
        key: &'a str,
        /// The remembered answer.
        answer: Answer,
    },
}

impl Opening<'_> {
    /// The remembered answer, pending or not: for a route whose records
    /// are never stored pending.
    pub fn answer(self) -> Option<Answer> {
        match self {
            Opening::Fresh => None,
            Opening::Replay(answer) | Opening::Pending { answer, .. } => Some(answer),
        }
    }
}

impl<'a> IdempotentPost<'a> {
    /// A POST to `route` of `body` by `practice_id`, with its
    /// `Idempotency-Key` if any.
    pub fn new(
        practice_id: &'a str,
        route: &str,
        body: &serde_json::Value,
        key: Option<&'a str>,
    ) -> Self {
        IdempotentPost {
            practice_id,
            key,
            hash: request_hash(route, body),
        }
    }

    /// Checks the key ([`validate_key`]) and reads what it remembers at
    /// `now`. Without a key the request is always [`Opening::Fresh`].
    ///
    /// # Errors
    ///
    /// 400 `invalid_idempotency_key`; 409 `idempotency_key_reused` when the
    /// key was used with another request ([`replay`]); the store's errors.
    pub async fn open<M: MessageStore + ?Sized>(
        &self,
        store: &M,
        now: DateTime<Utc>,
    ) -> Result<Opening<'a>, AppError> {
        let Some(key) = self.key else {
            return Ok(Opening::Fresh);
        };
        validate_key(key)?;
        let Some(rec) = store.get_idempotency(self.practice_id, key, now).await? else {
            return Ok(Opening::Fresh);
        };
        let (status, body) = replay(&rec, &self.hash)?;
        let answer = Answer { status, body };
        Ok(if rec.pending {
            Opening::Pending { key, answer }
        } else {
            Opening::Replay(answer)
        })
    }

    /// The request's `Idempotency-Key`, if it has one.
    pub fn key(&self) -> Option<&'a str> {
        self.key
    }

    /// The record to store with the answer `status`/`body` (settled), when
    /// the request has a key.
    pub fn record(&self, status: u16, body: &str, now: DateTime<Utc>) -> Option<IdempotencyRecord> {
        self.key
            .map(|k| record(self.practice_id, k, &self.hash, status, body, now))
    }

    /// The store refused the record because a concurrent request with the
    /// same key was stored first: answers as that request did.
    ///
    /// # Errors
    ///
    /// 409 `idempotency_key_reused` when its record is gone or was for
    /// another request; the store's errors.
    pub async fn winner<M: MessageStore + ?Sized>(
        &self,
        store: &M,
        now: DateTime<Utc>,
    ) -> Result<Answer, AppError> {
        let rec = store
            .get_idempotency(self.practice_id, self.key.unwrap_or_default(), now)
            .await?
            .ok_or_else(|| AppError::conflict("idempotency_key_reused", "retry the request"))?;
        let (status, body) = replay(&rec, &self.hash)?;
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_change_the_hash() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"to":"+14155550100","text":"hi"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "text" : "hi", "to" : "+14155550100" }"#).unwrap();
        assert_eq!(
            request_hash("POST /v1/messages", &a),
            request_hash("POST /v1/messages", &b)
        );
        let c: serde_json::Value =
            serde_json::from_str(r#"{"to":"+14155550100","text":"hi!"}"#).unwrap();
        assert_ne!(
            request_hash("POST /v1/messages", &a),
            request_hash("POST /v1/messages", &c)
        );
    }

    #[test]
    fn same_key_other_body_is_a_conflict() {
        let r = record("p", "k", "h1", 202, "{}", Utc::now());
        assert_eq!(replay(&r, "h1").unwrap(), (202, "{}".to_string()));
        assert_eq!(replay(&r, "h2").unwrap_err().code, "idempotency_key_reused");
    }

    #[test]
    fn keys_must_be_visible_ascii() {
        assert!(validate_key("order-123").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
    }
}
