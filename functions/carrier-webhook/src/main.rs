//! Lambda: carrier callbacks (`POST /v1/webhooks/bandwidth`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::carrier_webhook::Webhook;
use messaging_lambda::http::respond;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let webhook = Webhook::from_env().await?;
    run(service_fn(|req| respond(webhook.handle(req)))).await
}
