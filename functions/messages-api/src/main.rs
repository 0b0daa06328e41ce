//! Lambda: direct messages (`POST /v1/messages`, `GET /v1/messages/{id}`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::messages_api::MessagesApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let api = MessagesApi::from_env().await?;
    run(service_fn(|req| api.handle(req))).await
}
