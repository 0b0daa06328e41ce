//! Appointments, their reminders and the practice's reminder rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::appointment::{Appointment, ReminderRule};
use crate::domain::error::StoreError;
use crate::domain::events::Event;
use crate::domain::message::{Message, Recipient};
use crate::domain::phone::PhoneNumber;

/// An appointment with a reminder due, as the due-reminder index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAppointment {
    /// Owner.
    pub practice_id: String,
    #[allow(missing_docs)]
    pub appointment_id: String,
    /// Its earliest pending reminder's time.
    pub due_at: DateTime<Utc>,
}

/// The practice's reminder rules as stored, with the version a change is
/// conditional on (`None`: never changed, the defaults apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRules {
    #[allow(missing_docs)]
    pub rules: Vec<ReminderRule>,
    #[allow(missing_docs)]
    pub version: Option<u64>,
}

/// Appointments and reminder rules. Every write of an appointment is
/// conditional on the version it was read at (`appointment.version - 1`;
/// version 1 is a new appointment), so concurrent syncs, firings and
/// confirmations never undo each other: the loser reads again.
#[async_trait]
pub trait AppointmentStore: Send + Sync {
    /// One appointment.
    async fn get_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Option<Appointment>, StoreError>;
    /// Stores `appointment` (one write) if the stored one is still at the
    /// version before it; `false` when another write came first.
    async fn put_appointment(&self, appointment: &Appointment) -> Result<bool, StoreError>;
    /// Removes an appointment if still at `version`; `false` when it
    /// changed first or is gone.
    async fn delete_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
        version: u64,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` appointments starting in `[from, to]`, soonest first,
    /// after the appointment `after` (`(starts_at, id)` of the last one
    /// shown).
    async fn list_appointments(
        &self,
        practice_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError>;
    /// The appointments synced with `phone` that start at or after `from`.
    async fn appointments_of_number(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        from: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError>;
    /// Appointments of every practice with a pending reminder due at or
    /// before `until` (and not more than two days overdue), earliest first.
    async fn due_appointments(
        &self,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueAppointment>, StoreError>;
    /// A reminder that goes: the appointments it covers (each conditional
    /// on the version before it) and the message carrying it, all or
    /// nothing; or only appointments (a reminder skipped or re-timed).
    /// `false` when an appointment changed first.
    async fn record_reminder(
        &self,
        appointments: &[Appointment],
        message: Option<(&Message, &[Recipient])>,
    ) -> Result<bool, StoreError>;
    /// Confirmed appointments (each conditional on the version before it)
    /// and their events, all or nothing.
    async fn record_confirmation(
        &self,
        appointments: &[Appointment],
        events: &[Event],
    ) -> Result<bool, StoreError>;
    /// The practice's rules (the defaults when never changed).
    async fn reminder_rules(&self, practice_id: &str) -> Result<StoredRules, StoreError>;
    /// Replaces the practice's rules if still at `previous.version`.
    async fn put_reminder_rules(
        &self,
        practice_id: &str,
        rules: &[ReminderRule],
        previous: Option<u64>,
    ) -> Result<bool, StoreError>;
}
