//! Appointments the office's practice-management system syncs, and the
//! reminders the product sends for them by itself (the seed's Automatic tab).
//!
//! An appointment carries its reminders: one per reminder rule, each with
//! the time it is due and what became of it. When they are due is decided
//! in [`timing`], what they say in [`wording`], and whether a patient's
//! reply confirms in [`confirm`].

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::clock::to_api_time;
use super::error::AppError;
use super::job::SendJob;
use super::patient::validate_id;
use super::phone::PhoneNumber;

pub mod confirm;
pub mod rules;
pub mod timing;
pub mod wording;

pub use rules::ReminderRule;

/// The `recipient_id` of the sweep job the minute's schedule puts on the
/// send queue.
pub const SWEEP_JOB: &str = "sweep-reminders";
/// The `recipient_id` of an appointment's reminder job.
const REMINDER_JOB: &str = "reminder";

/// An appointment whose earliest pending reminder is due: travels on the
/// send queue as a [`SendJob`] (`message_id` = the appointment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderJob {
    /// Owner.
    pub practice_id: String,
    #[allow(missing_docs)]
    pub appointment_id: String,
}

impl ReminderJob {
    /// The job as it goes on the queue.
    pub fn to_send_job(&self) -> SendJob {
        SendJob {
            practice_id: self.practice_id.clone(),
            message_id: self.appointment_id.clone(),
            recipient_id: REMINDER_JOB.into(),
        }
    }

    /// Reads a job made by [`ReminderJob::to_send_job`].
    pub fn from_send_job(job: &SendJob) -> Option<Self> {
        (job.recipient_id == REMINDER_JOB).then(|| Self {
            practice_id: job.practice_id.clone(),
            appointment_id: job.message_id.clone(),
        })
    }
}

impl std::fmt::Display for ReminderJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reminder of {}/{}",
            self.practice_id, self.appointment_id
        )
    }
}

/// The job the minute's schedule puts on the send queue.
pub fn sweep_job() -> SendJob {
    SendJob {
        practice_id: "-".into(),
        message_id: "-".into(),
        recipient_id: SWEEP_JOB.into(),
    }
}

/// Furthest ahead an appointment may start.
pub const MAX_AHEAD: Duration = Duration::days(400);
/// Longest provider or location name.
const MAX_NAME_CHARS: usize = 100;

/// Where an appointment stands in the office's own system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// Booked, still to come.
    #[default]
    Scheduled,
    /// Called off.
    Canceled,
    /// The patient came.
    Completed,
    /// The patient did not come.
    NoShow,
}

impl AppointmentStatus {
    /// Reads the API's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(Self::Scheduled),
            "canceled" => Some(Self::Canceled),
            "completed" => Some(Self::Completed),
            "no_show" => Some(Self::NoShow),
            _ => None,
        }
    }
}

/// Whether the patient confirmed they will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// Not (yet) confirmed.
    #[default]
    Unconfirmed,
    /// The patient replied yes.
    Confirmed,
}

/// What became of one reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderStatus {
    /// Will go at `due_at`.
    Pending,
    /// Handed to sending: `message_id` tells how it went.
    Sent,
    /// Will not go (`skip_reason` says why).
    Skipped,
    /// The appointment was canceled, completed, missed or deleted first.
    Canceled,
}

/// One reminder of an appointment: the rule it follows and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The rule (`confirm-2d`).
    pub rule_id: String,
    /// When it goes (or went, or would have gone).
    pub due_at: DateTime<Utc>,
    #[allow(missing_docs)]
    pub status: ReminderStatus,
    /// The message that carried it, once sent (shared by a family's
    /// appointments when one text named them all).
    #[serde(default)]
    pub message_id: Option<String>,
    /// Why it was skipped: `too_late`, `opted_out`, `outside_window`,
    /// `rule_disabled`, `no_phone`.
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// Whether the text that went asked the patient to confirm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asked_to_confirm: bool,
}

impl Reminder {
    /// A reminder to send at `due_at`.
    pub fn pending(rule_id: &str, due_at: DateTime<Utc>) -> Self {
        Self {
            rule_id: rule_id.to_string(),
            due_at,
            status: ReminderStatus::Pending,
            message_id: None,
            skip_reason: None,
            asked_to_confirm: false,
        }
    }

    /// A reminder that will not go, and why.
    pub fn skipped(rule_id: &str, due_at: DateTime<Utc>, reason: &str) -> Self {
        Self {
            status: ReminderStatus::Skipped,
            skip_reason: Some(reason.to_string()),
            ..Self::pending(rule_id, due_at)
        }
    }
}

/// An appointment as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    /// Owner.
    pub practice_id: String,
    /// The office system's id (patient-id rules).
    pub appointment_id: String,
    /// The patient it is for.
    pub patient_id: String,
    /// The patient's number when the appointment was last synced: what a
    /// family's appointments and a confirming reply are matched by.
    pub phone: PhoneNumber,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub provider: Option<String>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub location: Option<String>,
    #[allow(missing_docs)]
    pub status: AppointmentStatus,
    #[allow(missing_docs)]
    pub confirmation: Confirmation,
    #[allow(missing_docs)]
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Last changed by a sync, a reminder or a confirmation.
    pub updated_at: DateTime<Utc>,
    /// One per rule that applies.
    #[serde(default)]
    pub reminders: Vec<Reminder>,
    /// Counts every stored change; each write is conditional on it.
    #[serde(default)]
    pub version: u64,
}

impl Appointment {
    /// The earliest time a pending reminder is due: what the due-reminder
    /// index sorts by; `None` when nothing is pending.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.reminders
            .iter()
            .filter(|r| r.status == ReminderStatus::Pending)
            .map(|r| r.due_at)
            .min()
    }

    /// The pending reminder of `rule_id`, if any.
    pub fn pending_reminder(&self, rule_id: &str) -> Option<&Reminder> {
        self.reminders
            .iter()
            .find(|r| r.rule_id == rule_id && r.status == ReminderStatus::Pending)
    }

    /// Whether a reply from its number can confirm it at `now`: still to
    /// come, unconfirmed, and a reminder that asked to confirm was sent.
    pub fn awaits_confirmation(&self, now: DateTime<Utc>) -> bool {
        self.status == AppointmentStatus::Scheduled
            && self.confirmation == Confirmation::Unconfirmed
            && self.starts_at > now
            && self
                .reminders
                .iter()
                .any(|r| r.status == ReminderStatus::Sent && r.asked_to_confirm)
    }

    /// The API's view, times shown in the practice's zone.
    pub fn view(&self, tz: chrono_tz::Tz) -> serde_json::Value {
        serde_json::json!({
            "id": self.appointment_id,
            "patient_id": self.patient_id,
            "starts_at": self.starts_at.with_timezone(&tz).to_rfc3339(),
            "duration_minutes": self.duration_minutes,
            "provider": self.provider,
            "location": self.location,
            "status": self.status,
            "confirmation": self.confirmation,
            "confirmed_at": self.confirmed_at.as_ref().map(to_api_time),
            "updated_at": to_api_time(&self.updated_at),
            "reminders": self.reminders.iter().map(|r| serde_json::json!({
                "rule_id": r.rule_id,
                "due_at": to_api_time(&r.due_at),
                "status": r.status,
                "message_id": r.message_id,
                "skip_reason": r.skip_reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What `PUT /v1/appointments/{id}` carries, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentInput {
    #[allow(missing_docs)]
    pub patient_id: String,
    #[allow(missing_docs)]
    pub starts_at: DateTime<Utc>,
    #[allow(missing_docs)]
    pub duration_minutes: Option<u32>,
    #[allow(missing_docs)]
    pub provider: Option<String>,
    #[allow(missing_docs)]
    pub location: Option<String>,
    #[allow(missing_docs)]
    pub status: AppointmentStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    patient_id: Option<serde_json::Value>,
    starts_at: Option<serde_json::Value>,
    #[serde(default)]
    duration_minutes: Option<serde_json::Value>,
    #[serde(default)]
    provider: Option<serde_json::Value>,
    #[serde(default)]
    location: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid("invalid_field", message).at(field)
}

fn optional_name(
    value: Option<serde_json::Value>,
    field: &str,
) -> Result<Option<String>, AppError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => {
            let s = s.trim().to_string();
            if s.is_empty() || s.chars().count() > MAX_NAME_CHARS {
                return Err(invalid(
                    field,
                    format!("{field} must have 1 to {MAX_NAME_CHARS} characters, or be null"),
                ));
            }
            Ok(Some(s))
        }
        Some(_) => Err(invalid(field, format!("{field} must be a string or null"))),
    }
}

impl AppointmentInput {
    /// Reads and checks a request body; every problem names its field.
    pub fn parse(
        body: &serde_json::Value,
        appointment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        validate_id(appointment_id, "appointment_id")?;
        let raw: RawInput = serde_json::from_value(body.clone()).map_err(|e| {
            let text = e.to_string();
            let field = text.split('`').nth(1).unwrap_or("body").to_string();
            if text.starts_with("unknown field") {
                AppError::bad_request(
                    "unknown_field",
                    format!("{field} is not a field of an appointment"),
                )
                .at(field)
            } else {
                AppError::bad_request("invalid_json", "the body must be a JSON object")
            }
        })?;
        let patient_id = match raw.patient_id {
            Some(serde_json::Value::String(s)) => {
                validate_id(&s, "patient_id")?;
                s
            }
            Some(_) => return Err(invalid("patient_id", "patient_id must be a string")),
            None => return Err(invalid("patient_id", "patient_id is required")),
        };
        let starts_at = match raw.starts_at {
            Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map_err(|_| {
                    invalid(
                        "starts_at",
                        "starts_at must be a time with an offset, such as 2026-12-08T09:30:00-05:00",
                    )
                })?
                .with_timezone(&Utc),
            Some(_) => return Err(invalid("starts_at", "starts_at must be a string")),
            None => return Err(invalid("starts_at", "starts_at is required")),
        };
        if starts_at > now + MAX_AHEAD {
            return Err(invalid(
                "starts_at",
                "starts_at is more than 400 days ahead",
            ));
        }
        let duration_minutes = match raw.duration_minutes {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                // A whole number, also when written 60.0.
                v.as_f64()
                    .filter(|m| m.fract() == 0.0 && (1.0..=1440.0).contains(m))
                    .map(|m| m as u32)
                    .ok_or_else(|| {
                        invalid(
                            "duration_minutes",
                            "duration_minutes must be a whole number from 1 to 1440",
                        )
                    })?,
            ),
        };
        let status = match raw.status {
            None | Some(serde_json::Value::Null) => AppointmentStatus::Scheduled,
            Some(serde_json::Value::String(s)) => {
                AppointmentStatus::parse(&s).ok_or_else(|| {
                    invalid(
                        "status",
                        "status must be scheduled, canceled, completed or no_show",
                    )
                })?
            }
            Some(_) => return Err(invalid("status", "status must be a string")),
        };
        Ok(Self {
            patient_id,
            starts_at,
            duration_minutes,
            provider: optional_name(raw.provider, "provider")?,
            location: optional_name(raw.location, "location")?,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-12-01T14:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_appointment_needs_a_patient_and_a_start_with_an_offset() {
        let ok = AppointmentInput::parse(
            &json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00-05:00", "provider": "Dr. Lee"}),
            "a-1",
            now(),
        )
        .unwrap();
        assert_eq!(
            ok.starts_at,
            "2026-12-08T14:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(ok.status, AppointmentStatus::Scheduled);
        assert_eq!(ok.provider.as_deref(), Some("Dr. Lee"));
        for (body, field) in [
            (
                json!({"starts_at": "2026-12-08T09:30:00-05:00"}),
                "patient_id",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00"}),
                "starts_at",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2028-01-08T09:30:00Z"}),
                "starts_at",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00Z", "duration_minutes": 0}),
                "duration_minutes",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00Z", "status": "moved"}),
                "status",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00Z", "provider": ""}),
                "provider",
            ),
            (
                json!({"patient_id": "p-1", "starts_at": "2026-12-08T09:30:00Z", "room": "2"}),
                "room",
            ),
        ] {
            let e = AppointmentInput::parse(&body, "a-1", now()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{body}");
        }
        let e = AppointmentInput::parse(&json!({}), "a/1", now()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("appointment_id"));
    }
}
