//! Adapters at the edge: translate between the domain and DynamoDB, SQS and the carrier.
//! Nothing else lives here.

pub mod aws;
pub mod bandwidth;
pub mod dynamo;
pub mod dynamo_bulk;
pub mod dynamo_conversations;
pub mod dynamo_dead_letters;
pub mod dynamo_events;
pub mod dynamo_rate;
pub mod dynamo_staff;
pub mod dynamo_templates;
pub mod http;
mod retry;
pub mod s3;
pub mod scheduler;
pub mod secrets;
pub mod sqs;
pub mod webhooks;
