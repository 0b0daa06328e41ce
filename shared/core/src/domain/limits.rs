//! The platform's hard limits, stated once. Every use (the use cases, the
//! adapters, the handlers' defaults) refers to these, so a limit is read in
//! one place and cannot drift between copies.

use chrono::Duration;

/// Longest delivery delay of an SQS message (15 minutes), in seconds.
pub const SQS_MAX_DELAY_SECONDS: u32 = 900;

/// [`SQS_MAX_DELAY_SECONDS`] as a duration.
pub const SQS_MAX_DELAY: Duration = Duration::seconds(SQS_MAX_DELAY_SECONDS as i64);

/// Most entries in one SQS `SendMessageBatch`.
pub const SQS_BATCH_ENTRIES: usize = 10;

/// Most requests in one DynamoDB `BatchWriteItem`.
pub const DYNAMO_BATCH_WRITE_ITEMS: usize = 25;

/// Most keys in one DynamoDB `BatchGetItem`.
pub const DYNAMO_BATCH_GET_KEYS: usize = 100;

/// Most items in one DynamoDB `TransactWriteItems`.
pub const DYNAMO_TRANSACTION_ITEMS: usize = 100;
