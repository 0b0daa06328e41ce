//! Jobs set aside from the send dead-letter queue, on the same table.
//!
//! | item        | pk             | sk               |
//! |-------------|----------------|------------------|
//! | parked job  | `DEADLETTERS`  | `JOB#{job tag}`  |
//!
//! One partition for the whole deployment: it only holds jobs that failed
//! ten receives, which should be none, and the repair command reads it
//! whole. The sort key is the job's tag, so parking one job twice keeps one
//! item.

use async_trait::async_trait;

use super::items::{from_item, key, s, to_item};
use super::paging::Pages;
use super::{err, DynamoStore};
use messaging_core::domain::error::StoreError;
use messaging_core::domain::message::{ParkedJob, SendJob};
use messaging_core::ports::DeadLetterStore;

const PK: &str = "DEADLETTERS";

fn sk(job: &SendJob) -> String {
    format!("JOB#{}", job.to_tag())
}

#[async_trait]
impl DeadLetterStore for DynamoStore {
    async fn park(&self, parked: &ParkedJob) -> Result<(), StoreError> {
        let mut item = to_item(parked, PK.to_string(), sk(&parked.job))?;
        item.insert("entity".into(), s("dead_letter"));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(err("park a dead-lettered job"))?;
        Ok(())
    }

    async fn parked(&self, limit: u32) -> Result<Vec<ParkedJob>, StoreError> {
        let (mut jobs, _): (Vec<ParkedJob>, _) = self
            .query_pages(
                |query| {
                    query
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(PK))
                        .consistent_read(true)
                },
                None,
                Pages::First(Some(limit)),
                "read parked jobs",
                from_item,
            )
            .await?;
        jobs.sort_by_key(|j| j.parked_at);
        Ok(jobs)
    }

    async fn unpark(&self, job: &SendJob) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(PK.to_string(), sk(job))))
            .send()
            .await
            .map_err(err("unpark a job"))?;
        Ok(())
    }
}
