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
//! | opt-out state  | `PRACTICE#{id}`    | `OPTOUT#{phone}`      |
//! | opt-out audit  | `PRACTICE#{id}`    | `OPTAUDIT#{phone}#{time}#{uuid}` |
//! | sending number | `NUMBER#{phone}`   | `#NUMBER`             |
//!
//! Conversations, their threads and the patient-by-phone links are in
//! [`crate::dynamo_conversations`].
//!
//! Message items also carry the keys of the two tracking indexes:
//! `TrackingAll` (`gsi1pk` = practice, `gsi1sk` = tracking time + id) and
//! `TrackingByTypeStatus` (`gsi2pk` = practice + type + status, `gsi2sk` as
//! `gsi1sk`). A page of the tracking list is one `Query` per partition read,
//! its cost proportional to the page, never to the practice's history.
//!
//! A message and its recipients share a partition and a key prefix, so one
//! `Query` reads them together. Every practice-owned key starts with the
//! practice, so one practice can never address another's items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dynamo_conversations::{phone_patient_item, phone_patient_sk};
use crate::retry::Backoff;

use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::domain::message::{Message, MessageType, Recipient, SendJob, Transition};
use messaging_core::domain::patient::{Patient, UndeliverableNumber};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::domain::practice::Practice;
use messaging_core::ports::{
    tracking_key, CreateOutcome, IdempotencyRecord, MessageStore, OptOutChange, OptOutStore,
    PracticeStore, TrackingIndex,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The table adapter; implements every store port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

pub(crate) fn patient_sk(patient_id: &str) -> String {
    format!("{PATIENT_PREFIX}{patient_id}")
}
const PATIENT_PREFIX: &str = "PATIENT#";

pub(crate) fn practice_pk(practice_id: &str) -> String {
    format!("PRACTICE#{practice_id}")
}
pub(crate) fn message_sk(message_id: &str) -> String {
    format!("MSG#{message_id}")
}
pub(crate) fn recipient_sk(message_id: &str, recipient_id: &str) -> String {
    format!("MSG#{message_id}#R#{recipient_id}")
}
const PRACTICE_SK: &str = "#PRACTICE";
const NUMBER_SK: &str = "#NUMBER";
/// Index over every message of a practice, by tracking time.
pub const TRACKING_ALL: &str = "TrackingAll";
/// Index over a practice's messages of one type and status, by tracking time.
pub const TRACKING_BY_TYPE_STATUS: &str = "TrackingByTypeStatus";

fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::DirectMessage => "direct_message",
        MessageType::BulkMessage => "bulk_message",
    }
}

pub(crate) fn type_status_pk(practice_id: &str, t: MessageType, status: &str) -> String {
    format!("PRACTICE#{practice_id}#{}#{status}", type_name(t))
}

/// A message item with its tracking-index keys.
pub(crate) fn message_item(message: &Message) -> Result<Item, StoreError> {
    let pk = practice_pk(&message.practice_id);
    let mut item = to_item(message, pk.clone(), message_sk(&message.id))?;
    let sort = s(tracking_key(message));
    item.insert("gsi1pk".into(), s(pk));
    item.insert("gsi1sk".into(), sort.clone());
    item.insert(
        "gsi2pk".into(),
        s(type_status_pk(
            &message.practice_id,
            message.message_type,
            message.status.as_str(),
        )),
    );
    item.insert("gsi2sk".into(), sort);
    Ok(item)
}

/// The item the adapter writes for `message` (tracking-index keys included).
///
/// Public only for tools that load data in bulk (the tracking benchmark in
/// `tests/src/bin/tracking_bench.rs`), so they write exactly what
/// [`MessageStore::create_message`] writes.
pub fn encode_message_item(
    message: &Message,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    message_item(message)
}

/// The item the adapter writes for a recipient; see [`encode_message_item`].
pub fn encode_recipient_item(
    recipient: &Recipient,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let pk = practice_pk(&recipient.practice_id);
    let sk = recipient_sk(&recipient.message_id, &recipient.recipient_id);
    to_item(recipient, pk, sk)
}

/// Which index, key attribute names and partition key a tracking read uses:
/// `(index, pk attribute, sk attribute, pk value)`. Public so the tracking
/// benchmark can issue the very query [`MessageStore::communications`] does.
pub fn tracking_index_keys(
    practice_id: &str,
    index: &TrackingIndex,
) -> (&'static str, &'static str, &'static str, String) {
    match index {
        TrackingIndex::All => (TRACKING_ALL, "gsi1pk", "gsi1sk", practice_pk(practice_id)),
        TrackingIndex::TypeStatus(t, status) => (
            TRACKING_BY_TYPE_STATUS,
            "gsi2pk",
            "gsi2sk",
            type_status_pk(practice_id, *t, status),
        ),
    }
}

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

    pub(crate) async fn get<T: DeserializeOwned>(
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
            .consistent_read(true)
            .send()
            .await
            .map_err(err(op))?;
        out.item.map(from_item).transpose()
    }

    /// Up to `limit` items of a practice whose sort key starts with `prefix`
    /// (and, when `only_status` is given, whose `status` is that), in
    /// sort-key order, after the sort key `after`; read consistently, past
    /// DynamoDB's 1 MB pages until it has them. Also says whether more follow.
    pub(crate) async fn query_prefix<T: DeserializeOwned>(
        &self,
        practice_id: &str,
        prefix: &str,
        limit: usize,
        after: Option<String>,
        only_status: Option<&str>,
        op: &'static str,
    ) -> Result<(Vec<T>, bool), StoreError> {
        let pk = practice_pk(practice_id);
        // One more than asked, to know whether another page follows.
        let wanted = limit.saturating_add(1);
        let mut found: Vec<T> = Vec::new();
        let mut start: Option<Item> = after.map(|sk| key(pk.clone(), sk));
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .limit(i32::try_from(wanted - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if let Some(status) = only_status {
                query = query
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status));
            }
            let out = query.send().await.map_err(err(op))?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && found.len() < wanted => start = Some(k),
                _ => break,
            }
        }
        let more = found.len() > limit;
        found.truncate(limit);
        Ok((found, more))
    }

    /// Writes one item unconditionally (create or replace).
    pub(crate) async fn put_item(&self, item: Item, op: &'static str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(err(op))?;
        Ok(())
    }

    /// Writes `items` in one transaction; any refusal is an error of `op`.
    pub(crate) async fn transact(
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

    /// The `practice_id` an index item (`APIKEY#…`, `NUMBER#…`) points to.
    async fn practice_id_at(
        &self,
        pk: String,
        sk: &str,
        op: &'static str,
    ) -> Result<Option<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Pointer {
            practice_id: String,
        }
        let found: Option<Pointer> = self.get(pk, sk.into(), op).await?;
        Ok(found.map(|p| p.practice_id))
    }

    pub(crate) fn put(
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
    pub(crate) fn versioned_put(
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
    pub(crate) fn message_update(
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

    pub(crate) fn delete(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
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
    pub(crate) fn idempotency_put(
        &self,
        rec: &IdempotencyRecord,
        now: &chrono::DateTime<chrono::Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (_, _, item) = self.idempotency_item(rec)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", s(to_api_time(now)))
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn idempotency_item(
        &self,
        rec: &IdempotencyRecord,
    ) -> Result<(String, String, Item), StoreError> {
        let pk = practice_pk(&rec.practice_id);
        let sk = format!("IDEM#{}", rec.key);
        let mut item = to_item(rec, pk.clone(), sk.clone())?;
        // DynamoDB's TTL deletes expired records; reads also ignore them.
        item.insert(
            "ttl".into(),
            AttributeValue::N(rec.expires_at.timestamp().to_string()),
        );
        Ok((pk, sk, item))
    }

    fn message_items(
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
            items.push(self.idempotency_item(rec)?);
        }
        Ok(items)
    }
}

#[async_trait]
impl PracticeStore for DynamoStore {
    async fn practice_for_key(&self, key_hash: &str) -> Result<Option<Practice>, StoreError> {
        match self
            .practice_id_at(format!("APIKEY#{key_hash}"), APIKEY_SK, "look up API key")
            .await?
        {
            Some(practice_id) => self.get_practice(&practice_id).await,
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
        let existing = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, PRACTICE_SK.into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("read practice"))?
            .item;
        let mut writes = Vec::new();
        let numbers: Vec<String> = [
            Some(&practice.channels.sms_main),
            practice.channels.sms_alt.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|n| n.to_string())
        .collect();
        // Each number write is conditioned on the number being free or
        // already this practice's: a practice never takes over another's
        // number (its STOP replies would be recorded for the wrong practice).
        let me = s(practice.practice_id.clone());
        let owned = "attribute_not_exists(pk) OR practice_id = :me";
        let mut guarded: Vec<String> = Vec::new();
        if let Some(mut old) = existing {
            // Keep the current key hash: settings changes must not orphan the key.
            if let Some(h) = old.remove("api_key_hash") {
                item.insert("api_key_hash".into(), h);
            }
            if let Ok(previous) = from_item::<Practice>(old) {
                let old_numbers = [Some(previous.channels.sms_main), previous.channels.sms_alt];
                for n in old_numbers.into_iter().flatten().map(|n| n.to_string()) {
                    if !numbers.contains(&n) {
                        let delete = Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(format!("NUMBER#{n}"), NUMBER_SK.into())))
                            .condition_expression(owned)
                            .expression_attribute_values(":me", me.clone())
                            .build()
                            .map_err(|e| StoreError::new("build delete", e))?;
                        writes.push(TransactWriteItem::builder().delete(delete).build());
                        guarded.push(n);
                    }
                }
            }
        }
        // Inbound texts (STOP, HELP) arrive addressed to a number: map it back.
        for n in &numbers {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(HashMap::from([
                    ("pk".to_string(), s(format!("NUMBER#{n}"))),
                    ("sk".to_string(), s(NUMBER_SK)),
                    ("practice_id".to_string(), me.clone()),
                ])))
                .condition_expression(owned)
                .expression_attribute_values(":me", me.clone())
                .build()
                .map_err(|e| StoreError::new("build put", e))?;
            writes.push(TransactWriteItem::builder().put(put).build());
            guarded.push(n.clone());
        }
        writes.push(self.put(item, None)?);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(n) = (0..guarded.len())
                    .find(|i| cancelled_by_condition(&e, *i))
                    .map(|i| &guarded[i])
                {
                    return Err(StoreError::new(
                        "store practice",
                        format!("the sending number {n} belongs to another practice; a practice never takes over another's number"),
                    ));
                }
                Err(StoreError::new("store practice", DisplayErrorContext(e)))
            }
        }
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
        self.transact(writes, "store API key").await?;
        Ok(())
    }

    /// The patient and its patient-by-phone link, and the removal of the
    /// link under its old number when the number changed, in one
    /// transaction conditioned on the stored number being the one read; a
    /// concurrent change of the number makes it read and try again.
    async fn put_patient(&self, practice_id: &str, patient: &Patient) -> Result<(), StoreError> {
        #[derive(serde::Deserialize)]
        struct StoredPhone {
            phone: PhoneNumber,
        }
        let pk = practice_pk(practice_id);
        let sk = patient_sk(&patient.patient_id);
        let item = to_item(patient, pk.clone(), sk.clone())?;
        let link = phone_patient_item(practice_id, patient)?;
        let final_ = |e: StoreError| (false, e);
        let result = CONFLICT_RETRY
            .run(
                |_| {
                    let (pk, sk, item, link) = (pk.clone(), sk.clone(), item.clone(), link.clone());
                    async move {
                        let stored: Option<StoredPhone> = self
                            .get(pk.clone(), sk, "read patient")
                            .await
                            .map_err(final_)?;
                        let put = Put::builder().table_name(&self.table).set_item(Some(item));
                        let put = match &stored {
                            None => put.condition_expression("attribute_not_exists(pk)"),
                            Some(old) => put
                                .condition_expression("phone = :read_phone")
                                .expression_attribute_values(":read_phone", s(old.phone.as_str())),
                        }
                        .build()
                        .map_err(|e| final_(StoreError::new("build put", e)))?;
                        let mut writes = vec![
                            TransactWriteItem::builder().put(put).build(),
                            self.put(link, None).map_err(final_)?,
                        ];
                        if let Some(old) = stored.filter(|old| old.phone != patient.phone) {
                            writes.push(
                                self.delete(pk, phone_patient_sk(&old.phone, &patient.patient_id))
                                    .map_err(final_)?,
                            );
                        }
                        self.client
                            .transact_write_items()
                            .set_transact_items(Some(writes))
                            .send()
                            .await
                            .map_err(|e| {
                                // The number changed since read (or the patient was
                                // created meanwhile): read again.
                                let again =
                                    cancelled_by_condition(&e, 0) || transaction_conflict(&e);
                                (
                                    again,
                                    StoreError::new("store patient", DisplayErrorContext(e)),
                                )
                            })
                    }
                },
                |(again, _), attempt| {
                    if *again {
                        tracing::info!(attempt, "patient changed while stored; retrying");
                    }
                    *again
                },
            )
            .await;
        result.map(|_| ()).map_err(|(_, e)| e)
    }

    async fn list_patients(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Patient>, Option<String>), StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let after = after.map(patient_sk);
        let (patients, more): (Vec<Patient>, bool) = self
            .query_prefix(
                practice_id,
                PATIENT_PREFIX,
                limit,
                after,
                None,
                "list patients",
            )
            .await?;
        let next = if more {
            patients.last().map(|p| p.patient_id.clone())
        } else {
            None
        };
        Ok((patients, next))
    }

    async fn mark_undeliverable(
        &self,
        practice_id: &str,
        patient_id: &str,
        mark: &UndeliverableNumber,
    ) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(mark)
            .map_err(|e| StoreError::new("encode mark", e))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), patient_sk(patient_id))))
            .update_expression("SET sms_undeliverable = :mark")
            .condition_expression("attribute_exists(pk) AND phone = :phone")
            .expression_attribute_values(":mark", value)
            .expression_attribute_values(":phone", s(mark.phone.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The office changed the number meanwhile (or removed the patient).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::new(
                "mark number undeliverable",
                DisplayErrorContext(e),
            )),
        }
    }

    async fn get_patient(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<Patient>, StoreError> {
        self.get(
            practice_pk(practice_id),
            patient_sk(patient_id),
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
            .set_key(Some(crate::dynamo::key(
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
        let mut start: Option<Item> = None;
        let recipient_prefix = format!("{}#R#", message_sk(message_id));
        loop {
            // The message's own item and its recipients, nothing else: a
            // prefix alone would also match every message id it begins.
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :sk AND :last")
                .expression_attribute_values(":pk", s(practice_pk(practice_id)))
                .expression_attribute_values(":sk", s(message_sk(message_id)))
                .expression_attribute_values(":last", s(format!("{recipient_prefix}~")))
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
        if next.message_type == MessageType::DirectMessage {
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
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index_name)
            .key_condition_expression(format!(
                "{pk_name} = :pk AND {sk_name} BETWEEN :low AND :high"
            ))
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(err("read tracking list"))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }
}

/// Whether a transaction was cancelled because another transaction was
/// writing one of its items at the same moment (worth repeating at once).
fn transaction_conflict<R>(
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
const CONFLICT_RETRY: Backoff = Backoff {
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
    pub(crate) async fn transact_retrying_conflicts(
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
pub(crate) fn cancelled_by_condition<R>(
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

#[async_trait]
impl OptOutStore for DynamoStore {
    async fn is_opted_out(&self, practice_id: &str, phone: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(practice_id),
                format!("OPTOUT#{phone}"),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("read opt-out"))?;
        Ok(matches!(
            out.item.as_ref().and_then(|i| i.get("opted_out")),
            Some(AttributeValue::Bool(true))
        ))
    }

    async fn record_opt_out(&self, change: &OptOutChange) -> Result<(), StoreError> {
        let pk = practice_pk(&change.practice_id);
        let state = to_item(change, pk.clone(), format!("OPTOUT#{}", change.phone))?;
        let audit_sk = format!(
            "OPTAUDIT#{}#{}#{}",
            change.phone,
            to_api_time(&change.at),
            uuid::Uuid::new_v4().simple()
        );
        let audit = to_item(change, pk, audit_sk)?;
        // A change of state carries its event (the outbox), conditioned on
        // the state actually changing; a repeated STOP only adds to the audit.
        let changes = if change.opted_out {
            "attribute_not_exists(opted_out) OR opted_out = :false"
        } else {
            "opted_out = :true"
        };
        let event = events::opt_change(
            &change.practice_id,
            &change.phone,
            change.opted_out,
            &change.source,
            change.at,
        );
        let state_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(state.clone()))
            .condition_expression(changes)
            .expression_attribute_values(
                if change.opted_out { ":false" } else { ":true" },
                AttributeValue::Bool(!change.opted_out),
            )
            .build()
            .map_err(|e| StoreError::new("build put", e))?;
        let with_event = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(state_put).build())
            .transact_items(self.put(audit.clone(), Some("attribute_not_exists(pk)"))?)
            .transact_items(self.event_put(&event)?)
            .send()
            .await;
        match with_event {
            Ok(_) => return Ok(()),
            Err(e) if cancelled_by_condition(&e, 0) => {}
            Err(e) => return Err(StoreError::new("record opt-out", DisplayErrorContext(e))),
        }
        self.transact(
            vec![
                self.put(state, None)?,
                self.put(audit, Some("attribute_not_exists(pk)"))?,
            ],
            "record opt-out",
        )
        .await?;
        Ok(())
    }

    async fn opted_out_among(
        &self,
        practice_id: &str,
        phones: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let unique: std::collections::BTreeSet<&String> = phones.iter().collect();
        let keys: Vec<Item> = unique
            .into_iter()
            .map(|phone| key(practice_pk(practice_id), format!("OPTOUT#{phone}")))
            .collect();
        Ok(self
            .batch_get(keys, "read opt-outs")
            .await?
            .into_iter()
            .filter(|item| matches!(item.get("opted_out"), Some(AttributeValue::Bool(true))))
            .filter_map(|item| match item.get("phone") {
                Some(AttributeValue::S(phone)) => Some(phone.clone()),
                _ => None,
            })
            .collect())
    }

    async fn practice_for_number(&self, number: &str) -> Result<Option<String>, StoreError> {
        self.practice_id_at(format!("NUMBER#{number}"), NUMBER_SK, "look up number")
            .await
    }
}
