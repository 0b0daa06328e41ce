//! Messages, their recipients and idempotency records.
//!
//! | item        | pk              | sk                    |
//! |-------------|-----------------|-----------------------|
//! | message     | `PRACTICE#{id}` | `MSG#{message}`       |
//! | recipient   | `PRACTICE#{id}` | `MSG#{message}#R#{n}` |
//! | idempotency | `PRACTICE#{id}` | `IDEM#{key}`          |
//!
//! Message items also carry the keys of the two tracking indexes:
//! `TrackingAll` (`gsi1pk` = practice, `gsi1sk` = tracking time + id) and
//! `TrackingByTypeStatus` (`gsi2pk` = practice + type + status, `gsi2sk` as
//! `gsi1sk`). A page of the tracking list is one `Query` per partition read,
//! its cost proportional to the page, never to the practice's history.
//!
//! A message and its recipients share a partition and a key prefix, so one
//! `Query` reads them together.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{from_item, idempotency_item, message_item, s, to_item};
use super::keys::{message_sk, practice_pk, recipient_sk, tracking_index_keys, type_status_pk};
use super::paging::Pages;
use super::tx::cancelled_by_condition;
use super::{DynamoStore, Item};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::domain::message::{Message, MessageType, Recipient, SendJob, Transition};
use messaging_core::ports::{CreateOutcome, IdempotencyRecord, MessageStore, TrackingIndex};

impl DynamoStore {
    pub(super) fn message_items(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Vec<(String, String, Item)>, StoreError> {
        let pk = practice_pk(&message.practice_id);
        let mut items = vec![(pk.clone(), message_sk(&message.id), message_item(message)?)];
        for r in recipients {
            let sk = recipient_sk(&r.message_id, &r.recipient_id);
            items.push((pk.clone(), sk.clone(), to_item(r, pk.clone(), sk)?));
        }
        if let Some(rec) = idempotency {
            items.push(idempotency_item(rec)?);
        }
        Ok(items)
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn create_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut writes = self
            .message_items(message, recipients, None)?
            .into_iter()
            .map(|(_, _, item)| self.put(item, Some("attribute_not_exists(pk)")))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(rec) = idempotency {
            writes.push(self.idempotency_put(rec, &message.created_at)?);
        }
        let idem_index = idempotency.map(|_| writes.len() - 1);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if idem_index.is_some_and(|i| cancelled_by_condition(&e, i)) => {
                Ok(CreateOutcome::IdempotencyKeyTaken)
            }
            Err(e) => Err(StoreError::new("store message", DisplayErrorContext(e))),
        }
    }

    async fn settle_idempotency(&self, practice_id: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::items::key(
                practice_pk(practice_id),
                format!("IDEM#{key}"),
            )))
            .update_expression("SET pending = :false")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::new("settle idempotency", DisplayErrorContext(e))),
        }
    }

    async fn remove_message(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let writes = self
            .message_items(message, recipients, idempotency)?
            .into_iter()
            .map(|(pk, sk, _)| self.delete(pk, sk))
            .collect::<Result<Vec<_>, _>>()?;
        self.transact(writes, "remove message").await?;
        Ok(())
    }

    async fn get_message(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<(Message, Vec<Recipient>)>, StoreError> {
        let mut message = None;
        let mut recipients = Vec::new();
        let recipient_prefix = format!("{}#R#", message_sk(message_id));
        self.query_pages(
            |query| {
                // The message's own item and its recipients, nothing else: a
                // prefix alone would also match every message id it begins.
                query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :sk AND :last")
                    .expression_attribute_values(":pk", s(practice_pk(practice_id)))
                    .expression_attribute_values(":sk", s(message_sk(message_id)))
                    .expression_attribute_values(":last", s(format!("{recipient_prefix}~")))
            },
            None,
            Pages::All,
            "read message",
            |item| {
                let sk = match item.get("sk") {
                    Some(AttributeValue::S(sk)) => sk.clone(),
                    _ => return Ok(()),
                };
                if sk == message_sk(message_id) {
                    message = Some(from_item::<Message>(item)?);
                } else if sk.starts_with(&recipient_prefix) {
                    recipients.push(from_item::<Recipient>(item)?);
                }
                Ok(())
            },
        )
        .await?;
        Ok(message.map(|m| (m, recipients)))
    }

    async fn get_recipient(&self, job: &SendJob) -> Result<Option<Recipient>, StoreError> {
        self.get(
            practice_pk(&job.practice_id),
            recipient_sk(&job.message_id, &job.recipient_id),
            "read recipient",
        )
        .await
    }

    async fn get_idempotency(
        &self,
        practice_id: &str,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let rec: Option<IdempotencyRecord> = self
            .get(
                practice_pk(practice_id),
                format!("IDEM#{key}"),
                "read idempotency key",
            )
            .await?;
        Ok(rec.filter(|r| r.expires_at > now))
    }

    async fn transition(
        &self,
        current: &Recipient,
        transition: &Transition,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Recipient>, StoreError> {
        let Some(next) = current.apply(transition) else {
            return Ok(None);
        };
        let put = self.versioned_put(current, &next)?;
        // The message's counts (and, for a direct message, its status) follow.
        let mut sets: Vec<String> = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: Item = HashMap::new();
        if next.status != current.status {
            sets.push("counts.#from = counts.#from - :one".into());
            sets.push("counts.#to = counts.#to + :one".into());
            names.insert("#from".into(), current.status.as_str().into());
            names.insert("#to".into(), next.status.as_str().into());
            values.insert(":one".into(), AttributeValue::N("1".into()));
        }
        if let Transition::Reschedule { send_at, .. } = transition {
            // The tracking list sorts a scheduled message by its send time.
            let at_text = to_api_time(send_at);
            sets.push("send_at = :send_at, gsi1sk = :sk, gsi2sk = :sk".into());
            values.insert(":send_at".into(), s(at_text.clone()));
            values.insert(":sk".into(), s(format!("{at_text}#{}", next.message_id)));
        }
        if next.message_type.is_single() {
            sets.push("#status = :status".into());
            sets.push("gsi2pk = :g2pk".into());
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(next.status.as_str()));
            values.insert(
                ":g2pk".into(),
                s(type_status_pk(
                    &next.practice_id,
                    next.message_type,
                    next.status.as_str(),
                )),
            );
            if let (Transition::Claim { at }, 0) = (transition, current.attempts) {
                // Sending begins: the tracking list now sorts it by this time.
                let at_text = to_api_time(at);
                sets.push("sent_at = :at, gsi1sk = :sk, gsi2sk = :sk".into());
                values.insert(":at".into(), s(at_text.clone()));
                values.insert(":sk".into(), s(format!("{at_text}#{}", next.message_id)));
            }
        }
        let update =
            self.message_update(&next.practice_id, &next.message_id, &sets, names, values)?;
        let mut items = vec![put, update];
        // The outbox: the event this change causes, in the same write.
        if let Some(event) = events::for_transition(current, &next, now) {
            items.push(self.event_put(&event)?);
        }
        match self.transact_retrying_conflicts(items).await {
            Ok(_) => {
                if next.message_type == MessageType::BulkMessage && next.status.is_final() {
                    self.complete_bulk_if_done(&next.practice_id, &next.message_id, now)
                        .await?;
                }
                Ok(Some(next))
            }
            Err(e) if cancelled_by_condition(&e, 0) => Ok(None),
            Err(e) => Err(StoreError::new("update recipient", DisplayErrorContext(e))),
        }
    }

    async fn communications(
        &self,
        practice_id: &str,
        index: &TrackingIndex,
        low: &str,
        high: &str,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let (index_name, pk_name, sk_name, pk) = tracking_index_keys(practice_id, index);
        let (page, _) = self
            .query_pages(
                |query| {
                    query
                        .index_name(index_name)
                        .key_condition_expression(format!(
                            "{pk_name} = :pk AND {sk_name} BETWEEN :low AND :high"
                        ))
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":low", s(low))
                        .expression_attribute_values(":high", s(high))
                        .scan_index_forward(false)
                },
                None,
                Pages::First(Some(limit)),
                "read tracking list",
                from_item,
            )
            .await?;
        Ok(page)
    }
}
