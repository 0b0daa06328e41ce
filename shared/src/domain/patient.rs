//! Patients the office syncs from its practice-management system.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::phone::PhoneNumber;

/// A patient as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// The office's own id for the patient.
    pub patient_id: String,
    /// Used by `{first_name}`.
    pub first_name: String,
    /// Used by `{last_name}`.
    pub last_name: Option<String>,
    /// Mobile number, E.164.
    pub phone: PhoneNumber,
    /// For the age filter.
    pub birth_date: Option<NaiveDate>,
    /// The patient's number texted STOP; nothing is sent until START.
    /// Derived from the practice's opt-out record when read.
    #[serde(default)]
    pub sms_opted_out: bool,
    /// The carrier said this number cannot receive texts; bulk sends skip it
    /// until the office changes the number.
    #[serde(default)]
    pub sms_undeliverable: Option<UndeliverableNumber>,
}

/// Why a patient's number is known not to receive texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliverableNumber {
    /// The number it applies to (cleared when the number changes).
    pub phone: PhoneNumber,
    /// Carrier error code (`"4720"`).
    pub code: String,
    /// Catalog title.
    pub title: String,
    /// What the office should do.
    pub resolution: String,
    /// When the carrier reported it.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Body of `PUT /v1/patients/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    /// Required, non-empty.
    pub first_name: String,
    /// Optional.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Any accepted phone form; stored as E.164.
    pub phone: String,
    /// `YYYY-MM-DD`, optional.
    #[serde(default)]
    pub birth_date: Option<String>,
}

/// Longest id accepted for patients and other office-chosen ids.
pub const MAX_ID_LEN: usize = 64;

/// Checks an office-chosen id (path segment): 1–64 of `A-Z a-z 0-9 - _ .`.
pub fn validate_id(id: &str, field: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "invalid_id",
            format!("{field} must be 1 to {MAX_ID_LEN} letters, digits, '-', '_' or '.'"),
        )
        .at(field))
    }
}

impl PatientInput {
    /// Validates the input and builds the patient, keeping an existing opt-out.
    /// `previous` is the stored patient, if any: an undeliverable mark stays
    /// only while the number is unchanged.
    pub fn into_patient(
        self,
        patient_id: &str,
        today: NaiveDate,
        previous: Option<&Patient>,
    ) -> Result<Patient, AppError> {
        validate_id(patient_id, "patient_id")?;
        let first_name = self.first_name.trim().to_string();
        if first_name.is_empty() {
            return Err(
                AppError::invalid("invalid_field", "first_name must not be empty").at("first_name"),
            );
        }
        let last_name = self
            .last_name
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let phone = PhoneNumber::parse(&self.phone)
            .map_err(|e| AppError::invalid("invalid_phone", format!("phone {e}")).at("phone"))?;
        let birth_date = match self.birth_date {
            None => None,
            Some(s) => {
                let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
                    AppError::invalid("invalid_field", "birth_date must be a date like 1990-04-02")
                        .at("birth_date")
                })?;
                if d > today {
                    return Err(AppError::invalid(
                        "invalid_field",
                        "birth_date must not be in the future",
                    )
                    .at("birth_date"));
                }
                Some(d)
            }
        };
        let sms_undeliverable = previous
            .and_then(|p| p.sms_undeliverable.clone())
            .filter(|u| u.phone == phone);
        Ok(Patient {
            patient_id: patient_id.to_string(),
            first_name,
            last_name,
            phone,
            birth_date,
            sms_opted_out: false,
            sms_undeliverable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn input(phone: &str) -> PatientInput {
        PatientInput {
            first_name: " Ana ".into(),
            last_name: Some("Diaz".into()),
            phone: phone.into(),
            birth_date: Some("1990-04-02".into()),
        }
    }

    #[test]
    fn patient_phone_is_stored_in_e164() {
        let p = input("(415) 555-0123")
            .into_patient("p-1", today(), None)
            .unwrap();
        assert_eq!(p.phone.as_str(), "+14155550123");
        assert_eq!(p.first_name, "Ana");
    }

    #[test]
    fn invalid_phone_names_the_field() {
        let e = input("12345")
            .into_patient("p-1", today(), None)
            .unwrap_err();
        assert_eq!(e.code, "invalid_phone");
        assert_eq!(e.field.as_deref(), Some("phone"));
    }

    #[test]
    fn future_birth_date_is_refused() {
        let mut i = input("4155550123");
        i.birth_date = Some("2030-01-01".into());
        let e = i.into_patient("p-1", today(), None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("birth_date"));
    }

    #[test]
    fn undeliverable_mark_is_cleared_when_the_number_changes() {
        let mut old = input("4155550123")
            .into_patient("p-1", today(), None)
            .unwrap();
        old.sms_undeliverable = Some(UndeliverableNumber {
            phone: old.phone.clone(),
            code: "4720".into(),
            title: "t".into(),
            resolution: "r".into(),
            since: chrono::Utc::now(),
        });
        let same = input("415-555-0123")
            .into_patient("p-1", today(), Some(&old))
            .unwrap();
        assert!(same.sms_undeliverable.is_some());
        let changed = input("415-555-0199")
            .into_patient("p-1", today(), Some(&old))
            .unwrap();
        assert!(changed.sms_undeliverable.is_none());
    }

    #[test]
    fn ids_with_slashes_or_too_long_are_refused() {
        assert!(validate_id("p-1_a.b", "patient_id").is_ok());
        assert!(validate_id("a/b", "patient_id").is_err());
        assert!(validate_id("", "patient_id").is_err());
        assert!(validate_id(&"x".repeat(65), "patient_id").is_err());
    }
}
