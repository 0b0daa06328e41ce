//! When the office is open, and the after-hours reply a patient gets when
//! they text while it is closed.
//!
//! Hours are wall-clock times in the practice's own time zone, so a practice
//! that opens at 08:00 opens at 08:00 local time on both sides of a
//! daylight-saving change: [`OfficeHours::is_open`] converts the instant to
//! local time first and compares clock readings, never UTC offsets.
//!
//! The settings shape is
//! `{"enabled": true, "text": "...", "office_hours": {"mon": {"open": "08:00",
//! "close": "17:00"}, ..., "sun": null}}`: all seven days must be present, and
//! `null` means closed all day.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::AppError;
use super::merge;
use super::text::MAX_TEXT_CHARS;

/// The hours the office is open on one day: from `open` (inclusive) to
/// `close` (exclusive), both on the same day.
///
/// Overnight hours are not supported: no dental office is open across
/// midnight, and refusing them keeps a typo like `17:00`–`08:00` from
/// silently meaning "open all night".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayHours {
    /// Opening time, `"08:00"`.
    #[serde(with = "hhmm")]
    pub open: NaiveTime,
    /// Closing time, `"17:00"`; the office is closed from this minute on.
    #[serde(with = "hhmm")]
    pub close: NaiveTime,
}

impl DayHours {
    /// Hours from `open` to `close`, each written `HH:MM` (24-hour).
    ///
    /// # Errors
    ///
    /// `invalid_field` naming `{field}.open` or `{field}.close` when a time is
    /// not `HH:MM`, or `{field}.close` when it is not after `open`.
    pub fn parse(open: &str, close: &str, field: &str) -> Result<Self, AppError> {
        let open = hhmm::parse(open)
            .map_err(|m| AppError::invalid("invalid_field", m).at(format!("{field}.open")))?;
        let close = hhmm::parse(close)
            .map_err(|m| AppError::invalid("invalid_field", m).at(format!("{field}.close")))?;
        let hours = DayHours { open, close };
        hours.validate(field)?;
        Ok(hours)
    }

    /// Whether local wall-clock time `t` is inside these hours.
    pub fn contains(&self, t: NaiveTime) -> bool {
        self.open <= t && t < self.close
    }

    fn validate(&self, field: &str) -> Result<(), AppError> {
        if self.open < self.close {
            Ok(())
        } else {
            Err(AppError::invalid(
                "invalid_field",
                format!(
                    "{field}.close ({}) must be after {field}.open ({}); use null for a day the office is closed",
                    self.close.format("%H:%M"),
                    self.open.format("%H:%M"),
                ),
            )
            .at(format!("{field}.close")))
        }
    }
}

/// The office's opening hours for each day of the week; `None` is closed all
/// day.
///
/// Every day must be present in JSON (`null` for closed), so a settings body
/// that forgets a day is refused instead of silently closing the office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeHours {
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub mon: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub tue: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub wed: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub thu: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub fri: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub sat: Option<DayHours>,
    #[allow(missing_docs)]
    #[serde(deserialize_with = "required_day")]
    pub sun: Option<DayHours>,
}

/// With `deserialize_with`, serde treats a missing `Option` field as an error
/// rather than `None`, which is what makes all seven keys required.
fn required_day<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DayHours>, D::Error> {
    Option::<DayHours>::deserialize(d)
}

impl Default for OfficeHours {
    /// Monday to Friday 08:00–17:00, closed at the weekend.
    fn default() -> Self {
        let weekday = Some(DayHours {
            open: clock(8),
            close: clock(17),
        });
        OfficeHours {
            mon: weekday,
            tue: weekday,
            wed: weekday,
            thu: weekday,
            fri: weekday,
            sat: None,
            sun: None,
        }
    }
}

/// `hour`:00, for the defaults (hours below 24 always exist).
const fn clock(hour: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, 0, 0) {
        Some(t) => t,
        None => NaiveTime::MIN,
    }
}

impl OfficeHours {
    /// Reads office hours from JSON, naming the offending field under `field`
    /// (`auto_reply.office_hours.mon.open`) in any refusal.
    ///
    /// # Errors
    ///
    /// `unknown_field` (400) for a key that is not a day or `open`/`close`;
    /// `invalid_field` (422) for a missing day, a time that is not `HH:MM`,
    /// or a close that is not after the open.
    pub fn from_json(value: &serde_json::Value, field: &str) -> Result<Self, AppError> {
        let hours: OfficeHours = read_json(value, field)?;
        hours.validate(field)?;
        Ok(hours)
    }

    /// Checks each day's close is after its open (the HH:MM shape is already
    /// enforced when deserialising). `field` prefixes the day in errors.
    ///
    /// # Errors
    ///
    /// `invalid_field` naming `{field}.{day}.close`.
    pub fn validate(&self, field: &str) -> Result<(), AppError> {
        for (day, hours) in self.days() {
            if let Some(hours) = hours {
                hours.validate(&format!("{field}.{day}"))?;
            }
        }
        Ok(())
    }

    /// The hours for `day`, `None` when closed all day.
    pub fn on(&self, day: Weekday) -> Option<DayHours> {
        match day {
            Weekday::Mon => self.mon,
            Weekday::Tue => self.tue,
            Weekday::Wed => self.wed,
            Weekday::Thu => self.thu,
            Weekday::Fri => self.fri,
            Weekday::Sat => self.sat,
            Weekday::Sun => self.sun,
        }
    }

    /// Whether the office is open at instant `at`, judged by the wall clock
    /// and weekday in `tz`. Correct across daylight-saving changes because
    /// the comparison is on local clock readings.
    pub fn is_open(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let local = at.with_timezone(&tz);
        self.on(local.weekday())
            .is_some_and(|hours| hours.contains(local.time()))
    }

    fn days(&self) -> [(&'static str, Option<DayHours>); 7] {
        [
            ("mon", self.mon),
            ("tue", self.tue),
            ("wed", self.wed),
            ("thu", self.thu),
            ("fri", self.fri),
            ("sat", self.sat),
            ("sun", self.sun),
        ]
    }
}

/// After-hours reply used until the practice writes its own.
pub const DEFAULT_AUTO_REPLY_TEXT: &str = "Thanks for texting {practice_name}! Our office is closed right now. We'll read your message and reply when we reopen.";

/// The practice's after-hours reply: sent at once to a patient who texts
/// while the office is closed (see
/// [`Conversation::should_auto_reply`](super::conversation::Conversation::should_auto_reply)
/// for when exactly).
///
/// An office whose every day is `null` is always closed, so with the reply
/// enabled every text gets it (at most every 12 hours): useful for a
/// practice on holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoReply {
    /// Whether the reply is sent at all.
    pub enabled: bool,
    /// The reply; merge fields such as `{practice_name}` allowed.
    pub text: String,
    /// When the office counts as open (no reply is sent then).
    pub office_hours: OfficeHours,
}

impl Default for AutoReply {
    /// Off, with a friendly text and Monday–Friday 08:00–17:00 ready for the
    /// office to switch on.
    fn default() -> Self {
        AutoReply {
            enabled: false,
            text: DEFAULT_AUTO_REPLY_TEXT.to_string(),
            office_hours: OfficeHours::default(),
        }
    }
}

impl AutoReply {
    /// Reads and validates the setting from JSON, naming fields under `field`
    /// (`auto_reply.text`, `auto_reply.office_hours.sat.open`).
    ///
    /// # Errors
    ///
    /// As [`OfficeHours::from_json`] for the shape, and as
    /// [`AutoReply::validate`] for the rules.
    pub fn from_json(value: &serde_json::Value, field: &str) -> Result<Self, AppError> {
        let reply: AutoReply = read_json(value, field)?;
        reply.validate(field)?;
        Ok(reply)
    }

    /// Checks the rules serde cannot: the text is required when enabled
    /// (a disabled reply may keep an empty draft), is at most 1600
    /// characters, uses only known merge fields; and each day closes after
    /// it opens.
    ///
    /// # Errors
    ///
    /// `invalid_text` or `unknown_merge_field` naming `{field}.text`;
    /// `invalid_field` naming `{field}.office_hours.{day}.close`.
    pub fn validate(&self, field: &str) -> Result<(), AppError> {
        let text_field = format!("{field}.text");
        if self.enabled && self.text.trim().is_empty() {
            return Err(AppError::invalid(
                "invalid_text",
                format!("{text_field} must not be empty while the after-hours reply is enabled"),
            )
            .at(text_field));
        }
        let characters = self.text.chars().count();
        if characters > MAX_TEXT_CHARS {
            return Err(AppError::invalid(
                "invalid_text",
                format!("{text_field} is {characters} characters; the most a message can carry is {MAX_TEXT_CHARS}"),
            )
            .at(text_field));
        }
        merge::check_fields(&self.text, &text_field)?;
        self.office_hours.validate(&format!("{field}.office_hours"))
    }
}

/// Deserialises `value` as `T`, turning serde's complaint into an
/// [`AppError`] whose field is the JSON path under `field`.
fn read_json<T: DeserializeOwned>(value: &serde_json::Value, field: &str) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let quoted = inner.split('`').nth(1).map(str::to_string);
        // The path names an unknown field itself, but only the parent object
        // of a missing one.
        let mut at = field.to_string();
        if path != "." {
            at = format!("{at}.{path}");
        }
        if inner.starts_with("unknown field") {
            AppError::bad_request(
                "unknown_field",
                format!(
                    "{} is not a field this setting accepts",
                    quoted.unwrap_or_default()
                ),
            )
            .at(at)
        } else if inner.starts_with("missing field") {
            let name = quoted.unwrap_or_default();
            let at = format!("{at}.{name}");
            AppError::invalid("invalid_field", format!("{at} is required")).at(at)
        } else {
            AppError::invalid("invalid_field", format!("{at}: {inner}")).at(at)
        }
    })
}

/// Strict `HH:MM` times: two digits each, 24-hour. chrono's own parser
/// accepts `8:00`, which would let sloppy input round-trip differently.
mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(s: &str) -> Result<NaiveTime, String> {
        let bad = || format!("{s:?} is not a time like 08:00 (24-hour HH:MM)");
        let b = s.as_bytes();
        let shaped =
            b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit());
        if !shaped {
            return Err(bad());
        }
        let hour = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
        let minute = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
        NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
    }

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;
    use serde_json::json;

    const NY: Tz = chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    fn day(open: &str, close: &str) -> serde_json::Value {
        json!({"open": open, "close": close})
    }

    fn week() -> serde_json::Value {
        json!({
            "mon": day("08:00", "17:00"),
            "tue": day("08:00", "17:00"),
            "wed": day("08:00", "17:00"),
            "thu": day("10:00", "19:00"),
            "fri": day("08:00", "13:00"),
            "sat": null,
            "sun": null,
        })
    }

    fn hours_error(value: serde_json::Value) -> AppError {
        OfficeHours::from_json(&value, "auto_reply.office_hours").expect_err("should be refused")
    }

    #[test]
    fn serialises_as_seven_days_with_null_for_closed() {
        assert_eq!(
            serde_json::to_value(OfficeHours::default()).expect("serialise"),
            json!({
                "mon": day("08:00", "17:00"),
                "tue": day("08:00", "17:00"),
                "wed": day("08:00", "17:00"),
                "thu": day("08:00", "17:00"),
                "fri": day("08:00", "17:00"),
                "sat": null,
                "sun": null,
            })
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let hours = OfficeHours::from_json(&week(), "office_hours").expect("valid");
        assert_eq!(serde_json::to_value(hours).expect("serialise"), week());
        assert_eq!(
            hours.fri.map(|d| d.close.format("%H:%M").to_string()),
            Some("13:00".into())
        );
        assert_eq!(hours.sat, None);
    }

    #[test]
    fn a_missing_day_is_refused_rather_than_taken_as_closed() {
        let mut value = week();
        value.as_object_mut().expect("object").remove("sun");
        let e = hours_error(value);
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Unprocessable, "invalid_field")
        );
        assert_eq!(e.field.as_deref(), Some("auto_reply.office_hours.sun"));
    }

    #[test]
    fn a_badly_written_time_names_its_field() {
        for bad in [
            "8:00", "08:00:00", "24:00", "08:60", "8am", "", "08.00", "０8:00",
        ] {
            let mut value = week();
            value["mon"]["open"] = json!(bad);
            let e = hours_error(value);
            assert_eq!(e.code, "invalid_field", "{bad:?}");
            assert_eq!(
                e.field.as_deref(),
                Some("auto_reply.office_hours.mon.open"),
                "{bad:?}"
            );
            assert!(e.message.contains("HH:MM"), "{bad:?}: {}", e.message);
        }
    }

    #[test]
    fn close_must_be_after_open() {
        for (open, close) in [("17:00", "08:00"), ("09:00", "09:00")] {
            let mut value = week();
            value["wed"] = day(open, close);
            let e = hours_error(value);
            assert_eq!(e.code, "invalid_field");
            assert_eq!(
                e.field.as_deref(),
                Some("auto_reply.office_hours.wed.close")
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut value = week();
        value["holiday"] = json!(null);
        let e = hours_error(value);
        assert_eq!((e.kind, e.code), (ErrorKind::BadRequest, "unknown_field"));
        assert_eq!(e.field.as_deref(), Some("auto_reply.office_hours.holiday"));

        let mut value = week();
        value["mon"]["lunch"] = json!("12:00");
        assert_eq!(
            hours_error(value).field.as_deref(),
            Some("auto_reply.office_hours.mon.lunch")
        );
    }

    #[test]
    fn a_missing_open_or_close_names_it() {
        let mut value = week();
        value["tue"] = json!({"open": "08:00"});
        assert_eq!(
            hours_error(value).field.as_deref(),
            Some("auto_reply.office_hours.tue.close")
        );
    }

    #[test]
    fn day_hours_parse_names_the_field() {
        let e = DayHours::parse("8", "17:00", "office_hours.mon").expect_err("bad open");
        assert_eq!(e.field.as_deref(), Some("office_hours.mon.open"));
        let e = DayHours::parse("08:00", "07:00", "office_hours.mon").expect_err("backwards");
        assert_eq!(e.field.as_deref(), Some("office_hours.mon.close"));
        assert!(DayHours::parse("00:00", "23:59", "x").is_ok());
    }

    #[test]
    fn open_from_opening_minute_until_just_before_closing() {
        let hours = OfficeHours::default();
        // Tuesday 2026-12-01, EST (UTC-5).
        assert!(!hours.is_open(utc("2026-12-01T12:59:59Z"), NY)); // 07:59:59
        assert!(hours.is_open(utc("2026-12-01T13:00:00Z"), NY)); // 08:00
        assert!(hours.is_open(utc("2026-12-01T21:59:59Z"), NY)); // 16:59:59
        assert!(!hours.is_open(utc("2026-12-01T22:00:00Z"), NY)); // 17:00
    }

    #[test]
    fn the_weekday_is_the_local_one_not_utc() {
        let hours = OfficeHours::default();
        // Saturday 2026-12-05 02:00Z is Friday 21:00 in New York: closed, but
        // because Friday has closed for the day, not because it is Saturday.
        assert!(!hours.is_open(utc("2026-12-05T02:00:00Z"), NY));
        // Monday 2026-12-07 01:00Z is Sunday 20:00 local: closed all day.
        let mut sunday_evenings = hours;
        sunday_evenings.sun = Some(DayHours::parse("18:00", "21:00", "sun").expect("valid"));
        assert!(sunday_evenings.is_open(utc("2026-12-07T01:00:00Z"), NY));
        assert!(!hours.is_open(utc("2026-12-07T01:00:00Z"), NY));
    }

    #[test]
    fn a_closed_day_is_closed_all_day() {
        let hours = OfficeHours::default();
        // Saturday 2026-12-05 at noon local.
        assert!(!hours.is_open(utc("2026-12-05T17:00:00Z"), NY));
    }

    /// Spring-forward and fall-back days in New York are Sundays, so these
    /// offices keep Sunday hours.
    fn with_sunday(open: &str, close: &str) -> OfficeHours {
        OfficeHours {
            sun: Some(DayHours::parse(open, close, "sun").expect("valid")),
            ..OfficeHours::default()
        }
    }

    #[test]
    fn spring_forward_day_opens_at_local_eight_in_daylight_time() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 08:00 EDT is 12:00Z.
        let hours = with_sunday("08:00", "12:00");
        assert!(!hours.is_open(utc("2026-03-08T11:59:00Z"), NY)); // 07:59 EDT
        assert!(hours.is_open(utc("2026-03-08T12:00:00Z"), NY)); // 08:00 EDT
        assert!(hours.is_open(utc("2026-03-08T15:59:00Z"), NY)); // 11:59 EDT
        assert!(!hours.is_open(utc("2026-03-08T16:00:00Z"), NY)); // 12:00 EDT
                                                                  // The same UTC instant a week earlier, in EST, is only 07:00.
        assert!(!hours.is_open(utc("2026-03-01T12:00:00Z"), NY));
    }

    #[test]
    fn spring_forward_gap_hours_are_skipped_not_shifted() {
        // Open 01:00–03:30 on the spring-forward day: 01:59 EST is open,
        // the next minute is 03:00 EDT (still open), 03:30 EDT closes.
        let hours = with_sunday("01:00", "03:30");
        assert!(hours.is_open(utc("2026-03-08T06:59:00Z"), NY)); // 01:59 EST
        assert!(hours.is_open(utc("2026-03-08T07:00:00Z"), NY)); // 03:00 EDT
        assert!(!hours.is_open(utc("2026-03-08T07:30:00Z"), NY)); // 03:30 EDT
    }

    #[test]
    fn fall_back_day_opens_at_local_eight_in_standard_time() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 08:00 EST is 13:00Z.
        let hours = with_sunday("08:00", "12:00");
        assert!(!hours.is_open(utc("2026-11-01T12:00:00Z"), NY)); // 07:00 EST
        assert!(!hours.is_open(utc("2026-11-01T12:59:00Z"), NY)); // 07:59 EST
        assert!(hours.is_open(utc("2026-11-01T13:00:00Z"), NY)); // 08:00 EST
        assert!(!hours.is_open(utc("2026-11-01T17:00:00Z"), NY)); // 12:00 EST
                                                                  // A week earlier, in EDT, 12:00Z is already 08:00.
        assert!(hours.is_open(utc("2026-10-25T12:00:00Z"), NY));
    }

    #[test]
    fn the_repeated_hour_on_fall_back_day_is_open_both_times() {
        // 01:00–01:59 happens twice; an office open 01:00–02:00 is open for both.
        let hours = with_sunday("01:00", "02:00");
        assert!(hours.is_open(utc("2026-11-01T05:30:00Z"), NY)); // 01:30 EDT
        assert!(hours.is_open(utc("2026-11-01T06:30:00Z"), NY)); // 01:30 EST
        assert!(!hours.is_open(utc("2026-11-01T07:00:00Z"), NY)); // 02:00 EST
    }

    #[test]
    fn the_default_reply_is_off_friendly_and_weekday_hours() {
        let reply = AutoReply::default();
        assert!(!reply.enabled);
        assert!(reply.text.contains("{practice_name}"));
        assert_eq!(reply.office_hours, OfficeHours::default());
        assert!(reply.validate("auto_reply").is_ok());
        // Switching it on without touching anything else is valid too.
        let on = AutoReply {
            enabled: true,
            ..reply
        };
        assert!(on.validate("auto_reply").is_ok());
    }

    #[test]
    fn an_enabled_reply_needs_a_text() {
        let reply = AutoReply {
            enabled: true,
            text: "  \n".into(),
            ..AutoReply::default()
        };
        let e = reply.validate("auto_reply").expect_err("empty");
        assert_eq!((e.kind, e.code), (ErrorKind::Unprocessable, "invalid_text"));
        assert_eq!(e.field.as_deref(), Some("auto_reply.text"));
        // Switched off, an empty draft is fine.
        let off = AutoReply {
            enabled: false,
            ..reply
        };
        assert!(off.validate("auto_reply").is_ok());
    }

    #[test]
    fn the_reply_is_at_most_1600_characters_enabled_or_not() {
        for enabled in [true, false] {
            let mut reply = AutoReply {
                enabled,
                text: "é".repeat(1600),
                ..AutoReply::default()
            };
            assert!(reply.validate("auto_reply").is_ok());
            reply.text.push('x');
            let e = reply.validate("auto_reply").expect_err("too long");
            assert_eq!(e.code, "invalid_text");
            assert_eq!(e.field.as_deref(), Some("auto_reply.text"));
            assert!(e.message.contains("1601"), "{}", e.message);
        }
    }

    #[test]
    fn the_reply_may_use_only_known_merge_fields() {
        let reply = AutoReply {
            enabled: true,
            text: "Hi {patient_name}, we're closed".into(),
            ..AutoReply::default()
        };
        let e = reply
            .validate("auto_reply")
            .expect_err("unknown merge field");
        assert_eq!(e.code, "unknown_merge_field");
        assert_eq!(e.field.as_deref(), Some("auto_reply.text"));
    }

    #[test]
    fn the_setting_reads_from_json_and_names_nested_fields() {
        let value =
            json!({"enabled": true, "text": "Closed now, {practice_name}", "office_hours": week()});
        let reply = AutoReply::from_json(&value, "auto_reply").expect("valid");
        assert!(reply.enabled);
        assert_eq!(serde_json::to_value(&reply).expect("serialise"), value);

        let mut bad = value.clone();
        bad["office_hours"]["sat"] = day("9:00", "12:00");
        assert_eq!(
            AutoReply::from_json(&bad, "auto_reply")
                .expect_err("bad")
                .field
                .as_deref(),
            Some("auto_reply.office_hours.sat.open")
        );

        let mut backwards = value.clone();
        backwards["office_hours"]["mon"] = day("12:00", "09:00");
        assert_eq!(
            AutoReply::from_json(&backwards, "auto_reply")
                .expect_err("bad")
                .field
                .as_deref(),
            Some("auto_reply.office_hours.mon.close")
        );

        let mut empty = value.clone();
        empty["text"] = json!("");
        let e = AutoReply::from_json(&empty, "auto_reply").expect_err("empty");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_text", Some("auto_reply.text"))
        );

        let mut wrong_type = value;
        wrong_type["enabled"] = json!("yes");
        let e = AutoReply::from_json(&wrong_type, "auto_reply").expect_err("type");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("auto_reply.enabled"))
        );
    }
}
