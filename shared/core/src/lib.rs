//! The core of the patient-messaging backend: what an office can do, with no
//! AWS or Lambda types, so every rule is tested in memory in milliseconds.
//!
//! - [`domain`]: the office's vocabulary and rules (messages, recipients and
//!   their lifecycle, phone numbers, text encoding, merge fields, the carrier
//!   error catalog, practice settings, quiet hours, the rate cap's math).
//! - [`ports`]: the traits the use cases need from the outside world,
//!   implemented for AWS in `messaging-adapters`.
//! - [`app`]: the use cases, generic over the ports.
//! - [`json`], [`paging`]: strict JSON input and opaque list cursors.
//! - `testing` (feature `testing`): in-memory ports for tests.

// Test code may unwrap: a panic is the failure report.
#![cfg_attr(any(test, feature = "testing"), allow(clippy::unwrap_used))]

pub mod app;
pub mod domain;
pub mod json;
pub mod paging;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
