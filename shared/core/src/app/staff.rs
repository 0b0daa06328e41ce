//! Staff accounts and their console sessions: sign-in (`POST /v1/sessions`),
//! sign-out, the session behind a cookie, and the practice's accounts
//! (created by the administration command or by one of its admins).
//!
//! The rules (password hashing, names, the failed-attempt policy) are in
//! [`crate::domain::staff`]; this applies them over the [`StaffStore`].

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::app::keys::hash_key;
use crate::domain::clock::serialize_api_time;
use crate::domain::error::AppError;
use crate::domain::staff::{
    attempt_policy, check_new_password, check_staff_name, decoy_hash, hash_password, is_staff_id,
    new_staff_id, normalize_user, verify_password, AttemptPolicy, LoginFailures, Session,
    StaffAccount, StaffMember, StaffRole, StaffView, MAX_PASSWORD_CHARS, SESSION_LIFETIME,
    SLOWDOWN,
};
use crate::ports::{Pause, StaffCreated, StaffStore};

/// `POST /v1/sessions`. The name is matched ignoring case and surrounding spaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The sign-in name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// A new session: the token goes into the cookie, once; only its digest is stored.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The cookie's value.
    pub token: String,
    /// What was stored.
    pub session: Session,
}

/// The answer to a sign-in, and to `GET /v1/sessions/current`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// Who is signed in.
    pub staff: StaffView,
    /// The practice every request acts as.
    pub practice_id: String,
    /// When the session ends.
    #[serde(serialize_with = "serialize_api_time")]
    pub expires_at: DateTime<Utc>,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            staff: s.staff(),
            practice_id: s.practice_id.clone(),
            expires_at: s.expires_at,
        }
    }
}

/// A new session token: `pms_` and 256 random bits, URL-safe base64 (cookie-safe).
pub fn new_session_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "pms_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The key failed sign-ins are counted under: the digest of the name as
/// typed (trimmed, lower case). Bounded whatever was typed, and a password
/// typed into the name field by mistake is never stored.
fn failure_key(user: &str) -> String {
    hash_key(&user.trim().to_lowercase())
}

fn invalid_credentials() -> AppError {
    AppError::unauthorized_as(
        "invalid_credentials",
        "The user name or password is not right. Check both and try again.",
    )
}

/// `POST /v1/sessions`: checks the name and password and opens a session.
///
/// A wrong name and a wrong password get the same answer, after the same
/// work (an unknown name is checked against a decoy hash). Failures are
/// counted per name: slowed after a few, refused (429 `too_many_attempts`,
/// with when to retry) after more, until the window ends
/// ([`crate::domain::staff`]). A success forgets them.
///
/// # Errors
///
/// 401 `invalid_credentials`, 429 `too_many_attempts`, 503 when the store fails.
pub async fn sign_in<S: StaffStore, P: Pause>(
    store: &S,
    pause: &P,
    request: &SignInRequest,
    now: DateTime<Utc>,
) -> Result<SignedIn, AppError> {
    let key = failure_key(&request.user);
    // Every attempt is counted before the password is looked at, in one
    // atomic write: of a burst of concurrent guesses each sees its own
    // count, so none gets past the limit. A success forgets them all.
    let counted = store.record_login_failure(&key, now).await?;
    let before = LoginFailures {
        failures: counted.failures.saturating_sub(1),
        window_started_at: counted.window_started_at,
    };
    match attempt_policy(Some(&before), now) {
        AttemptPolicy::RefusedUntil(until) => {
            let seconds = (until - now).num_seconds().max(1);
            let minutes = (seconds + 59) / 60;
            return Err(AppError::too_many(
                "too_many_attempts",
                format!(
                    "Too many failed sign-ins for this user name. Try again in {minutes} minute{}, or ask your practice's admin to check the account.",
                    if minutes == 1 { "" } else { "s" }
                ),
            )
            .retry_after(u64::try_from(seconds).unwrap_or(1)));
        }
        AttemptPolicy::Slowed => pause.pause(SLOWDOWN).await,
        AttemptPolicy::Answer => {}
    }
    let staff = match normalize_user(request.user.trim(), "user") {
        Ok(user) => store.staff_for_user(&user).await?,
        Err(_) => None,
    };
    let password_ok = request.password.chars().count() <= MAX_PASSWORD_CHARS;
    // The same work whatever the name and the password's length (an unknown
    // name is checked against a decoy, an overlong password is hashed like
    // any other), so timing tells nothing.
    let hash = staff
        .as_ref()
        .map_or(decoy_hash(), |s| s.password_hash.as_str());
    let matches = verify_password(&request.password, hash);
    let staff = match staff {
        Some(s) if matches && password_ok => s,
        _ => return Err(invalid_credentials()),
    };
    store.clear_login_failures(&key).await?;
    let token = new_session_token();
    let session = Session {
        token_hash: hash_key(&token),
        practice_id: staff.practice_id.clone(),
        staff_id: staff.staff_id.clone(),
        name: staff.name.clone(),
        role: staff.role,
        created_at: now,
        expires_at: now + SESSION_LIFETIME,
    };
    store.create_session(&session).await?;
    Ok(SignedIn { token, session })
}

/// The live session behind a cookie's token, or `None` (unknown, ended, or
/// expired: TTL deletion lags, so expiry is checked here).
///
/// # Errors
///
/// 503 when the store fails.
pub async fn session_for_token<S: StaffStore>(
    store: &S,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, AppError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    Ok(store
        .get_session(&hash_key(token))
        .await?
        .filter(|s| s.is_live(now)))
}

/// `DELETE /v1/sessions/current`: ends the session (nothing when it is
/// already gone).
///
/// # Errors
///
/// 503 when the store fails.
pub async fn sign_out<S: StaffStore>(store: &S, token: &str) -> Result<(), AppError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(());
    }
    Ok(store.delete_session(&hash_key(token)).await?)
}

/// A new staff account (`practice-admin add-staff`, `POST /v1/staff`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    /// Sign-in name (stored in lower case).
    pub user: String,
    /// Shown name.
    pub name: String,
    /// `admin` or `staff`.
    pub role: String,
    /// At least 12 characters.
    pub password: String,
}

/// Creates a staff account of `practice_id`.
///
/// # Errors
///
/// 422 `invalid_field` (user, name, role), 422 `weak_password`, 409
/// `user_taken` when the name signs in to another account already.
pub async fn create_staff<S: StaffStore>(
    store: &S,
    practice_id: &str,
    input: &NewStaff,
    now: DateTime<Utc>,
) -> Result<StaffAccount, AppError> {
    let user = normalize_user(&input.user, "user")?;
    let name = check_staff_name(&input.name, "name")?;
    let role = StaffRole::parse(&input.role).ok_or_else(|| {
        AppError::invalid("invalid_field", "role must be admin or staff").at("role")
    })?;
    check_new_password(&input.password, "password")?;
    let staff = StaffMember {
        practice_id: practice_id.to_string(),
        staff_id: new_staff_id(),
        user,
        name,
        role,
        password_hash: hash_password(&input.password)?,
        created_at: now,
    };
    match store.create_staff(&staff).await? {
        StaffCreated::Created => Ok(staff.account()),
        StaffCreated::UserTaken => Err(AppError::conflict(
            "user_taken",
            format!(
                "the user name {} is already used; choose another",
                staff.user
            ),
        )
        .at("user")),
    }
}

/// Sets a new password on an account and ends its sessions (so a password
/// changed because it leaked locks out whoever has it).
///
/// # Errors
///
/// 404 `staff_not_found`, 422 `weak_password`.
pub async fn set_password<S: StaffStore>(
    store: &S,
    practice_id: &str,
    staff_id: &str,
    password: &str,
) -> Result<StaffAccount, AppError> {
    check_new_password(password, "password")?;
    let mut staff = get_staff(store, practice_id, staff_id).await?;
    staff.password_hash = hash_password(password)?;
    if !store.update_staff(&staff).await? {
        return Err(staff_not_found(staff_id));
    }
    store.delete_sessions_of(practice_id, staff_id).await?;
    Ok(staff.account())
}

fn staff_not_found(staff_id: &str) -> AppError {
    AppError::not_found("staff_not_found", format!("no staff member {staff_id}"))
}

async fn get_staff<S: StaffStore>(
    store: &S,
    practice_id: &str,
    staff_id: &str,
) -> Result<StaffMember, AppError> {
    if !is_staff_id(staff_id) {
        return Err(staff_not_found(staff_id));
    }
    store
        .get_staff(practice_id, staff_id)
        .await?
        .ok_or_else(|| staff_not_found(staff_id))
}

/// The practice's accounts, by name.
///
/// # Errors
///
/// 503 when the store fails.
pub async fn list_staff<S: StaffStore>(
    store: &S,
    practice_id: &str,
) -> Result<Vec<StaffAccount>, AppError> {
    let mut accounts: Vec<StaffAccount> = store
        .list_staff(practice_id)
        .await?
        .iter()
        .map(StaffMember::account)
        .collect();
    accounts.sort_by_key(|a| a.name.to_lowercase());
    Ok(accounts)
}

/// Deletes an account of the practice (and its sessions). An admin cannot
/// delete their own account, so a practice keeps someone who can manage it.
///
/// # Errors
///
/// 404 `staff_not_found`, 409 `cannot_delete_self`.
pub async fn delete_staff<S: StaffStore>(
    store: &S,
    practice_id: &str,
    staff_id: &str,
    by: Option<&str>,
) -> Result<(), AppError> {
    if by == Some(staff_id) {
        return Err(AppError::conflict(
            "cannot_delete_self",
            "you cannot delete your own account; ask another admin",
        ));
    }
    if !is_staff_id(staff_id) || !store.delete_staff(practice_id, staff_id).await? {
        return Err(staff_not_found(staff_id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::domain::staff::{FAILURE_WINDOW, REFUSED_AFTER_FAILURES, SLOWED_AFTER_FAILURES};
    use crate::testing::MemoryStore;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<std::time::Duration>>);

    #[async_trait::async_trait]
    impl Pause for Recorded {
        async fn pause(&self, d: std::time::Duration) {
            self.0.lock().unwrap().push(d);
        }
    }

    impl Recorded {
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    fn new_staff(user: &str, role: &str) -> NewStaff {
        NewStaff {
            user: user.into(),
            name: "Dana Front Desk".into(),
            role: role.into(),
            password: "correct horse battery".into(),
        }
    }

    fn attempt(user: &str, password: &str) -> SignInRequest {
        SignInRequest {
            user: user.into(),
            password: password.into(),
        }
    }

    #[tokio::test]
    async fn a_staff_member_signs_in_and_the_session_acts_as_their_practice() {
        let store = MemoryStore::default();
        let account = create_staff(&store, "p1", &new_staff("Dana", "staff"), t0())
            .await
            .unwrap();
        assert_eq!(account.user, "dana");
        let signed = sign_in(
            &store,
            &Recorded::default(),
            &attempt(" DANA ", "correct horse battery"),
            t0(),
        )
        .await
        .unwrap();
        assert!(signed.token.starts_with("pms_"));
        assert_ne!(
            signed.session.token_hash, signed.token,
            "only the digest is kept"
        );
        assert_eq!(signed.session.practice_id, "p1");
        assert_eq!(signed.session.expires_at, t0() + SESSION_LIFETIME);
        let view = SessionView::from(&signed.session);
        assert_eq!(view.staff.id, account.id);
        assert_eq!(view.staff.role, StaffRole::Staff);

        let found = session_for_token(&store, &signed.token, t0() + Duration::hours(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, signed.session);
        assert!(
            session_for_token(&store, &signed.token, t0() + SESSION_LIFETIME)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        sign_out(&store, &signed.token).await.unwrap();
        sign_out(&store, &signed.token).await.unwrap();
        assert!(session_for_token(&store, &signed.token, t0())
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_wrong_user_and_a_wrong_password_get_the_same_answer() {
        let store = MemoryStore::default();
        create_staff(&store, "p1", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
        let pause = Recorded::default();
        let wrong_password = sign_in(&store, &pause, &attempt("dana", "nope nope nope"), t0())
            .await
            .unwrap_err();
        let wrong_user = sign_in(
            &store,
            &pause,
            &attempt("nobody", "correct horse battery"),
            t0(),
        )
        .await
        .unwrap_err();
        let garbage = sign_in(&store, &pause, &attempt("a b;c", "x"), t0())
            .await
            .unwrap_err();
        for e in [&wrong_password, &wrong_user, &garbage] {
            assert_eq!(
                (e.kind, e.code),
                (ErrorKind::Unauthorized, "invalid_credentials")
            );
            assert_eq!(e.message, wrong_password.message);
            assert_eq!(e.field, None);
        }
    }

    // Threads, so the guesses really overlap (checking a password takes
    // milliseconds between reading and writing the count).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_concurrent_guesses_gets_no_more_than_the_limit() {
        let store = MemoryStore::default();
        create_staff(&store, "p1", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
        let burst = REFUSED_AFTER_FAILURES + 4;
        let guesses: Vec<_> = (0..burst)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let guess = attempt("dana", &format!("guess {i}"));
                    sign_in(&store, &Recorded::default(), &guess, t0()).await
                })
            })
            .collect();
        let mut answered = 0;
        let mut refused = 0;
        for guess in guesses {
            match guess.await.unwrap().unwrap_err().code {
                "invalid_credentials" => answered += 1,
                "too_many_attempts" => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!((answered, refused), (REFUSED_AFTER_FAILURES, 4));
    }

    #[tokio::test]
    async fn an_overlong_password_is_refused_like_any_wrong_one() {
        let store = MemoryStore::default();
        create_staff(&store, "p1", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        let e = sign_in(&store, &Recorded::default(), &attempt("dana", &long), t0())
            .await
            .unwrap_err();
        assert_eq!(e.code, "invalid_credentials");
        let counted = store.login_failures(&failure_key("dana")).await.unwrap();
        assert_eq!(counted.map(|f| f.failures), Some(1), "counted as a failure");
    }

    #[tokio::test]
    async fn failures_are_slowed_then_refused_then_forgotten() {
        let store = MemoryStore::default();
        create_staff(&store, "p1", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
        let pause = Recorded::default();
        for i in 0..REFUSED_AFTER_FAILURES {
            let e = sign_in(&store, &pause, &attempt("Dana", "wrong password"), t0())
                .await
                .unwrap_err();
            assert_eq!(e.code, "invalid_credentials", "attempt {i}");
        }
        assert_eq!(
            pause.count(),
            usize::try_from(REFUSED_AFTER_FAILURES - SLOWED_AFTER_FAILURES).unwrap(),
            "each answer after the first few waited"
        );
        // Refused now, even with the right password, and without checking it.
        let e = sign_in(
            &store,
            &pause,
            &attempt("dana", "correct horse battery"),
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::TooManyRequests, "too_many_attempts")
        );
        assert_eq!(e.retry_after_seconds, Some(14 * 60));
        // Another name is not held.
        create_staff(&store, "p1", &new_staff("lee", "staff"), t0())
            .await
            .unwrap();
        sign_in(
            &store,
            &pause,
            &attempt("lee", "correct horse battery"),
            t0(),
        )
        .await
        .unwrap();
        // After the window, the right password works and the slate is clean.
        let later = t0() + FAILURE_WINDOW;
        sign_in(
            &store,
            &pause,
            &attempt("dana", "correct horse battery"),
            later,
        )
        .await
        .unwrap();
        let before = pause.count();
        sign_in(&store, &pause, &attempt("dana", "wrong password"), later)
            .await
            .unwrap_err();
        assert_eq!(pause.count(), before, "failures were forgotten on success");
    }

    #[tokio::test]
    async fn user_names_are_unique_across_practices() {
        let store = MemoryStore::default();
        create_staff(&store, "p1", &new_staff("dana", "admin"), t0())
            .await
            .unwrap();
        let e = create_staff(&store, "p2", &new_staff("DANA", "staff"), t0())
            .await
            .unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), ("user_taken", Some("user")));
        let mut weak = new_staff("lee", "staff");
        weak.password = "short".into();
        assert_eq!(
            create_staff(&store, "p1", &weak, t0())
                .await
                .unwrap_err()
                .code,
            "weak_password"
        );
        let e = create_staff(&store, "p1", &new_staff("lee", "boss"), t0())
            .await
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("role"));
        assert_eq!(list_staff(&store, "p1").await.unwrap().len(), 1);
        assert!(list_staff(&store, "p2").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_new_password_ends_the_sessions_and_a_deleted_account_cannot_sign_in() {
        let store = MemoryStore::default();
        let admin = create_staff(&store, "p1", &new_staff("admin", "admin"), t0())
            .await
            .unwrap();
        let dana = create_staff(&store, "p1", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
        let pause = Recorded::default();
        let signed = sign_in(
            &store,
            &pause,
            &attempt("dana", "correct horse battery"),
            t0(),
        )
        .await
        .unwrap();
        // Another practice cannot reach the account.
        assert_eq!(
            set_password(&store, "p2", &dana.id, "a brand new password")
                .await
                .unwrap_err()
                .code,
            "staff_not_found"
        );
        set_password(&store, "p1", &dana.id, "a brand new password")
            .await
            .unwrap();
        assert!(session_for_token(&store, &signed.token, t0())
            .await
            .unwrap()
            .is_none());
        sign_in(
            &store,
            &pause,
            &attempt("dana", "a brand new password"),
            t0(),
        )
        .await
        .unwrap();

        assert_eq!(
            delete_staff(&store, "p1", &admin.id, Some(&admin.id))
                .await
                .unwrap_err()
                .code,
            "cannot_delete_self"
        );
        assert_eq!(
            delete_staff(&store, "p2", &dana.id, Some(&admin.id))
                .await
                .unwrap_err()
                .code,
            "staff_not_found"
        );
        delete_staff(&store, "p1", &dana.id, Some(&admin.id))
            .await
            .unwrap();
        let e = sign_in(
            &store,
            &pause,
            &attempt("dana", "a brand new password"),
            t0(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "invalid_credentials");
        // The name is free again.
        create_staff(&store, "p2", &new_staff("dana", "staff"), t0())
            .await
            .unwrap();
    }
}
