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
        super::limits::check_name(&first_name, "first_name")?;
        if let Some(last) = &last_name {
            super::limits::check_name(last, "last_name")?;
        }
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
    fn names_longer_than_100_characters_are_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let input = |first: String, last: Option<String>| PatientInput {
            first_name: first,
            last_name: last,
            phone: "+14155550142".into(),
            birth_date: None,
        };
        let long = "é".repeat(101);
        let e = input(long.clone(), None)
            .into_patient("p-1", today, None)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("first_name"))
        );
        let e = input("Ana".into(), Some(long))
            .into_patient("p-1", today, None)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("last_name"))
        );
        input("é".repeat(100), Some("D".repeat(100)))
            .into_patient("p-1", today, None)
            .unwrap();
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

/// Age in whole years on `today` (a birthday counts from its day; someone
/// born on 29 February has their birthday on 1 March in common years).
pub fn age_on(birth_date: NaiveDate, today: NaiveDate) -> Option<u32> {
    use chrono::Datelike;
    if birth_date > today {
        return None;
    }
    let mut years = today.year() - birth_date.year();
    let had_birthday = (today.month(), today.day()) >= (birth_date.month(), birth_date.day());
    if !had_birthday {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// An age bound that is not a whole number of years, 0 or more.
fn bad_bound(field: &str) -> AppError {
    let name = field.rsplit('.').next().unwrap_or(field);
    AppError::invalid(
        "invalid_field",
        format!("{name} must be a whole number of years, 0 or more"),
    )
    .at(field)
}

/// `?min_age=&max_age=` of the patient list: whole years, inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgeFilter {
    /// Youngest age included.
    pub min_age: Option<u32>,
    /// Oldest age included.
    pub max_age: Option<u32>,
}

impl AgeFilter {
    /// Reads the two query values, refusing negative, non-numeric or
    /// reversed bounds by name.
    pub fn parse(min_age: Option<&str>, max_age: Option<&str>) -> Result<Self, AppError> {
        let read = |name: &str, v: Option<&str>| -> Result<Option<i64>, AppError> {
            v.filter(|s| !s.is_empty())
                .map(|s| s.parse::<i64>().map_err(|_| bad_bound(name)))
                .transpose()
        };
        Self::from_years(read("min_age", min_age)?, read("max_age", max_age)?, "")
    }

    /// The filter from bounds in whole years, refusing negative or reversed
    /// ones; errors name the field `{path}min_age` or `{path}max_age`
    /// (`audience.` in a bulk request, nothing in a query string).
    pub fn from_years(
        min_age: Option<i64>,
        max_age: Option<i64>,
        path: &str,
    ) -> Result<Self, AppError> {
        let years = |v: Option<i64>, name: &str| {
            v.map(|n| u32::try_from(n).map_err(|_| bad_bound(&format!("{path}{name}"))))
                .transpose()
        };
        let filter = Self {
            min_age: years(min_age, "min_age")?,
            max_age: years(max_age, "max_age")?,
        };
        if let (Some(lo), Some(hi)) = (filter.min_age, filter.max_age) {
            if lo > hi {
                return Err(AppError::invalid(
                    "invalid_field",
                    "min_age must not be more than max_age",
                )
                .at(format!("{path}min_age")));
            }
        }
        Ok(filter)
    }

    /// Whether any bound is set.
    pub fn is_set(&self) -> bool {
        self.min_age.is_some() || self.max_age.is_some()
    }

    /// Whether `patient` matches on `today`. With a bound set, a patient
    /// without a birth date never matches.
    pub fn matches(&self, patient: &Patient, today: NaiveDate) -> bool {
        if !self.is_set() {
            return true;
        }
        let Some(age) = patient.birth_date.and_then(|b| age_on(b, today)) else {
            return false;
        };
        self.min_age.is_none_or(|lo| age >= lo) && self.max_age.is_none_or(|hi| age <= hi)
    }
}

#[cfg(test)]
mod age_tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn age_counts_whole_years_from_the_birthday() {
        assert_eq!(age_on(d("1990-04-02"), d("2026-04-01")), Some(35));
        assert_eq!(age_on(d("1990-04-02"), d("2026-04-02")), Some(36));
        assert_eq!(age_on(d("2008-02-29"), d("2026-02-28")), Some(17));
        assert_eq!(age_on(d("2008-02-29"), d("2026-03-01")), Some(18));
        assert_eq!(age_on(d("2030-01-01"), d("2026-01-01")), None);
    }

    #[test]
    fn filter_bounds_are_inclusive_and_need_a_birth_date() {
        let p = |birth: Option<&str>| Patient {
            patient_id: "p".into(),
            first_name: "A".into(),
            last_name: None,
            phone: crate::domain::phone::PhoneNumber::parse("+14155550142").unwrap(),
            birth_date: birth.map(d),
            sms_opted_out: false,
            sms_undeliverable: None,
        };
        let today = d("2026-11-26");
        let f = AgeFilter::parse(Some("18"), Some("64")).unwrap();
        assert!(f.matches(&p(Some("2008-11-26")), today), "18 today");
        assert!(
            !f.matches(&p(Some("2008-11-27")), today),
            "17 until tomorrow"
        );
        assert!(f.matches(&p(Some("1961-11-27")), today), "64");
        assert!(!f.matches(&p(Some("1961-11-26")), today), "65 today");
        assert!(!f.matches(&p(None), today));
        assert!(
            AgeFilter::default().matches(&p(None), today),
            "no filter lists everyone"
        );
    }

    #[test]
    fn bad_bounds_are_named() {
        assert_eq!(
            AgeFilter::parse(Some("-1"), None)
                .unwrap_err()
                .field
                .as_deref(),
            Some("min_age")
        );
        assert_eq!(
            AgeFilter::parse(None, Some("old"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("max_age")
        );
        assert_eq!(
            AgeFilter::parse(Some("65"), Some("18"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("min_age")
        );
    }
}
