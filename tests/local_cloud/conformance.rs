//! The port-conformance suite (`messaging_core::testing::conformance`)
//! against `DynamoStore` on the emulator: the same cases the in-memory store
//! passes in messaging-core's unit tests, one test each, every one on a
//! practice id of its own.

use cloud_tests::Endpoints;
use messaging_adapters::dynamo::DynamoStore;

/// The stack's table, and a practice id no other test uses.
async fn table() -> (DynamoStore, String) {
    let store = Endpoints::load().store().await;
    (store, format!("conf-{}", uuid::Uuid::new_v4().simple()))
}

macro_rules! dynamo_case {
    ($case:ident) => {
        #[tokio::test]
        #[ignore = "needs the local cloud: run `make test`"]
        async fn $case() {
            let (store, practice_id) = table().await;
            messaging_core::testing::conformance::$case(store, &practice_id).await;
        }
    };
}

messaging_core::conformance_cases!(dynamo_case);
