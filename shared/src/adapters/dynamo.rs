//! The system of record on one DynamoDB table (`pk`, `sk`).
//!
//! | item           | pk                 | sk                    |
//! |----------------|--------------------|-----------------------|
//! | practice       | `PRACTICE#{id}`    | `#PRACTICE`           |
//! | API key        | `APIKEY#{sha256}`  | `#APIKEY`             |
//! | patient        | `PRACTICE#{id}`    | `PATIENT#{patient}`   |
//! | message        | `PRACTICE#{id}`    | `MSG#{message}`       |
//! | recipient      | `PRACTICE#{id}`    | `MSG#{message}#R#{n}` |
//! | idempotency    | `PRACTICE#{id}`    | `IDEM#{key}`          |
//!
//! A message and its recipients share a partition and a key prefix, so one
//! `Query` reads them together. Every practice-owned key starts with the
//! practice, so one practice can never address another's items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::clock::to_api_time;
use crate::domain::error::StoreError;
use crate::domain::message::{Message, Recipient, RecipientStatus, SendJob};
use crate::domain::patient::Patient;
use crate::domain::practice::Practice;
use crate::ports::{CreateOutcome, IdempotencyRecord, MessageStore, PracticeStore, Transition};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The table adapter; implements every store port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

pub(crate) fn practice_pk(practice_id: &str) -> String {
    format!("PRACTICE#{practice_id}")
}
fn message_sk(message_id: &str) -> String {
    format!("MSG#{message_id}")
}
fn recipient_sk(message_id: &str, recipient_id: &str) -> String {
    format!("MSG#{message_id}#R#{recipient_id}")
}
const PRACTICE_SK: &str = "#PRACTICE";
const APIKEY_SK: &str = "#APIKEY";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// Serialises a domain value into an item under `pk`/`sk`. Absent options are
/// left out rather than stored as NULL, so `attribute_not_exists` means "unset".
pub(crate) fn to_item<T: Serialize>(value: &T, pk: String, sk: String) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(value).map_err(|e| StoreError::new("encode item", e))?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    item.extend(key(pk, sk));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::new("decode item", e))
}

pub(crate) fn err<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| StoreError::new(operation, DisplayErrorContext(e))
}

impl DynamoStore {
    /// Wraps a client and the table name.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        op: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(err(op))?;
        out.item.map(from_item).transpose()
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(|e| StoreError::new("build delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn message_items(
        &self,
        message: &Message,
        recipients: &[Recipient],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Vec<(String, String, Item)>, StoreError> {
        let pk = practice_pk(&message.practice_id);
        let mut items = vec![(
            pk.clone(),
            message_sk(&message.id),
            to_item(message, pk.clone(), message_sk(&message.id))?,
        )];
        for r in recipients {
            let sk = recipient_sk(&r.message_id, &r.recipient_id);
            items.push((pk.clone(), sk.clone(), to_item(r, pk.clone(), sk)?));
        }
        if let Some(rec) = idempotency {
            let sk = format!("IDEM#{}", rec.key);
            let mut item = to_item(rec, pk.clone(), sk.clone())?;
            // DynamoDB's TTL deletes expired records; reads also ignore them.
            item.insert(
                "ttl".into(),
                AttributeValue::N(rec.expires_at.timestamp().to_string()),
            );
            items.push((pk.clone(), sk, item));
        }
        Ok(items)
    }
}

#[async_trait]
impl PracticeStore for DynamoStore {
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError> {
        #[derive(serde::Deserialize)]
        struct KeyItem {
            practice_id: String,
        }
        let found: Option<KeyItem> = self
            .get(
                format!("APIKEY#{key_hash}"),
                APIKEY_SK.into(),
                "look up API key",
            )
            .await?;
        match found {
            Some(k) => self.get_practice(&k.practice_id).await,
            None => Ok(None),
        }
    }

    async fn get_practice(&self, practice_id: &str) -> Result<Option<Practice>, StoreError> {
        self.get(
            practice_pk(practice_id),
            PRACTICE_SK.into(),
            "read practice",
        )
        .await
    }

    async fn put_practice(&self, practice: &Practice) -> Result<(), StoreError> {
        let pk = practice_pk(&practice.practice_id);
        let mut item = to_item(practice, pk.clone(), PRACTICE_SK.into())?;
        // Keep the current key hash: settings changes must not orphan the key.
        let existing = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, PRACTICE_SK.into())))
            .projection_expression("api_key_hash")
            .send()
            .await
            .map_err(err("read practice"))?;
        if let Some(h) = existing.item.and_then(|mut i| i.remove("api_key_hash")) {
            item.insert("api_key_hash".into(), h);
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(err("store practice"))?;
        Ok(())
    }

    async fn set_api_key(&self, practice_id: &str, key_hash: &str) -> Result<(), StoreError> {
        let pk = practice_pk(practice_id);
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), PRACTICE_SK.into())))
            .send()
            .await
            .map_err(err("read practice"))?
            .item
            .ok_or_else(|| StoreError::new("set API key", format!("no practice {practice_id}")))?;
        let old_hash = match current.get("api_key_hash") {
            Some(AttributeValue::S(h)) => Some(h.clone()),
            _ => None,
        };
        let mut writes = vec![self.put(
            HashMap::from([
                ("pk".to_string(), s(format!("APIKEY#{key_hash}"))),
                ("sk".to_string(), s(APIKEY_SK)),
                ("practice_id".to_string(), s(practice_id)),
            ]),
            Some("attribute_not_exists(pk)"),
        )?];
        let mut practice_item = current;
        practice_item.insert("api_key_hash".into(), s(key_hash));
        writes.push(self.put(practice_item, None)?);
        if let Some(old) = old_hash.filter(|h| h != key_hash) {
            writes.push(self.delete(format!("APIKEY#{old}"), APIKEY_SK.into())?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(err("store API key"))?;
        Ok(())
    }

    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError> {
        let item = to_item(
            patient,
            practice_pk(practice_id),
            format!("PATIENT#{}", patient.patient_id),
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(err("store patient"))?;
        Ok(())
    }

    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError> {
        self.get(
            practice_pk(practice_id),
            format!("PATIENT#{patient_id}"),
            "read patient",
        )
        .await
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
        let now = to_api_time(&message.created_at);
        let mut writes = Vec::new();
        let items = self.message_items(message, recipients, idempotency)?;
        let idem_index = idempotency.map(|_| items.len() - 1);
        for (i, (_, _, item)) in items.into_iter().enumerate() {
            let write = if Some(i) == idem_index {
                // Taken unless the earlier record has expired (TTL deletion lags).
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                    .expression_attribute_values(":now", s(now.clone()))
                    .build()
                    .map_err(|e| StoreError::new("build put", e))?;
                TransactWriteItem::builder().put(put).build()
            } else {
                self.put(item, Some("attribute_not_exists(pk)"))?
            };
            writes.push(write);
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
                let taken = idem_index.is_some_and(|i| {
                    e.as_service_error()
                        .and_then(|se| match se {
                            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                                c.cancellation_reasons().get(i).and_then(|r| r.code()).map(|c| c == "ConditionalCheckFailed")
                            }
                            _ => None,
                        })
                        .unwrap_or(false)
                });
                if taken {
                    Ok(CreateOutcome::IdempotencyKeyTaken)
                } else {
                    Err(StoreError::new("store message", DisplayErrorContext(e)))
                }
            }
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
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(err("remove message"))?;
        Ok(())
    }

    async fn get_message(
        &self,
        practice_id: &str,
        message_id: &str,
    ) -> Result<Option<(Message, Vec<Recipient>)>, StoreError> {
        let mut message = None;
        let mut recipients = Vec::new();
        let mut start: Option<Item> = None;
        let recipient_prefix = format!("{}#R#", message_sk(message_id));
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                .expression_attribute_values(":pk", s(practice_pk(practice_id)))
                .expression_attribute_values(":sk", s(message_sk(message_id)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(err("read message"))?;
            for item in out.items.unwrap_or_default() {
                let sk = match item.get("sk") {
                    Some(AttributeValue::S(sk)) => sk.clone(),
                    _ => continue,
                };
                if sk == message_sk(message_id) {
                    message = Some(from_item::<Message>(item)?);
                } else if sk.starts_with(&recipient_prefix) {
                    recipients.push(from_item::<Recipient>(item)?);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
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
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let rec: Option<IdempotencyRecord> = self
            .get(
                practice_pk(practice_id),
                format!("IDEM#{key}"),
                "read idempotency key",
            )
            .await?;
        Ok(rec.filter(|r| r.expires_at > chrono::Utc::now()))
    }

    async fn transition(
        &self,
        job: &SendJob,
        transition: &Transition,
    ) -> Result<Option<Recipient>, StoreError> {
        use RecipientStatus::*;
        let mut values: Item = HashMap::new();
        let mut extra_condition = String::new();
        let (next, from, update): (RecipientStatus, &[RecipientStatus], String) = match transition {
            Transition::Claim { at } => {
                values.insert(":at".into(), s(to_api_time(at)));
                values.insert(":one".into(), AttributeValue::N("1".into()));
                values.insert(":zero".into(), AttributeValue::N("0".into()));
                (
                    Sending,
                    RecipientStatus::allowed_predecessors(Sending),
                    "SET #status = :next, claimed_at = :at, attempts = if_not_exists(attempts, :zero) + :one".into(),
                )
            }
            Transition::Release { reason } => {
                values.insert(":reason".into(), s(reason.clone()));
                (
                    Queued,
                    &[Sending],
                    "SET #status = :next, last_error = :reason REMOVE claimed_at".into(),
                )
            }
            Transition::Sent {
                carrier_message_id,
                at,
            } => {
                values.insert(":cid".into(), s(carrier_message_id.clone()));
                values.insert(":at".into(), s(to_api_time(at)));
                (
                    Sent,
                    RecipientStatus::allowed_predecessors(Sent),
                    "SET #status = :next, carrier_message_id = :cid, sent_at = :at".into(),
                )
            }
            Transition::Delivered {
                carrier_message_id,
                at,
            } => {
                values.insert(":cid".into(), s(carrier_message_id.clone()));
                values.insert(":at".into(), s(to_api_time(at)));
                extra_condition =
                    " AND (attribute_not_exists(carrier_message_id) OR carrier_message_id = :cid)"
                        .into();
                (
                    Delivered,
                    RecipientStatus::allowed_predecessors(Delivered),
                    "SET #status = :next, delivered_at = :at, carrier_message_id = if_not_exists(carrier_message_id, :cid), sent_at = if_not_exists(sent_at, :at)".into(),
                )
            }
            Transition::Failed {
                carrier_message_id,
                error,
                at,
            } => {
                values.insert(
                    ":error".into(),
                    serde_dynamo::to_attribute_value(error)
                        .map_err(|e| StoreError::new("encode error", e))?,
                );
                values.insert(":at".into(), s(to_api_time(at)));
                let mut update =
                    "SET #status = :next, #error = :error, failed_at = :at".to_string();
                if let Some(cid) = carrier_message_id {
                    values.insert(":cid".into(), s(cid.clone()));
                    extra_condition = " AND (attribute_not_exists(carrier_message_id) OR carrier_message_id = :cid)".into();
                    update
                        .push_str(", carrier_message_id = if_not_exists(carrier_message_id, :cid)");
                }
                (
                    Failed,
                    RecipientStatus::allowed_predecessors(Failed),
                    update,
                )
            }
        };
        values.insert(":next".into(), s(next.as_str()));
        let placeholders: Vec<String> = from
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let name = format!(":from{i}");
                values.insert(name.clone(), s(st.as_str()));
                name
            })
            .collect();
        let condition = format!(
            "attribute_exists(pk) AND #status IN ({}){extra_condition}",
            placeholders.join(", ")
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(&job.practice_id),
                recipient_sk(&job.message_id, &job.recipient_id),
            )))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew);
        if matches!(transition, Transition::Failed { .. }) {
            request = request.expression_attribute_names("#error", "error");
        }
        match request.send().await {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(StoreError::new("update recipient", DisplayErrorContext(e))),
        }
    }
}
