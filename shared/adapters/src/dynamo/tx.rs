//! Transactions: the writes the slices put together (conditional puts,
//! versioned recipients, message counts, the outbox event, idempotency
//! records), running them, and reading why one was cancelled.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::items::{event_item, idempotency_item, key, s, to_item};
use super::keys::{message_sk, practice_pk, recipient_sk};
use super::{err, DynamoStore, Item};
use crate::retry::Backoff;
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events::Event;
use messaging_core::domain::message::Recipient;
use messaging_core::ports::IdempotencyRecord;

impl DynamoStore {
    /// Writes `items` in one transaction; any refusal is an error of `op`.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        op: &'static str,
    ) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(err(op))?;
        Ok(())
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The recipient `next` (as computed by the domain from `current`),
    /// stored only if nobody changed it since `current` was read.
    pub(super) fn versioned_put(
        &self,
        current: &Recipient,
        next: &Recipient,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(
                next,
                practice_pk(&next.practice_id),
                recipient_sk(&next.message_id, &next.recipient_id),
            )?))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", AttributeValue::N(current.version.to_string()))
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `SET sets` on an existing message item (its counts, status, times).
    pub(super) fn message_update(
        &self,
        practice_id: &str,
        message_id: &str,
        sets: &[String],
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), message_sk(message_id))))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::new("build update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) fn delete(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(|e| StoreError::new("build delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The idempotency record as a conditional put: taken unless an earlier
    /// record for the key exists and has not expired at `now` (TTL deletion
    /// lags). Kept with a `ttl` for DynamoDB to delete it.
    pub(super) fn idempotency_put(
        &self,
        rec: &IdempotencyRecord,
        now: &chrono::DateTime<chrono::Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (_, _, item) = idempotency_item(rec)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", s(to_api_time(now)))
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The `Put` of a new event, for the transaction of the change that
    /// causes it.
    pub(super) fn event_put(&self, event: &Event) -> Result<TransactWriteItem, StoreError> {
        self.put(event_item(event)?, Some("attribute_not_exists(pk)"))
    }
}

/// Whether a transaction was cancelled because another transaction was
/// writing one of its items at the same moment (worth repeating at once).
pub(super) fn transaction_conflict<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("TransactionConflict")),
        _ => false,
    }
}

/// Five tries, a short random pause between them (10–50 ms, doubling).
pub(super) const CONFLICT_RETRY: Backoff = Backoff {
    attempts: 5,
    first: std::time::Duration::from_millis(10),
    max: std::time::Duration::from_millis(200),
    jitter: std::time::Duration::from_millis(40),
};

impl DynamoStore {
    /// Runs a transaction, repeating it (up to five times, with a short
    /// random pause) while DynamoDB cancels it only because another
    /// transaction touched the same item — a bulk's recipients all update
    /// their message's counts, so the dispatcher and callbacks meet there.
    pub(super) async fn transact_retrying_conflicts(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
        SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    > {
        CONFLICT_RETRY
            .run(
                |_| {
                    self.client
                        .transact_write_items()
                        .set_transact_items(Some(items.clone()))
                        .send()
                },
                |e, _| transaction_conflict(e),
            )
            .await
    }
}

/// Whether a transaction was cancelled because item `index`'s condition failed.
pub(super) fn cancelled_by_condition<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
    index: usize,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .get(index)
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}
