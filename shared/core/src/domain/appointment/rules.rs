//! Reminder rules: how long before an appointment a reminder goes, what it
//! says, and whether it asks the patient to confirm.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::domain::error::AppError;
use crate::domain::merge;
use crate::domain::patient::validate_id;
use crate::domain::practice::Channel;
use crate::domain::text::{self, MAX_TEXT_CHARS};

/// Shortest `before` a rule may have.
pub const MIN_BEFORE: Duration = Duration::minutes(15);
/// Longest `before` a rule may have.
pub const MAX_BEFORE: Duration = Duration::days(30);
/// At most this many rules per practice.
pub const MAX_RULES: usize = 10;
/// What a reminder that asks to confirm ends with, unless its text already
/// says how.
pub const CONFIRM_REQUEST: &str = "Reply C to confirm.";

/// One reminder rule of a practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRule {
    /// `confirm-2d`.
    pub rule_id: String,
    #[allow(missing_docs)]
    pub enabled: bool,
    /// How long before the start, as ISO 8601 (`P2D`, `PT2H`).
    pub before: String,
    /// The text (with merge fields), or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// Ends the text with [`CONFIRM_REQUEST`] and lets a yes confirm.
    pub ask_to_confirm: bool,
    /// The number it goes from.
    #[serde(default)]
    pub channel: Channel,
}

impl ReminderRule {
    /// `before` as a duration (rules are checked when stored).
    pub fn before(&self) -> Duration {
        parse_before(&self.before).unwrap_or(Duration::days(2))
    }

    /// The API's view.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.rule_id,
            "enabled": self.enabled,
            "before": self.before,
            "text": self.text,
            "template_id": self.template_id,
            "ask_to_confirm": self.ask_to_confirm,
            "channel": self.channel,
        })
    }

    /// Reads and checks `PUT /v1/reminder-rules/{rule_id}`; every problem
    /// names its field. A template's existence is checked by the caller.
    pub fn parse(rule_id: &str, body: &serde_json::Value) -> Result<Self, AppError> {
        validate_id(rule_id, "rule_id")?;
        let object = body.as_object().ok_or_else(|| {
            AppError::bad_request("invalid_json", "the body must be a JSON object")
        })?;
        let invalid =
            |field: &str, m: &str| AppError::invalid("invalid_field", m.to_string()).at(field);
        for name in object.keys() {
            if ![
                "enabled",
                "before",
                "text",
                "template_id",
                "ask_to_confirm",
                "channel",
            ]
            .contains(&name.as_str())
            {
                return Err(AppError::bad_request(
                    "unknown_field",
                    format!("{name} is not a field of a reminder rule"),
                )
                .at(name.as_str()));
            }
        }
        let enabled = match object.get("enabled") {
            None => true,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| invalid("enabled", "enabled must be true or false"))?,
        };
        let ask_to_confirm = match object.get("ask_to_confirm") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| invalid("ask_to_confirm", "ask_to_confirm must be true or false"))?,
        };
        let before = object
            .get("before")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                invalid(
                    "before",
                    "before is required: an ISO 8601 duration such as P2D or PT2H",
                )
            })?;
        parse_before(before).ok_or_else(|| {
            invalid(
                "before",
                "before must be an ISO 8601 duration from PT15M to P30D, such as P2D or PT2H",
            )
        })?;
        let string = |name: &str| -> Result<Option<String>, AppError> {
            match object.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(name, &format!("{name} must be a string"))),
            }
        };
        let (text, template_id) = (string("text")?, string("template_id")?);
        match (&text, &template_id) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "template_id",
                    "give either text or template_id, not both",
                ))
            }
            (None, None) => {
                return Err(
                    AppError::invalid("invalid_text", "text or template_id is required").at("text"),
                )
            }
            (Some(t), None) => {
                text::validate_text(t)
                    .map_err(|e| AppError::invalid("invalid_text", e.to_string()).at("text"))?;
                merge::check_fields_in(t, "text", &merge::reminder_fields())?;
            }
            (None, Some(id)) => validate_id(id, "template_id")?,
        }
        let channel = match string("channel")? {
            None => Channel::SmsMain,
            Some(c) => Channel::parse(&c)
                .ok_or_else(|| invalid("channel", "channel must be sms_main or sms_alt"))?,
        };
        Ok(Self {
            rule_id: rule_id.to_string(),
            enabled,
            before: before.to_string(),
            text,
            template_id,
            ask_to_confirm,
            channel,
        })
    }
}

/// The two rules a practice starts with: two days before, asking to
/// confirm, and two hours before.
pub fn default_rules() -> Vec<ReminderRule> {
    vec![
        ReminderRule {
            rule_id: "confirm-2d".into(),
            enabled: true,
            before: "P2D".into(),
            text: Some(
                "Hi {first_name}, this is {practice_name}: a reminder of your appointment on {appointment_date} at {appointment_time}."
                    .into(),
            ),
            template_id: None,
            ask_to_confirm: true,
            channel: Channel::SmsMain,
        },
        ReminderRule {
            rule_id: "same-day-2h".into(),
            enabled: true,
            before: "PT2H".into(),
            text: Some(
                "Hi {first_name}, see you today at {appointment_time} at {practice_name}.".into(),
            ),
            template_id: None,
            ask_to_confirm: false,
            channel: Channel::SmsMain,
        },
    ]
}

/// Parses an ISO 8601 duration of days, hours, minutes (and weeks) within
/// [`MIN_BEFORE`]..=[`MAX_BEFORE`]: `P2D`, `PT2H`, `P1DT12H`, `PT90M`, `P1W`.
pub fn parse_before(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        let mut last_unit = 0usize;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units.iter().position(|(u, _)| *u == c)?;
            if number.is_empty() || number.len() > 6 || position < last_unit {
                return None;
            }
            last_unit = position + 1;
            let n: i64 = number.parse().ok()?;
            total += Duration::seconds(n * units[position].1);
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        take(t, &[('H', 3_600), ('M', 60)])?;
    }
    (any && total >= MIN_BEFORE && total <= MAX_BEFORE).then_some(total)
}

/// `text` ending with [`CONFIRM_REQUEST`], unless it already tells the
/// patient how to confirm.
pub fn with_confirm_request(text: &str) -> String {
    let lower = text.to_lowercase();
    let says_how = [
        "reply c",
        "reply y",
        "reply yes",
        "reply confirm",
        "text c ",
        "text yes",
    ]
    .iter()
    .any(|p| lower.contains(p));
    if says_how {
        return text.to_string();
    }
    let trimmed = text.trim_end();
    let joined = format!("{trimmed} {CONFIRM_REQUEST}");
    if joined.chars().count() > MAX_TEXT_CHARS {
        return text.to_string();
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn before_is_an_iso_duration_from_fifteen_minutes_to_thirty_days() {
        assert_eq!(parse_before("P2D"), Some(Duration::days(2)));
        assert_eq!(parse_before("PT2H"), Some(Duration::hours(2)));
        assert_eq!(parse_before("P1DT12H"), Some(Duration::hours(36)));
        assert_eq!(parse_before("PT15M"), Some(Duration::minutes(15)));
        assert_eq!(parse_before("P1W"), Some(Duration::days(7)));
        for bad in [
            "PT14M", "P31D", "P", "PT", "2D", "P2H", "PT2D", "P-1D", "PT2M2H", "P1Y",
        ] {
            assert_eq!(parse_before(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_rule_needs_a_text_or_template_with_reminder_fields_only() {
        let rule = ReminderRule::parse(
            "r1",
            &json!({"enabled": true, "before": "P1D", "text": "See you {appointment_date}", "ask_to_confirm": true}),
        )
        .unwrap();
        assert_eq!(rule.before(), Duration::days(1));
        for (body, field) in [
            (json!({"before": "P1D"}), "text"),
            (
                json!({"before": "P1D", "text": "x", "template_id": "t"}),
                "template_id",
            ),
            (json!({"before": "P99D", "text": "x"}), "before"),
            (json!({"text": "x"}), "before"),
            (json!({"before": "P1D", "text": "{review_link}"}), "text"),
            (
                json!({"before": "P1D", "text": "x", "channel": "fax"}),
                "channel",
            ),
            (
                json!({"before": "P1D", "text": "x", "sound": "loud"}),
                "sound",
            ),
        ] {
            let e = ReminderRule::parse("r1", &body).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn asking_to_confirm_adds_how_unless_the_text_says_it() {
        assert_eq!(
            with_confirm_request("See you Tue."),
            "See you Tue. Reply C to confirm."
        );
        assert_eq!(
            with_confirm_request("See you Tue. Reply YES to confirm"),
            "See you Tue. Reply YES to confirm"
        );
    }
}
