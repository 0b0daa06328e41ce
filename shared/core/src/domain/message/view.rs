//! A message and its recipients as the API shows them.

use serde::Serialize;

use super::{
    bulk_status, bulk_status_of, Counts, Message, MessageType, Recipient, RecipientError,
    RecipientStatus,
};
use crate::domain::clock::to_api_time;
use crate::domain::practice::Channel;
use crate::domain::text::Encoding;

/// A recipient as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    patient_id: Option<String>,
    to: String,
    status: RecipientStatus,
    not_before: Option<String>,
    carrier_message_id: Option<String>,
    sent_at: Option<String>,
    delivered_at: Option<String>,
    error: Option<RecipientError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<String>,
}

impl From<&Recipient> for RecipientView {
    fn from(r: &Recipient) -> Self {
        Self {
            patient_id: r.patient_id.clone(),
            to: r.to.to_string(),
            status: r.status,
            not_before: r.not_before.as_ref().map(to_api_time),
            carrier_message_id: r.carrier_message_id.clone(),
            sent_at: r.sent_at.as_ref().map(to_api_time),
            delivered_at: r.delivered_at.as_ref().map(to_api_time),
            error: r.error.clone(),
            skip_reason: r.skip_reason.clone(),
        }
    }
}

/// A message as the API shows it (`GET /v1/messages/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    id: String,
    #[serde(rename = "type")]
    message_type: MessageType,
    status: &'static str,
    channel: Channel,
    from: String,
    text: String,
    template_id: Option<String>,
    encoding: Encoding,
    segments: u32,
    send_at: Option<String>,
    created_at: String,
    target_count: u32,
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients: Option<Vec<RecipientView>>,
}

impl MessageView {
    /// Builds the resource from the stored message and its recipients.
    pub fn new(message: &Message, recipients: &[Recipient]) -> Self {
        let counts = Counts::of(recipients.iter().map(|r| &r.status));
        let status = match (message.message_type, recipients.first()) {
            (t, Some(r)) if t.is_single() => r.status.as_str(),
            _ => bulk_status(&counts).as_str(),
        };
        Self {
            status,
            counts,
            recipients: Some(recipients.iter().map(RecipientView::from).collect()),
            ..Self::summary(message)
        }
    }

    /// A message without its recipients: counts and status as kept on the
    /// message by every recipient transition (how bulk messages are shown).
    pub fn summary(message: &Message) -> Self {
        Self {
            id: message.id.clone(),
            message_type: message.message_type,
            status: bulk_status_of(message).as_str(),
            channel: message.channel,
            from: message.from.to_string(),
            text: message.text.clone(),
            template_id: message.template_id.clone(),
            encoding: message.encoding,
            segments: message.segments,
            send_at: message.send_at.as_ref().map(to_api_time),
            created_at: to_api_time(&message.created_at),
            target_count: message.target_count,
            counts: message.counts,
            recipients: None,
        }
    }
}
