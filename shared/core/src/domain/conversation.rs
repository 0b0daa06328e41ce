//! Two-way texting: one conversation per (practice, patient phone number),
//! the thread of texts in it, and the rules the Inbox and Patient Chat show:
//! unread counts, whether a patient is waiting for an answer, and when the
//! after-hours reply goes out.
//!
//! Everything here is pure. The store reads a [`Conversation`], applies one
//! of its methods and writes it back only if [`Conversation::version`] is
//! unchanged (storing `version + 1`), retrying on conflict. Carrier callbacks
//! arrive at least once and in any order, so every rule orders events by
//! their own time (`at`), never by when they were recorded; and the thread
//! entry for a carrier message id is written in the same transaction as the
//! conversation, so a redelivered callback is recognised and not counted
//! twice.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::keywords::{self, Keyword};
use super::office_hours::AutoReply;
use super::phone::PhoneNumber;

/// The after-hours reply goes to one conversation at most once in this many
/// hours, so a patient who texts five times in an evening gets it once.
pub const AUTO_REPLY_MIN_GAP_HOURS: i64 = 12;

/// HELP is answered at most once per number in this many hours.
pub const HELP_REPLY_MIN_GAP_HOURS: i64 = 24;

/// Longest assignee (a staff member's id or name) accepted.
pub const MAX_ASSIGNEE_LEN: usize = super::limits::MAX_NAME_CHARS;

/// A conversation's id: `c` followed by the E.164 digits of the patient's
/// number (`c14155550142` for `+14155550142`).
///
/// Derived from the number, so the callback for an inbound text finds its
/// conversation without a lookup, and two callbacks racing to create it
/// create the same one. Safe in a URL path and a DynamoDB key as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConversationId {
    id: String,
    phone: PhoneNumber,
}

impl ConversationId {
    /// The conversation with the patient at `phone`.
    pub fn from_phone(phone: &PhoneNumber) -> Self {
        let digits = phone.as_str().trim_start_matches('+');
        ConversationId {
            id: format!("c{digits}"),
            phone: phone.clone(),
        }
    }

    /// Reads an id from a URL path or a stored item. Only the exact shape
    /// [`ConversationId::from_phone`] produces is accepted (lower-case `c`,
    /// `1`, ten digits of a textable US number), so a mistyped or forged id
    /// is refused before it reaches the store.
    ///
    /// # Errors
    ///
    /// 404 `conversation_not_found`: an id of the wrong shape names no
    /// conversation, exactly as a well-formed unknown one does.
    pub fn parse(id: &str) -> Result<Self, AppError> {
        let not_found =
            || AppError::not_found("conversation_not_found", format!("no conversation {id}"));
        let digits = id.strip_prefix('c').ok_or_else(not_found)?;
        if digits.len() != 11
            || !digits.starts_with('1')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(not_found());
        }
        let phone = PhoneNumber::parse(&format!("+{digits}")).map_err(|_| not_found())?;
        Ok(Self::from_phone(&phone))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The patient's number this conversation is with.
    pub fn phone(&self) -> &PhoneNumber {
        &self.phone
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl TryFrom<String> for ConversationId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|e| e.message)
    }
}

impl From<ConversationId> for String {
    fn from(value: ConversationId) -> Self {
        value.id
    }
}

/// Whether a conversation shows in the Inbox's open list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    /// Needs or may need attention; new inbound texts always land here.
    #[default]
    Open,
    /// Dealt with; reopens by itself when the patient texts again.
    Closed,
}

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
    #[serde(serialize_with = "super::clock::serialize_api_time")]
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
}

impl OutboundKind {
    /// Whether this text answers the patient (clears "awaiting reply").
    pub fn counts_as_reply(self) -> bool {
        matches!(self, OutboundKind::Reply | OutboundKind::Direct)
    }

    /// Whether the system sent it without anyone at the office writing it
    /// (shown as `auto_reply: true` in the thread).
    pub fn is_automatic(self) -> bool {
        matches!(self, OutboundKind::AutoReply | OutboundKind::KeywordReply)
    }
}

/// Where a picture or file a patient sent stands: the carrier's link
/// expires, so it is copied into the practice's own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Being copied from the carrier.
    Copying,
    /// Copied; readable at its storage key.
    Ready,
    /// Could not be copied (link expired, too large, carrier error).
    Failed,
}

/// A picture or file attached to an inbound text, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaItem {
    /// The carrier's link; needs the carrier's credentials and expires, so
    /// it is kept for the copy and never shown (see [`MediaItem::view`]).
    pub carrier_url: String,
    /// MIME type the carrier reported (`image/jpeg`).
    pub content_type: String,
    #[allow(missing_docs)]
    pub status: MediaStatus,
    /// Where the copy lives (or will) in the practice's storage; chosen on
    /// receipt so a retried copy writes the same object.
    pub storage_key: String,
}

/// A [`MediaItem`] as the API shows it: without the carrier's link, and
/// with a time-limited link to the copy once it is ready
/// (`{"url", "content_type", "status", "expires_at"}`).
///
/// [`MediaItem::view`] leaves `url` and `expires_at` null; the function
/// serving the thread fills them in for ready items
/// (`app::media::link_media`) with links that are fresh on every read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaView {
    /// A link to the copy, null until it is ready.
    pub url: Option<String>,
    #[allow(missing_docs)]
    pub content_type: String,
    #[allow(missing_docs)]
    pub status: MediaStatus,
    /// When `url` stops working; null with it.
    pub expires_at: Option<DateTime<Utc>>,
    /// Where the copy lives; never shown (the link is).
    #[serde(skip)]
    pub storage_key: String,
}

impl MediaItem {
    /// An attachment just received, to be copied to `storage_key`.
    pub fn new(
        carrier_url: impl Into<String>,
        content_type: impl Into<String>,
        storage_key: impl Into<String>,
    ) -> Self {
        MediaItem {
            carrier_url: carrier_url.into(),
            content_type: content_type.into(),
            status: MediaStatus::Copying,
            storage_key: storage_key.into(),
        }
    }

    /// What the API may show of it.
    pub fn view(&self) -> MediaView {
        MediaView {
            url: None,
            content_type: self.content_type.clone(),
            status: self.status,
            expires_at: None,
            storage_key: self.storage_key.clone(),
        }
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
    #[serde(serialize_with = "super::clock::serialize_api_time")]
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
    /// Sent automatically (after-hours or keyword reply).
    pub auto_reply: bool,
}

/// A conversation as stored. `patients` and `sms_opted_out` are not stored
/// here: they belong to the patients and the opt-out list and are joined in
/// when the conversation is shown ([`Conversation::view`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    #[allow(missing_docs)]
    pub id: ConversationId,
    /// The patient's number.
    pub phone: PhoneNumber,
    #[allow(missing_docs)]
    pub status: ConversationStatus,
    /// Inbound texts since staff last read the conversation.
    pub unread_count: u32,
    /// The staff member handling it, if any.
    pub assignee: Option<String>,
    /// Time of the newest text (or when the conversation was created, before
    /// any); what the Inbox sorts by.
    pub last_activity_at: DateTime<Utc>,
    /// The newest text by time, whatever order texts were recorded in.
    pub last_message: Option<LastMessage>,
    /// Time of the newest inbound text that is not a keyword.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Time of the newest outbound text that counts as a reply
    /// ([`OutboundKind::counts_as_reply`]).
    pub last_reply_at: Option<DateTime<Utc>>,
    /// When the after-hours reply last went out.
    pub last_auto_reply_at: Option<DateTime<Utc>>,
    /// When the answer to HELP last went out (carriers expect it at most
    /// once a day per number).
    #[serde(default)]
    pub last_help_reply_at: Option<DateTime<Utc>>,
    /// Optimistic concurrency: the store writes only over the version it
    /// read, and stores `version + 1`. The methods here never change it.
    pub version: u64,
}

/// A conversation as the Inbox lists it, with the patients sharing the
/// number and their opt-out state joined in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationView<P> {
    #[allow(missing_docs)]
    pub id: ConversationId,
    #[allow(missing_docs)]
    pub phone: PhoneNumber,
    /// Every patient with this number (a family may share one).
    pub patients: Vec<P>,
    #[allow(missing_docs)]
    pub status: ConversationStatus,
    #[allow(missing_docs)]
    pub unread_count: u32,
    /// See [`Conversation::awaiting_reply`].
    pub awaiting_reply: bool,
    #[allow(missing_docs)]
    pub assignee: Option<String>,
    /// Whether the number has opted out of texts.
    pub sms_opted_out: bool,
    #[allow(missing_docs)]
    #[serde(serialize_with = "super::clock::serialize_api_time")]
    pub last_activity_at: DateTime<Utc>,
    #[allow(missing_docs)]
    pub last_message: Option<LastMessage>,
}

/// The later of `current` and `at`: keeps the newest time whatever order
/// events are recorded in.
fn latest(current: Option<DateTime<Utc>>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(current.map_or(at, |c| c.max(at)))
}

impl Conversation {
    /// A new, empty, open conversation with the patient at `phone`.
    pub fn new(phone: PhoneNumber, now: DateTime<Utc>) -> Self {
        Conversation {
            id: ConversationId::from_phone(&phone),
            phone,
            status: ConversationStatus::Open,
            unread_count: 0,
            assignee: None,
            last_activity_at: now,
            last_message: None,
            last_inbound_at: None,
            last_reply_at: None,
            last_auto_reply_at: None,
            last_help_reply_at: None,
            version: 0,
        }
    }

    /// Records a text from the patient: it is unread, it reopens a closed
    /// conversation, and — unless it is a keyword — the patient now awaits a
    /// reply. Keywords (STOP, HELP...) count as unread too, so staff see
    /// them. A text that arrives after newer ones counts the same but does
    /// not replace the newer last message.
    ///
    /// Call once per carrier message id (see the module notes).
    pub fn record_inbound(&mut self, entry: &InboundEntry) {
        self.unread_count = self.unread_count.saturating_add(1);
        self.status = ConversationStatus::Open;
        if entry.keyword.is_none() {
            self.last_inbound_at = latest(self.last_inbound_at, entry.at);
        }
        self.take_if_newest(Direction::Inbound, &entry.text, entry.at);
    }

    /// Records a text the office sent at `at`. It becomes the last message
    /// if it is the newest; what else it changes depends on `kind`: a reply
    /// ([`OutboundKind::counts_as_reply`]) answers the patient, and the
    /// after-hours reply starts its 12-hour quiet period. Sending does not
    /// mark the conversation read or change its status.
    pub fn record_outbound(&mut self, at: DateTime<Utc>, text: &str, kind: OutboundKind) {
        if kind.counts_as_reply() {
            self.last_reply_at = latest(self.last_reply_at, at);
        }
        if kind == OutboundKind::AutoReply {
            self.last_auto_reply_at = latest(self.last_auto_reply_at, at);
        }
        self.take_if_newest(Direction::Outbound, text, at);
    }

    /// Ties go to the text recorded later: with a one-second carrier clock,
    /// the later callback is the better guess.
    fn take_if_newest(&mut self, direction: Direction, text: &str, at: DateTime<Utc>) {
        if self.last_message.as_ref().is_none_or(|last| at >= last.at) {
            self.last_message = Some(LastMessage {
                direction,
                text: text.to_string(),
                at,
            });
            self.last_activity_at = at;
        }
    }

    /// Whether a HELP texted at `now` gets the practice's answer: not when
    /// one went out in the last [`HELP_REPLY_MIN_GAP_HOURS`].
    pub fn should_answer_help(&self, now: DateTime<Utc>) -> bool {
        self.last_help_reply_at
            .is_none_or(|last| now - last >= Duration::hours(HELP_REPLY_MIN_GAP_HOURS))
    }

    /// Staff have read everything so far.
    pub fn mark_read(&mut self) {
        self.unread_count = 0;
    }

    /// Staff want it flagged as unread: at least one unread, keeping a
    /// higher count as it is.
    pub fn mark_unread(&mut self) {
        self.unread_count = self.unread_count.max(1);
    }

    /// Opens or closes the conversation. Closing keeps the unread count; the
    /// next inbound text reopens it.
    pub fn set_status(&mut self, status: ConversationStatus) {
        self.status = status;
    }

    /// Assigns the conversation to a staff member (`None` unassigns). The
    /// name is trimmed.
    ///
    /// # Errors
    ///
    /// `invalid_field` naming `assignee` when it is blank or longer than
    /// [`MAX_ASSIGNEE_LEN`] characters; use `None` to unassign.
    pub fn set_assignee(&mut self, assignee: Option<&str>) -> Result<(), AppError> {
        let assignee = match assignee.map(str::trim) {
            None => None,
            Some(a) if !a.is_empty() && a.chars().count() <= MAX_ASSIGNEE_LEN => {
                Some(a.to_string())
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    format!(
                        "assignee must be 1 to {MAX_ASSIGNEE_LEN} characters, or null to unassign"
                    ),
                )
                .at("assignee"))
            }
        };
        self.assignee = assignee;
        Ok(())
    }

    /// Whether the patient is waiting for an answer: their newest text that
    /// is not a keyword has had no reply from the office at or after it.
    /// After-hours, HELP and bulk texts are not replies
    /// ([`OutboundKind::counts_as_reply`]).
    pub fn awaiting_reply(&self) -> bool {
        match (self.last_inbound_at, self.last_reply_at) {
            (Some(inbound), Some(reply)) => reply < inbound,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Whether an inbound text arriving `now` gets the after-hours reply:
    /// the practice has it enabled, the text is not a keyword, the number has
    /// not opted out, the office is closed at `now` in `tz`, and this
    /// conversation has not had the reply in the last
    /// [`AUTO_REPLY_MIN_GAP_HOURS`] hours.
    ///
    /// Send only after storing the conversation with the reply recorded
    /// ([`Conversation::record_outbound`] with [`OutboundKind::AutoReply`]):
    /// the version check then lets one of two racing texts send it.
    pub fn should_auto_reply(
        &self,
        now: DateTime<Utc>,
        auto_reply: &AutoReply,
        tz: Tz,
        keyword: Option<Keyword>,
        opted_out: bool,
    ) -> bool {
        if !auto_reply.enabled || keyword.is_some() || opted_out {
            return false;
        }
        if auto_reply.office_hours.is_open(now, tz) {
            return false;
        }
        // A last reply in the future (clock skew between functions) also
        // counts as recent.
        self.last_auto_reply_at
            .is_none_or(|last| now - last >= Duration::hours(AUTO_REPLY_MIN_GAP_HOURS))
    }

    /// The conversation as the Inbox shows it, with the patients who share
    /// the number and whether it has opted out.
    pub fn view<P>(&self, patients: Vec<P>, sms_opted_out: bool) -> ConversationView<P> {
        ConversationView {
            id: self.id.clone(),
            phone: self.phone.clone(),
            patients,
            status: self.status,
            unread_count: self.unread_count,
            awaiting_reply: self.awaiting_reply(),
            assignee: self.assignee.clone(),
            sms_opted_out,
            last_activity_at: self.last_activity_at,
            last_message: self.last_message.clone(),
        }
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

// ---------------------------------------------------------------------------
// Opt-out intent
// ---------------------------------------------------------------------------

/// Whether a text that is not itself a keyword asks the office to stop
/// texting ("please stop texting me", "take me off your list").
///
/// Carriers act only on exact keywords; a sentence is flagged for staff
/// instead, who decide. The detector is a handful of rules over the words of
/// each clause (see [`opt_out_rule`]), tuned to not flag the everyday uses of
/// "stop" in a dental office: "can I stop by", "won't stop hurting",
/// "the bleeding stopped", "bus stop". An exact keyword returns `false`: it
/// is handled as a keyword, not an intent.
pub fn opt_out_intent(text: &str) -> bool {
    keywords::classify(text).is_none() && opt_out_rule(text).is_some()
}

/// Verbs that end something: "stop texting", "cancel these texts".
const STOP_VERBS: &[&str] = &[
    "stop",
    "quit",
    "cease",
    "end",
    "cancel",
    "discontinue",
    "halt",
];
/// What a patient asks to stop receiving.
const MESSAGES: &[&str] = &[
    "text",
    "texts",
    "texting",
    "txt",
    "txts",
    "txting",
    "message",
    "messages",
    "messaging",
    "msg",
    "msgs",
    "sms",
    "reminder",
    "reminders",
    "notification",
    "notifications",
    "alert",
    "alerts",
    "contacting",
];
/// Words that may sit between a verb and what it stops: "stop sending me
/// all these texts".
const FILLERS: &[&str] = &[
    "me",
    "all",
    "the",
    "these",
    "those",
    "this",
    "that",
    "your",
    "ur",
    "any",
    "my",
    "them",
    "future",
    "further",
    "automated",
    "more",
    "of",
    "u",
    "sending",
    "getting",
    "receiving",
];
/// "stop sending" needs nothing after it to be a request.
const SENDING: &[&str] = &["sending", "getting", "receiving"];
/// Words that turn a request around: "don't stop", "why did you stop".
const NEGATORS: &[&str] = &["dont", "not", "never", "didnt", "did", "doesnt"];
/// A clause made only of these words and a stop word is a bare "STOP!".
const BARE_STOP_WORDS: &[&str] = &["stop", "stopall", "quit", "unsubscribe"];
const BARE_EXTRAS: &[&str] = &[
    "please", "pls", "plz", "now", "it", "all", "thanks", "thank", "you", "ok", "okay",
];
/// Where a patient asks to be removed from: "take me off your list".
const LISTS: &[&str] = &[
    "list",
    "lists",
    "text",
    "texts",
    "texting",
    "messages",
    "messaging",
    "sms",
    "system",
    "contacts",
    "database",
    "number",
];
/// Lists a patient may rightly ask to leave that are not texting.
const OTHER_LISTS: &[&str] = &[
    "wait",
    "waitlist",
    "waiting",
    "cancellation",
    "cancellations",
    "appointment",
    "appointments",
    "schedule",
    "calendar",
    "recall",
];

/// Which rule flags `text` as asking to stop texts, if any: one of
/// `"bare stop"`, `"stop + messages"`, `"don't + text me"`,
/// `"don't want + messages"`, `"no more + messages"`, `"unsubscribe / opt
/// out"`, `"remove me"`, `"leave me alone"`. For tests and for explaining
/// a flag to staff.
pub fn opt_out_rule(text: &str) -> Option<&'static str> {
    clauses(text).iter().find_map(|words| clause_rule(words))
}

/// Lower-cased words, split into clauses at punctuation so a negation in one
/// clause ("I don't know who this is.") does not reach into the next.
/// Apostrophes are dropped, so "don't", "don’t" and "dont" are one word.
fn clauses(text: &str) -> Vec<Vec<String>> {
    let mut clauses = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if matches!(c, '\'' | '’' | '‘' | '`') {
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if matches!(c, '.' | '!' | '?' | ',' | ';' | ':' | '\n' | '(' | ')') && !words.is_empty() {
            clauses.push(std::mem::take(&mut words));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    if !words.is_empty() {
        clauses.push(words);
    }
    clauses
}

fn is(word: Option<&String>, set: &[&str]) -> bool {
    word.is_some_and(|w| set.contains(&w.as_str()))
}

/// Whether a negator is among the four words before `i`.
fn negated(words: &[String], i: usize) -> bool {
    words[i.saturating_sub(4)..i]
        .iter()
        .any(|w| NEGATORS.contains(&w.as_str()))
}

/// Index of the first word from `from` on that is not a filler, and whether a
/// "sending" word was skipped on the way.
fn skip_fillers(words: &[String], from: usize) -> (usize, bool) {
    let mut j = from;
    let mut sending = false;
    while is(words.get(j), FILLERS) {
        sending |= is(words.get(j), SENDING);
        j += 1;
    }
    (j, sending)
}

fn clause_rule(words: &[String]) -> Option<&'static str> {
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if has(BARE_STOP_WORDS)
        && words
            .iter()
            .all(|w| BARE_STOP_WORDS.contains(&w.as_str()) || BARE_EXTRAS.contains(&w.as_str()))
    {
        return Some("bare stop");
    }
    for i in 0..words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);

        // "stop texting me", "quit sending these", "cancel my reminders";
        // not "stop by", "won't stop hurting", "don't stop the reminders".
        if STOP_VERBS.contains(&w) && !negated(words, i) {
            let (j, sending) = skip_fillers(words, i + 1);
            if is(words.get(j), MESSAGES) || (sending && j == words.len()) {
                return Some("stop + messages");
            }
        }

        // "don't text me", "never contact this number", "do not send me any
        // more texts"; not "I did not text you", "don't send me the forms".
        if matches!(w, "dont" | "not" | "never") {
            let k = if next == Some("ever") { i + 2 } else { i + 1 };
            match words.get(k).map(String::as_str) {
                Some("text" | "txt" | "message" | "msg" | "contact" | "sms") => {
                    let after = words.get(k + 1).map(String::as_str);
                    if matches!(
                        after,
                        None | Some(
                            "me" | "this"
                                | "my"
                                | "us"
                                | "anymore"
                                | "again"
                                | "here"
                                | "on"
                                | "at"
                        )
                    ) {
                        return Some("don't + text me");
                    }
                }
                Some("send") => {
                    let (j, _) = skip_fillers(words, k + 1);
                    if is(words.get(j), MESSAGES) {
                        return Some("don't + text me");
                    }
                }
                _ => {}
            }
        }

        // "I don't want these texts", "I no longer wish to receive
        // messages"; not "I don't want you to stop texting", "don't want to
        // miss my reminder".
        if matches!(w, "dont" | "not" | "never" | "longer") && matches!(next, Some("want" | "wish"))
        {
            for word in words.iter().skip(i + 2).take(6) {
                let word = word.as_str();
                if STOP_VERBS.contains(&word) || word == "miss" {
                    break;
                }
                if MESSAGES.contains(&word) {
                    return Some("don't want + messages");
                }
            }
        }

        // "no more texts please"; not "no more pain".
        if w == "no" && next == Some("more") {
            let (j, _) = skip_fillers(words, i + 2);
            if is(words.get(j), MESSAGES) {
                return Some("no more + messages");
            }
        }

        // "unsubscribe me", "opt me out", "how do I opt out"; not "don't
        // unsubscribe me" (nor "I accidentally unsubscribed": past tense).
        let opt_out = match w {
            "unsubscribe" | "unsub" | "optout" => true,
            "opt" | "opting" => {
                next == Some("out") || (next == Some("me") && is(words.get(i + 2), &["out"]))
            }
            _ => false,
        };
        if opt_out && !negated(words, i) {
            return Some("unsubscribe / opt out");
        }

        // "remove me", "take me off your list", "delete my number"; not
        // "take me off the waitlist", "remove me from the cancellation list".
        if matches!(w, "remove" | "delete" | "take" | "drop")
            && matches!(next, Some("me" | "my" | "this" | "us" | "our"))
            && !negated(words, i)
        {
            let rest = &words[i + 2..words.len().min(i + 8)];
            let rest_has = |set: &[&str]| rest.iter().any(|r| set.contains(&r.as_str()));
            let off = w != "take" || rest.iter().take(3).any(|r| r == "off");
            let other_list = rest_has(OTHER_LISTS);
            let listed = rest.is_empty() || rest_has(LISTS);
            if off && !other_list && listed {
                return Some("remove me");
            }
        }

        if w == "leave" && next == Some("me") && is(words.get(i + 2), &["alone"]) {
            return Some("leave me alone");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::domain::office_hours::{DayHours, OfficeHours};

    const NY: Tz = chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).expect("test number")
    }

    fn patient() -> PhoneNumber {
        phone("+14155550142")
    }

    fn inbound(id: &str, text: &str, at: &str) -> InboundEntry {
        InboundEntry::new(id, patient(), phone("+14155550100"), text, utc(at), vec![])
    }

    fn conversation() -> Conversation {
        Conversation::new(patient(), utc("2026-12-01T14:00:00Z"))
    }

    fn last_text(c: &Conversation) -> &str {
        c.last_message.as_ref().map_or("", |m| m.text.as_str())
    }

    // --- ids ---------------------------------------------------------------

    #[test]
    fn the_id_is_c_and_the_e164_digits() {
        let id = ConversationId::from_phone(&patient());
        assert_eq!(id.as_str(), "c14155550142");
        assert_eq!(id.to_string(), "c14155550142");
        assert_eq!(id.phone(), &patient());
        assert_eq!(conversation().id, id);
    }

    #[test]
    fn a_well_formed_id_parses_back_to_its_number() {
        let id = ConversationId::parse("c14155550142").expect("valid");
        assert_eq!(id, ConversationId::from_phone(&patient()));
        assert_eq!(id.phone().as_str(), "+14155550142");
    }

    #[test]
    fn any_other_shape_is_not_found() {
        for bad in [
            "",
            "c",
            "14155550142",
            "C14155550142",
            "c+14155550142",
            "c4155550142",
            "c24155550142",
            "c141555501420",
            "c1415555014",
            "c1415555014x",
            "c1-415-555-0142",
            " c14155550142",
            "c14155550142 ",
            "c19115550142",
            "c14151110142",
            "c10155550142",
            "c1４155550142",
            "c14155550142/../x",
        ] {
            let e = ConversationId::parse(bad).expect_err(bad);
            assert_eq!(
                (e.kind, e.code),
                (ErrorKind::NotFound, "conversation_not_found"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_id_serialises_as_its_text_and_is_checked_when_read() {
        let id = ConversationId::from_phone(&patient());
        assert_eq!(
            serde_json::to_value(&id).expect("serialise"),
            "c14155550142"
        );
        let back: ConversationId = serde_json::from_value("c14155550142".into()).expect("read");
        assert_eq!(back, id);
        assert!(serde_json::from_value::<ConversationId>("c123".into()).is_err());
    }

    // --- a new conversation --------------------------------------------------

    #[test]
    fn a_new_conversation_is_open_read_and_quiet() {
        let c = conversation();
        assert_eq!(c.status, ConversationStatus::Open);
        assert_eq!(c.unread_count, 0);
        assert!(!c.awaiting_reply());
        assert_eq!(c.last_message, None);
        assert_eq!(c.last_activity_at, utc("2026-12-01T14:00:00Z"));
        assert_eq!(c.version, 0);
    }

    // --- threading order ---------------------------------------------------

    #[test]
    fn the_last_message_is_the_newest_by_time_not_by_arrival() {
        let mut c = conversation();
        c.record_inbound(&inbound("m3", "third", "2026-12-01T15:03:00Z"));
        c.record_inbound(&inbound("m1", "first", "2026-12-01T15:01:00Z"));
        c.record_inbound(&inbound("m2", "second", "2026-12-01T15:02:00Z"));
        assert_eq!(last_text(&c), "third");
        assert_eq!(c.last_activity_at, utc("2026-12-01T15:03:00Z"));
        assert_eq!(c.unread_count, 3, "late arrivals still count as unread");
    }

    #[test]
    fn a_late_inbound_text_does_not_hide_a_newer_reply() {
        let mut c = conversation();
        c.record_outbound(
            utc("2026-12-01T15:10:00Z"),
            "See you at 3",
            OutboundKind::Reply,
        );
        c.record_inbound(&inbound("m1", "Can I come at 3?", "2026-12-01T15:05:00Z"));
        let last = c.last_message.clone().expect("has a last message");
        assert_eq!(
            (last.direction, last.text.as_str()),
            (Direction::Outbound, "See you at 3")
        );
        assert_eq!(c.last_activity_at, utc("2026-12-01T15:10:00Z"));
        assert!(
            !c.awaiting_reply(),
            "the reply came after the text, whatever the arrival order"
        );
    }

    #[test]
    fn the_first_text_sets_the_last_message_even_if_older_than_creation() {
        // The conversation is created when the callback lands; the text's
        // own time is a little earlier.
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "hello", "2026-12-01T13:59:58Z"));
        assert_eq!(last_text(&c), "hello");
        assert_eq!(c.last_activity_at, utc("2026-12-01T13:59:58Z"));
    }

    #[test]
    fn of_two_texts_at_the_same_second_the_later_recorded_wins() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "one", "2026-12-01T15:00:00Z"));
        c.record_inbound(&inbound("m2", "two", "2026-12-01T15:00:00Z"));
        assert_eq!(last_text(&c), "two");
    }

    // --- unread and reopen ----------------------------------------------------

    #[test]
    fn inbound_texts_count_as_unread_until_read() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "hi", "2026-12-01T15:00:00Z"));
        c.record_inbound(&inbound("m2", "are you open?", "2026-12-01T15:01:00Z"));
        assert_eq!(c.unread_count, 2);
        c.mark_read();
        assert_eq!(c.unread_count, 0);
        c.record_inbound(&inbound("m3", "hello?", "2026-12-01T15:02:00Z"));
        assert_eq!(c.unread_count, 1);
    }

    #[test]
    fn marking_unread_means_at_least_one() {
        let mut c = conversation();
        c.mark_unread();
        assert_eq!(c.unread_count, 1);
        c.record_inbound(&inbound("m1", "a", "2026-12-01T15:00:00Z"));
        c.record_inbound(&inbound("m2", "b", "2026-12-01T15:01:00Z"));
        c.mark_unread();
        assert_eq!(c.unread_count, 3, "a higher count is kept");
    }

    #[test]
    fn a_new_text_reopens_a_closed_conversation() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "thanks!", "2026-12-01T15:00:00Z"));
        c.mark_read();
        c.set_status(ConversationStatus::Closed);
        assert_eq!(c.status, ConversationStatus::Closed);
        c.record_inbound(&inbound("m2", "one more question", "2026-12-02T09:00:00Z"));
        assert_eq!(c.status, ConversationStatus::Open);
        assert_eq!(c.unread_count, 1);
    }

    #[test]
    fn keywords_are_unread_and_reopen_but_do_not_await_a_reply() {
        let mut c = conversation();
        c.set_status(ConversationStatus::Closed);
        c.record_inbound(&inbound("m1", "STOP", "2026-12-01T15:00:00Z"));
        assert_eq!((c.status, c.unread_count), (ConversationStatus::Open, 1));
        assert!(!c.awaiting_reply());
        assert_eq!(last_text(&c), "STOP");
    }

    #[test]
    fn sending_does_not_change_unread_or_status() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "hi", "2026-12-01T15:00:00Z"));
        c.set_status(ConversationStatus::Closed);
        c.record_outbound(utc("2026-12-01T15:05:00Z"), "hello", OutboundKind::Reply);
        assert_eq!((c.status, c.unread_count), (ConversationStatus::Closed, 1));
    }

    // --- awaiting reply -----------------------------------------------------

    #[test]
    fn a_patient_text_awaits_a_reply_until_staff_answer() {
        let mut c = conversation();
        c.record_inbound(&inbound(
            "m1",
            "Can I move my cleaning?",
            "2026-12-01T15:00:00Z",
        ));
        assert!(c.awaiting_reply());
        c.record_outbound(
            utc("2026-12-01T15:20:00Z"),
            "Sure, when?",
            OutboundKind::Reply,
        );
        assert!(!c.awaiting_reply());
        c.record_inbound(&inbound("m2", "Thursday?", "2026-12-01T15:25:00Z"));
        assert!(c.awaiting_reply());
    }

    #[test]
    fn a_direct_message_typed_to_the_number_counts_as_a_reply() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "Running late", "2026-12-01T15:00:00Z"));
        c.record_outbound(
            utc("2026-12-01T15:01:00Z"),
            "No problem",
            OutboundKind::Direct,
        );
        assert!(!c.awaiting_reply());
    }

    #[test]
    fn automatic_and_bulk_texts_are_not_replies() {
        for kind in [
            OutboundKind::AutoReply,
            OutboundKind::KeywordReply,
            OutboundKind::Bulk,
            OutboundKind::Scheduled,
        ] {
            let mut c = conversation();
            c.record_inbound(&inbound(
                "m1",
                "Is Dr. Lee in today?",
                "2026-12-01T23:00:00Z",
            ));
            c.record_outbound(utc("2026-12-01T23:00:01Z"), "automatic", kind);
            assert!(c.awaiting_reply(), "{kind:?} must not count as a reply");
            assert_eq!(c.last_reply_at, None);
        }
    }

    #[test]
    fn a_help_text_does_not_await_a_reply_and_its_answer_does_not_clear_one() {
        let mut c = conversation();
        c.record_inbound(&inbound(
            "m1",
            "What time is my appointment?",
            "2026-12-01T15:00:00Z",
        ));
        c.record_inbound(&inbound("m2", "HELP", "2026-12-01T15:01:00Z"));
        c.record_outbound(
            utc("2026-12-01T15:01:01Z"),
            "help text",
            OutboundKind::KeywordReply,
        );
        assert!(
            c.awaiting_reply(),
            "the question before HELP is still unanswered"
        );

        let mut only_help = conversation();
        only_help.record_inbound(&inbound("m1", "help", "2026-12-01T15:01:00Z"));
        assert!(!only_help.awaiting_reply());
    }

    #[test]
    fn a_text_asking_to_stop_awaits_a_reply_so_staff_act_on_it() {
        let mut c = conversation();
        let entry = inbound("m1", "please stop texting me", "2026-12-01T15:00:00Z");
        assert!(entry.opt_out_intent);
        assert_eq!(entry.keyword, None);
        c.record_inbound(&entry);
        assert!(c.awaiting_reply());
    }

    #[test]
    fn a_reply_sent_before_a_late_arriving_newer_text_does_not_answer_it() {
        let mut c = conversation();
        c.record_outbound(
            utc("2026-12-01T15:00:00Z"),
            "Reminder...",
            OutboundKind::Reply,
        );
        c.record_inbound(&inbound(
            "m1",
            "Got it, but can we do 4?",
            "2026-12-01T15:30:00Z",
        ));
        assert!(c.awaiting_reply());
        // And an older reply recorded later does not move the reply time back.
        c.record_outbound(utc("2026-12-01T14:00:00Z"), "old", OutboundKind::Reply);
        assert_eq!(c.last_reply_at, Some(utc("2026-12-01T15:00:00Z")));
        assert!(c.awaiting_reply());
    }

    // --- assignee -----------------------------------------------------------

    #[test]
    fn assignee_is_trimmed_and_can_be_cleared() {
        let mut c = conversation();
        c.set_assignee(Some("  maria ")).expect("valid");
        assert_eq!(c.assignee.as_deref(), Some("maria"));
        c.set_assignee(None).expect("unassign");
        assert_eq!(c.assignee, None);
    }

    #[test]
    fn a_blank_or_overlong_assignee_is_refused() {
        let mut c = conversation();
        c.set_assignee(Some("maria")).expect("valid");
        for bad in ["   ".to_string(), "x".repeat(MAX_ASSIGNEE_LEN + 1)] {
            let e = c.set_assignee(Some(&bad)).expect_err("refused");
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_field", Some("assignee"))
            );
        }
        assert_eq!(
            c.assignee.as_deref(),
            Some("maria"),
            "a refusal changes nothing"
        );
        assert!(c.set_assignee(Some(&"x".repeat(MAX_ASSIGNEE_LEN))).is_ok());
    }

    // --- after-hours reply ------------------------------------------------

    fn enabled() -> AutoReply {
        AutoReply {
            enabled: true,
            ..AutoReply::default()
        }
    }

    /// Tuesday 2026-12-01 20:00 EST: after Mon–Fri 08:00–17:00 hours.
    const EVENING: &str = "2026-12-02T01:00:00Z";
    /// Tuesday 2026-12-01 10:00 EST.
    const MORNING: &str = "2026-12-01T15:00:00Z";

    #[test]
    fn a_text_after_hours_gets_the_reply() {
        let c = conversation();
        assert!(c.should_auto_reply(utc(EVENING), &enabled(), NY, None, false));
    }

    #[test]
    fn no_reply_while_the_office_is_open() {
        let c = conversation();
        assert!(!c.should_auto_reply(utc(MORNING), &enabled(), NY, None, false));
    }

    #[test]
    fn no_reply_when_disabled() {
        let c = conversation();
        assert!(!c.should_auto_reply(utc(EVENING), &AutoReply::default(), NY, None, false));
    }

    #[test]
    fn no_reply_to_a_keyword() {
        let c = conversation();
        for k in [Keyword::OptOut, Keyword::OptIn, Keyword::Help] {
            assert!(!c.should_auto_reply(utc(EVENING), &enabled(), NY, Some(k), false));
        }
    }

    #[test]
    fn never_to_an_opted_out_number() {
        let c = conversation();
        assert!(!c.should_auto_reply(utc(EVENING), &enabled(), NY, None, true));
    }

    #[test]
    fn at_most_once_in_twelve_hours() {
        let mut c = conversation();
        let first = utc(EVENING);
        assert!(c.should_auto_reply(first, &enabled(), NY, None, false));
        c.record_outbound(first, "closed", OutboundKind::AutoReply);
        assert_eq!(c.last_auto_reply_at, Some(first));

        let hour = Duration::hours(1);
        assert!(!c.should_auto_reply(first + hour, &enabled(), NY, None, false));
        // 11:59:59 later (07:59:59 Wednesday, still closed): not yet.
        let almost = first + Duration::hours(12) - Duration::seconds(1);
        assert!(!c.should_auto_reply(almost, &enabled(), NY, None, false));
        // 12 hours later is 08:00 Wednesday: open, so no reply anyway.
        assert!(!c.should_auto_reply(first + Duration::hours(12), &enabled(), NY, None, false));
        // Wednesday 20:00: a day later, closed again, it goes out.
        assert!(c.should_auto_reply(first + Duration::hours(24), &enabled(), NY, None, false));
    }

    #[test]
    fn the_twelve_hours_are_exact_when_the_office_stays_closed() {
        // Closed all week (a practice on holiday).
        let holiday = AutoReply {
            enabled: true,
            office_hours: OfficeHours {
                mon: None,
                tue: None,
                wed: None,
                thu: None,
                fri: None,
                sat: None,
                sun: None,
            },
            ..AutoReply::default()
        };
        let mut c = conversation();
        let first = utc(MORNING);
        assert!(c.should_auto_reply(first, &holiday, NY, None, false));
        c.record_outbound(first, "closed", OutboundKind::AutoReply);
        let twelve = first + Duration::hours(12);
        assert!(!c.should_auto_reply(twelve - Duration::seconds(1), &holiday, NY, None, false));
        assert!(c.should_auto_reply(twelve, &holiday, NY, None, false));
    }

    #[test]
    fn a_reply_recorded_in_the_future_counts_as_recent() {
        let mut c = conversation();
        c.record_outbound(
            utc(EVENING) + Duration::minutes(5),
            "closed",
            OutboundKind::AutoReply,
        );
        assert!(!c.should_auto_reply(utc(EVENING), &enabled(), NY, None, false));
    }

    #[test]
    fn other_texts_do_not_start_the_twelve_hours() {
        let mut c = conversation();
        c.record_outbound(utc(EVENING), "help", OutboundKind::KeywordReply);
        c.record_outbound(utc(EVENING), "reply", OutboundKind::Reply);
        assert_eq!(c.last_auto_reply_at, None);
        assert!(c.should_auto_reply(utc(EVENING), &enabled(), NY, None, false));
    }

    #[test]
    fn after_hours_follow_daylight_saving_time() {
        // Office open Sundays 08:00–12:00; 2026-03-08 springs forward.
        let mut reply = enabled();
        reply.office_hours.sun = Some(DayHours::parse("08:00", "12:00", "sun").expect("valid"));
        let c = conversation();
        // 12:30Z is 08:30 EDT: open (it would be 07:30 in EST).
        assert!(!c.should_auto_reply(utc("2026-03-08T12:30:00Z"), &reply, NY, None, false));
        // On 2026-11-01 (fall back) 12:30Z is 07:30 EST: closed.
        assert!(c.should_auto_reply(utc("2026-11-01T12:30:00Z"), &reply, NY, None, false));
    }

    // --- views and serde ----------------------------------------------------

    #[test]
    fn the_inbox_item_has_the_api_shape() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "Can I come at 3?", "2026-12-01T15:00:00Z"));
        let item = serde_json::to_value(c.view(vec![serde_json::json!({"id": "p1"})], false))
            .expect("serialise");
        assert_eq!(
            item,
            serde_json::json!({
                "id": "c14155550142",
                "phone": "+14155550142",
                "patients": [{"id": "p1"}],
                "status": "open",
                "unread_count": 1,
                "awaiting_reply": true,
                "assignee": null,
                "sms_opted_out": false,
                "last_activity_at": "2026-12-01T15:00:00.000Z",
                "last_message": {"direction": "inbound", "text": "Can I come at 3?", "at": "2026-12-01T15:00:00.000Z"},
            })
        );
    }

    #[test]
    fn a_stored_conversation_reads_back_the_same() {
        let mut c = conversation();
        c.record_inbound(&inbound("m1", "hi", "2026-12-01T15:00:00Z"));
        c.record_outbound(
            utc("2026-12-02T01:00:00Z"),
            "closed",
            OutboundKind::AutoReply,
        );
        c.set_status(ConversationStatus::Closed);
        c.version = 7;
        let json = serde_json::to_string(&c).expect("serialise");
        let back: Conversation = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, c);
    }

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

    // --- opt-out intent -----------------------------------------------------

    #[test]
    fn sentences_asking_to_stop_are_flagged() {
        for text in [
            "please stop texting me",
            "unsubscribe me",
            "Stop sending me messages",
            "take me off your list",
            "no more texts please",
            "don't text me anymore",
            "remove me from your list",
            "opt me out",
            "STOP!",
            "Stop please.",
            "STOP TEXTING ME",
            "Please remove my number from your system",
            "I do not want to receive these text messages",
            "Quit texting me!!",
            "Who is this? Stop messaging this number",
            "How do I unsubscribe from these?",
            "I want to opt out of text reminders",
            "Can you stop sending reminders to this number",
            "Don’t contact me again",
            "leave me alone",
            "cancel these texts",
            "Wrong number. Stop texting me.",
            "no more messages from this office",
            "Why won't you stop texting me",
            "I no longer wish to receive messages from you",
            "Do not send me any more texts",
            "I switched dentists, please stop the reminders",
            "delete my number",
            "stop sending",
        ] {
            assert!(opt_out_intent(text), "{text:?} should be flagged");
        }
    }

    #[test]
    fn everyday_uses_of_stop_are_not_flagged() {
        for text in [
            "stop by at 3?",
            "Can I stop by tomorrow to pick up my retainer?",
            "my tooth won't stop hurting",
            "the bleeding stopped",
            "Is there a bus stop near the office?",
            "I'll stop in after work",
            "Please don't stop sending me reminders, they help!",
            "Why did you stop texting me reminders?",
            "I don't want you to stop texting me",
            "I need to cancel my appointment on Friday",
            "Can you text me the address?",
            "Please remove me from the cancellation list, I found a time",
            "Can you take me off the waitlist for Thursday?",
            "Don't send me the paper forms, I'll fill them out online",
            "Stop at the front desk when you arrive?",
            "What time do you stop seeing patients on Fridays?",
            "I stopped taking the antibiotics yesterday",
            "Please keep texting me the reminders",
            "Is it normal that the numbness hasn't stopped?",
            "Can you stop the bleeding with gauze?",
            "Stop sign on Main St is where I turn?",
            "No more pain after the filling, thank you!",
            "I don't want to miss my reminder texts",
            "I did not text you, sorry",
            "You don't need to text me back",
            "I accidentally unsubscribed, how do I get texts again?",
            "At the end of the day works for me",
            "Thanks for the reminder text! See you Tuesday",
        ] {
            assert_eq!(opt_out_rule(text), None, "{text:?} should not be flagged");
        }
    }

    #[test]
    fn exact_keywords_are_keywords_not_intents() {
        for text in [
            "STOP",
            "stop",
            "Unsubscribe",
            "quit",
            "CANCEL",
            "HELP",
            "START",
        ] {
            assert!(!opt_out_intent(text), "{text:?}");
        }
    }

    #[test]
    fn each_flag_can_be_explained_by_its_rule() {
        assert_eq!(opt_out_rule("STOP!"), Some("bare stop"));
        assert_eq!(
            opt_out_rule("please stop texting me"),
            Some("stop + messages")
        );
        assert_eq!(
            opt_out_rule("don't text me anymore"),
            Some("don't + text me")
        );
        assert_eq!(
            opt_out_rule("I don't want these texts"),
            Some("don't want + messages")
        );
        assert_eq!(
            opt_out_rule("no more texts please"),
            Some("no more + messages")
        );
        assert_eq!(opt_out_rule("opt me out"), Some("unsubscribe / opt out"));
        assert_eq!(opt_out_rule("take me off your list"), Some("remove me"));
        assert_eq!(opt_out_rule("leave me alone"), Some("leave me alone"));
    }

    #[test]
    fn a_negation_in_an_earlier_sentence_does_not_cancel_a_request() {
        assert!(opt_out_intent("I don't know who this is. Stop texting me"));
        assert!(opt_out_intent("Not sure why I get these, stop texting"));
    }
}

/// A synced patient as a conversation lists them (a family may share one
/// number, so a conversation lists every patient with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRef {
    #[allow(missing_docs)]
    pub patient_id: String,
    #[allow(missing_docs)]
    pub first_name: String,
    #[allow(missing_docs)]
    pub last_name: Option<String>,
}

/// A text the practice sent, as its conversation's thread records it. Its
/// delivery status is not copied here: it is read from the recipient when the
/// thread is shown, so it is always the live one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEntry {
    /// The message and recipient that carry the text.
    pub job: super::job::SendJob,
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

/// Which conversations an Inbox page lists. Every combination is served by
/// an index of its own, so a page reads only what it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    /// Only open or only closed ones; both when `None`.
    pub status: Option<ConversationStatus>,
    /// Only those with unread texts.
    pub unread_only: bool,
    /// Only those assigned to this staff member.
    pub assignee: Option<String>,
}

/// A conversation as stored: the conversation and the patients who had its
/// number when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConversation {
    #[allow(missing_docs)]
    pub conversation: Conversation,
    #[allow(missing_docs)]
    pub patients: Vec<PatientRef>,
}

/// A job to copy one attachment of an inbound text from the carrier into
/// the practice's storage: what the media queue carries (ids and links,
/// never the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaCopyJob {
    #[allow(missing_docs)]
    pub practice_id: String,
    /// The patient's number (the thread the entry is in).
    pub phone: PhoneNumber,
    /// The entry's [`ThreadItem::position`].
    pub position: String,
    /// Which attachment of the entry.
    pub index: usize,
    /// Where the carrier keeps it (needs the carrier's credentials).
    pub carrier_url: String,
    /// Where the copy goes.
    pub storage_key: String,
    #[allow(missing_docs)]
    pub content_type: String,
}
