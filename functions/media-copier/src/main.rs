//! Lambda: the media-queue consumer that copies inbound attachments.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::media_copier::MediaCopierFn;
use messaging_lambda::telemetry::metered;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let copier = MediaCopierFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(metered(copier.handle(event.payload)).await)
    }))
    .await
}
