//! Lambda: the send-queue consumer that calls the carrier.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::dispatcher::DispatcherFn;
use messaging_lambda::telemetry::metered;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let dispatcher = DispatcherFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(metered(dispatcher.handle(event.payload)).await)
    }))
    .await
}
