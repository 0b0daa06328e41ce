//! Events and event endpoints on the same table.
//!
//! | item             | pk                        | sk                      |
//! |------------------|---------------------------|-------------------------|
//! | event            | `PRACTICE#{id}#EVENTS`    | `EVENT#{evt_…}`         |
//! | endpoint         | `PRACTICE#{id}`           | `EVENTENDPOINT#{id}`    |
//! | endpoint count   | `PRACTICE#{id}`           | `#EVENTENDPOINTS`       |
//!
//! An event item is written by the other adapters' transactions, in the
//! same `TransactWriteItems` as the change that causes it (`event_put`),
//! with `entity = "event"`: the table's stream hands exactly those inserts
//! to the delivery function (the event-source mapping filters on it). Its
//! deliveries live in the item as a map by endpoint id, with counters
//! (`pending_count`, `failed_count`, `endpoint_count`) the list filters on.
//! Event ids sort by time, so a page of the list is one `Query` newest
//! first; DynamoDB's TTL removes events after the retention period.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::items::{from_item, key, n, s, to_item};
use super::keys::{event_sk, events_pk, practice_pk};
use super::paging::Pages;
use super::tx::cancelled_by_condition;
use super::{conditional, err, DynamoStore, Item};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::event_endpoint::{EventEndpoint, MAX_ENDPOINTS};
use messaging_core::domain::events::{
    Delivery, DeliveryJob, DeliveryState, EventDelivery, EventType, StoredEvent,
};
use messaging_core::ports::{CreateEndpoint, EventFilter, EventStore, IdempotencyRecord};

const ENDPOINT_PREFIX: &str = "EVENTENDPOINT#";
const ENDPOINT_COUNT_SK: &str = "#EVENTENDPOINTS";

fn endpoint_sk(endpoint_id: &str) -> String {
    format!("{ENDPOINT_PREFIX}{endpoint_id}")
}

fn decode_event(mut item: Item) -> Result<StoredEvent, StoreError> {
    let round = match item.get("round") {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    };
    let deliveries = match item.remove("deliveries") {
        Some(AttributeValue::M(map)) => {
            let mut list = map
                .into_values()
                .map(|v| {
                    serde_dynamo::from_attribute_value::<_, Delivery>(v)
                        .map_err(|e| StoreError::new("decode delivery", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            list.sort_by(|a, b| a.endpoint_id.cmp(&b.endpoint_id));
            Some(list)
        }
        _ => None,
    };
    Ok(StoredEvent {
        event: from_item(item)?,
        deliveries,
        round,
    })
}

impl DynamoStore {
    fn delivery_names(job: &DeliveryJob) -> HashMap<String, String> {
        HashMap::from([
            ("#ep".to_string(), job.endpoint_id.clone()),
            ("#state".to_string(), "state".to_string()),
            ("#round".to_string(), "round".to_string()),
        ])
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn create_endpoint(
        &self,
        endpoint: &EventEndpoint,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateEndpoint, StoreError> {
        let pk = practice_pk(&endpoint.practice_id);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), ENDPOINT_COUNT_SK.into())))
            .update_expression("SET endpoint_count = if_not_exists(endpoint_count, :zero) + :one")
            .condition_expression("attribute_not_exists(endpoint_count) OR endpoint_count < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_ENDPOINTS))
            .build()
            .map_err(|e| StoreError::new("build update", e))?;
        let mut writes = vec![
            TransactWriteItem::builder().update(count).build(),
            self.put(
                to_item(endpoint, pk, endpoint_sk(&endpoint.id))?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        if let Some(rec) = idempotency {
            writes.push(self.idempotency_put(rec, &endpoint.created_at)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(CreateEndpoint::Created),
            Err(e) if cancelled_by_condition(&e, 2) => Ok(CreateEndpoint::IdempotencyKeyTaken),
            Err(e) if cancelled_by_condition(&e, 0) => Ok(CreateEndpoint::LimitReached),
            Err(e) => Err(StoreError::new("create endpoint", DisplayErrorContext(e))),
        }
    }

    async fn endpoints(&self, practice_id: &str) -> Result<Vec<EventEndpoint>, StoreError> {
        let (endpoints, _) = self
            .query_pages(
                |query| {
                    query
                        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":pk", s(practice_pk(practice_id)))
                        .expression_attribute_values(":prefix", s(ENDPOINT_PREFIX))
                        .consistent_read(true)
                },
                None,
                Pages::First(None),
                "read endpoints",
                from_item,
            )
            .await?;
        Ok(endpoints)
    }

    async fn get_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<EventEndpoint>, StoreError> {
        self.get(
            practice_pk(practice_id),
            endpoint_sk(endpoint_id),
            "read endpoint",
        )
        .await
    }

    async fn replace_endpoint(&self, endpoint: &EventEndpoint) -> Result<bool, StoreError> {
        let item = to_item(
            endpoint,
            practice_pk(&endpoint.practice_id),
            endpoint_sk(&endpoint.id),
        )?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new("replace endpoint", DisplayErrorContext(e))),
        }
    }

    async fn delete_endpoint(
        &self,
        practice_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, StoreError> {
        let pk = practice_pk(practice_id);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), endpoint_sk(endpoint_id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::new("build delete", e))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, ENDPOINT_COUNT_SK.into())))
            .update_expression("SET endpoint_count = endpoint_count - :one")
            .condition_expression("endpoint_count > :zero")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(|e| StoreError::new("build update", e))?;
        match self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if cancelled_by_condition(&e, 0) => Ok(false),
            Err(e) => Err(StoreError::new("delete endpoint", DisplayErrorContext(e))),
        }
    }

    async fn get_event(
        &self,
        practice_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(events_pk(practice_id), event_sk(event_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("read event"))?;
        out.item.map(decode_event).transpose()
    }

    async fn list_events(
        &self,
        practice_id: &str,
        filter: &EventFilter,
        floor: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let pk = events_pk(practice_id);
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Item = HashMap::from([
            (":pk".to_string(), s(pk.clone())),
            (":floor".to_string(), s(event_sk(floor))),
        ]);
        if let Some(t) = filter.event_type {
            conditions.push("event_type = :type");
            values.insert(":type".into(), s(EventType::as_str(t)));
        }
        match filter.delivery {
            None => {}
            Some(EventDelivery::Pending) => {
                conditions.push("(attribute_not_exists(pending_count) OR pending_count > :zero)");
            }
            Some(EventDelivery::Delivered) => conditions.push(
                "(pending_count = :zero AND failed_count = :zero AND endpoint_count > :zero)",
            ),
            Some(EventDelivery::Failed) => {
                conditions.push("(pending_count = :zero AND failed_count > :zero)");
            }
            Some(EventDelivery::None) => conditions.push("endpoint_count = :zero"),
        }
        if filter.delivery.is_some() {
            values.insert(":zero".into(), n(0));
        }
        let (items, last) = self
            .query_pages(
                |query| {
                    query
                        .key_condition_expression("pk = :pk AND sk > :floor")
                        .set_filter_expression(
                            (!conditions.is_empty()).then(|| conditions.join(" AND ")),
                        )
                        .set_expression_attribute_values(Some(values.clone()))
                        .scan_index_forward(false)
                },
                after.map(|a| key(pk.clone(), event_sk(a))),
                Pages::First(Some(limit)),
                "list events",
                decode_event,
            )
            .await?;
        let next = last
            .as_ref()
            .and_then(|k| k.get("sk"))
            .and_then(|v| v.as_s().ok())
            .and_then(|sk| sk.strip_prefix("EVENT#"))
            .map(str::to_string);
        Ok((items, next))
    }

    async fn start_round(
        &self,
        practice_id: &str,
        event_id: &str,
        round: u32,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let map = deliveries
            .iter()
            .map(|d| {
                serde_dynamo::to_attribute_value(d)
                    .map(|v| (d.endpoint_id.clone(), v))
                    .map_err(|e| StoreError::new("encode delivery", e))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let count = deliveries.len();
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(events_pk(practice_id), event_sk(event_id))))
            .update_expression(
                "SET deliveries = :map, #round = :round, pending_count = :count, \
                 failed_count = :zero, endpoint_count = :count",
            )
            .condition_expression("attribute_exists(pk) AND #round = :previous")
            .expression_attribute_names("#round", "round")
            .expression_attribute_values(":map", AttributeValue::M(map))
            .expression_attribute_values(":round", n(round))
            .expression_attribute_values(":previous", n(round.saturating_sub(1)))
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":zero", n(0));
        conditional(update.send().await, "start delivery round")
    }

    async fn claim_attempt(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(events_pk(&job.practice_id), event_sk(&job.event_id))))
            .update_expression(
                "SET deliveries.#ep.#state = :sending, deliveries.#ep.attempts = :n, \
                 deliveries.#ep.claimed_at = :now",
            )
            .condition_expression(
                "#round = :round AND ((deliveries.#ep.#state = :pending AND deliveries.#ep.attempts = :previous) \
                 OR (deliveries.#ep.#state = :sending AND deliveries.#ep.attempts = :n \
                 AND deliveries.#ep.claimed_at < :stale))",
            )
            .set_expression_attribute_names(Some(Self::delivery_names(job)))
            .expression_attribute_values(":round", n(job.round))
            .expression_attribute_values(":sending", s(DeliveryState::Sending.as_str()))
            .expression_attribute_values(":pending", s(DeliveryState::Pending.as_str()))
            .expression_attribute_values(":n", n(job.attempt))
            .expression_attribute_values(":previous", n(job.attempt.saturating_sub(1)))
            // Fixed-width times, so text order is time order.
            .expression_attribute_values(":now", s(to_api_time(&now)))
            .expression_attribute_values(":stale", s(to_api_time(&stale_before)));
        conditional(update.send().await, "claim delivery attempt")
    }

    async fn record_attempt(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let value = serde_dynamo::to_attribute_value(delivery)
            .map_err(|e| StoreError::new("encode delivery", e))?;
        let mut set = vec!["deliveries.#ep = :d"];
        if delivery.state.is_final() {
            set.push("pending_count = pending_count - :one");
        }
        if delivery.state == DeliveryState::Failed {
            set.push("failed_count = failed_count + :one");
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(events_pk(&job.practice_id), event_sk(&job.event_id))))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(
                "#round = :round AND deliveries.#ep.#state = :sending AND deliveries.#ep.attempts = :n",
            )
            .set_expression_attribute_names(Some(Self::delivery_names(job)))
            .expression_attribute_values(":d", value)
            .expression_attribute_values(":round", n(job.round))
            .expression_attribute_values(":sending", s(DeliveryState::Sending.as_str()))
            .expression_attribute_values(":n", n(job.attempt));
        if delivery.state.is_final() {
            update = update.expression_attribute_values(":one", n(1));
        }
        conditional(update.send().await, "record delivery attempt")
    }
}
