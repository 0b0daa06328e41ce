//! Appointments and reminder rules, in memory.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::appointment::rules::default_rules;
use crate::domain::appointment::{Appointment, ReminderRule};
use crate::domain::error::StoreError;
use crate::domain::events::Event;
use crate::domain::message::{Message, Recipient};
use crate::domain::phone::PhoneNumber;
use crate::ports::{AppointmentStore, DueAppointment, StoredRules};

use super::{MemoryStore, State};

fn akey(a: &Appointment) -> (String, String) {
    (a.practice_id.clone(), a.appointment_id.clone())
}

/// Whether every appointment is still stored at the version before its own.
fn all_current(s: &State, appointments: &[Appointment]) -> bool {
    appointments.iter().all(|a| {
        let stored = s.appointments.get(&akey(a)).map(|x| x.version);
        match a.version {
            1 => stored.is_none(),
            v => stored == Some(v - 1),
        }
    })
}

#[async_trait]
impl AppointmentStore for MemoryStore {
    async fn get_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Option<Appointment>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.appointments
            .get(&(practice_id.to_string(), appointment_id.to_string()))
            .cloned())
    }

    async fn put_appointment(&self, appointment: &Appointment) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        if !all_current(&s, std::slice::from_ref(appointment)) {
            return Ok(false);
        }
        s.appointments
            .insert(akey(appointment), appointment.clone());
        Ok(true)
    }

    async fn delete_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let k = (practice_id.to_string(), appointment_id.to_string());
        if s.appointments.get(&k).map(|a| a.version) != Some(version) {
            return Ok(false);
        }
        s.appointments.remove(&k);
        Ok(true)
    }

    async fn list_appointments(
        &self,
        practice_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<Appointment> = s
            .appointments
            .values()
            .filter(|a| a.practice_id == practice_id && a.starts_at >= from && a.starts_at <= to)
            .filter(|a| {
                after
                    .as_ref()
                    .is_none_or(|(t, id)| (a.starts_at, &a.appointment_id) > (*t, id))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (a.starts_at, &a.appointment_id).cmp(&(b.starts_at, &b.appointment_id))
        });
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn appointments_of_number(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        from: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        let s = self.0.lock().await;
        let mut found: Vec<Appointment> = s
            .appointments
            .values()
            .filter(|a| a.practice_id == practice_id && &a.phone == phone && a.starts_at >= from)
            .cloned()
            .collect();
        found.sort_by_key(|a| a.starts_at);
        Ok(found)
    }

    async fn due_appointments(
        &self,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueAppointment>, StoreError> {
        let s = self.0.lock().await;
        let mut due: Vec<DueAppointment> = s
            .appointments
            .values()
            .filter_map(|a| {
                let at = a.next_due()?;
                (at <= until && at > until - Duration::days(2)).then(|| DueAppointment {
                    practice_id: a.practice_id.clone(),
                    appointment_id: a.appointment_id.clone(),
                    due_at: at,
                })
            })
            .collect();
        due.sort_by_key(|d| d.due_at);
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn record_reminder(
        &self,
        appointments: &[Appointment],
        message: Option<(&Message, &[Recipient])>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        if !all_current(&s, appointments) {
            return Ok(false);
        }
        for a in appointments {
            s.appointments.insert(akey(a), a.clone());
        }
        if let Some((m, recipients)) = message {
            s.messages
                .insert((m.practice_id.clone(), m.id.clone()), m.clone());
            for r in recipients {
                s.recipients.insert(
                    (
                        r.practice_id.clone(),
                        r.message_id.clone(),
                        r.recipient_id.clone(),
                    ),
                    r.clone(),
                );
            }
        }
        Ok(true)
    }

    async fn record_confirmation(
        &self,
        appointments: &[Appointment],
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        if !all_current(&s, appointments) {
            return Ok(false);
        }
        for a in appointments {
            s.appointments.insert(akey(a), a.clone());
        }
        for e in events {
            s.record_event(e.clone());
        }
        Ok(true)
    }

    async fn reminder_rules(&self, practice_id: &str) -> Result<StoredRules, StoreError> {
        let s = self.0.lock().await;
        Ok(match s.reminder_rules.get(practice_id) {
            Some((rules, version)) => StoredRules {
                rules: rules.clone(),
                version: Some(*version),
            },
            None => StoredRules {
                rules: default_rules(),
                version: None,
            },
        })
    }

    async fn put_reminder_rules(
        &self,
        practice_id: &str,
        rules: &[ReminderRule],
        previous: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let stored = s.reminder_rules.get(practice_id).map(|(_, v)| *v);
        if stored != previous {
            return Ok(false);
        }
        s.reminder_rules.insert(
            practice_id.to_string(),
            (rules.to_vec(), previous.unwrap_or(0) + 1),
        );
        Ok(true)
    }
}
