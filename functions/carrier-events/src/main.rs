//! Lambda: AWS End User Messaging SMS's delivery events and inbound texts,
//! from the SNS topic's queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::carrier_events::CarrierEventsFn;
use messaging_lambda::telemetry::metered;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let handler = CarrierEventsFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(metered(handler.handle(event.payload)).await)
    }))
    .await
}
