//! A dental practice: its sending numbers, time zone and sending limits.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use super::phone::PhoneNumber;

/// The number a message is sent from: the practice's main or alternate SMS line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The practice's main SMS number.
    #[default]
    SmsMain,
    /// The practice's alternate SMS number (e.g. a ported line).
    SmsAlt,
}

impl Channel {
    /// The API's name for the channel.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::SmsMain => "sms_main",
            Channel::SmsAlt => "sms_alt",
        }
    }

    /// Parses the API's name for a channel.
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "sms_main" => Some(Channel::SmsMain),
            "sms_alt" => Some(Channel::SmsAlt),
            _ => None,
        }
    }
}

/// The practice's sending numbers, one per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    /// Always present: every practice sends from a main number.
    pub sms_main: PhoneNumber,
    /// Optional second number.
    pub sms_alt: Option<PhoneNumber>,
}

impl Channels {
    /// The number for `channel`, if the practice has one.
    pub fn number(&self, channel: Channel) -> Option<&PhoneNumber> {
        match channel {
            Channel::SmsMain => Some(&self.sms_main),
            Channel::SmsAlt => self.sms_alt.as_ref(),
        }
    }
}

/// The daily window in the practice's time zone in which scheduled and bulk
/// messages may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Sending opens (`"08:00"`).
    #[serde(with = "hhmm")]
    pub start: NaiveTime,
    /// Sending closes (`"21:00"`).
    #[serde(with = "hhmm")]
    pub end: NaiveTime,
}

impl QuietHours {
    /// Parses `"08:00-21:00"`; `"off"` means no quiet hours.
    pub fn parse_setting(s: &str) -> Result<Option<QuietHours>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (start, end) = s
            .split_once('-')
            .ok_or_else(|| format!("quiet hours {s:?} must look like 08:00-21:00 or off"))?;
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| format!("{t:?} is not a time like 08:00"))
        };
        let (start, end) = (parse(start)?, parse(end)?);
        if start == end {
            return Err("quiet hours must open and close at different times".into());
        }
        Ok(Some(QuietHours { start, end }))
    }
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M").map_err(serde::de::Error::custom)
    }
}

/// A practice's IANA time zone, checked when it is read: stored and shown
/// by its name (`"America/New_York"`); a name that is not a time zone is
/// refused (when parsed, and when a stored practice is read) rather than
/// taken as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// The zone, for date and time arithmetic.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    /// The IANA name, as stored.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl From<chrono_tz::Tz> for TimeZone {
    fn from(tz: chrono_tz::Tz) -> Self {
        Self(tz)
    }
}

impl std::str::FromStr for TimeZone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            format!("time zone {s:?} is not an IANA time zone such as America/New_York")
        })
    }
}

impl std::fmt::Display for TimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Default bulk cap: the seed's "250 messages per hour".
pub const DEFAULT_HOURLY_CAP: u32 = 250;
/// Default rolling window the cap applies to.
pub const DEFAULT_CAP_WINDOW_SECONDS: u32 = 3600;
/// Default largest bulk list.
pub const DEFAULT_MAX_BULK_RECIPIENTS: u32 = 1000;
/// Largest `max_bulk_recipients` a practice may set: recipients are numbered
/// with five digits (`00001`), which keeps them in list order in the table.
pub const MAX_BULK_RECIPIENTS_LIMIT: u32 = 99_999;

/// A practice as stored, and as `GET /v1/settings` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Practice {
    /// Stable id.
    pub practice_id: String,
    /// Shown to patients through `{practice_name}`.
    pub name: String,
    /// IANA time zone (`America/New_York`), read once when the practice is
    /// read.
    pub timezone: TimeZone,
    /// Sending numbers.
    pub channels: Channels,
    /// Bulk recipients per rolling window.
    pub hourly_cap: u32,
    /// Length of the rolling window, in seconds.
    pub cap_window_seconds: u32,
    /// Largest bulk list accepted.
    pub max_bulk_recipients: u32,
    /// Window for scheduled and bulk sends; `None` means any time.
    pub quiet_hours: Option<QuietHours>,
    /// Reply to a patient's HELP (merge fields allowed); a default when unset.
    #[serde(default)]
    pub help_text: Option<String>,
    /// The after-hours reply to texts that arrive outside office hours
    /// (off until the office turns it on).
    #[serde(default)]
    pub auto_reply: super::office_hours::AutoReply,
    /// When automatic texts (appointment reminders) may go, practice time;
    /// `None` = any time. Absent in a stored practice means the default.
    #[serde(default = "AutomaticWindow::default_setting")]
    pub automatic_window: Option<AutomaticWindow>,
    /// The review and online-scheduling links `{review_link}` and
    /// `{schedule_link}` stand for.
    #[serde(default)]
    pub links: Links,
    /// The carrier its numbers are on (set by the administrator; practices
    /// stored before there was a choice are on Bandwidth).
    #[serde(default)]
    pub carrier: super::carrier::CarrierKind,
}

/// The daily window, in the practice's time zone, in which automatic texts
/// go: from `start` to `end`, and from `day_of_start` on the appointment's
/// own day (so a same-day reminder may go a little earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomaticWindow {
    /// Opens (`"09:00"`).
    #[serde(with = "hhmm")]
    pub start: NaiveTime,
    /// Closes (`"20:00"`): a reminder due later goes at this time.
    #[serde(with = "hhmm")]
    pub end: NaiveTime,
    /// Opens on the appointment's day (`"08:00"`).
    #[serde(with = "hhmm")]
    pub day_of_start: NaiveTime,
}

impl Default for AutomaticWindow {
    fn default() -> Self {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN);
        Self {
            start: t(9),
            end: t(20),
            day_of_start: t(8),
        }
    }
}

impl AutomaticWindow {
    /// The setting of a practice that never chose one: the default window.
    pub fn default_setting() -> Option<AutomaticWindow> {
        Some(AutomaticWindow::default())
    }

    /// Checks that it opens before it closes, on any day.
    pub fn validate(&self) -> Result<(), String> {
        if self.start >= self.end || self.day_of_start >= self.end {
            return Err("start and day_of_start must be before end".into());
        }
        Ok(())
    }
}

/// Links the practice shares in messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Where patients leave a review (`{review_link}`).
    #[serde(default)]
    pub review: Option<String>,
    /// Where patients book online (`{schedule_link}`).
    #[serde(default)]
    pub schedule: Option<String>,
}

/// The settings the office changes itself (`PATCH /v1/settings`): only the
/// fields named are written, over the practice as stored at that moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// The HELP reply: `Some(None)` returns to the default.
    pub help_text: Option<Option<String>>,
    /// The after-hours reply.
    pub auto_reply: Option<super::office_hours::AutoReply>,
    /// The review and scheduling links.
    pub links: Option<Links>,
    /// The automatic window: `Some(None)` = any time.
    pub automatic_window: Option<Option<AutomaticWindow>>,
}

impl SettingsChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.help_text.is_none()
            && self.auto_reply.is_none()
            && self.links.is_none()
            && self.automatic_window.is_none()
    }

    /// `practice` with the change applied.
    pub fn applied_to(&self, practice: &Practice) -> Practice {
        let mut changed = practice.clone();
        if let Some(help_text) = &self.help_text {
            changed.help_text.clone_from(help_text);
        }
        if let Some(auto_reply) = &self.auto_reply {
            changed.auto_reply = auto_reply.clone();
        }
        if let Some(links) = &self.links {
            changed.links = links.clone();
        }
        if let Some(window) = self.automatic_window {
            changed.automatic_window = window;
        }
        changed
    }
}

impl Practice {
    /// Checks the practice's own settings (used by the admin command).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.hourly_cap == 0 {
            return Err("hourly cap must be at least 1".into());
        }
        if self.cap_window_seconds == 0 {
            return Err("cap window must be at least 1 second".into());
        }
        if self.max_bulk_recipients == 0 || self.max_bulk_recipients > MAX_BULK_RECIPIENTS_LIMIT {
            return Err(format!(
                "max bulk recipients must be from 1 to {MAX_BULK_RECIPIENTS_LIMIT}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_setting_parses_window_and_off() {
        let q = QuietHours::parse_setting("08:00-21:00").unwrap().unwrap();
        assert_eq!(q.start, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(q.end, NaiveTime::from_hms_opt(21, 0, 0).unwrap());
        assert_eq!(QuietHours::parse_setting("OFF").unwrap(), None);
        assert!(QuietHours::parse_setting("8am-9pm").is_err());
        assert!(QuietHours::parse_setting("09:00-09:00").is_err());
    }

    #[test]
    fn quiet_hours_serialise_as_hh_mm() {
        let q = QuietHours::parse_setting("08:00-21:00").unwrap();
        assert_eq!(
            serde_json::to_value(q).unwrap(),
            serde_json::json!({"start": "08:00", "end": "21:00"})
        );
    }

    #[test]
    fn bulk_list_limit_fits_five_digit_recipient_ids() {
        let mut p = Practice {
            practice_id: "p".into(),
            name: "Bright Smiles".into(),
            timezone: "America/New_York".parse().unwrap(),
            channels: Channels {
                sms_main: PhoneNumber::parse("+14155550100").unwrap(),
                sms_alt: None,
            },
            hourly_cap: 250,
            cap_window_seconds: 3600,
            max_bulk_recipients: MAX_BULK_RECIPIENTS_LIMIT,
            quiet_hours: None,
            help_text: None,
            auto_reply: Default::default(),
            automatic_window: AutomaticWindow::default_setting(),
            links: Links::default(),
            carrier: Default::default(),
        };
        assert!(p.validate().is_ok());
        p.max_bulk_recipients = MAX_BULK_RECIPIENTS_LIMIT + 1;
        assert!(p.validate().unwrap_err().contains("max bulk recipients"));
    }

    #[test]
    fn alt_channel_without_number_is_unavailable() {
        let channels = Channels {
            sms_main: PhoneNumber::parse("+14155550100").unwrap(),
            sms_alt: None,
        };
        assert!(channels.number(Channel::SmsMain).is_some());
        assert!(channels.number(Channel::SmsAlt).is_none());
    }

    #[test]
    fn time_zone_is_stored_by_name_and_an_unknown_one_is_refused() {
        let tz: TimeZone = "America/New_York".parse().unwrap();
        assert_eq!(tz.tz(), chrono_tz::America::New_York);
        assert_eq!(
            serde_json::to_value(tz).unwrap(),
            serde_json::json!("America/New_York")
        );
        let back: TimeZone = serde_json::from_value(serde_json::json!("America/New_York")).unwrap();
        assert_eq!(back, tz);
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
        assert!(serde_json::from_value::<TimeZone>(serde_json::json!("Mars/Olympus")).is_err());
    }
}
