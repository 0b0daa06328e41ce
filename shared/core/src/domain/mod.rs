//! The office's vocabulary, free of AWS and Lambda: what a message, recipient,
//! patient and practice are, and the rules that govern them.

pub mod appointment;
pub mod aws_errors;
pub mod bulk;
pub mod carrier;
pub mod carrier_errors;
pub mod clock;
pub mod conversation;
pub mod error;
pub mod event_endpoint;
pub mod events;
pub mod job;
pub mod keywords;
pub mod limits;
pub mod merge;
pub mod message;
pub mod office_hours;
pub mod patient;
pub mod phone;
pub mod practice;
pub mod quiet_hours;
pub mod rate_limit;
pub mod secret;
pub mod staff;
pub mod template;
pub mod text;
