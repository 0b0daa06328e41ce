//! Lambda: the send-queue consumer that calls the carrier.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::dispatcher::DispatcherFn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let dispatcher = DispatcherFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(dispatcher.handle(event.payload).await)
    }))
    .await
}
