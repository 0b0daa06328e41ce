//! Items as stored: domain values to and from DynamoDB attribute maps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::keys::{
    event_sk, events_pk, message_sk, phone_patient_sk, practice_pk, recipient_sk, tab_pk,
    type_status_pk,
};
use super::Item;
use messaging_core::domain::conversation::PatientRef;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events::{Event, EVENT_RETENTION};
use messaging_core::domain::message::{Message, Recipient};
use messaging_core::domain::patient::Patient;
use messaging_core::ports::{tracking_key, IdempotencyRecord};

/// The value of `entity` on event items; what the stream filter matches.
pub const EVENT_ENTITY: &str = "event";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// Serialises a domain value into an item under `pk`/`sk`. Absent options are
/// left out rather than stored as NULL, so `attribute_not_exists` means "unset".
pub(super) fn to_item<T: Serialize>(value: &T, pk: String, sk: String) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(value).map_err(|e| StoreError::new("encode item", e))?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    item.extend(key(pk, sk));
    Ok(item)
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::new("decode item", e))
}

/// A message item with its tracking-index keys.
pub(super) fn message_item(message: &Message) -> Result<Item, StoreError> {
    let pk = practice_pk(&message.practice_id);
    let mut item = to_item(message, pk.clone(), message_sk(&message.id))?;
    let sort = s(tracking_key(message));
    item.insert(
        "gsi1pk".into(),
        s(tab_pk(&message.practice_id, message.message_type.tab())),
    );
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
///
/// [`MessageStore::create_message`]: messaging_core::ports::MessageStore::create_message
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

/// The idempotency record's key and item, kept with a `ttl` for DynamoDB to
/// delete it.
pub(super) fn idempotency_item(
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

/// The link item listing a patient under their number.
pub(super) fn phone_patient_item(practice_id: &str, patient: &Patient) -> Result<Item, StoreError> {
    let link = PatientRef {
        patient_id: patient.patient_id.clone(),
        first_name: patient.first_name.clone(),
        last_name: patient.last_name.clone(),
    };
    to_item(
        &link,
        practice_pk(practice_id),
        phone_patient_sk(&patient.phone, &patient.patient_id),
    )
}

/// The item of a newly recorded event.
pub(super) fn event_item(event: &Event) -> Result<Item, StoreError> {
    let mut item = to_item(event, events_pk(&event.practice_id), event_sk(&event.id))?;
    item.insert("entity".into(), s(EVENT_ENTITY));
    item.insert("round".into(), n(0));
    let expires = event.created_at + EVENT_RETENTION + chrono::Duration::days(1);
    item.insert("ttl".into(), n(expires.timestamp()));
    Ok(item)
}
