//! The library every function of the patient-messaging backend uses.
//!
//! - [`domain`]: the office's vocabulary and rules, no AWS or Lambda types.
//! - [`ports`]: the traits the application needs from the outside world.
//! - [`app`]: use cases (send a message, dispatch a send, apply a callback).
//! - [`adapters`]: DynamoDB, SQS and the Bandwidth HTTP API.
//! - [`handlers`]: each function's HTTP or SQS entry, mapping to use cases.
//! - [`http`], [`config`], [`telemetry`]: conventions shared by all functions.

// Test code may unwrap: a panic is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod ports;
pub mod telemetry;
