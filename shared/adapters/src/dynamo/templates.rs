//! Quick Messages on the one table: pk `PRACTICE#{id}`, sk `TEMPLATE#{id}`.
//!
//! Template ids are UUIDv7, so the sort key orders a practice's templates by
//! creation and a page continues after the last id it showed.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::items::{from_item, key, to_item};
use super::keys::practice_pk;
use super::paging::next_cursor;
use super::{err, DynamoStore};
use messaging_core::domain::error::StoreError;
use messaging_core::domain::template::QuickMessage;
use messaging_core::ports::TemplateStore;

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
        self.put_item(item, "store template").await
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
        let page_size = usize::try_from(limit).unwrap_or(usize::MAX);
        let after = after.map(template_sk);
        let (templates, more): (Vec<QuickMessage>, bool) = self
            .query_prefix(
                practice_id,
                TEMPLATE_PREFIX,
                page_size,
                after,
                None,
                "list templates",
            )
            .await?;
        let next = next_cursor(&templates, more, |t| Some(t.id.clone()));
        Ok((templates, next))
    }
}
