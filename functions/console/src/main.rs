//! Lambda: the office console (`/console`), staff sign-in (`/v1/sessions`)
//! and the practice's staff accounts (`/v1/staff`).

use lambda_http::{run, service_fn, Error};
use messaging_lambda::handlers::console::AwsConsoleApi;
use messaging_lambda::http::respond;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let api = AwsConsoleApi::from_env().await?;
    run(service_fn(|req| respond(api.handle(req)))).await
}
