//! Opt-outs (STOP/START) per practice and number, with their audit trail.
//!
//! | item          | pk              | sk                               |
//! |---------------|-----------------|----------------------------------|
//! | opt-out state | `PRACTICE#{id}` | `OPTOUT#{phone}`                 |
//! | opt-out audit | `PRACTICE#{id}` | `OPTAUDIT#{phone}#{time}#{uuid}` |

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::items::{key, to_item};
use super::keys::{practice_pk, NUMBER_SK};
use super::tx::cancelled_by_condition;
use super::{err, DynamoStore, Item};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::ports::{OptOutChange, OptOutStore};

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
