//! Rate buckets on the one table: pk `PRACTICE#{id}`, sk `RATE#{key}`
//! (`RATE#bulk` for the bulk cap, `RATE#number#{e164}` for a sending
//! number's throughput).
//!
//! One item per bucket holds `count` and the ring `slots` (see
//! `messaging_core::domain::rate_limit`). Reads are strongly consistent and every
//! write is a `PutItem` conditioned on `count` being the one read (or on the
//! item not existing yet), so any number of dispatcher instances share one
//! exact cap: of two writers that read the same state, one loses and re-reads.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{from_item, key, to_item};
use super::keys::practice_pk;
use super::{err, DynamoStore};
use messaging_core::domain::error::StoreError;
use messaging_core::domain::rate_limit::RateBucket;
use messaging_core::ports::RateStore;

fn rate_sk(key: &str) -> String {
    format!("RATE#{key}")
}

#[async_trait]
impl RateStore for DynamoStore {
    async fn read_bucket(
        &self,
        practice_id: &str,
        key_name: &str,
    ) -> Result<(RateBucket, Option<u64>), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), rate_sk(key_name))))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("read rate bucket"))?;
        match out.item {
            Some(item) => {
                let bucket: RateBucket = from_item(item)?;
                let count = bucket.count;
                Ok((bucket, Some(count)))
            }
            None => Ok((RateBucket::default(), None)),
        }
    }

    async fn write_bucket(
        &self,
        practice_id: &str,
        key_name: &str,
        new: &RateBucket,
        expected_count: Option<u64>,
    ) -> Result<bool, StoreError> {
        let item = to_item(new, practice_pk(practice_id), rate_sk(key_name))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        // `count` is a DynamoDB reserved word, hence the name placeholder.
        let request = match expected_count {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => request
                .condition_expression("#count = :expected")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new("write rate bucket", DisplayErrorContext(e))),
        }
    }
}
