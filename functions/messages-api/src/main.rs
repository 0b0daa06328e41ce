//! Lambda: direct messages (`POST /v1/messages`, `GET /v1/messages/{id}`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::messages_api::AwsMessagesApi;
use messaging_lambda::http::respond;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let api = AwsMessagesApi::from_env().await?;
    run(service_fn(|req| respond(api.handle(req)))).await
}
