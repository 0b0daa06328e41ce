//! Bulk messages on the one table: the message item (`MSG#{id}`, with its
//! `bulk` progress map) and its recipients (`MSG#{id}#R#{00001…}`).
//!
//! Acceptance writes recipients with `BatchWriteItem` (25 per request,
//! unprocessed items retried with backoff) and then the message and the
//! idempotency record in one transaction: ~1 write request per 25
//! recipients. Until that transaction commits no message exists, nothing
//! points at the recipients and nothing sends them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, TransactWriteItem, WriteRequest};
use chrono::{DateTime, Utc};

use super::items::{encode_recipient_item, from_item, key, message_item, n, s};
use super::keys::{
    message_sk, patient_sk, practice_pk, recipient_sk, type_status_pk, TRACKING_BY_TYPE_STATUS,
};
use super::paging::{next_cursor, Pages};
use super::tx::cancelled_by_condition;
use super::{conditional, err, DynamoStore, Item};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::domain::message::{
    BulkStatus, Message, MessageType, Recipient, RecipientStatus, Transition, BULK_COMPLETES_FROM,
    BULK_OPEN_STATUSES,
};
use messaging_core::domain::patient::Patient;
use messaging_core::ports::{BulkStore, CreateOutcome, IdempotencyRecord};

impl DynamoStore {
    fn recipient_puts(recipients: &[Recipient]) -> Result<Vec<WriteRequest>, StoreError> {
        recipients
            .iter()
            .map(|r| {
                let put = PutRequest::builder()
                    .set_item(Some(encode_recipient_item(r)?))
                    .build()
                    .map_err(|e| StoreError::new("build put", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect()
    }

    fn recipient_deletes(recipients: &[Recipient]) -> Result<Vec<WriteRequest>, StoreError> {
        recipients
            .iter()
            .map(|r| {
                let del = DeleteRequest::builder()
                    .set_key(Some(key(
                        practice_pk(&r.practice_id),
                        recipient_sk(&r.message_id, &r.recipient_id),
                    )))
                    .build()
                    .map_err(|e| StoreError::new("build delete", e))?;
                Ok(WriteRequest::builder().delete_request(del).build())
            })
            .collect()
    }

    /// After a bulk recipient reached a final status: marks the bulk
    /// `completed` by the domain's rule ([`messaging_core::domain::message::bulk_completes`]: stored status
    /// `sending`, no recipient still open), as the condition of one update;
    /// refused (and ignored) otherwise.
    pub(super) async fn complete_bulk_if_done(
        &self,
        practice_id: &str,
        message_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let condition = std::iter::once("#status = :from".to_string())
            .chain(
                BULK_OPEN_STATUSES
                    .iter()
                    .map(|st| format!("counts.{} = :zero", st.as_str())),
            )
            .collect::<Vec<_>>()
            .join(" AND ");
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), message_sk(message_id))))
            .update_expression("SET #status = :done, gsi2pk = :g2pk")
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s(BulkStatus::Completed.as_str()))
            .expression_attribute_values(":from", s(BULK_COMPLETES_FROM.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(
                ":g2pk",
                s(type_status_pk(
                    practice_id,
                    MessageType::BulkMessage,
                    BulkStatus::Completed.as_str(),
                )),
            )
            .build()
            .map_err(|e| StoreError::new("build update", e))?;
        // The outbox: completion and `bulk.completed` are one write.
        let event = events::bulk_completed(practice_id, message_id, now);
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(self.event_put(&event)?)
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(message_id, "bulk completed"),
            Err(e) if cancelled_by_condition(&e, 0) => {}
            Err(e) => return Err(StoreError::new("complete bulk", DisplayErrorContext(e))),
        }
        Ok(())
    }
}

#[async_trait]
impl BulkStore for DynamoStore {
    async fn get_patients(
        &self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<Patient>, StoreError> {
        let keys: Vec<Item> = patient_ids
            .iter()
            .map(|id| key(practice_pk(practice_id), patient_sk(id)))
            .collect();
        self.batch_get(keys, "read patients")
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn create_bulk(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        self.batch_write(Self::recipient_puts(recipients)?).await?;
        let mut writes = vec![self.put(message_item(message)?, Some("attribute_not_exists(pk)"))?];
        if let Some(rec) = idempotency {
            writes.push(self.idempotency_put(rec, &message.created_at)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) => {
                let taken = idempotency.is_some() && cancelled_by_condition(&e, 1);
                // Nothing refers to the recipients written: take them back.
                self.batch_write(Self::recipient_deletes(recipients)?)
                    .await?;
                if taken {
                    Ok(CreateOutcome::IdempotencyKeyTaken)
                } else {
                    Err(StoreError::new(
                        "store bulk message",
                        DisplayErrorContext(e),
                    ))
                }
            }
        }
    }

    async fn get_message_only(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        self.get(
            practice_pk(practice_id),
            message_sk(message_id),
            "read message",
        )
        .await
    }

    async fn recipients_page(
        &self,
        practice_id: &str,
        message_id: &str,
        status: Option<RecipientStatus>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Recipient>, Option<String>), StoreError> {
        let prefix = format!("{}#R#", message_sk(message_id));
        let (page, more) = self
            .query_prefix::<Recipient>(
                practice_id,
                &prefix,
                limit as usize,
                after.map(|id| recipient_sk(message_id, id)),
                status.map(|s| s.as_str()),
                "read recipients",
            )
            .await?;
        let next = next_cursor(&page, more, |r| Some(r.recipient_id.clone()));
        Ok((page, next))
    }

    async fn advance_pump(
        &self,
        practice_id: &str,
        message_id: &str,
        pump: &str,
        released: u32,
        next_pump: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), message_sk(message_id))))
            .condition_expression("#bulk.pump = :pump AND attribute_not_exists(#bulk.canceled_at)")
            .expression_attribute_values(":pump", s(pump))
            .expression_attribute_names("#bulk", "bulk")
            .expression_attribute_values(":released", n(released));
        update = match next_pump {
            Some(next) => update
                .update_expression("SET #bulk.released = :released, #bulk.pump = :next")
                .expression_attribute_values(":next", s(next)),
            None => update.update_expression("SET #bulk.released = :released REMOVE #bulk.pump"),
        };
        conditional(update.send().await, "record pump")
    }

    async fn stop_bulk(
        &self,
        practice_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), message_sk(message_id))))
            .update_expression(
                "SET #bulk.canceled_at = if_not_exists(#bulk.canceled_at, :at) REMOVE #bulk.pump",
            )
            .condition_expression("attribute_exists(#bulk)")
            .expression_attribute_names("#bulk", "bulk")
            .expression_attribute_values(":at", s(to_api_time(&at)))
            .send()
            .await
            .map_err(err("cancel bulk"))?;
        Ok(())
    }

    async fn transition_many(
        &self,
        current: &[Recipient],
        transition: &Transition,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let Some(first) = current.first() else {
            return Ok(true);
        };
        let mut writes = Vec::with_capacity(current.len() + 1);
        let mut delta: HashMap<&'static str, i64> = HashMap::new();
        for r in current {
            let Some(next) = r.apply(transition) else {
                return Ok(false);
            };
            if events::for_transition(r, &next, now).is_some() {
                // A transaction holds at most 100 items: this is for
                // changes that cause no event (cancellations).
                return Err(StoreError::new(
                    "update recipients",
                    "a change that causes events is written one recipient at a time",
                ));
            }
            *delta.entry(r.status.as_str()).or_default() -= 1;
            *delta.entry(next.status.as_str()).or_default() += 1;
            writes.push(self.versioned_put(r, &next)?);
        }
        let mut sets = Vec::new();
        let mut names = HashMap::new();
        let mut values: Item = HashMap::new();
        for (i, (status, d)) in delta.iter().filter(|(_, d)| **d != 0).enumerate() {
            sets.push(format!("counts.#s{i} = counts.#s{i} + :d{i}"));
            names.insert(format!("#s{i}"), status.to_string());
            values.insert(format!(":d{i}"), n(d));
        }
        if !sets.is_empty() {
            writes.push(self.message_update(
                &first.practice_id,
                &first.message_id,
                &sets,
                names,
                values,
            )?);
        }
        match self.transact_retrying_conflicts(writes).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let refused = (0..current.len()).any(|i| cancelled_by_condition(&e, i));
                if refused {
                    Ok(false)
                } else {
                    Err(StoreError::new("update recipients", DisplayErrorContext(e)))
                }
            }
        }
    }

    async fn set_bulk_status(
        &self,
        practice_id: &str,
        message_id: &str,
        from: BulkStatus,
        to: BulkStatus,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), message_sk(message_id))))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(
                ":g2pk",
                s(type_status_pk(
                    practice_id,
                    MessageType::BulkMessage,
                    to.as_str(),
                )),
            );
        update = match sent_at {
            None => update
                .update_expression("SET #status = :to, gsi2pk = :g2pk")
                .condition_expression("#status = :from"),
            Some(at) => {
                // Sending begins: the tracking list sorts it by this time.
                let at_text = to_api_time(&at);
                update
                    .update_expression(
                        "SET #status = :to, gsi2pk = :g2pk, sent_at = :at, gsi1sk = :sk, gsi2sk = :sk",
                    )
                    .condition_expression("#status = :from AND attribute_not_exists(sent_at)")
                    .expression_attribute_values(":at", s(at_text.clone()))
                    .expression_attribute_values(":sk", s(format!("{at_text}#{message_id}")))
            }
        };
        conditional(update.send().await, "set bulk status")
    }

    async fn sending_bulks(&self, practice_id: &str) -> Result<Vec<Message>, StoreError> {
        let (found, _) = self
            .query_pages(
                |query| {
                    query
                        .index_name(TRACKING_BY_TYPE_STATUS)
                        .key_condition_expression("gsi2pk = :pk")
                        .expression_attribute_values(
                            ":pk",
                            s(type_status_pk(
                                practice_id,
                                MessageType::BulkMessage,
                                BulkStatus::Sending.as_str(),
                            )),
                        )
                },
                None,
                Pages::All,
                "list sending bulks",
                from_item,
            )
            .await?;
        Ok(found)
    }
}
