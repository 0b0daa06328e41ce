//! `PUT/GET/DELETE /v1/appointments/{id}`, `GET /v1/appointments`,
//! `POST /v1/appointments/{id}/reminders`, and the reminder rules
//! (`GET /v1/reminder-rules`, `PUT/DELETE /v1/reminder-rules/{id}`), for the
//! function that serves them (the messages function: a sync may put a due
//! reminder on the send queue, and a manual reminder is a send).

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http;
use messaging_core::app::appointments::{AppointmentQuery, Appointments};
use messaging_core::app::auth::Caller;
use messaging_core::app::messages::{ManualReminderRequest, Messages};
use messaging_core::domain::error::AppError;
use messaging_core::ports::{
    AppointmentStore, MessageStore, OptOutStore, PracticeStore, SendQueue, SendScheduler,
    TemplateStore,
};

/// Serves the appointment and reminder-rule routes; `None` for any other.
pub async fn route<S, Q, C>(
    appointments: &Appointments<S, Q>,
    messages: &Messages<S, S, Q, C>,
    caller: &Caller,
    route: &str,
    req: &Request,
    now: DateTime<Utc>,
) -> Option<Result<Response<Body>, AppError>>
where
    S: AppointmentStore + PracticeStore + TemplateStore + OptOutStore + MessageStore,
    Q: SendQueue,
    C: SendScheduler,
{
    let practice = &caller.practice;
    let tz = practice.timezone.tz();
    let id = || http::path_param(req, "id").unwrap_or_default();
    let body = || -> Result<serde_json::Value, AppError> {
        let (value, _) =
            messaging_core::json::parse_json::<serde_json::Value>(http::body_bytes(req)?)?;
        Ok(value)
    };
    let admin = |what: &'static str| -> Result<(), AppError> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(super::admin_only(what))
        }
    };
    let result = match route {
        "PUT /v1/appointments/{id}" => match body() {
            Ok(value) => appointments
                .sync(practice, &id(), &value, now)
                .await
                .map(|a| http::json(StatusCode::OK, &a.view(tz))),
            Err(e) => Err(e),
        },
        "GET /v1/appointments/{id}" => appointments
            .get(practice, &id())
            .await
            .map(|a| http::json(StatusCode::OK, &a.view(tz))),
        "DELETE /v1/appointments/{id}" => appointments
            .delete(practice, &id())
            .await
            .map(|()| http::empty(StatusCode::NO_CONTENT)),
        "GET /v1/appointments" => list(appointments, caller, req, now).await,
        "POST /v1/appointments/{id}/reminders" => {
            let bytes = match http::body_bytes(req) {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            // An empty body asks for the default text.
            let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
                Ok((ManualReminderRequest::default(), serde_json::json!({})))
            } else {
                messaging_core::json::parse_json::<ManualReminderRequest>(bytes)
            };
            match (parsed, http::idempotency_key(req)) {
                (Ok((request, value)), Ok(key)) => messages
                    .send_manual_reminder(practice, &id(), request, &value, key, now)
                    .await
                    .map(|answer| http::raw_json(answer.status, answer.body)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        "GET /v1/reminder-rules" => appointments.rules(practice).await.map(|rules| {
            let items: Vec<serde_json::Value> = rules.iter().map(|r| r.view()).collect();
            http::json(StatusCode::OK, &serde_json::json!({ "items": items }))
        }),
        "PUT /v1/reminder-rules/{id}" => match admin("change reminder rules").and_then(|()| body())
        {
            Ok(value) => appointments
                .put_rule(practice, &id(), &value)
                .await
                .map(|rule| http::json(StatusCode::OK, &rule.view())),
            Err(e) => Err(e),
        },
        "DELETE /v1/reminder-rules/{id}" => match admin("change reminder rules") {
            Ok(()) => appointments
                .delete_rule(practice, &id())
                .await
                .map(|()| http::empty(StatusCode::NO_CONTENT)),
            Err(e) => Err(e),
        },
        _ => return None,
    };
    Some(result)
}

async fn list<S, Q>(
    appointments: &Appointments<S, Q>,
    caller: &Caller,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError>
where
    S: AppointmentStore + PracticeStore + TemplateStore,
    Q: SendQueue,
{
    let (limit, cursor) = http::page_params(req)?;
    http::check_query(req, &["from", "to", "confirmation", "patient_id"])?;
    let query = AppointmentQuery::parse(|k| http::query_param(req, k), limit, cursor, now)?;
    let (items, next) = appointments.list(&caller.practice, &query).await?;
    let tz = caller.practice.timezone.tz();
    let views: Vec<serde_json::Value> = items.iter().map(|a| a.view(tz)).collect();
    Ok(http::page(&views, next))
}
