//! The thread of a conversation: the texts the patient sent and the office
//! sent, as stored and as Patient Chat shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::media::{MediaItem, MediaView};
use super::opt_out::opt_out_intent;
use crate::domain::job::SendJob;
use crate::domain::keywords::{self, Keyword};
use crate::domain::phone::PhoneNumber;

/// Which way a text went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the patient to the office.
    Inbound,
    /// From the office to the patient.
    Outbound,
}

/// The newest text in a conversation, as the Inbox previews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    #[allow(missing_docs)]
    pub direction: Direction,
    /// The text as sent (may be empty for a picture-only message).
    pub text: String,
    /// When it was sent or received.
    #[serde(serialize_with = "crate::domain::clock::serialize_api_time")]
    pub at: DateTime<Utc>,
}

/// What an outbound text in a conversation was, which decides whether it
/// answers the patient.
///
/// Only a person at the office writing to this one patient counts as an
/// answer: a [`Reply`](Self::Reply) typed in Patient Chat, or a
/// [`Direct`](Self::Direct) message typed to this number in Messages and
/// sent at once. Anything nobody wrote in answer to the patient —
/// bulk and scheduled sends, the after-hours reply, keyword replies — leaves
/// the patient still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// Typed by staff in the conversation.
    Reply,
    /// A one-off message to this number sent immediately from Messages.
    Direct,
    /// A message written earlier and sent at a set time (a reminder):
    /// written before the patient's latest text, so it does not answer it.
    Scheduled,
    /// One of many recipients of a bulk message.
    Bulk,
    /// The practice's after-hours reply.
    AutoReply,
    /// The automatic answer to HELP, or the confirmation of STOP / START.
    KeywordReply,
    /// An appointment reminder the product sent by a rule.
    Reminder,
    /// The acknowledgment of a patient's confirming reply.
    Acknowledgment,
}

impl OutboundKind {
    /// Whether this text answers the patient (clears "awaiting reply").
    pub fn counts_as_reply(self) -> bool {
        matches!(self, OutboundKind::Reply | OutboundKind::Direct)
    }

    /// Whether the system sent it without anyone at the office writing it
    /// (shown as `auto_reply: true` in the thread).
    pub fn is_automatic(self) -> bool {
        matches!(
            self,
            OutboundKind::AutoReply
                | OutboundKind::KeywordReply
                | OutboundKind::Reminder
                | OutboundKind::Acknowledgment
        )
    }
}

/// A text a patient sent, as stored in the conversation's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEntry {
    /// The carrier's id for the message: what makes a redelivered callback
    /// recognisable.
    pub carrier_message_id: String,
    /// The patient's number.
    pub from: PhoneNumber,
    /// The practice number it was sent to.
    pub to: PhoneNumber,
    #[allow(missing_docs)]
    pub text: String,
    /// When the carrier received it (not when the callback arrived).
    pub at: DateTime<Utc>,
    /// STOP / START / HELP when the whole text is one.
    #[serde(with = "keyword_serde")]
    pub keyword: Option<Keyword>,
    /// A sentence asking to stop texts (see [`opt_out_intent`]), kept for
    /// staff to act on.
    pub opt_out_intent: bool,
    #[allow(missing_docs)]
    pub media: Vec<MediaItem>,
    /// What the text did by itself: `confirm` when it confirmed
    /// appointments (then nobody at the office needs to read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<InboundIntent>,
}

/// What an inbound text did without anyone at the office reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundIntent {
    /// A yes to "Reply C to confirm": the appointments it answered are confirmed.
    Confirm,
}

impl InboundEntry {
    /// An inbound text, classified: `keyword` by
    /// [`keywords::classify`], `opt_out_intent` by [`opt_out_intent`].
    pub fn new(
        carrier_message_id: impl Into<String>,
        from: PhoneNumber,
        to: PhoneNumber,
        text: impl Into<String>,
        at: DateTime<Utc>,
        media: Vec<MediaItem>,
    ) -> Self {
        let text = text.into();
        InboundEntry {
            carrier_message_id: carrier_message_id.into(),
            keyword: keywords::classify(&text),
            opt_out_intent: opt_out_intent(&text),
            from,
            to,
            text,
            at,
            media,
            intent: None,
        }
    }

    /// The entry as the thread shows it. Its id is the carrier's message id.
    pub fn view(&self) -> ThreadEntry {
        ThreadEntry {
            id: self.carrier_message_id.clone(),
            direction: Direction::Inbound,
            text: self.text.clone(),
            at: self.at,
            media: self.media.iter().map(MediaItem::view).collect(),
            keyword: self.keyword,
            opt_out_intent: self.opt_out_intent,
            message_id: None,
            status: None,
            error: None,
            auto_reply: false,
            intent: self.intent,
        }
    }
}

/// One text in the Patient Chat thread, as the API shows it.
///
/// Inbound entries come from [`InboundEntry::view`]; outbound ones are
/// built from the message that was sent, with its `message_id`, its
/// delivery `status` and `error` as the Messages API shows them, and
/// `auto_reply` from [`OutboundKind::is_automatic`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadEntry {
    #[allow(missing_docs)]
    pub id: String,
    #[allow(missing_docs)]
    pub direction: Direction,
    #[allow(missing_docs)]
    pub text: String,
    #[allow(missing_docs)]
    #[serde(serialize_with = "crate::domain::clock::serialize_api_time")]
    pub at: DateTime<Utc>,
    #[allow(missing_docs)]
    pub media: Vec<MediaView>,
    /// `"opt_out"`, `"opt_in"`, `"help"` or null.
    #[serde(with = "keyword_serde")]
    pub keyword: Option<Keyword>,
    #[allow(missing_docs)]
    pub opt_out_intent: bool,
    /// The outbound message's id; null for inbound.
    pub message_id: Option<String>,
    /// The outbound message's delivery status; null for inbound.
    pub status: Option<String>,
    /// Why the outbound message failed, when it did.
    pub error: Option<serde_json::Value>,
    /// Sent automatically (after-hours or keyword reply, reminder,
    /// acknowledgment).
    pub auto_reply: bool,
    /// `"confirm"` for a reply that confirmed appointments; null otherwise.
    pub intent: Option<InboundIntent>,
}

/// A text the practice sent, as its conversation's thread records it. Its
/// delivery status is not copied here: it is read from the recipient when the
/// thread is shown, so it is always the live one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEntry {
    /// The message and recipient that carry the text.
    pub job: SendJob,
    /// The text as rendered for this number.
    pub text: String,
    /// When sending began.
    pub at: DateTime<Utc>,
    /// What kind of text it is (a reply, a bulk message, an automatic reply…).
    pub kind: OutboundKind,
}

/// One stored entry of a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "lowercase")]
pub enum ThreadItem {
    /// A text the patient sent.
    Inbound(InboundEntry),
    /// A text the practice sent.
    Outbound(OutboundEntry),
}

impl ThreadItem {
    /// When it happened: what the thread is ordered by.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ThreadItem::Inbound(e) => e.at,
            ThreadItem::Outbound(e) => e.at,
        }
    }

    /// What makes the entry unique within its thread: the carrier's message
    /// id for an inbound text (so a redelivered callback is recognised), the
    /// message and recipient for an outbound one (so a redelivered send job
    /// records it once).
    pub fn entry_id(&self) -> String {
        match self {
            ThreadItem::Inbound(e) => format!("in-{}", e.carrier_message_id),
            ThreadItem::Outbound(e) => format!("out-{}-{}", e.job.message_id, e.job.recipient_id),
        }
    }

    /// The entry's sort position within its thread: time first (fixed width,
    /// so text order is time order), then the entry id.
    pub fn position(&self) -> String {
        format!(
            "{}#{}",
            self.at()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.entry_id()
        )
    }
}

/// `Option<Keyword>` as `"opt_out"`, `"opt_in"`, `"help"` or null.
mod keyword_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::keywords::Keyword;

    fn name(k: Keyword) -> &'static str {
        match k {
            Keyword::OptOut => "opt_out",
            Keyword::OptIn => "opt_in",
            Keyword::Help => "help",
        }
    }

    pub fn serialize<S: Serializer>(k: &Option<Keyword>, s: S) -> Result<S::Ok, S::Error> {
        match k {
            Some(k) => s.serialize_str(name(*k)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Keyword>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        [Keyword::OptOut, Keyword::OptIn, Keyword::Help]
            .into_iter()
            .find(|k| name(*k) == s)
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a keyword; use opt_out, opt_in or help"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::test_support::*;
    use crate::domain::conversation::MediaStatus;

    #[test]
    fn an_inbound_thread_entry_has_the_api_shape_without_the_carrier_link() {
        let mut entry = InboundEntry::new(
            "bw-123",
            patient(),
            phone("+14155550100"),
            "STOP",
            utc("2026-12-01T15:00:00Z"),
            vec![MediaItem::new(
                "https://carrier.example/m/1",
                "image/jpeg",
                "media/p1/bw-123/0",
            )],
        );
        entry.media[0].status = MediaStatus::Ready;
        let json = serde_json::to_value(entry.view()).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "id": "bw-123",
                "direction": "inbound",
                "text": "STOP",
                "at": "2026-12-01T15:00:00.000Z",
                "media": [{"url": null, "content_type": "image/jpeg", "status": "ready", "expires_at": null}],
                "keyword": "opt_out",
                "opt_out_intent": false,
                "message_id": null,
                "status": null,
                "error": null,
                "auto_reply": false,
                "intent": null,
            })
        );
        // Stored, the carrier link is kept for the copy.
        let stored = serde_json::to_value(&entry).expect("serialise");
        assert_eq!(
            stored["media"][0]["carrier_url"],
            "https://carrier.example/m/1"
        );
        let back: InboundEntry = serde_json::from_value(stored).expect("read back");
        assert_eq!(back, entry);
    }

    #[test]
    fn inbound_entries_are_classified_on_creation() {
        let help = inbound("m1", " help ", "2026-12-01T15:00:00Z");
        assert_eq!(
            (help.keyword, help.opt_out_intent),
            (Some(Keyword::Help), false)
        );
        let start = inbound("m2", "UNSTOP", "2026-12-01T15:00:00Z");
        assert_eq!(start.keyword, Some(Keyword::OptIn));
        let intent = inbound("m3", "Stop sending me messages", "2026-12-01T15:00:00Z");
        assert_eq!((intent.keyword, intent.opt_out_intent), (None, true));
        let chat = inbound("m4", "stop by at 3?", "2026-12-01T15:00:00Z");
        assert_eq!((chat.keyword, chat.opt_out_intent), (None, false));
    }

    #[test]
    fn keyword_names_round_trip_and_unknown_ones_are_refused() {
        let entry = inbound("m1", "HELP", "2026-12-01T15:00:00Z");
        let mut stored = serde_json::to_value(&entry).expect("serialise");
        assert_eq!(stored["keyword"], "help");
        stored["keyword"] = "shout".into();
        assert!(serde_json::from_value::<InboundEntry>(stored).is_err());
    }

    #[test]
    fn outbound_kinds_say_what_they_are() {
        use OutboundKind::*;
        let replies: Vec<_> = [Reply, Direct, Scheduled, Bulk, AutoReply, KeywordReply]
            .into_iter()
            .filter(|k| k.counts_as_reply())
            .collect();
        assert_eq!(replies, [Reply, Direct]);
        assert!(AutoReply.is_automatic() && KeywordReply.is_automatic());
        assert!(!Reply.is_automatic() && !Bulk.is_automatic());
    }
}
