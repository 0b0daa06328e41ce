//! Quick Messages on the one table: pk `PRACTICE#{id}`, sk `TEMPLATE#{id}`.
//!
//! Template ids are UUIDv7, so the sort key orders a practice's templates by
//! creation and a page continues after the last id it showed.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use crate::adapters::dynamo::{err, from_item, key, practice_pk, s, to_item, DynamoStore, Item};
use crate::domain::error::StoreError;
use crate::domain::template::QuickMessage;
use crate::ports::TemplateStore;

const TEMPLATE_PREFIX: &str = "TEMPLATE#";

fn template_sk(template_id: &str) -> String {
    format!("{TEMPLATE_PREFIX}{template_id}")
}

#[async_trait]
impl TemplateStore for DynamoStore {
    async fn put_template(
        &self,
        practice_id: &str,
        template: &QuickMessage,
    ) -> Result<(), StoreError> {
        let item = to_item(
            template,
            practice_pk(practice_id),
            template_sk(&template.id),
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(err("store template"))?;
        Ok(())
    }

    async fn get_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<Option<QuickMessage>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(practice_id),
                template_sk(template_id),
            )))
            .send()
            .await
            .map_err(err("read template"))?;
        out.item.map(from_item).transpose()
    }

    async fn delete_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(practice_id),
                template_sk(template_id),
            )))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(err("delete template"))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn list_templates(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<QuickMessage>, Option<String>), StoreError> {
        let pk = practice_pk(practice_id);
        let page_size = usize::try_from(limit).unwrap_or(usize::MAX);
        // One more than the page, so a full last page is not followed by a
        // cursor that leads to an empty one.
        let wanted = page_size.saturating_add(1);
        let mut templates: Vec<QuickMessage> = Vec::new();
        let mut start: Option<Item> = after.map(|id| key(pk.clone(), template_sk(id)));
        loop {
            let remaining = wanted - templates.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(TEMPLATE_PREFIX))
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(err("list templates"))?;
            for item in out.items.unwrap_or_default() {
                templates.push(from_item(item)?);
            }
            // DynamoDB also stops at 1 MB read; keep going until the page is full.
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && templates.len() < wanted => start = Some(k),
                _ => break,
            }
        }
        let next = if templates.len() > page_size {
            templates.truncate(page_size);
            templates.last().map(|t| t.id.clone())
        } else {
            None
        };
        Ok((templates, next))
    }
}
