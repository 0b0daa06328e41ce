//! A conversation as the Inbox keeps it: status, unread count, assignee,
//! whether the patient awaits a reply, and when the after-hours reply goes
//! out.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::id::ConversationId;
use super::thread::{Direction, InboundEntry, LastMessage, OutboundKind};
use crate::domain::error::AppError;
use crate::domain::keywords::Keyword;
use crate::domain::office_hours::AutoReply;
use crate::domain::phone::PhoneNumber;

/// The after-hours reply goes to one conversation at most once in this many
/// hours, so a patient who texts five times in an evening gets it once.
pub const AUTO_REPLY_MIN_GAP_HOURS: i64 = 12;

/// HELP is answered at most once per number in this many hours.
pub const HELP_REPLY_MIN_GAP_HOURS: i64 = 24;

/// Longest assignee (a staff member's id or name) accepted.
pub const MAX_ASSIGNEE_LEN: usize = crate::domain::limits::MAX_NAME_CHARS;

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
    #[serde(serialize_with = "crate::domain::clock::serialize_api_time")]
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
        if entry.intent.is_some() {
            // A confirming "C" needs nobody: not unread, not awaiting a
            // reply, the conversation's status unchanged.
            self.take_if_newest(Direction::Inbound, &entry.text, entry.at);
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::test_support::*;
    use crate::domain::office_hours::{DayHours, OfficeHours};

    const NY: Tz = chrono_tz::America::New_York;

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
}
