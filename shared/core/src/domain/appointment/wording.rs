//! What reminders and acknowledgments say: dates and times in the
//! practice's zone ("Tue, Dec 8", "9:30 AM"), and one text naming every
//! appointment of a family that shares a number.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Appointment;
use crate::domain::error::AppError;
use crate::domain::merge::{self, MergeData};
use crate::domain::practice::Practice;

/// The text of a reminder staff send without writing one.
pub const DEFAULT_MANUAL_REMINDER: &str =
    "Hi {first_name}, a reminder from {practice_name} of your appointment on {appointment_date} at {appointment_time}.";

/// "Tue, Dec 8".
pub fn date(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%a, %b %-d").to_string()
}

/// "9:30 AM".
pub fn time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%-I:%M %p").to_string()
}

/// "A", "A and B", "A, B and C" — each distinct value once, in order.
pub fn join(values: impl IntoIterator<Item = String>) -> String {
    let mut distinct: Vec<String> = Vec::new();
    for v in values {
        if !v.trim().is_empty() && !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    match distinct.len() {
        0 => String::new(),
        1 => distinct.remove(0),
        n => format!("{} and {}", distinct[..n - 1].join(", "), distinct[n - 1]),
    }
}

/// One appointment and the names of the patient it is for.
#[derive(Debug, Clone, Copy)]
pub struct ForPatient<'a> {
    #[allow(missing_docs)]
    pub appointment: &'a Appointment,
    #[allow(missing_docs)]
    pub first_name: &'a str,
    #[allow(missing_docs)]
    pub last_name: Option<&'a str>,
}

/// Renders a reminder's text for one or several appointments of one
/// number: each field names every appointment's value ("Ana and Ben",
/// "9:30 AM and 10:30 AM"). A field with no value is refused
/// (`missing_merge_data`).
pub fn render_reminder(
    text: &str,
    practice: &Practice,
    appointments: &[ForPatient<'_>],
) -> Result<String, AppError> {
    let tz = practice.timezone.tz();
    let each =
        |f: &dyn Fn(&ForPatient<'_>) -> Option<String>| join(appointments.iter().filter_map(f));
    let first_name = each(&|a| Some(a.first_name.to_string()));
    let last_name = each(&|a| a.last_name.map(str::to_string));
    let dates = each(&|a| Some(date(a.appointment.starts_at, tz)));
    let times = each(&|a| Some(time(a.appointment.starts_at, tz)));
    let providers = each(&|a| a.appointment.provider.clone());
    let locations = each(&|a| a.appointment.location.clone());
    let practice_phone = practice.channels.sms_main.to_string();
    let data = MergeData {
        first_name: Some(&first_name),
        last_name: Some(&last_name),
        practice_name: Some(&practice.name),
        practice_phone: Some(&practice_phone),
        appointment_date: Some(&dates),
        appointment_time: Some(&times),
        provider: Some(&providers),
        location: Some(&locations),
        ..MergeData::default()
    };
    merge::check_fields_in(text, "text", &merge::reminder_fields())?;
    merge::render(text, &data)
}

/// The short text that acknowledges a confirmation, naming each
/// appointment's date and time.
pub fn acknowledgment(practice: &Practice, appointments: &[&Appointment]) -> String {
    let tz = practice.timezone.tz();
    let when = join(
        appointments
            .iter()
            .map(|a| format!("{} at {}", date(a.starts_at, tz), time(a.starts_at, tz))),
    );
    let what = if appointments.len() > 1 {
        "appointments on"
    } else {
        "appointment on"
    };
    let verb = if appointments.len() > 1 { "are" } else { "is" };
    format!(
        "Thank you! Your {what} {when} {verb} confirmed. - {}",
        practice.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::appointment::{AppointmentStatus, Confirmation};
    use crate::domain::phone::PhoneNumber;
    use crate::testing::sample_practice;

    fn appointment(id: &str, starts_at: &str) -> Appointment {
        Appointment {
            practice_id: "p".into(),
            appointment_id: id.into(),
            patient_id: id.into(),
            phone: PhoneNumber::parse("+14155550142").unwrap(),
            starts_at: DateTime::parse_from_rfc3339(starts_at)
                .unwrap()
                .with_timezone(&Utc),
            duration_minutes: None,
            provider: Some("Dr. Lee".into()),
            location: None,
            status: AppointmentStatus::Scheduled,
            confirmation: Confirmation::Unconfirmed,
            confirmed_at: None,
            updated_at: Utc::now(),
            reminders: vec![],
            version: 0,
        }
    }

    #[test]
    fn a_reminder_names_the_date_and_time_in_the_practice_zone() {
        let practice = sample_practice("p");
        let a = appointment("a", "2026-12-08T14:30:00Z");
        let one = [ForPatient {
            appointment: &a,
            first_name: "Ana",
            last_name: None,
        }];
        assert_eq!(
            render_reminder(
                "Hi {first_name}, {appointment_date} at {appointment_time} with {provider}.",
                &practice,
                &one
            )
            .unwrap(),
            "Hi Ana, Tue, Dec 8 at 9:30 AM with Dr. Lee."
        );
        let e = render_reminder("At {location}", &practice, &one).unwrap_err();
        assert_eq!(e.code, "missing_merge_data");
    }

    #[test]
    fn a_family_gets_one_text_naming_everyone() {
        let practice = sample_practice("p");
        let (a, b) = (
            appointment("a", "2026-12-08T14:30:00Z"),
            appointment("b", "2026-12-08T15:30:00Z"),
        );
        let both = [
            ForPatient {
                appointment: &a,
                first_name: "Ana",
                last_name: None,
            },
            ForPatient {
                appointment: &b,
                first_name: "Ben",
                last_name: None,
            },
        ];
        assert_eq!(
            render_reminder(
                "Hi {first_name}: {appointment_date}, {appointment_time}.",
                &practice,
                &both
            )
            .unwrap(),
            "Hi Ana and Ben: Tue, Dec 8, 9:30 AM and 10:30 AM."
        );
        assert_eq!(
            acknowledgment(&practice, &[&a, &b]),
            format!(
                "Thank you! Your appointments on Tue, Dec 8 at 9:30 AM and Tue, Dec 8 at 10:30 AM are confirmed. - {}",
                practice.name
            )
        );
    }
}
