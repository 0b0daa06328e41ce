//! The Lambda and HTTP layer of the patient-messaging backend.
//!
//! - [`handlers`]: each function's HTTP or SQS entry: builds its
//!   dependencies once, maps requests to the use cases of `messaging-core`.
//! - [`http`]: the API's HTTP conventions (error body, the one status mapping,
//!   route keys, paging parameters).
//! - [`config`]: configuration from the environment, read once at cold start.
//! - [`session_cookie`]: the console's session cookie.
//! - [`console_assets`]: the console's files, built into the binary.
//! - [`telemetry`]: JSON logs.

// Test code may unwrap: a panic is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod console_assets;
pub mod handlers;
pub mod http;
pub mod session_cookie;
pub mod telemetry;
