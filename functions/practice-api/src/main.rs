//! Lambda: practice settings and patients (`/v1/settings`, `/v1/patients/{id}`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::practice_api::AwsPracticeApi;
use messaging_lambda::http::respond;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let api = AwsPracticeApi::from_env().await?;
    run(service_fn(|req| respond(api.handle(req)))).await
}
