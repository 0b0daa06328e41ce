//! Batch reads and writes: `BatchGetItem` and `BatchWriteItem` in
//! requests of the most keys DynamoDB takes, what it leaves unprocessed
//! tried again with backoff.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};

use super::{err, DynamoStore, Item};
use crate::retry::Backoff;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::limits::{DYNAMO_BATCH_GET_KEYS, DYNAMO_BATCH_WRITE_ITEMS};

/// Batch requests: 8 tries for what DynamoDB leaves unprocessed, pausing
/// 50 ms, doubling up to 1.6 s, plus up to 25 ms at random.
const BATCH_RETRY: Backoff = Backoff {
    attempts: 8,
    first: Duration::from_millis(50),
    max: Duration::from_millis(1600),
    jitter: Duration::from_millis(25),
};

/// Why one try of a batch request did not finish.
enum BatchFailure<E> {
    /// DynamoDB left this many items (or keys) unprocessed.
    Unprocessed(usize),
    /// The request itself failed.
    Request(E),
}

impl DynamoStore {
    /// Writes (or deletes) items with `BatchWriteItem`, 25 per request,
    /// retrying what DynamoDB leaves unprocessed with backoff.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(DYNAMO_BATCH_WRITE_ITEMS) {
            BATCH_RETRY
                .run_carrying(
                    chunk.to_vec(),
                    |_, pending| async move {
                        let out = match self
                            .client
                            .batch_write_item()
                            .request_items(&self.table, pending.clone())
                            .send()
                            .await
                        {
                            Ok(out) => out,
                            Err(e) => return Err((pending, BatchFailure::Request(e))),
                        };
                        let left = out
                            .unprocessed_items
                            .and_then(|mut m| m.remove(&self.table))
                            .unwrap_or_default();
                        match left.len() {
                            0 => Ok(()),
                            n => Err((left, BatchFailure::Unprocessed(n))),
                        }
                    },
                    |failure, attempt| {
                        if let BatchFailure::Request(e) = failure {
                            tracing::warn!(error = %DisplayErrorContext(e), attempt, "batch write failed; retrying");
                        }
                        true
                    },
                )
                .await
                .map_err(|failure| match failure {
                    BatchFailure::Request(e) => {
                        StoreError::new("write recipients", DisplayErrorContext(e))
                    }
                    BatchFailure::Unprocessed(left) => StoreError::new(
                        "write recipients",
                        format!("{left} items still unprocessed"),
                    ),
                })?;
        }
        Ok(())
    }

    /// The items at `keys` that exist (in no particular order), read
    /// consistently with `BatchGetItem`, 100 keys per request, retrying what
    /// DynamoDB leaves unprocessed with backoff. `keys` must not repeat.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
        op: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(DYNAMO_BATCH_GET_KEYS) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::new("build batch get", e))?;
            let read = BATCH_RETRY
                .run_carrying(
                    (Vec::new(), request),
                    |_, (mut read, request): (Vec<Item>, KeysAndAttributes)| async move {
                        let out = match self
                            .client
                            .batch_get_item()
                            .request_items(&self.table, request.clone())
                            .send()
                            .await
                        {
                            Ok(out) => out,
                            Err(e) => {
                                let e = BatchFailure::Request(err(op)(e));
                                return Err(((read, request), e));
                            }
                        };
                        read.extend(
                            out.responses
                                .and_then(|mut r| r.remove(&self.table))
                                .unwrap_or_default(),
                        );
                        match out
                            .unprocessed_keys
                            .and_then(|mut u| u.remove(&self.table))
                            .filter(|k| !k.keys().is_empty())
                        {
                            None => Ok(read),
                            Some(left) => {
                                let n = left.keys().len();
                                Err(((read, left), BatchFailure::Unprocessed(n)))
                            }
                        }
                    },
                    // Only unprocessed keys are tried again; a failed request is final.
                    |failure, _| matches!(failure, BatchFailure::Unprocessed(_)),
                )
                .await
                .map_err(|failure| match failure {
                    BatchFailure::Request(e) => e,
                    BatchFailure::Unprocessed(_) => StoreError::new(op, "keys left unprocessed"),
                })?;
            found.extend(read);
        }
        Ok(found)
    }
}
