//! `POST /v1/appointments/{id}/reminders`: staff send an appointment's
//! reminder now (the 3-dot menu's "Send a reminder now"), tracked in the
//! Manual tab as a `manual_reminder`.

use chrono::{DateTime, Utc};

use super::{Answer, Messages};
use crate::app::idempotency::{IdempotentPost, Opening};
use crate::app::sending::{invalid_text, resolve_text};
use crate::domain::appointment::wording::{render_reminder, ForPatient, DEFAULT_MANUAL_REMINDER};
use crate::domain::error::AppError;
use crate::domain::merge;
use crate::domain::message::MessageType;
use crate::domain::patient::validate_id;
use crate::domain::practice::{Channel, Practice};
use crate::domain::text;
use crate::ports::{
    AppointmentStore, MessageStore, OptOutStore, PracticeStore, SendQueue, SendScheduler,
    TemplateStore,
};

use super::send::DirectDraft;

/// Body of `POST /v1/appointments/{id}/reminders` (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualReminderRequest {
    /// The text (reminder merge fields allowed), or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a Quick Message; neither: a default naming the date and time.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
}

impl<
        P: PracticeStore + OptOutStore + TemplateStore + AppointmentStore,
        M: MessageStore,
        Q: SendQueue,
        S: SendScheduler,
    > Messages<P, M, Q, S>
{
    /// Sends a reminder of `appointment_id` to its patient now: 202 with
    /// the message, as `POST /v1/messages` answers.
    pub async fn send_manual_reminder(
        &self,
        practice: &Practice,
        appointment_id: &str,
        request: ManualReminderRequest,
        request_value: &serde_json::Value,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Answer, AppError> {
        let not_found = || {
            AppError::not_found(
                "appointment_not_found",
                format!("no appointment {appointment_id}"),
            )
        };
        validate_id(appointment_id, "appointment_id").map_err(|_| not_found())?;
        let route = format!("POST /v1/appointments/{appointment_id}/reminders");
        let post = IdempotentPost::new(
            &practice.practice_id,
            &route,
            request_value,
            idempotency_key,
        );
        match post.open(&self.store, now).await? {
            Opening::Fresh => {}
            Opening::Replay(answer) => return Ok(answer),
            Opening::Pending { key, answer } => {
                self.finish_hand_over(practice, key, &answer.body, now)
                    .await?;
                return Ok(answer);
            }
        }
        let appointment = self
            .practices
            .get_appointment(&practice.practice_id, appointment_id)
            .await?
            .ok_or_else(not_found)?;
        let patient = self
            .practices
            .get_patient(&practice.practice_id, &appointment.patient_id)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "unknown_patient",
                    format!(
                        "the appointment's patient {} is no longer synced",
                        appointment.patient_id
                    ),
                )
                .at("patient_id")
            })?;
        let (channel, from) =
            crate::app::sending::resolve_channel(practice, request.channel.as_deref())?;
        let (raw, template_id) = match (request.text, request.template_id) {
            (None, None) => (DEFAULT_MANUAL_REMINDER.to_string(), None),
            (text, template_id) => {
                resolve_text(
                    &self.practices,
                    &practice.practice_id,
                    text,
                    template_id,
                    &merge::reminder_fields(),
                )
                .await?
            }
        };
        let rendered = render_reminder(
            &raw,
            practice,
            &[ForPatient {
                appointment: &appointment,
                first_name: &patient.first_name,
                last_name: patient.last_name.as_deref(),
            }],
        )?;
        text::validate_text(&rendered).map_err(invalid_text)?;
        if self
            .practices
            .is_opted_out(&practice.practice_id, patient.phone.as_str())
            .await?
        {
            return Err(AppError::invalid(
                "recipient_opted_out",
                "this number replied STOP to the practice; it receives no texts until it replies START",
            )
            .at("patient_id"));
        }
        let draft = DirectDraft {
            message_type: MessageType::ManualReminder,
            appointment_ids: vec![appointment.appointment_id.clone()],
            send_at: None,
            channel: if channel == Channel::SmsAlt {
                Channel::SmsAlt
            } else {
                Channel::SmsMain
            },
            from,
            template_id,
            patient_id: Some(patient.patient_id.clone()),
            to: patient.phone.clone(),
            stats: text::analyze(&rendered),
            text: rendered,
            origin: None,
        };
        let (message, recipients) = super::direct_message(practice, draft, now);
        self.store_and_hand_over(practice, &post, message, recipients, now)
            .await
    }
}
