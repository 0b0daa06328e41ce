//! Reminders going out by themselves. Every minute a sweep finds the
//! appointments whose reminder falls due within the next minute and puts
//! each one's reminder job on the send queue, delayed to its second. The
//! job re-reads the appointment and, in one conditional write, marks the
//! reminder sent and stores the message that carries it; the dispatcher
//! then sends that message as any other (claim, carrier, outcome).
//!
//! At most once: the write is conditional on the appointment's version, so
//! of two jobs for the same reminder (a duplicate delivery, a sync racing
//! the sweep) only one stores a message; the other reads the reminder as
//! sent and hands over that same message, whose claim lets one send
//! through. A job that dies after the write and before the send comes back
//! from the queue and does the same.

use chrono::{DateTime, Duration, Utc};

use super::WRITE_ATTEMPTS;
use crate::app::messages::{direct_message, DirectDraft};
use crate::domain::appointment::timing::{appointment_day, earliest_allowed, is_allowed};
use crate::domain::appointment::wording::{render_reminder, ForPatient};
use crate::domain::appointment::{
    rules::with_confirm_request, Appointment, AppointmentStatus, ReminderJob, ReminderStatus,
};
use crate::domain::clock::queue_delay;
use crate::domain::conversation::OutboundKind;
use crate::domain::error::AppError;
use crate::domain::limits::SQS_MAX_DELAY;
use crate::domain::message::{MessageType, SendJob};
use crate::domain::patient::Patient;
use crate::domain::practice::{Channel, Practice};
use crate::domain::text;
use crate::ports::{AppointmentStore, OptOutStore, PracticeStore, SendQueue, TemplateStore};

/// How far ahead the sweep looks: its own period.
pub const SWEEP_AHEAD: Duration = Duration::seconds(60);
/// At most this many reminder jobs per sweep (the rest wait a minute).
pub const SWEEP_LIMIT: u32 = 2000;
/// Reminders of one rule due within this of each other for one number go
/// as one text.
pub const FAMILY_WINDOW: Duration = Duration::hours(1);
/// A job may run this much before its reminder's time (queue delays are
/// whole seconds, rounded up, so this only absorbs clock skew).
const EARLY_SLACK: Duration = Duration::seconds(2);

/// What a reminder job did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fired {
    /// Sends to dispatch now: the message of a reminder this job marked
    /// sent, and those of reminders marked sent in the last minutes (a job
    /// that died after its write left them to the queue's redelivery).
    pub sends: Vec<SendJob>,
    /// The next reminder is not yet due: run again after this many seconds.
    pub later: Option<u32>,
}

/// How long after its time a sent reminder's send is handed over again by
/// a later job of its appointment.
const HAND_OVER_AGAIN: Duration = Duration::minutes(10);

/// The minute's sweep: the reminder jobs of every appointment with a
/// reminder due within [`SWEEP_AHEAD`], each delayed to its due time.
/// Returns how many it queued.
pub async fn sweep<S: AppointmentStore, Q: SendQueue>(
    store: &S,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let due = store
        .due_appointments(now + SWEEP_AHEAD, SWEEP_LIMIT)
        .await?;
    let jobs: Vec<(SendJob, u32)> = due
        .iter()
        .map(|d| {
            let job = ReminderJob {
                practice_id: d.practice_id.clone(),
                appointment_id: d.appointment_id.clone(),
            };
            (job.to_send_job(), queue_delay(d.due_at - now))
        })
        .collect();
    if !jobs.is_empty() {
        queue.enqueue_wave(&jobs).await?;
    }
    Ok(jobs.len())
}

/// Runs a reminder job at `now`: the appointment's earliest pending
/// reminder, if due, is re-checked (rule, window, start, opt-out), then
/// marked sent together with its message; or skipped, or re-timed.
pub async fn fire<S>(store: &S, job: &ReminderJob, now: DateTime<Utc>) -> Result<Fired, AppError>
where
    S: AppointmentStore + PracticeStore + OptOutStore + TemplateStore,
{
    for _ in 0..WRITE_ATTEMPTS {
        let Some(appointment) = store
            .get_appointment(&job.practice_id, &job.appointment_id)
            .await?
        else {
            return Ok(Fired::default());
        };
        let mut fired = Fired {
            sends: recently_sent(&appointment, now),
            later: None,
        };
        match step(store, &appointment, now).await? {
            Step::Done(later) => {
                fired.later = later;
                return Ok(fired);
            }
            Step::Write(appointments, message) => {
                let written = store
                    .record_reminder(
                        &appointments,
                        message.as_deref().map(|(m, r)| (m, r.as_slice())),
                    )
                    .await?;
                if written {
                    if let Some((m, recipients)) = message.map(|b| *b) {
                        tracing::info!(%job, message_id = %m.id, appointments = appointments.len(), "reminder going out");
                        fired.sends.extend(recipients.iter().map(|r| r.job()));
                    }
                    // The appointment's next reminder, if due within the
                    // queue's longest delay: this job comes back for it.
                    let next = appointments
                        .iter()
                        .find(|a| a.appointment_id == job.appointment_id)
                        .and_then(Appointment::next_due);
                    if let Some(next) = next.filter(|n| *n - now <= SQS_MAX_DELAY) {
                        fired.later = Some(queue_delay(next - now).max(1));
                    }
                    return Ok(fired);
                }
                // Another write came first: look again.
            }
        }
    }
    Err(AppError::unavailable(
        "the appointment kept changing; the reminder job will run again",
    ))
}

type Carried = (
    crate::domain::message::Message,
    Vec<crate::domain::message::Recipient>,
);

enum Step {
    /// Nothing to write; the next reminder's delay if not yet due.
    Done(Option<u32>),
    Write(Vec<Appointment>, Option<Box<Carried>>),
}

/// The appointment with its earliest pending reminder set to `change`.
fn with_reminder(
    appointment: &Appointment,
    rule_id: &str,
    now: DateTime<Utc>,
    change: impl FnOnce(&mut crate::domain::appointment::Reminder),
) -> Appointment {
    let mut next = appointment.clone();
    if let Some(r) = next
        .reminders
        .iter_mut()
        .find(|r| r.rule_id == rule_id && r.status == ReminderStatus::Pending)
    {
        change(r);
    }
    next.version += 1;
    next.updated_at = now;
    next
}

fn skip(appointment: &Appointment, rule_id: &str, reason: &str, now: DateTime<Utc>) -> Step {
    tracing::info!(practice_id = %appointment.practice_id, appointment_id = %appointment.appointment_id, rule_id, reason, "reminder skipped");
    Step::Write(
        vec![with_reminder(appointment, rule_id, now, |r| {
            r.status = ReminderStatus::Skipped;
            r.skip_reason = Some(reason.to_string());
        })],
        None,
    )
}

async fn step<S>(store: &S, appointment: &Appointment, now: DateTime<Utc>) -> Result<Step, AppError>
where
    S: AppointmentStore + PracticeStore + OptOutStore + TemplateStore,
{
    let Some(reminder) = appointment
        .reminders
        .iter()
        .filter(|r| r.status == ReminderStatus::Pending)
        .min_by_key(|r| r.due_at)
        .cloned()
    else {
        return Ok(Step::Done(None));
    };
    if reminder.due_at > now + EARLY_SLACK {
        return Ok(Step::Done(Some(queue_delay(reminder.due_at - now))));
    }
    let rule_id = reminder.rule_id.as_str();
    if appointment.status != AppointmentStatus::Scheduled || appointment.starts_at <= now {
        return Ok(skip(appointment, rule_id, "too_late", now));
    }
    let Some(practice) = store.get_practice(&appointment.practice_id).await? else {
        return Ok(Step::Done(None));
    };
    let rules = store.reminder_rules(&practice.practice_id).await?.rules;
    let Some(rule) = rules.iter().find(|r| r.rule_id == rule_id && r.enabled) else {
        return Ok(skip(appointment, rule_id, "rule_disabled", now));
    };
    // The window, as the practice has it now.
    let tz = practice.timezone.tz();
    let day = appointment_day(appointment.starts_at, tz);
    let window = practice.automatic_window.as_ref();
    if !is_allowed(now, day, window, tz) {
        let next = earliest_allowed(now, day, window, tz);
        if next >= appointment.starts_at {
            return Ok(skip(appointment, rule_id, "outside_window", now));
        }
        return Ok(Step::Write(
            vec![with_reminder(appointment, rule_id, now, |r| {
                r.due_at = next
            })],
            None,
        ));
    }
    let Some(patient) = store
        .get_patient(&practice.practice_id, &appointment.patient_id)
        .await?
    else {
        return Ok(skip(appointment, rule_id, "unknown_patient", now));
    };
    if store
        .is_opted_out(&practice.practice_id, patient.phone.as_str())
        .await?
    {
        return Ok(skip(appointment, rule_id, "opted_out", now));
    }
    // One text per family: the number's other appointments whose reminder
    // of this rule falls due within the hour go with this one.
    let mut family: Vec<(Appointment, Patient)> = vec![(appointment.clone(), patient.clone())];
    for other in store
        .appointments_of_number(&practice.practice_id, &patient.phone, now)
        .await?
    {
        let joins = other.appointment_id != appointment.appointment_id
            && other.status == AppointmentStatus::Scheduled
            && other
                .pending_reminder(rule_id)
                .is_some_and(|r| r.due_at <= reminder.due_at + FAMILY_WINDOW);
        if !joins {
            continue;
        }
        if let Some(p) = store
            .get_patient(&practice.practice_id, &other.patient_id)
            .await?
        {
            if p.phone == patient.phone {
                family.push((other, p));
            }
        }
    }
    let text = match (&rule.text, &rule.template_id) {
        (Some(t), _) => t.clone(),
        (None, Some(id)) => match store.get_template(&practice.practice_id, id).await? {
            Some(template) => template.body,
            None => return Ok(skip(appointment, rule_id, "template_missing", now)),
        },
        (None, None) => return Ok(skip(appointment, rule_id, "no_text", now)),
    };
    let named: Vec<ForPatient<'_>> = family
        .iter()
        .map(|(a, p)| ForPatient {
            appointment: a,
            first_name: &p.first_name,
            last_name: p.last_name.as_deref(),
        })
        .collect();
    let rendered = match render_reminder(&text, &practice, &named) {
        Ok(t) if rule.ask_to_confirm => with_confirm_request(&t),
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(practice_id = %practice.practice_id, rule_id, error = %e, "reminder text cannot be written for this appointment");
            return Ok(skip(appointment, rule_id, "missing_merge_data", now));
        }
    };
    if text::validate_text(&rendered).is_err() {
        return Ok(skip(appointment, rule_id, "text_too_long", now));
    }
    let carried = reminder_message(&practice, rule.channel, &patient, &family, rendered, now);
    let message_id = carried.0.id.clone();
    let ask = rule.ask_to_confirm;
    let updated = family
        .iter()
        .map(|(a, _)| {
            with_reminder(a, rule_id, now, |r| {
                r.status = ReminderStatus::Sent;
                r.message_id = Some(message_id.clone());
                r.asked_to_confirm = ask;
            })
        })
        .collect();
    Ok(Step::Write(updated, Some(Box::new(carried))))
}

/// The sends of reminders marked sent in the last minutes: one may not
/// have reached the dispatcher (its job died after the write), so it is
/// handed over again; the dispatcher's claim makes a second hand-over
/// harmless.
fn recently_sent(appointment: &Appointment, now: DateTime<Utc>) -> Vec<SendJob> {
    appointment
        .reminders
        .iter()
        .filter(|r| r.status == ReminderStatus::Sent && r.due_at + HAND_OVER_AGAIN >= now)
        .filter_map(|r| r.message_id.clone())
        .map(|message_id| SendJob {
            practice_id: appointment.practice_id.clone(),
            message_id,
            recipient_id: crate::app::messages::FIRST_RECIPIENT.into(),
        })
        .collect()
}

fn reminder_message(
    practice: &Practice,
    channel: Channel,
    patient: &Patient,
    family: &[(Appointment, Patient)],
    text: String,
    now: DateTime<Utc>,
) -> Carried {
    let (channel, from) = match practice.channels.number(channel) {
        Some(n) => (channel, n.clone()),
        None => (Channel::SmsMain, practice.channels.sms_main.clone()),
    };
    let draft = DirectDraft {
        message_type: MessageType::AppointmentReminder,
        appointment_ids: family
            .iter()
            .map(|(a, _)| a.appointment_id.clone())
            .collect(),
        send_at: None,
        channel,
        from,
        template_id: None,
        patient_id: Some(patient.patient_id.clone()),
        to: patient.phone.clone(),
        stats: text::analyze(&text),
        text,
        origin: Some(OutboundKind::Reminder),
    };
    let (message, [recipient]) = direct_message(practice, draft, now);
    (message, vec![recipient])
}
