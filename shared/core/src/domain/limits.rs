//! The platform's hard limits, stated once. Every use (the use cases, the
//! adapters, the handlers' defaults) refers to these, so a limit is read in
//! one place and cannot drift between copies.

use chrono::Duration;

/// Longest delivery delay of an SQS message (15 minutes), in seconds.
pub const SQS_MAX_DELAY_SECONDS: u32 = 900;
/// Longest visibility timeout SQS allows (12 hours).
pub const SQS_MAX_VISIBILITY_SECONDS: u32 = 43_200;

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

/// Longest name (a patient's first or last name, a Quick Message's name, an
/// assignee), in characters: keeps every page of names far below Lambda's
/// 6 MB response limit.
pub const MAX_NAME_CHARS: usize = 100;

/// Refuses a name longer than [`MAX_NAME_CHARS`] with 422 `invalid_field`
/// naming `field`.
///
/// # Errors
///
/// As above.
pub fn check_name(value: &str, field: &str) -> Result<(), super::error::AppError> {
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(super::error::AppError::invalid(
            "invalid_field",
            format!("{field} is longer than {MAX_NAME_CHARS} characters"),
        )
        .at(field.to_string()));
    }
    Ok(())
}
