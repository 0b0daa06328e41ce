//! Lambda: new events from the table's stream, delivery attempts from the event queue.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_lambda::handlers::event_delivery::EventDeliveryFn;
use messaging_lambda::telemetry::metered;

// Lambda gives an instance one invocation at a time: no worker threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    messaging_lambda::telemetry::init();
    let delivery = EventDeliveryFn::from_env().await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(metered(delivery.handle(event.payload)).await)
    }))
    .await
}
