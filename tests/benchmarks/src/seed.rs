//! Seeding the local cloud's table directly, for benchmarks that need
//! more items than the API could write in reasonable time:
//! `BatchWriteItem` in batches of 25, several in flight, unprocessed items
//! retried with backoff.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use rand::Rng;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Items per `BatchWriteItem` (DynamoDB's most).
pub const BATCH: usize = 25;

/// One `BatchWriteItem`, retrying unprocessed items (and failed calls) with
/// exponential backoff. Returns how many retries it took.
async fn write_batch(client: Client, table: String, mut requests: Vec<WriteRequest>) -> u32 {
    let mut retries = 0u32;
    loop {
        match client
            .batch_write_item()
            .request_items(&table, requests.clone())
            .send()
            .await
        {
            Ok(out) => {
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    return retries;
                }
            }
            Err(e) if retries < 10 => {
                eprintln!(
                    "  batch write failed, retrying: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
            }
            Err(e) => panic!(
                "batch write failed {retries} times: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ),
        }
        assert!(
            retries < 20,
            "items still unprocessed after {retries} retries"
        );
        let backoff = Duration::from_millis(50u64 << retries.min(6));
        let jitter = Duration::from_millis(rand::rng().random_range(0..50));
        tokio::time::sleep(backoff + jitter).await;
        retries += 1;
    }
}

/// Writes `requests` in batches of 25 with `concurrency` batches in flight,
/// printing progress under `what`.
pub async fn run_batches(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
    concurrency: usize,
    what: &str,
) -> (Duration, u32) {
    let started = Instant::now();
    let total = requests.len();
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(BATCH).map(<[_]>::to_vec).collect();
    let batches = chunks.len();
    let report_every = (batches / 10).max(1);
    let mut set = tokio::task::JoinSet::new();
    let (mut done, mut retries) = (0usize, 0u32);
    let mut finish = |r: Result<u32, tokio::task::JoinError>, done: &mut usize| {
        retries += r.expect("batch task");
        *done += 1;
        if (*done).is_multiple_of(report_every) || *done == batches {
            let items = (*done * BATCH).min(total);
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {what}: {items}/{total} items, {secs:.1} s, {:.0} items/s",
                items as f64 / secs.max(1e-9)
            );
        }
    };
    for chunk in chunks {
        while set.len() >= concurrency {
            if let Some(r) = set.join_next().await {
                finish(r, &mut done);
            }
        }
        set.spawn(write_batch(client.clone(), table.to_string(), chunk));
    }
    while let Some(r) = set.join_next().await {
        finish(r, &mut done);
    }
    (started.elapsed(), retries)
}

pub fn put_requests(items: &[Item]) -> Vec<WriteRequest> {
    items
        .iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(item.clone()))
                .build()
                .expect("put request");
            WriteRequest::builder().put_request(put).build()
        })
        .collect()
}

pub fn delete_requests(items: &[Item]) -> Vec<WriteRequest> {
    items
        .iter()
        .map(|item| {
            let key: Item = ["pk", "sk"]
                .iter()
                .map(|k| (k.to_string(), item[*k].clone()))
                .collect();
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .expect("delete request");
            WriteRequest::builder().delete_request(delete).build()
        })
        .collect()
}
