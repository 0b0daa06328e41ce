//! Hello world on the Lambda runtime: answers every event with itself.
//! Built by `init-bench` as the baseline for cold-start time, memory and size.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
