//! Who a request acts as. Software sends the practice's API key
//! (`Authorization: Bearer <key>`), stored only as a SHA-256 digest; a warm
//! function caches the lookup briefly so a burst of requests costs one read.
//! The office console sends a staff member's session cookie instead
//! ([`Authenticator::caller`]): the request acts as that staff member's
//! practice, and one that changes state must also carry
//! `X-Requested-With: console` (a header a cross-site form cannot set).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::app::cache::TtlCache;
use crate::domain::error::AppError;
use crate::domain::practice::Practice;
use crate::domain::staff::Session;
use crate::ports::{PracticeStore, StaffStore};

pub use crate::app::keys::{generate_key, hash_key};

/// The header a console request that changes state must carry, and its value.
pub const CSRF_HEADER: &str = "x-requested-with";
/// See [`CSRF_HEADER`].
pub const CSRF_VALUE: &str = "console";

/// What a request carries that may say who it is from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The session cookie's value.
    pub session_token: Option<&'a str>,
    /// Whether the method changes state (anything but GET, HEAD, OPTIONS).
    pub changes_state: bool,
    /// The [`CSRF_HEADER`] header.
    pub requested_with: Option<&'a str>,
}

/// Who a request is from: the practice it acts as and, from the console,
/// the signed-in staff member.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Every read and write is this practice's.
    pub practice: Practice,
    /// The console's staff member; `None` for the API key.
    pub staff: Option<Session>,
}

impl Caller {
    /// Whether the caller may do what only an admin may (manage staff
    /// accounts, event endpoints and settings): the API key (the practice's
    /// own software) or an admin's session; a `staff` session may not.
    pub fn is_admin(&self) -> bool {
        self.staff
            .as_ref()
            .is_none_or(|s| s.role == crate::domain::staff::StaffRole::Admin)
    }
}

/// How long a warm function trusts a cached key lookup. A rotated key stops
/// working everywhere within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Most key lookups a warm function remembers (found or not); beyond it,
/// expired ones are dropped first, then all.
pub const CACHE_ENTRIES: usize = 10_000;

/// Requests per second one practice may make through one warm instance,
/// sustained, and the burst it may take at once. Per instance and in
/// memory, so the check costs nothing; with the API functions' reserved
/// concurrency (template.yaml) it bounds what one practice can take from
/// the others. The stage's own throttle stays the bound for everyone.
pub const PRACTICE_REQUESTS_PER_SECOND: f64 = 25.0;
/// See [`PRACTICE_REQUESTS_PER_SECOND`].
pub const PRACTICE_REQUEST_BURST: f64 = 100.0;

/// Per-practice token buckets of one warm instance.
#[derive(Debug, Default)]
struct RequestLimiter {
    /// Practice id → (tokens left, when last refilled).
    buckets: HashMap<String, (f64, DateTime<Utc>)>,
}

impl RequestLimiter {
    /// Takes one request's token for `practice_id` at `now`, or says it
    /// must wait. A `now` earlier than the last one refills nothing.
    fn take(&mut self, practice_id: &str, now: DateTime<Utc>) -> bool {
        if self.buckets.len() >= CACHE_ENTRIES && !self.buckets.contains_key(practice_id) {
            // Full buckets refill in a few seconds; forgetting them is safe.
            self.buckets.clear();
        }
        let (tokens, at) = self
            .buckets
            .entry(practice_id.to_string())
            .or_insert((PRACTICE_REQUEST_BURST, now));
        let elapsed_ms = (now - *at).num_milliseconds().max(0);
        #[allow(clippy::cast_precision_loss)] // at most ~2^53 ms: exact
        let refill = elapsed_ms as f64 / 1000.0 * PRACTICE_REQUESTS_PER_SECOND;
        *tokens = (*tokens + refill).min(PRACTICE_REQUEST_BURST);
        *at = now.max(*at);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Resolves bearer keys to practices.
pub struct Authenticator<S> {
    store: S,
    limiter: Mutex<RequestLimiter>,
    /// Key digest → the practice, or `None` for a key that matched none
    /// (negative caching: a client retrying a wrong key costs one read a
    /// minute per instance, not one per request).
    cache: TtlCache<Option<Practice>>,
}

impl<S: PracticeStore> Authenticator<S> {
    /// Wraps the store that holds the keys.
    pub fn new(store: S) -> Self {
        Self {
            store,
            limiter: Mutex::new(RequestLimiter::default()),
            cache: TtlCache::new(CACHE_TTL, CACHE_ENTRIES),
        }
    }

    /// The practice for an `Authorization` header value; 401 when missing,
    /// malformed or unknown; 429 `rate_limited` when the practice is over
    /// its request limit ([`PRACTICE_REQUESTS_PER_SECOND`]) at `now`.
    pub async fn practice(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Practice, AppError> {
        let practice = self.resolve(authorization).await?;
        if !self.limiter.lock().await.take(&practice.practice_id, now) {
            return Err(AppError::too_many_requests(
                "Too many requests for this practice; wait a second and try again.",
            ));
        }
        Ok(practice)
    }

    async fn resolve(&self, authorization: Option<&str>) -> Result<Practice, AppError> {
        let key = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                AppError::unauthorized(
                    "Send the practice's API key as 'Authorization: Bearer <key>'.",
                )
            })?;
        let hash = hash_key(key);
        let unknown =
            || AppError::unauthorized("The API key is not valid; check it or ask for a new one.");
        self.cache
            .get_or_load(&hash, || self.store.practice_for_key(&hash))
            .await?
            .ok_or_else(unknown)
    }

    /// The practice for `id`, cached like a key lookup.
    async fn practice_by_id(&self, id: &str) -> Result<Option<Practice>, AppError> {
        Ok(self
            .cache
            .get_or_load(&format!("practice:{id}"), || self.store.get_practice(id))
            .await?)
    }

    /// Replaces this instance's cached copy of `practice` after the practice
    /// changed it, so its next request here sees the change at once (other
    /// warm instances see it within [`CACHE_TTL`]).
    pub async fn updated(&self, practice: &Practice) {
        self.cache
            .update_all(|cached| {
                if let Some(cached) = cached
                    .as_mut()
                    .filter(|c| c.practice_id == practice.practice_id)
                {
                    *cached = practice.clone();
                }
            })
            .await;
    }
}

impl<S: PracticeStore + StaffStore> Authenticator<S> {
    /// Who the request is from. The API key wins when both are sent; else
    /// the session cookie, which must name a live session, and for a
    /// request that changes state comes with [`CSRF_HEADER`]` = console`.
    ///
    /// # Errors
    ///
    /// 401 `unauthorized` (no credentials, an unknown key, an ended or
    /// unknown session), 403 `csrf_header_required`, 429 `rate_limited`.
    pub async fn caller(
        &self,
        credentials: &Credentials<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Caller, AppError> {
        let token = match credentials.session_token {
            Some(t) if credentials.authorization.is_none() => t,
            _ => {
                return Ok(Caller {
                    practice: self.practice(credentials.authorization, now).await?,
                    staff: None,
                })
            }
        };
        if credentials.changes_state
            && !credentials
                .requested_with
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(CSRF_VALUE))
        {
            return Err(AppError::forbidden(
                "csrf_header_required",
                "A console request that changes something must carry the header 'X-Requested-With: console'.",
            ));
        }
        let ended = || AppError::unauthorized("Your session has ended; sign in again.");
        let session = crate::app::staff::session_for_token(&self.store, token, now)
            .await?
            .ok_or_else(ended)?;
        let practice = self
            .practice_by_id(&session.practice_id)
            .await?
            .ok_or_else(ended)?;
        if !self.limiter.lock().await.take(&practice.practice_id, now) {
            return Err(AppError::too_many_requests(
                "Too many requests for this practice; wait a second and try again.",
            ));
        }
        Ok(Caller {
            practice,
            staff: Some(session),
        })
    }
}

/// Checks HTTP Basic credentials (the carrier webhook), in constant time.
pub fn check_basic_auth(
    authorization: Option<&str>,
    user: &str,
    password: &str,
) -> Result<(), AppError> {
    let denied = || AppError::unauthorized("Webhook credentials are missing or wrong.");
    let encoded = authorization
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .ok_or_else(denied)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| denied())?;
    let expected = format!("{user}:{password}");
    // Compare digests so the time taken does not depend on where they differ.
    if Sha256::digest(&decoded) == Sha256::digest(expected.as_bytes()) {
        Ok(())
    } else {
        Err(denied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::testing::{sample_practice, MemoryStore};

    /// The instant these tests run at.
    fn t0() -> DateTime<Utc> {
        "2026-11-26T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_practice_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let mut limiter = RequestLimiter::default();
        let start = t0();
        for _ in 0..100 {
            assert!(limiter.take("busy", start));
        }
        assert!(!limiter.take("busy", start), "burst used up");
        assert!(limiter.take("quiet", start), "another practice is not held");
        // 40 ms later, one more (25 per second).
        let later = start + chrono::Duration::milliseconds(40);
        assert!(limiter.take("busy", later));
        assert!(!limiter.take("busy", later));
        // After a long pause the whole burst is back, never more.
        let idle = later + chrono::Duration::seconds(30);
        // A clock that steps back refills nothing and breaks nothing.
        assert!(limiter.take("quiet", start - chrono::Duration::seconds(5)));
        for _ in 0..100 {
            assert!(limiter.take("busy", idle));
        }
        assert!(!limiter.take("busy", idle));
    }

    #[tokio::test]
    async fn over_the_limit_the_api_answers_rate_limited() {
        let store = MemoryStore::default();
        let key = generate_key();
        store.add_practice(sample_practice("demo"), &key).await;
        let auth = Authenticator::new(store);
        let bearer = format!("Bearer {key}");
        let mut refused = None;
        for _ in 0..150 {
            if let Err(e) = auth.practice(Some(&bearer), t0()).await {
                refused = Some(e);
                break;
            }
        }
        let e = refused.expect("refused within 150 quick requests");
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::TooManyRequests, "rate_limited")
        );
    }

    #[tokio::test]
    async fn a_practice_changed_here_is_seen_at_once_despite_the_cache() {
        let store = MemoryStore::default();
        let key = generate_key();
        store.add_practice(sample_practice("demo"), &key).await;
        let auth = Authenticator::new(store.clone());
        let bearer = format!("Bearer {key}");
        let mut practice = auth.practice(Some(&bearer), t0()).await.unwrap();
        practice.help_text = Some("Call us.".into());
        store.put_practice(&practice).await.unwrap();
        assert_eq!(
            auth.practice(Some(&bearer), t0()).await.unwrap().help_text,
            None,
            "cached"
        );
        auth.updated(&practice).await;
        assert_eq!(
            auth.practice(Some(&bearer), t0())
                .await
                .unwrap()
                .help_text
                .as_deref(),
            Some("Call us.")
        );
    }

    #[tokio::test]
    async fn known_key_resolves_to_its_practice() {
        let store = MemoryStore::default();
        let key = generate_key();
        store.add_practice(sample_practice("demo"), &key).await;
        let auth = Authenticator::new(store);
        let p = auth
            .practice(Some(&format!("Bearer {key}")), t0())
            .await
            .unwrap();
        assert_eq!(p.practice_id, "demo");
    }

    #[tokio::test]
    async fn missing_or_wrong_key_is_unauthorized() {
        let auth = Authenticator::new(MemoryStore::default());
        for header in [
            None,
            Some("Bearer "),
            Some("Basic abc"),
            Some("Bearer nope"),
        ] {
            let e = auth.practice(header, t0()).await.unwrap_err();
            assert_eq!(e.code, "unauthorized", "{header:?}");
        }
    }

    #[tokio::test]
    async fn a_session_cookie_acts_as_its_staff_members_practice() {
        use crate::app::staff::{create_staff, sign_in, sign_out, NewStaff, SignInRequest};
        use crate::ports::Sleep;
        let store = MemoryStore::default();
        let key = generate_key();
        store.add_practice(sample_practice("demo"), &key).await;
        store
            .add_practice(sample_practice("other"), &generate_key())
            .await;
        let now = chrono::Utc::now();
        create_staff(
            &store,
            "demo",
            &NewStaff {
                user: "dana".into(),
                name: "Dana".into(),
                role: "staff".into(),
                password: "correct horse battery".into(),
            },
            now,
        )
        .await
        .unwrap();
        let signed = sign_in(
            &store,
            &Sleep,
            &SignInRequest {
                user: "dana".into(),
                password: "correct horse battery".into(),
            },
            now,
        )
        .await
        .unwrap();
        let auth = Authenticator::new(store.clone());
        let read = Credentials {
            session_token: Some(&signed.token),
            ..Default::default()
        };
        let caller = auth.caller(&read, now).await.unwrap();
        assert_eq!(caller.practice.practice_id, "demo");
        assert_eq!(caller.staff.as_ref().unwrap().name, "Dana");
        assert!(!caller.is_admin());

        // A change needs the console's header; with it, it goes through.
        let change = Credentials {
            changes_state: true,
            ..read
        };
        let e = auth.caller(&change, now).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Forbidden, "csrf_header_required")
        );
        let with_header = Credentials {
            requested_with: Some("console"),
            ..change
        };
        auth.caller(&with_header, now).await.unwrap();

        // The API key wins over a cookie; the key's caller is no staff member.
        let bearer = format!("Bearer {key}");
        let both = Credentials {
            authorization: Some(&bearer),
            ..change
        };
        let caller = auth.caller(&both, now).await.unwrap();
        assert!(caller.staff.is_none() && caller.is_admin());

        // Signed out, or unknown: 401.
        sign_out(&store, &signed.token).await.unwrap();
        assert_eq!(
            auth.caller(&read, now).await.unwrap_err().kind,
            ErrorKind::Unauthorized
        );
        let forged = Credentials {
            session_token: Some("pms_forged"),
            ..Default::default()
        };
        assert_eq!(
            auth.caller(&forged, now).await.unwrap_err().kind,
            ErrorKind::Unauthorized
        );
        assert_eq!(
            auth.caller(&Credentials::default(), now)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Unauthorized
        );
    }

    #[test]
    fn basic_auth_accepts_only_the_configured_pair() {
        let ok = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p")
        );
        let bad = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:x")
        );
        assert!(check_basic_auth(Some(&ok), "u", "p").is_ok());
        assert!(check_basic_auth(Some(&bad), "u", "p").is_err());
        assert!(check_basic_auth(None, "u", "p").is_err());
        assert!(check_basic_auth(Some("Basic !!!"), "u", "p").is_err());
    }

    /// Counts key lookups that reach the store.
    #[derive(Clone, Default)]
    struct Counting {
        store: MemoryStore,
        lookups: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    #[async_trait::async_trait]
    impl PracticeStore for Counting {
        async fn practice_for_key(
            &self,
            key_hash: &str,
        ) -> Result<Option<Practice>, crate::domain::error::StoreError> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.store.practice_for_key(key_hash).await
        }
        async fn get_practice(
            &self,
            id: &str,
        ) -> Result<Option<Practice>, crate::domain::error::StoreError> {
            self.store.get_practice(id).await
        }
        async fn put_practice(&self, p: &Practice) -> Result<(), crate::domain::error::StoreError> {
            self.store.put_practice(p).await
        }
        async fn update_settings(
            &self,
            id: &str,
            change: &crate::domain::practice::SettingsChange,
        ) -> Result<Option<Practice>, crate::domain::error::StoreError> {
            self.store.update_settings(id, change).await
        }
        async fn set_api_key(
            &self,
            id: &str,
            h: &str,
        ) -> Result<(), crate::domain::error::StoreError> {
            self.store.set_api_key(id, h).await
        }
        async fn put_patient(
            &self,
            id: &str,
            p: &crate::domain::patient::Patient,
        ) -> Result<(), crate::domain::error::StoreError> {
            self.store.put_patient(id, p).await
        }
        async fn list_patients(
            &self,
            id: &str,
            limit: u32,
            after: Option<&str>,
        ) -> Result<
            (Vec<crate::domain::patient::Patient>, Option<String>),
            crate::domain::error::StoreError,
        > {
            self.store.list_patients(id, limit, after).await
        }
        async fn mark_undeliverable(
            &self,
            id: &str,
            p: &str,
            m: &crate::domain::patient::UndeliverableNumber,
        ) -> Result<(), crate::domain::error::StoreError> {
            self.store.mark_undeliverable(id, p, m).await
        }
        async fn get_patient(
            &self,
            id: &str,
            p: &str,
        ) -> Result<Option<crate::domain::patient::Patient>, crate::domain::error::StoreError>
        {
            self.store.get_patient(id, p).await
        }
    }

    #[tokio::test]
    async fn an_unknown_key_is_remembered_too() {
        let store = Counting::default();
        let auth = Authenticator::new(store.clone());
        for _ in 0..5 {
            let e = auth
                .practice(Some("Bearer pmk_wrong"), t0())
                .await
                .unwrap_err();
            assert_eq!(e.kind, crate::domain::error::ErrorKind::Unauthorized);
        }
        assert_eq!(store.lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
        let key = generate_key();
        store
            .store
            .add_practice(sample_practice("demo"), &key)
            .await;
        let bearer = format!("Bearer {key}");
        for _ in 0..3 {
            auth.practice(Some(&bearer), t0()).await.unwrap();
        }
        assert_eq!(store.lookups.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
