//! Every adapter and end-to-end test, in one test binary: linking the AWS SDK
//! once instead of once per file keeps `make test` fast.
//!
//! Tests that need the local cloud are `#[ignore]`d so a plain `cargo test`
//! runs only the fast ones; `make test` brings the cloud up and runs them all
//! with `--include-ignored`. Each module is one area of the product.

mod adapters;
mod appointments;
mod aws_carrier;
mod bulk_messages;
mod carrier_webhook;
mod conformance;
mod contract;
mod conversations;
mod dead_letters;
mod direct_messages;
mod events;
mod media;
mod patients;
mod scheduling;
mod sessions;
mod templates;
mod tracking_and_compliance;
