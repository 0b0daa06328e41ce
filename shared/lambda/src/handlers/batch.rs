//! Partial batch answers: the records of a batch that must come back
//! (`{"batchItemFailures": [{"itemIdentifier": …}]}`), for the queue
//! consumers and the table's stream alike.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

/// The answer naming `ids` (message ids, or a stream's sequence numbers)
/// as the records to bring back; every other record of the batch is done.
pub fn batch_failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Handles the queue records one after another with `handle`, which
/// answers `true` when its record must come back; the answer names those.
pub async fn each_record<'a, F, Fut>(records: &'a [SqsMessage], mut handle: F) -> SqsBatchResponse
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut failed = Vec::new();
    for record in records {
        if handle(record).await {
            failed.push(record.message_id.clone().unwrap_or_default());
        }
    }
    batch_failures(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r
    }

    #[test]
    fn the_answer_has_the_shape_lambda_reads() {
        let answer =
            serde_json::to_value(batch_failures(["a".to_string(), "7".to_string()])).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "7"}]})
        );
        let none = serde_json::to_value(batch_failures(Vec::new())).unwrap();
        assert_eq!(none, serde_json::json!({"batchItemFailures": []}));
    }

    #[tokio::test]
    async fn only_records_to_bring_back_are_named_in_order() {
        let records = [record("a"), record("b"), record("c")];
        let answer = each_record(&records, |r| {
            let back = r.message_id.as_deref() != Some("b");
            async move { back }
        })
        .await;
        let ids: Vec<_> = answer
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["a", "c"]);
    }
}
