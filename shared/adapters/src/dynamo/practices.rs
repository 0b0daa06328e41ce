//! Practices, their API keys, sending numbers and patients.
//!
//! | item           | pk                 | sk                    |
//! |----------------|--------------------|-----------------------|
//! | practice       | `PRACTICE#{id}`    | `#PRACTICE`           |
//! | API key        | `APIKEY#{sha256}`  | `#APIKEY`             |
//! | patient        | `PRACTICE#{id}`    | `PATIENT#{patient}`   |
//! | sending number | `NUMBER#{phone}`   | `#NUMBER`             |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::items::{from_item, key, phone_patient_item, s, to_item};
use super::keys::{
    patient_sk, phone_patient_sk, practice_pk, APIKEY_SK, NUMBER_SK, PATIENT_PREFIX, PRACTICE_SK,
};
use super::paging::next_cursor;
use super::tx::{cancelled_by_condition, transaction_conflict, CONFLICT_RETRY};
use super::{err, DynamoStore};
use messaging_core::domain::error::StoreError;
use messaging_core::domain::patient::{Patient, UndeliverableNumber};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::domain::practice::{Practice, SettingsChange};
use messaging_core::ports::PracticeStore;

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
        if practice.automatic_window.is_none() {
            // "Any time" is kept as an explicit NULL: an absent window
            // means the default one.
            item.insert("automatic_window".into(), AttributeValue::Null(true));
        }
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

    async fn update_settings(
        &self,
        practice_id: &str,
        change: &SettingsChange,
    ) -> Result<Option<Practice>, StoreError> {
        if change.is_empty() {
            return self.get_practice(practice_id).await;
        }
        let encode = |name: &str, value: Result<AttributeValue, serde_dynamo::Error>| {
            value.map_err(|e| StoreError::new("encode settings", format!("{name}: {e}")))
        };
        let mut sets = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), PRACTICE_SK.into())))
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        if let Some(help_text) = &change.help_text {
            sets.push("help_text = :help_text");
            update = update.expression_attribute_values(
                ":help_text",
                encode("help_text", serde_dynamo::to_attribute_value(help_text))?,
            );
        }
        if let Some(auto_reply) = &change.auto_reply {
            sets.push("auto_reply = :auto_reply");
            update = update.expression_attribute_values(
                ":auto_reply",
                encode("auto_reply", serde_dynamo::to_attribute_value(auto_reply))?,
            );
        }
        if let Some(links) = &change.links {
            sets.push("links = :links");
            update = update.expression_attribute_values(
                ":links",
                encode("links", serde_dynamo::to_attribute_value(links))?,
            );
        }
        if let Some(window) = &change.automatic_window {
            sets.push("automatic_window = :automatic_window");
            update = update.expression_attribute_values(
                ":automatic_window",
                encode("automatic_window", serde_dynamo::to_attribute_value(window))?,
            );
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(StoreError::new("update settings", DisplayErrorContext(e))),
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
        let next = next_cursor(&patients, more, |p| Some(p.patient_id.clone()));
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
