//! Appointments and reminder rules on the one table.
//!
//! | item           | pk              | sk                  |
//! |----------------|-----------------|---------------------|
//! | appointment    | `PRACTICE#{id}` | `APPT#{appointment}` |
//! | reminder rules | `PRACTICE#{id}` | `#REMINDER_RULES`   |
//!
//! An appointment item also carries the keys of three indexes, so every
//! read is one `Query` that follows the page, never a scan:
//!
//! | index                 | pk                                  | sk                                   |
//! |-----------------------|-------------------------------------|--------------------------------------|
//! | `AppointmentsByStart` | `apk` = `PRACTICE#{id}#APPTS`        | `ask` = start time + id              |
//! | `AppointmentsByNumber`| `appk` = `PRACTICE#{id}#APPTS#{phone}` | `ask`                              |
//! | `RemindersDue`        | `duepk` = `DUE#{UTC date}` (sparse) | `duesk` = due time + practice + id   |
//!
//! `RemindersDue` holds only appointments with a pending reminder, under
//! the day of the earliest one, so the sweep reads today's and the two
//! days before (a reminder more than two days late is not sent).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};

use super::items::{from_item, key, n, s, to_item};
use super::keys::practice_pk;
use super::paging::Pages;
use super::tx::cancelled_by_condition;
use super::{err, DynamoStore, Item};
use messaging_core::domain::appointment::rules::default_rules;
use messaging_core::domain::appointment::{Appointment, ReminderRule};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events::Event;
use messaging_core::domain::message::{Message, Recipient};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::ports::{AppointmentStore, DueAppointment, StoredRules};

/// Index of a practice's appointments by start time.
pub const APPOINTMENTS_BY_START: &str = "AppointmentsByStart";
/// Index of a practice's appointments under one phone number, by start time.
pub const APPOINTMENTS_BY_NUMBER: &str = "AppointmentsByNumber";
/// Index of appointments with a pending reminder, by the day it is due.
pub const REMINDERS_DUE: &str = "RemindersDue";

const APPOINTMENT_PREFIX: &str = "APPT#";
const RULES_SK: &str = "#REMINDER_RULES";

fn appointment_sk(appointment_id: &str) -> String {
    format!("{APPOINTMENT_PREFIX}{appointment_id}")
}

fn start_key(starts_at: &DateTime<Utc>, appointment_id: &str) -> String {
    format!("{}#{appointment_id}", to_api_time(starts_at))
}

fn by_start_pk(practice_id: &str) -> String {
    format!("PRACTICE#{practice_id}#APPTS")
}

fn by_number_pk(practice_id: &str, phone: &PhoneNumber) -> String {
    format!("PRACTICE#{practice_id}#APPTS#{}", phone.as_str())
}

fn due_pk(day: chrono::NaiveDate) -> String {
    format!("DUE#{}", day.format("%Y-%m-%d"))
}

/// The item of an appointment with its index keys.
fn appointment_item(a: &Appointment) -> Result<Item, StoreError> {
    let mut item = to_item(
        a,
        practice_pk(&a.practice_id),
        appointment_sk(&a.appointment_id),
    )?;
    let start = s(start_key(&a.starts_at, &a.appointment_id));
    item.insert("apk".into(), s(by_start_pk(&a.practice_id)));
    item.insert("ask".into(), start);
    item.insert("appk".into(), s(by_number_pk(&a.practice_id, &a.phone)));
    if let Some(due) = a.next_due() {
        item.insert("duepk".into(), s(due_pk(due.date_naive())));
        item.insert(
            "duesk".into(),
            s(format!(
                "{}#{}#{}",
                to_api_time(&due),
                a.practice_id,
                a.appointment_id
            )),
        );
    }
    Ok(item)
}

impl DynamoStore {
    /// The conditional `Put` of an appointment at its version (new when 1).
    fn appointment_put(&self, a: &Appointment) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(appointment_item(a)?));
        let put = if a.version <= 1 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(a.version - 1))
        };
        let put = put.build().map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs `writes`; `false` when one of the first `guarded` (the
    /// appointments) had changed.
    async fn transact_guarded(
        &self,
        writes: Vec<TransactWriteItem>,
        guarded: usize,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        match self.transact_retrying_conflicts(writes).await {
            Ok(_) => Ok(true),
            Err(e) if (0..guarded).any(|i| cancelled_by_condition(&e, i)) => Ok(false),
            Err(e) => Err(StoreError::new(op, DisplayErrorContext(e))),
        }
    }

    async fn query_appointments(
        &self,
        index: &'static str,
        pk_name: &'static str,
        pk: String,
        low: String,
        high: String,
        limit: usize,
    ) -> Result<Vec<Appointment>, StoreError> {
        let (found, _) = self
            .query_pages(
                |q| {
                    q.index_name(index)
                        .key_condition_expression("#pk = :pk AND ask BETWEEN :low AND :high")
                        .expression_attribute_names("#pk", pk_name)
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":low", s(low.clone()))
                        .expression_attribute_values(":high", s(high.clone()))
                },
                None,
                Pages::UpTo(limit),
                "read appointments",
                from_item,
            )
            .await?;
        Ok(found)
    }
}

#[async_trait]
impl AppointmentStore for DynamoStore {
    async fn get_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Option<Appointment>, StoreError> {
        self.get(
            practice_pk(practice_id),
            appointment_sk(appointment_id),
            "read appointment",
        )
        .await
    }

    async fn put_appointment(&self, appointment: &Appointment) -> Result<bool, StoreError> {
        let write = self.appointment_put(appointment)?;
        let put = write
            .put
            .ok_or_else(|| StoreError::new("store appointment", "no put"))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new("store appointment", DisplayErrorContext(e))),
        }
    }

    async fn delete_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(practice_id),
                appointment_sk(appointment_id),
            )))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new("delete appointment", DisplayErrorContext(e))),
        }
    }

    async fn list_appointments(
        &self,
        practice_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError> {
        let mut low = to_api_time(&from);
        if let Some((t, id)) = after {
            // Ids are letters, digits, '-', '_', '.': a space sorts right
            // after the key and before any longer one.
            low = low.max(format!("{} ", start_key(&t, &id)));
        }
        let high = format!("{}#~", to_api_time(&to));
        self.query_appointments(
            APPOINTMENTS_BY_START,
            "apk",
            by_start_pk(practice_id),
            low,
            high,
            limit as usize,
        )
        .await
    }

    async fn appointments_of_number(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        from: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        self.query_appointments(
            APPOINTMENTS_BY_NUMBER,
            "appk",
            by_number_pk(practice_id, phone),
            to_api_time(&from),
            "~".into(),
            100,
        )
        .await
    }

    async fn due_appointments(
        &self,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueAppointment>, StoreError> {
        let oldest = until - Duration::days(2);
        let high = format!("{}#~", to_api_time(&until));
        let low = to_api_time(&oldest);
        let mut found = Vec::new();
        let mut day = oldest.date_naive();
        while day <= until.date_naive() && found.len() < limit as usize {
            let wanted = limit as usize - found.len();
            let (page, _) = self
                .query_pages(
                    |q| {
                        q.index_name(REMINDERS_DUE)
                            .key_condition_expression(
                                "duepk = :pk AND duesk BETWEEN :low AND :high",
                            )
                            .expression_attribute_values(":pk", s(due_pk(day)))
                            .expression_attribute_values(":low", s(low.clone()))
                            .expression_attribute_values(":high", s(high.clone()))
                    },
                    None,
                    Pages::UpTo(wanted),
                    "read due reminders",
                    |item: Item| Ok(due_of(&item)),
                )
                .await?;
            found.extend(page.into_iter().flatten());
            day = day.succ_opt().unwrap_or(day + Duration::days(1));
        }
        Ok(found)
    }

    async fn record_reminder(
        &self,
        appointments: &[Appointment],
        message: Option<(&Message, &[Recipient])>,
    ) -> Result<bool, StoreError> {
        let mut writes = appointments
            .iter()
            .map(|a| self.appointment_put(a))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((m, recipients)) = message {
            for (_, _, item) in self.message_items(m, recipients, None)? {
                writes.push(self.put(item, Some("attribute_not_exists(pk)"))?);
            }
        }
        self.transact_guarded(writes, appointments.len(), "record reminder")
            .await
    }

    async fn record_confirmation(
        &self,
        appointments: &[Appointment],
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let mut writes = appointments
            .iter()
            .map(|a| self.appointment_put(a))
            .collect::<Result<Vec<_>, _>>()?;
        for e in events {
            writes.push(self.event_put(e)?);
        }
        self.transact_guarded(writes, appointments.len(), "record confirmation")
            .await
    }

    async fn reminder_rules(&self, practice_id: &str) -> Result<StoredRules, StoreError> {
        #[derive(serde::Deserialize)]
        struct Stored {
            rules: Vec<ReminderRule>,
            version: u64,
        }
        let stored: Option<Stored> = self
            .get(
                practice_pk(practice_id),
                RULES_SK.into(),
                "read reminder rules",
            )
            .await?;
        Ok(match stored {
            Some(s) => StoredRules {
                rules: s.rules,
                version: Some(s.version),
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
        let body = serde_json::json!({"rules": rules, "version": previous.unwrap_or(0) + 1});
        let item = to_item(&body, practice_pk(practice_id), RULES_SK.into())?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(v) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(err("store reminder rules")(e)),
        }
    }
}

/// The appointment a `RemindersDue` index item names (keys only).
fn due_of(item: &Item) -> Option<DueAppointment> {
    let AttributeValue::S(sort) = item.get("duesk")? else {
        return None;
    };
    let mut parts = sort.splitn(3, '#');
    let (at, practice_id, appointment_id) = (parts.next()?, parts.next()?, parts.next()?);
    Some(DueAppointment {
        practice_id: practice_id.to_string(),
        appointment_id: appointment_id.to_string(),
        due_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
    })
}
