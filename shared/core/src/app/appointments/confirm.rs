//! Confirming by reply: a "C" (or yes, OK, 👍 …) from a number whose
//! reminder asked to confirm confirms every such appointment of that
//! number, once, stamped with the reply's own time, together with the
//! `appointment.confirmed` events.

use chrono::{DateTime, Utc};

use super::WRITE_ATTEMPTS;
use crate::domain::appointment::confirm::is_yes;
use crate::domain::appointment::{Appointment, Confirmation};
use crate::domain::error::AppError;
use crate::domain::events::appointment_confirmed;
use crate::domain::phone::PhoneNumber;
use crate::ports::AppointmentStore;

/// The appointments a reply sent at `at` from `phone` confirms: those
/// awaiting confirmation, and those this same reply already confirmed (a
/// redelivered callback acknowledges them again, under the same key, so
/// the patient gets one acknowledgment).
pub async fn answered<S: AppointmentStore>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    text: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, AppError> {
    if !is_yes(text) {
        return Ok(Vec::new());
    }
    Ok(store
        .appointments_of_number(practice_id, phone, now)
        .await?
        .into_iter()
        .filter(|a| {
            a.awaits_confirmation(now)
                || (a.confirmation == Confirmation::Confirmed && a.confirmed_at == Some(at))
        })
        .collect())
}

/// Confirms the appointments of `phone` still awaiting confirmation, at the
/// reply's time `at`; returns every appointment the reply confirmed (also
/// by an earlier delivery of the same callback), soonest first.
pub async fn confirm<S: AppointmentStore>(
    store: &S,
    practice_id: &str,
    phone: &PhoneNumber,
    text: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, AppError> {
    for _ in 0..WRITE_ATTEMPTS {
        let found = answered(store, practice_id, phone, text, at, now).await?;
        let (done, waiting): (Vec<Appointment>, Vec<Appointment>) = found
            .into_iter()
            .partition(|a| a.confirmation == Confirmation::Confirmed);
        if waiting.is_empty() {
            return Ok(done);
        }
        let confirmed: Vec<Appointment> = waiting
            .into_iter()
            .map(|mut a| {
                a.confirmation = Confirmation::Confirmed;
                a.confirmed_at = Some(at);
                a.updated_at = now;
                a.version += 1;
                a
            })
            .collect();
        let events: Vec<_> = confirmed
            .iter()
            .map(|a| appointment_confirmed(practice_id, &a.appointment_id, &a.patient_id, at))
            .collect();
        if store.record_confirmation(&confirmed, &events).await? {
            tracing::info!(
                practice_id,
                appointments = confirmed.len(),
                "appointments confirmed by reply"
            );
            let mut all: Vec<Appointment> = done.into_iter().chain(confirmed).collect();
            all.sort_by_key(|a| a.starts_at);
            return Ok(all);
        }
    }
    Err(AppError::unavailable(
        "the appointments kept changing; the callback will be retried",
    ))
}
