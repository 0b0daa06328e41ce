//! The office's staff: who may sign in to the console, and as which practice.
//!
//! A staff member signs in with a user name (unique across the deployment:
//! `POST /v1/sessions` names no practice) and a password, kept only as an
//! Argon2id hash (memory-hard: a stolen table does not give the passwords
//! back at GPU speed). A session is a random token in an `HttpOnly` cookie,
//! stored only as its SHA-256 digest, with an expiry; every request made
//! with it acts as the staff member's practice.
//!
//! Failed sign-ins are counted per user name: after
//! [`SLOWED_AFTER_FAILURES`] within [`FAILURE_WINDOW`], each further answer
//! waits [`SLOWDOWN`]; after [`REFUSED_AFTER_FAILURES`], sign-in for that
//! name is refused (429) until the window ends. A wrong user name and a
//! wrong password are counted, timed and answered alike.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::clock::serialize_api_time;
use super::error::AppError;
use super::limits::MAX_NAME_CHARS;

/// How long a session lasts from sign-in: a working day with margin. After
/// it the console asks to sign in again.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// The window in which failed sign-ins for one user name are counted.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failed sign-ins answered at once; the ones after wait [`SLOWDOWN`].
pub const SLOWED_AFTER_FAILURES: u32 = 3;
/// From this many failures in the window, sign-in is refused (429).
pub const REFUSED_AFTER_FAILURES: u32 = 10;
/// How long a slowed answer waits.
pub const SLOWDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost is bounded by the input too).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest user name.
pub const MAX_USER_CHARS: usize = 64;

/// Argon2id's cost: 19 MiB, two passes, one lane (OWASP's recommended
/// minimum). About 40 ms per hash on a Lambda with 512 MB.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// What a staff member may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything staff can, and manage the practice's staff accounts.
    Admin,
    /// Texting, the Inbox, patients, Quick Messages, settings.
    Staff,
}

impl StaffRole {
    /// Parses `admin` or `staff`.
    pub fn parse(s: &str) -> Option<StaffRole> {
        match s {
            "admin" => Some(StaffRole::Admin),
            "staff" => Some(StaffRole::Staff),
            _ => None,
        }
    }

    /// The API's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Staff => "staff",
        }
    }
}

/// A staff account as stored (the hash never leaves the store and this module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// The practice the account acts as.
    pub practice_id: String,
    /// Stable id (`stf_…`), shown as the staff member's `id`.
    pub staff_id: String,
    /// The sign-in name, normalised ([`normalize_user`]); unique in the deployment.
    pub user: String,
    /// The name shown to colleagues (and usable as a conversation's assignee).
    pub name: String,
    /// What the account may do.
    pub role: StaffRole,
    /// Argon2id PHC string (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A staff member as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffView {
    /// `stf_…`.
    pub id: String,
    /// Shown name.
    pub name: String,
    /// `admin` or `staff`.
    pub role: StaffRole,
}

/// A staff member with their sign-in name, for the practice's admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffAccount {
    /// `stf_…`.
    pub id: String,
    /// Sign-in name.
    pub user: String,
    /// Shown name.
    pub name: String,
    /// `admin` or `staff`.
    pub role: StaffRole,
    /// When the account was created.
    #[serde(serialize_with = "serialize_api_time")]
    pub created_at: DateTime<Utc>,
}

impl StaffMember {
    /// What the API shows of the member.
    pub fn view(&self) -> StaffView {
        StaffView {
            id: self.staff_id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }

    /// What a practice's admin sees of the account.
    pub fn account(&self) -> StaffAccount {
        StaffAccount {
            id: self.staff_id.clone(),
            user: self.user.clone(),
            name: self.name.clone(),
            role: self.role,
            created_at: self.created_at,
        }
    }
}

/// A signed-in staff member's session, as stored under its token's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 hex digest of the cookie's token (the token itself is never stored).
    pub token_hash: String,
    /// The practice every request of the session acts as.
    pub practice_id: String,
    /// Who signed in.
    pub staff_id: String,
    /// Their shown name at sign-in.
    pub name: String,
    /// Their role at sign-in.
    pub role: StaffRole,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// After this instant the session no longer authenticates (DynamoDB's
    /// TTL deletes the item some time later).
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// Whether the session still authenticates at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// The staff member as the API shows them.
    pub fn staff(&self) -> StaffView {
        StaffView {
            id: self.staff_id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }
}

/// Failed sign-ins for one user name within the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailures {
    /// Failures counted since `window_started_at`.
    pub failures: u32,
    /// The first failure of the window.
    pub window_started_at: DateTime<Utc>,
}

impl LoginFailures {
    /// When the window (and any refusal) ends.
    pub fn window_ends_at(&self) -> DateTime<Utc> {
        self.window_started_at + FAILURE_WINDOW
    }

    /// The failures that still count at `now` (0 once the window is over).
    pub fn counting_at(&self, now: DateTime<Utc>) -> u32 {
        if now < self.window_ends_at() {
            self.failures
        } else {
            0
        }
    }
}

/// What to do with a sign-in attempt, given the user name's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPolicy {
    /// Check the password and answer at once.
    Answer,
    /// Check the password, but answer only after [`SLOWDOWN`].
    Slowed,
    /// Refuse without checking, until this instant.
    RefusedUntil(DateTime<Utc>),
}

/// The policy for an attempt at `now` by a user name with `failures`.
pub fn attempt_policy(failures: Option<&LoginFailures>, now: DateTime<Utc>) -> AttemptPolicy {
    let Some(f) = failures else {
        return AttemptPolicy::Answer;
    };
    match f.counting_at(now) {
        n if n >= REFUSED_AFTER_FAILURES => AttemptPolicy::RefusedUntil(f.window_ends_at()),
        n if n >= SLOWED_AFTER_FAILURES => AttemptPolicy::Slowed,
        _ => AttemptPolicy::Answer,
    }
}

/// A sign-in name as stored: 1 to [`MAX_USER_CHARS`] ASCII letters,
/// digits and `. _ - @`, in lower case (names differ by more than case).
///
/// # Errors
///
/// 422 `invalid_field` naming `field` otherwise.
pub fn normalize_user(input: &str, field: &str) -> Result<String, AppError> {
    let user = input.to_ascii_lowercase();
    let ok = !user.is_empty()
        && user.len() <= MAX_USER_CHARS
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(user)
    } else {
        Err(AppError::invalid(
            "invalid_field",
            format!(
                "{field} must be 1 to {MAX_USER_CHARS} letters, digits, dots, dashes, underscores or @"
            ),
        )
        .at(field.to_string()))
    }
}

/// A staff member's shown name: at most [`MAX_NAME_CHARS`] characters, not
/// blank; stored trimmed.
///
/// # Errors
///
/// 422 `invalid_field` naming `field` otherwise.
pub fn check_staff_name(input: &str, field: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() || input.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::invalid(
            "invalid_field",
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters"),
        )
        .at(field.to_string()));
    }
    Ok(name.to_string())
}

/// A new account's password: [`MIN_PASSWORD_CHARS`] to
/// [`MAX_PASSWORD_CHARS`] characters.
///
/// # Errors
///
/// 422 `weak_password` naming `field` otherwise.
pub fn check_new_password(password: &str, field: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(AppError::invalid(
            "weak_password",
            format!(
                "the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters; a short sentence is easy to remember"
            ),
        )
        .at(field.to_string()));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within Argon2's bounds.
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id and a random 16-byte salt, as a PHC string.
///
/// # Errors
///
/// Only if Argon2 refuses its input (a password over its length limit,
/// which [`check_new_password`] already refuses).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|_| AppError::unavailable("The password could not be protected; retry."))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AppError::unavailable("The password could not be protected; retry."))
}

/// Whether `password` matches the stored PHC `hash` (constant time in the
/// hash comparison; the cost is the parameters stored with the hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of no one's password, verified against when the user name is
/// unknown, so that answer takes as long as a wrong password's.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        hash_password(&hex::encode(bytes)).unwrap_or_default()
    })
}

/// A new staff id: `stf_` and 16 random bytes in hex.
pub fn new_staff_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("stf_{}", hex::encode(bytes))
}

/// Whether `id` has the shape of a staff id (checked before any read).
pub fn is_staff_id(id: &str) -> bool {
    id.len() == 36
        && id.starts_with("stf_")
        && id[4..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, minute, second)
            .unwrap()
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        let again = hash_password("correct horse battery").unwrap();
        assert_ne!(hash, again, "salted");
        assert!(!verify_password("anything at all", decoy_hash()));
    }

    #[test]
    fn user_names_are_normalised_and_checked() {
        assert_eq!(
            normalize_user("Front.Desk@Bright", "user").unwrap(),
            "front.desk@bright"
        );
        for bad in [
            "",
            "   ",
            " dana",
            "a b",
            "ünï",
            &"x".repeat(65),
            "semi;colon",
        ] {
            let e = normalize_user(bad, "user").unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_field", Some("user"))
            );
        }
    }

    #[test]
    fn new_passwords_have_a_length_range() {
        assert!(check_new_password("short", "password").is_err());
        assert!(check_new_password("twelve chars", "password").is_ok());
        assert_eq!(
            check_new_password(&"x".repeat(257), "password")
                .unwrap_err()
                .code,
            "weak_password"
        );
    }

    #[test]
    fn failures_slow_then_refuse_within_the_window_only() {
        let start = at(0, 0);
        let f = |n| LoginFailures {
            failures: n,
            window_started_at: start,
        };
        assert_eq!(attempt_policy(None, start), AttemptPolicy::Answer);
        assert_eq!(attempt_policy(Some(&f(2)), at(1, 0)), AttemptPolicy::Answer);
        assert_eq!(attempt_policy(Some(&f(3)), at(1, 0)), AttemptPolicy::Slowed);
        assert_eq!(attempt_policy(Some(&f(9)), at(1, 0)), AttemptPolicy::Slowed);
        assert_eq!(
            attempt_policy(Some(&f(10)), at(1, 0)),
            AttemptPolicy::RefusedUntil(at(15, 0))
        );
        // The window is over: everything is forgotten.
        assert_eq!(
            attempt_policy(Some(&f(50)), at(15, 0)),
            AttemptPolicy::Answer
        );
    }

    #[test]
    fn sessions_expire() {
        let s = Session {
            token_hash: "h".into(),
            practice_id: "p".into(),
            staff_id: new_staff_id(),
            name: "Dana".into(),
            role: StaffRole::Staff,
            created_at: at(0, 0),
            expires_at: at(0, 0) + SESSION_LIFETIME,
        };
        assert!(s.is_live(at(59, 59)));
        assert!(!s.is_live(at(0, 0) + SESSION_LIFETIME));
        assert!(is_staff_id(&s.staff_id));
        assert!(!is_staff_id("stf_0"));
        assert!(!is_staff_id(&s.staff_id.to_uppercase()));
    }
}
