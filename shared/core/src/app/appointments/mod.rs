//! Appointments the office's system syncs (`PUT /v1/appointments/{id}`),
//! read back and listed by start time; the practice's reminder rules; and,
//! in [`fire`] and [`confirm`], the reminders going out by themselves and
//! the patient's "C" confirming.

use chrono::{DateTime, Duration, Utc};

use crate::domain::appointment::timing::{plan, Planning};
use crate::domain::appointment::{
    Appointment, AppointmentInput, Confirmation, ReminderJob, ReminderRule, ReminderStatus,
};
use crate::domain::clock::{queue_delay, to_api_time};
use crate::domain::error::AppError;
use crate::domain::limits::SQS_MAX_DELAY;
use crate::domain::patient::validate_id;
use crate::domain::practice::Practice;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{AppointmentStore, PracticeStore, SendQueue, TemplateStore};

pub mod confirm;
pub mod fire;

/// How often a write that lost a race to another is tried again.
pub(crate) const WRITE_ATTEMPTS: usize = 5;

/// What the appointment use cases need.
pub struct Appointments<S, Q> {
    /// Appointments, rules, practices and patients.
    pub store: S,
    /// The send queue: reminders due within its longest delay go on it at
    /// once; later ones are found by the minute's sweep.
    pub queue: Q,
}

fn not_found(appointment_id: &str) -> AppError {
    AppError::not_found(
        "appointment_not_found",
        format!("no appointment {appointment_id}"),
    )
}

fn busy() -> AppError {
    AppError::unavailable("the appointment is being changed by another request; retry shortly")
}

impl<S: AppointmentStore + PracticeStore + TemplateStore, Q: SendQueue> Appointments<S, Q> {
    /// `PUT /v1/appointments/{id}`: creates or replaces the appointment and
    /// plans its reminders (one write). A repeat of the same sync writes
    /// nothing; a sync that loses a race to another reads again.
    pub async fn sync(
        &self,
        practice: &Practice,
        appointment_id: &str,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Appointment, AppError> {
        let input = AppointmentInput::parse(body, appointment_id, now)?;
        let patient = self
            .store
            .get_patient(&practice.practice_id, &input.patient_id)
            .await?
            .ok_or_else(|| {
                AppError::not_found(
                    "unknown_patient",
                    format!(
                        "no patient {}; sync the patient first (PUT /v1/patients/{{id}})",
                        input.patient_id
                    ),
                )
                .at("patient_id")
            })?;
        let rules = self
            .store
            .reminder_rules(&practice.practice_id)
            .await?
            .rules;
        for _ in 0..WRITE_ATTEMPTS {
            let previous = self
                .store
                .get_appointment(&practice.practice_id, appointment_id)
                .await?;
            let moved = previous
                .as_ref()
                .is_none_or(|p| p.starts_at != input.starts_at);
            let mut next = Appointment {
                practice_id: practice.practice_id.clone(),
                appointment_id: appointment_id.to_string(),
                patient_id: input.patient_id.clone(),
                phone: patient.phone.clone(),
                starts_at: input.starts_at,
                duration_minutes: input.duration_minutes,
                provider: input.provider.clone(),
                location: input.location.clone(),
                status: input.status,
                confirmation: Confirmation::Unconfirmed,
                confirmed_at: None,
                updated_at: now,
                reminders: Vec::new(),
                version: previous.as_ref().map_or(1, |p| p.version + 1),
            };
            if let (Some(p), false) = (&previous, moved) {
                next.confirmation = p.confirmation;
                next.confirmed_at = p.confirmed_at;
            }
            let planning = Planning {
                rules: &rules,
                window: practice.automatic_window.as_ref(),
                tz: practice.timezone.tz(),
                now,
            };
            next.reminders = plan(previous.as_ref(), &next, &planning);
            if let Some(p) = &previous {
                if same_sync(p, &next) {
                    return Ok(p.clone());
                }
            }
            if self.store.put_appointment(&next).await? {
                self.queue_near_reminders(&next, now).await;
                tracing::info!(
                    practice_id = %practice.practice_id,
                    appointment_id,
                    pending = next.reminders.iter().filter(|r| r.status == ReminderStatus::Pending).count(),
                    "appointment synced"
                );
                return Ok(next);
            }
        }
        Err(busy())
    }

    /// Puts the appointment's reminder job on the queue when a reminder is
    /// due within the queue's longest delay, so it goes on the second. A
    /// failure is only logged: the minute's sweep finds it anyway.
    async fn queue_near_reminders(&self, appointment: &Appointment, now: DateTime<Utc>) {
        let Some(due) = appointment.next_due() else {
            return;
        };
        if due - now > SQS_MAX_DELAY {
            return;
        }
        let job = ReminderJob {
            practice_id: appointment.practice_id.clone(),
            appointment_id: appointment.appointment_id.clone(),
        };
        if let Err(e) = self
            .queue
            .enqueue_delayed(&job.to_send_job(), queue_delay(due - now))
            .await
        {
            tracing::warn!(%job, error = %e, "reminder not queued now; the sweep will find it");
        }
    }

    /// `GET /v1/appointments/{id}`.
    pub async fn get(
        &self,
        practice: &Practice,
        appointment_id: &str,
    ) -> Result<Appointment, AppError> {
        validate_id(appointment_id, "appointment_id").map_err(|_| not_found(appointment_id))?;
        self.store
            .get_appointment(&practice.practice_id, appointment_id)
            .await?
            .ok_or_else(|| not_found(appointment_id))
    }

    /// `DELETE /v1/appointments/{id}`: gone, and with it its pending
    /// reminders (a reminder job that comes later finds nothing).
    pub async fn delete(&self, practice: &Practice, appointment_id: &str) -> Result<(), AppError> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(practice, appointment_id).await?;
            if self
                .store
                .delete_appointment(&practice.practice_id, appointment_id, current.version)
                .await?
            {
                tracing::info!(practice_id = %practice.practice_id, appointment_id, "appointment deleted");
                return Ok(());
            }
        }
        Err(busy())
    }

    /// `GET /v1/appointments?from=&to=&confirmation=&patient_id=`: by start
    /// time, soonest first, one page (filters apply within the page read).
    pub async fn list(
        &self,
        practice: &Practice,
        query: &AppointmentQuery,
    ) -> Result<(Vec<Appointment>, Option<String>), AppError> {
        let after = query
            .cursor
            .as_deref()
            .map(|c| {
                let position = decode_cursor(c)?;
                let (at, id) = position.split_once('#').ok_or_else(|| {
                    AppError::invalid("invalid_cursor", "the cursor is not one this API gave")
                        .at("cursor")
                })?;
                let at = DateTime::parse_from_rfc3339(at)
                    .map_err(|_| {
                        AppError::invalid("invalid_cursor", "the cursor is not one this API gave")
                            .at("cursor")
                    })?
                    .with_timezone(&Utc);
                Ok::<_, AppError>((at, id.to_string()))
            })
            .transpose()?;
        let read = self
            .store
            .list_appointments(
                &practice.practice_id,
                query.from,
                query.to,
                after,
                query.limit + 1,
            )
            .await?;
        let more = read.len() > query.limit as usize;
        let page: Vec<Appointment> = read.into_iter().take(query.limit as usize).collect();
        let next = more.then(|| page.last()).flatten().map(|a| {
            encode_cursor(&format!(
                "{}#{}",
                to_api_time(&a.starts_at),
                a.appointment_id
            ))
        });
        let shown = page
            .into_iter()
            .filter(|a| query.confirmation.is_none_or(|c| a.confirmation == c))
            .filter(|a| query.patient_id.as_ref().is_none_or(|p| &a.patient_id == p))
            .collect();
        Ok((shown, next))
    }

    /// `GET /v1/reminder-rules`.
    pub async fn rules(&self, practice: &Practice) -> Result<Vec<ReminderRule>, AppError> {
        Ok(self
            .store
            .reminder_rules(&practice.practice_id)
            .await?
            .rules)
    }

    /// `PUT /v1/reminder-rules/{id}`: creates or replaces one rule. It
    /// applies to appointments synced from now on (and to those synced
    /// again).
    pub async fn put_rule(
        &self,
        practice: &Practice,
        rule_id: &str,
        body: &serde_json::Value,
    ) -> Result<ReminderRule, AppError> {
        let rule = ReminderRule::parse(rule_id, body)?;
        if let Some(template_id) = &rule.template_id {
            let template = crate::app::templates::load_for_send(
                &self.store,
                &practice.practice_id,
                template_id,
            )
            .await?;
            crate::domain::merge::check_fields_in(
                &template.body,
                "template_id",
                &crate::domain::merge::reminder_fields(),
            )?;
        }
        practice.channels.number(rule.channel).ok_or_else(|| {
            AppError::invalid(
                "channel_unavailable",
                format!(
                    "the practice has no {} number; choose another channel",
                    rule.channel.as_str()
                ),
            )
            .at("channel")
        })?;
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.reminder_rules(&practice.practice_id).await?;
            let mut rules = stored.rules;
            match rules.iter_mut().find(|r| r.rule_id == rule.rule_id) {
                Some(existing) => *existing = rule.clone(),
                None => {
                    if rules.len() >= crate::domain::appointment::rules::MAX_RULES {
                        return Err(AppError::invalid(
                            "too_many_rules",
                            format!(
                                "a practice has at most {} reminder rules; delete one first",
                                crate::domain::appointment::rules::MAX_RULES
                            ),
                        )
                        .at("rule_id"));
                    }
                    rules.push(rule.clone());
                }
            }
            if self
                .store
                .put_reminder_rules(&practice.practice_id, &rules, stored.version)
                .await?
            {
                return Ok(rule);
            }
        }
        Err(AppError::unavailable(
            "the rules are being changed by another request; retry shortly",
        ))
    }

    /// `DELETE /v1/reminder-rules/{id}`: pending reminders of the rule are
    /// skipped when due (`rule_disabled`).
    pub async fn delete_rule(&self, practice: &Practice, rule_id: &str) -> Result<(), AppError> {
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.reminder_rules(&practice.practice_id).await?;
            let before = stored.rules.len();
            let rules: Vec<ReminderRule> = stored
                .rules
                .into_iter()
                .filter(|r| r.rule_id != rule_id)
                .collect();
            if rules.len() == before {
                return Err(AppError::not_found(
                    "rule_not_found",
                    format!("no reminder rule {rule_id}"),
                ));
            }
            if self
                .store
                .put_reminder_rules(&practice.practice_id, &rules, stored.version)
                .await?
            {
                return Ok(());
            }
        }
        Err(AppError::unavailable(
            "the rules are being changed by another request; retry shortly",
        ))
    }
}

/// Whether a sync changes nothing stored (the same fields and reminders).
fn same_sync(previous: &Appointment, next: &Appointment) -> bool {
    let mut a = previous.clone();
    let mut b = next.clone();
    for x in [&mut a, &mut b] {
        x.updated_at = DateTime::<Utc>::MIN_UTC;
        x.version = 0;
    }
    a == b
}

/// What `GET /v1/appointments` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentQuery {
    /// Earliest start (default: the start of today, UTC).
    pub from: DateTime<Utc>,
    /// Latest start (default: 400 days after `from`).
    pub to: DateTime<Utc>,
    #[allow(missing_docs)]
    pub confirmation: Option<Confirmation>,
    #[allow(missing_docs)]
    pub patient_id: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl AppointmentQuery {
    /// Reads the query string, refusing bad values by name.
    pub fn parse(
        get: impl Fn(&str) -> Option<String>,
        limit: u32,
        cursor: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, AppError> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => DateTime::parse_from_rfc3339(&v)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| {
                        AppError::invalid(
                            "invalid_field",
                            format!(
                                "{name} must be an RFC 3339 time such as 2026-12-08T00:00:00-05:00"
                            ),
                        )
                        .at(name)
                    }),
            }
        };
        let today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc());
        let from = time("from")?.unwrap_or(today - Duration::days(1));
        let to = time("to")?.unwrap_or(from + crate::domain::appointment::MAX_AHEAD);
        if from > to {
            return Err(AppError::invalid("invalid_field", "from must not be after to").at("from"));
        }
        let confirmation = match get("confirmation").as_deref() {
            None | Some("") => None,
            Some("confirmed") => Some(Confirmation::Confirmed),
            Some("unconfirmed") => Some(Confirmation::Unconfirmed),
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    "confirmation must be confirmed or unconfirmed",
                )
                .at("confirmation"))
            }
        };
        let patient_id = get("patient_id").filter(|p| !p.is_empty());
        if let Some(p) = &patient_id {
            validate_id(p, "patient_id")?;
        }
        Ok(Self {
            from,
            to,
            confirmation,
            patient_id,
            limit,
            cursor,
        })
    }
}

#[cfg(test)]
mod tests;
