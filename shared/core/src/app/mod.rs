//! Use cases, generic over the ports so they run against DynamoDB in
//! production and in memory in unit tests.

pub mod appointments;
pub mod auth;
pub mod aws_sms;
pub mod bulk;
#[cfg(test)]
mod bulk_flow_tests;
pub mod cache;
pub mod callbacks;
pub mod conversations;
pub mod dead_letters;
pub mod dispatch;
pub mod events;
pub mod idempotency;
pub mod keys;
pub mod media;
pub mod messages;
pub mod patients;
pub mod rate_cap;
pub mod sending;
pub mod settings;
pub mod staff;
pub mod templates;
pub mod tracking;
