//! Bulk messages on the one table: the message item (`MSG#{id}`, with its
//! `bulk` progress map) and its recipients (`MSG#{id}#R#{00001…}`).
//!
//! Acceptance writes recipients with `BatchWriteItem` (25 per request,
//! unprocessed items retried with backoff) and then the message and the
//! idempotency record in one transaction: ~1 write request per 25
//! recipients. Until that transaction commits no message exists, nothing
//! points at the recipients and nothing sends them.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};

use crate::dynamo::{
    cancelled_by_condition, encode_recipient_item, err, from_item, key, message_item, message_sk,
    patient_sk, practice_pk, recipient_sk, s, type_status_pk, DynamoStore, Item,
    TRACKING_BY_TYPE_STATUS,
};
use crate::retry::Backoff;
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::domain::limits::{DYNAMO_BATCH_GET_KEYS, DYNAMO_BATCH_WRITE_ITEMS};
use messaging_core::domain::message::{
    BulkStatus, Message, MessageType, Recipient, RecipientStatus, Transition, BULK_COMPLETES_FROM,
    BULK_OPEN_STATUSES,
};
use messaging_core::domain::patient::Patient;
use messaging_core::ports::{BulkStore, CreateOutcome, IdempotencyRecord};

/// Batch requests: 8 tries for what DynamoDB leaves unprocessed, pausing
/// 50 ms, doubling up to 1.6 s, plus up to 25 ms at random.
const BATCH_RETRY: Backoff = Backoff {
    attempts: 8,
    first: Duration::from_millis(50),
    max: Duration::from_millis(1600),
    jitter: Duration::from_millis(25),
};

/// Why one try of a batch request did not finish.
enum BatchFailure<E> {
    /// DynamoDB left this many items (or keys) unprocessed.
    Unprocessed(usize),
    /// The request itself failed.
    Request(E),
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `Ok(true)` when a conditional update went through, `Ok(false)` when its
/// condition did not hold, else the error.
pub(crate) fn conditional<T>(
    result: Result<T, SdkError<UpdateItemError, HttpResponse>>,
    op: &'static str,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::new(op, DisplayErrorContext(e))),
    }
}

impl DynamoStore {
    /// Writes (or deletes) items with `BatchWriteItem`, 25 per request,
    /// retrying what DynamoDB leaves unprocessed with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(DYNAMO_BATCH_WRITE_ITEMS) {
            BATCH_RETRY
                .run_carrying(
                    chunk.to_vec(),
                    |_, pending| async move {
                        let out = match self
                            .client
                            .batch_write_item()
                            .request_items(&self.table, pending.clone())
                            .send()
                            .await
                        {
                            Ok(out) => out,
                            Err(e) => return Err((pending, BatchFailure::Request(e))),
                        };
                        let left = out
                            .unprocessed_items
                            .and_then(|mut m| m.remove(&self.table))
                            .unwrap_or_default();
                        match left.len() {
                            0 => Ok(()),
                            n => Err((left, BatchFailure::Unprocessed(n))),
                        }
                    },
                    |failure, attempt| {
                        if let BatchFailure::Request(e) = failure {
                            tracing::warn!(error = %DisplayErrorContext(e), attempt, "batch write failed; retrying");
                        }
                        true
                    },
                )
                .await
                .map_err(|failure| match failure {
                    BatchFailure::Request(e) => {
                        StoreError::new("write recipients", DisplayErrorContext(e))
                    }
                    BatchFailure::Unprocessed(left) => StoreError::new(
                        "write recipients",
                        format!("{left} items still unprocessed"),
                    ),
                })?;
        }
        Ok(())
    }

    /// The items at `keys` that exist (in no particular order), read
    /// consistently with `BatchGetItem`, 100 keys per request, retrying what
    /// DynamoDB leaves unprocessed with backoff. `keys` must not repeat.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        op: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(DYNAMO_BATCH_GET_KEYS) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::new("build batch get", e))?;
            let read = BATCH_RETRY
                .run_carrying(
                    (Vec::new(), request),
                    |_, (mut read, request): (Vec<Item>, KeysAndAttributes)| async move {
                        let out = match self
                            .client
                            .batch_get_item()
                            .request_items(&self.table, request.clone())
                            .send()
                            .await
                        {
                            Ok(out) => out,
                            Err(e) => {
                                let e = BatchFailure::Request(err(op)(e));
                                return Err(((read, request), e));
                            }
                        };
                        read.extend(
                            out.responses
                                .and_then(|mut r| r.remove(&self.table))
                                .unwrap_or_default(),
                        );
                        match out
                            .unprocessed_keys
                            .and_then(|mut u| u.remove(&self.table))
                            .filter(|k| !k.keys().is_empty())
                        {
                            None => Ok(read),
                            Some(left) => {
                                let n = left.keys().len();
                                Err(((read, left), BatchFailure::Unprocessed(n)))
                            }
                        }
                    },
                    // Only unprocessed keys are tried again; a failed request is final.
                    |failure, _| matches!(failure, BatchFailure::Unprocessed(_)),
                )
                .await
                .map_err(|failure| match failure {
                    BatchFailure::Request(e) => e,
                    BatchFailure::Unprocessed(_) => StoreError::new(op, "keys left unprocessed"),
                })?;
            found.extend(read);
        }
        Ok(found)
    }

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
    pub(crate) async fn complete_bulk_if_done(
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
        let next = if more {
            page.last().map(|r| r.recipient_id.clone())
        } else {
            None
        };
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
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
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
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(err("list sending bulks"))?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }
}
