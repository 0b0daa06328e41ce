//! Adapters at the edge: translate between the domain and DynamoDB, SQS and the carrier.
//! Nothing else lives here.

pub mod aws;
pub mod aws_sms;
pub mod bandwidth;
pub mod carriers;
pub mod dynamo;
pub mod event_http;
pub mod http;
mod retry;
pub mod s3;
pub mod scheduler;
pub mod secrets;
pub mod sqs;
