//! Opt-outs (STOP/START) and their audit trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::error::StoreError;

/// Opt-outs (STOP/START) per practice and number, with their audit trail.
#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Whether `phone` has opted out of this practice's texts.
    async fn is_opted_out(&self, practice_id: &str, phone: &str) -> Result<bool, StoreError>;
    /// Records an opt-out (`true`) or opt-in and its audit entry, atomically;
    /// the event a change of state causes is stamped `change.at`.
    async fn record_opt_out(&self, change: &OptOutChange) -> Result<(), StoreError>;
    /// Which of `phones` (E.164) are opted out of this practice's texts:
    /// reads only those numbers' records (a bulk's audience, a page of
    /// patients), never the practice's whole opt-out list.
    async fn opted_out_among(
        &self,
        practice_id: &str,
        phones: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError>;
    /// The practice that owns a sending number.
    async fn practice_for_number(&self, number: &str) -> Result<Option<String>, StoreError>;
}

/// One opt-out or opt-in, as kept in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutChange {
    /// Practice.
    pub practice_id: String,
    /// The patient's number, E.164.
    pub phone: String,
    /// `true` = opted out.
    pub opted_out: bool,
    /// What the patient texted (`STOP`), or who changed it.
    pub keyword: String,
    /// Where it came from (`sms`).
    pub source: String,
    /// When.
    pub at: DateTime<Utc>,
}
