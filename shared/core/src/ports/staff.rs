//! Staff accounts, their sessions and failed sign-ins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;

/// How creating a staff account went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffCreated {
    /// Stored, with its sign-in name taken.
    Created,
    /// Another account (of any practice) already signs in with that name;
    /// nothing stored.
    UserTaken,
}

/// Staff accounts, their sessions and the failed sign-ins per user name.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Stores a new account and takes its sign-in name, both or neither.
    async fn create_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<StaffCreated, StoreError>;
    /// Replaces an existing account's name, role or password hash (its
    /// sign-in name stays). `false` when there is no such account.
    async fn update_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<bool, StoreError>;
    /// The account that signs in with `user` (normalised).
    async fn staff_for_user(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError>;
    /// One of the practice's accounts.
    async fn get_staff(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError>;
    /// Every account of the practice (a practice has a handful), by id.
    async fn list_staff(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::staff::StaffMember>, StoreError>;
    /// Deletes an account, frees its sign-in name and ends its sessions.
    /// `false` when there was no such account.
    async fn delete_staff(&self, practice_id: &str, staff_id: &str) -> Result<bool, StoreError>;
    /// Stores a new session.
    async fn create_session(
        &self,
        session: &crate::domain::staff::Session,
    ) -> Result<(), StoreError>;
    /// The session stored under a token's digest, if any (expired ones
    /// included: the caller checks `expires_at`, as TTL deletion lags).
    async fn get_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::domain::staff::Session>, StoreError>;
    /// Deletes a session (nothing when there is none).
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of a staff member (their password changed).
    async fn delete_sessions_of(&self, practice_id: &str, staff_id: &str)
        -> Result<(), StoreError>;
    /// The failed sign-ins counted for `user` (any string tried, normalised).
    async fn login_failures(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::LoginFailures>, StoreError>;
    /// Counts one more failure for `user` at `now`: one more in the current
    /// window, or the first of a new one when the window is over (or there
    /// was none). Answers the count after it.
    async fn record_login_failure(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::staff::LoginFailures, StoreError>;
    /// Forgets `user`'s failures (a successful sign-in).
    async fn clear_login_failures(&self, user: &str) -> Result<(), StoreError>;
}
