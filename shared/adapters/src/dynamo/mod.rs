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
//! `conversations`; bulk messages, rate buckets, Quick Messages, events,
//! staff and parked jobs each in the file of their port.
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
//!
//! This file holds the store and what every port's file uses; `keys`,
//! `items`, `tx`, `batch` and `paging` the shared key builders, item
//! conversions, transaction writes, batch requests and paged queries. The
//! port files use these, never the reverse.

mod appointments;
mod batch;
mod bulk;
mod conversations;
mod dead_letters;
mod events;
mod items;
mod keys;
mod messages;
mod opt_outs;
mod paging;
mod practices;
mod rate;
mod staff;
mod templates;
mod tx;

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;

use items::{from_item, key};
use messaging_core::domain::error::StoreError;

pub use appointments::{APPOINTMENTS_BY_NUMBER, APPOINTMENTS_BY_START, REMINDERS_DUE};
pub use items::{encode_message_item, encode_recipient_item, EVENT_ENTITY};
pub use keys::{
    tracking_index_keys, INBOX_BY_ASSIGNEE, INBOX_BY_STATUS, INBOX_UNREAD,
    INBOX_UNREAD_BY_ASSIGNEE, TRACKING_ALL, TRACKING_BY_TYPE_STATUS,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The table adapter; implements every store port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

pub(crate) fn err<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| StoreError::new(operation, DisplayErrorContext(e))
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

    /// The `practice_id` an index item (`APIKEY#…`, `NUMBER#…`) points to.
    pub(crate) async fn practice_id_at(
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
}
