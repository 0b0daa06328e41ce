//! Lambda: the send-queue consumer that calls the carrier.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::dispatcher::DispatcherFn;
use messaging_lambda::telemetry::metered;

#[tokio::main]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let dispatcher = DispatcherFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(metered(dispatcher.handle(event.payload)).await)
    }))
    .await
}
