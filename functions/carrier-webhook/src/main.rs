//! Lambda: carrier callbacks (`POST /v1/webhooks/bandwidth`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::webhook::Webhook;
use messaging_lambda::telemetry::metered;

#[tokio::main]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let webhook = Webhook::from_env().await?;
    run(service_fn(|req| metered(webhook.handle(req)))).await
}
