//! AWS End User Messaging SMS's reports: its configuration set publishes
//! delivery events, and its numbers' two-way channel inbound texts, to the
//! stack's SNS topic, which delivers them to a queue this function drains.
//!
//! Believed because only AWS can put them there: the topic accepts
//! publications from the SMS service of this account only, the queue
//! accepts messages from that topic only (template.yaml), and each
//! notification must name that topic. Then the same rules as Bandwidth's
//! callbacks (`app::aws_sms`, `app::callbacks`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::batch::each_record;
use super::StartError;
use crate::config::{CarrierEventsConfig, FromEnv};
use messaging_adapters::aws_sms::AwsSms;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::sqs::SqsSendQueue;
use messaging_core::app::aws_sms;
use messaging_core::app::messages::{Messages, SendNowOnly};
use messaging_core::domain::error::StoreError;
use messaging_core::ports::{
    AppointmentStore, CarrierOptOuts, ConversationStore, MessageStore, OptOutStore, PracticeStore,
    SendQueue, TemplateStore,
};

/// An SNS notification as SNS puts it on a subscribed queue (raw delivery
/// off: the envelope says which topic published it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Notification {
    #[serde(rename = "Type")]
    kind: String,
    topic_arn: String,
    message: String,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

/// Without an AWS carrier there is no opt-out list to remove from.
pub struct NoOptOutList;

#[async_trait::async_trait]
impl CarrierOptOuts for NoOptOutList {
    async fn remove_opt_out(&self, _phone: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The opt-out list of the deployment's AWS carrier, if it has one.
pub enum OptOutList {
    /// AWS End User Messaging's list.
    Aws(AwsSms),
    /// None configured.
    None(NoOptOutList),
}

#[async_trait::async_trait]
impl CarrierOptOuts for OptOutList {
    async fn remove_opt_out(&self, phone: &str) -> Result<(), StoreError> {
        match self {
            OptOutList::Aws(aws) => aws.remove_opt_out(phone).await,
            OptOutList::None(none) => none.remove_opt_out(phone).await,
        }
    }
}

/// The carrier-events function.
pub struct CarrierEventsFn<S = DynamoStore, Q = SqsSendQueue, O = OptOutList> {
    messages: Messages<S, S, Q, SendNowOnly>,
    opt_outs: O,
    topic_arn: String,
}

impl CarrierEventsFn {
    /// Reads [`CarrierEventsConfig`] from the environment; builds clients once.
    pub async fn from_env() -> Result<Self, StartError> {
        let config = CarrierEventsConfig::from_env()?;
        let aws = crate::config::aws()?;
        let opt_outs = match config.aws_sms {
            Some(c) => OptOutList::Aws(AwsSms::new(&aws, c).map_err(StartError::CarrierClient)?),
            None => OptOutList::None(NoOptOutList),
        };
        Ok(Self::with_ports(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            SqsSendQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                config.send_queue_url.as_str(),
            ),
            opt_outs,
            config.topic_arn,
        ))
    }
}

impl<S, Q, O> CarrierEventsFn<S, Q, O>
where
    S: MessageStore
        + PracticeStore
        + OptOutStore
        + TemplateStore
        + ConversationStore
        + AppointmentStore
        + Clone,
    Q: SendQueue,
    O: CarrierOptOuts,
{
    /// The handler over these ports, believing notifications of `topic_arn`.
    pub fn with_ports(store: S, queue: Q, opt_outs: O, topic_arn: String) -> Self {
        Self {
            messages: Messages {
                practices: store.clone(),
                store,
                queue,
                scheduler: SendNowOnly,
                queue_delay_max: chrono::Duration::zero(),
            },
            opt_outs,
            topic_arn,
        }
    }

    /// Handles one batch; the records that must come back are named.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        each_record(&event.records, |r| self.record(r)).await
    }

    /// `true` when the record should come back (the store or AWS was
    /// unavailable); what can never be believed or read is dropped, logged.
    async fn record(&self, record: &SqsMessage) -> bool {
        let id = record.message_id.as_deref().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let notification: Notification = match serde_json::from_str(body) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "not an SNS notification; dropped");
                return false;
            }
        };
        if notification.topic_arn != self.topic_arn || notification.kind != "Notification" {
            tracing::warn!(message_id = %id, kind = %notification.kind, "not a notification of the deployment's SMS topic; ignored");
            return false;
        }
        let event = match aws_sms::read(&notification.message, notification.timestamp) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "unreadable AWS report; dropped");
                return false;
            }
        };
        match aws_sms::apply(&self.messages, &self.opt_outs, &[event], Utc::now()).await {
            Ok(applied) => {
                tracing::info!(message_id = %id, recorded = applied.recorded, ignored = applied.ignored, "AWS report applied");
                false
            }
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "AWS report not applied; it will come back");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::testing::{sample_practice, MemoryQueue, MemoryStore};

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:patient-messaging-sms-events";

    fn record(id: &str, topic: &str, message: &serde_json::Value) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.body = Some(
            serde_json::json!({
                "Type": "Notification", "MessageId": format!("sns-{id}"), "TopicArn": topic,
                "Message": message.to_string(), "Timestamp": "2026-11-26T15:00:01.000Z",
                "SignatureVersion": "1", "Signature": "…", "SigningCertURL": "https://sns…",
            })
            .to_string(),
        );
        r
    }

    fn stop(id: &str) -> serde_json::Value {
        serde_json::json!({"originationNumber": "+14155550142", "destinationNumber": "+14155550100",
            "messageKeyword": "STOP", "messageBody": "STOP", "inboundMessageId": id})
    }

    #[tokio::test]
    async fn the_sample_event_is_read_as_a_delivery_report_and_an_inbound_text() {
        let sample: SqsEvent = serde_json::from_str(include_str!(
            "../../../../events/carrier-events/sqs-sns-reports.json"
        ))
        .unwrap();
        let topic = "arn:aws:sns:us-east-1:123456789012:patient-messaging-SmsEventTopic-EXAMPLE";
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let f = CarrierEventsFn::with_ports(
            store.clone(),
            MemoryQueue::default(),
            NoOptOutList,
            topic.into(),
        );
        assert!(f.handle(sample).await.batch_item_failures.is_empty());
        // The report is for a recipient this store does not have (ignored);
        // the patient's text starts a conversation.
        use messaging_core::domain::phone::PhoneNumber;
        let patient = PhoneNumber::parse("+14155550142").unwrap();
        let c = store
            .get_conversation("demo", &patient)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.conversation.unread_count, 1);
    }

    #[tokio::test]
    async fn only_the_deployments_topic_is_believed_and_junk_is_dropped() {
        let store = MemoryStore::default();
        store.add_practice(sample_practice("demo"), "key").await;
        let f = CarrierEventsFn::with_ports(
            store.clone(),
            MemoryQueue::default(),
            NoOptOutList,
            TOPIC.into(),
        );
        let mut event = SqsEvent::default();
        event.records = vec![
            record(
                "a",
                "arn:aws:sns:us-east-1:999999999999:elsewhere",
                &stop("in-1"),
            ),
            record("b", TOPIC, &serde_json::json!({"hello": "world"})),
        ];
        let mut junk = SqsMessage::default();
        junk.message_id = Some("c".into());
        junk.body = Some("{not json".into());
        event.records.push(junk);
        let response = f.handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(!store.is_opted_out("demo", "+14155550142").await.unwrap());

        let mut event = SqsEvent::default();
        event.records = vec![record("d", TOPIC, &stop("in-2"))];
        assert!(f.handle(event).await.batch_item_failures.is_empty());
        assert!(store.is_opted_out("demo", "+14155550142").await.unwrap());
    }
}
