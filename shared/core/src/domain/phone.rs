//! Patient and office phone numbers.
//!
//! Every number the backend stores or hands to Bandwidth is a [`PhoneNumber`]:
//! a North American (NANP, country code +1) number held in E.164 form such as
//! `+14155550142`. Offices type numbers every which way, so [`PhoneNumber::parse`]
//! accepts the usual US spellings and normalises them; anything that could not
//! be texted through a US 10DLC number is refused with an [`InvalidPhone`]
//! explaining what to fix.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A US phone number in E.164 form (`+1` followed by ten digits).
///
/// The area code and exchange are checked against the North American
/// Numbering Plan: each starts with a digit from 2 to 9 and is not an N11
/// service code such as 211 or 911. The 555 exchange is accepted, since the
/// demo data and carrier test numbers use it.
///
/// Serialises as the E.164 string; deserialising runs [`PhoneNumber::parse`],
/// so stored or posted numbers in any accepted spelling come back normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a piece of text is not a phone number the product can text.
///
/// Displays as a sentence fragment meant to follow the number the person
/// typed, e.g. `"415-555-014" is not a valid US phone number: it must have 10
/// digits (area code first)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid US phone number: {reason}")]
pub struct InvalidPhone {
    /// What is wrong with the number, phrased as an instruction to fix it.
    pub reason: &'static str,
}

impl InvalidPhone {
    const fn new(reason: &'static str) -> Self {
        Self { reason }
    }
}

const EMPTY: InvalidPhone =
    InvalidPhone::new("it is empty; enter the 10-digit number, area code first");
const BAD_CHARACTER: InvalidPhone = InvalidPhone::new(
    "it may contain only digits, spaces, dashes, dots, parentheses and a leading +",
);
const MISPLACED_PLUS: InvalidPhone =
    InvalidPhone::new("a + may appear only at the start, before the country code 1");
const NOT_US: InvalidPhone = InvalidPhone::new(
    "only US numbers (country code +1) can be texted; international numbers are not supported",
);
const WRONG_LENGTH: InvalidPhone = InvalidPhone::new("it must have 10 digits (area code first)");
const BAD_AREA_CODE: InvalidPhone = InvalidPhone::new(
    "the area code must start with a digit from 2 to 9 and cannot be a service code like 211 or 911",
);
const BAD_EXCHANGE: InvalidPhone = InvalidPhone::new(
    "the 3 digits after the area code must start with a digit from 2 to 9 and cannot be a service code like 411 or 911",
);

impl PhoneNumber {
    /// Parses a US phone number written the usual ways and normalises it to
    /// E.164.
    ///
    /// Accepted spellings include `+14155550142`, `4155550142`,
    /// `415-555-0142`, `(415) 555-0142`, `+1 415 555 0142`,
    /// `1-415-555-0142` and `415.555.0142`. Surrounding whitespace is
    /// ignored.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidPhone`] when the input is empty, contains letters or
    /// other symbols, has too few or too many digits, carries a country code
    /// other than `+1`, or has an area code or exchange that the North
    /// American Numbering Plan does not allow.
    pub fn parse(input: &str) -> Result<Self, InvalidPhone> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EMPTY);
        }

        let (has_plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };

        let mut digits = String::with_capacity(11);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' => return Err(MISPLACED_PLUS),
                _ => return Err(BAD_CHARACTER),
            }
        }

        let national = if has_plus {
            // After a +, the country code comes first and must be 1.
            match digits.strip_prefix('1') {
                Some(national) => national,
                None if digits.is_empty() => return Err(WRONG_LENGTH),
                None => return Err(NOT_US),
            }
        } else if digits.len() == 11 {
            // 1-415-555-0142: a leading 1 is the US country code.
            digits.strip_prefix('1').ok_or(WRONG_LENGTH)?
        } else {
            digits.as_str()
        };

        if national.len() != 10 {
            return Err(WRONG_LENGTH);
        }
        let bytes = national.as_bytes();
        if !is_nxx(bytes[0], bytes[1], bytes[2]) {
            return Err(BAD_AREA_CODE);
        }
        if !is_nxx(bytes[3], bytes[4], bytes[5]) {
            return Err(BAD_EXCHANGE);
        }

        Ok(Self(format!("+1{national}")))
    }

    /// The number in E.164 form, e.g. `+14155550142`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, for showing a number without revealing all of
    /// it (e.g. "ending in 0142").
    pub fn last_four(&self) -> &str {
        // E.164 +1 numbers are always 12 ASCII characters, so this never
        // falls back.
        self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("")
    }
}

/// Whether three ASCII digits form a NANP "NXX" code: first digit 2-9, and
/// not an N11 service code.
fn is_nxx(first: u8, second: u8, third: u8) -> bool {
    let first_ok = (b'2'..=b'9').contains(&first);
    let is_n11 = second == b'1' && third == b'1';
    first_ok && !is_n11
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhone;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> String {
        PhoneNumber::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse but {e}"))
            .as_str()
            .to_owned()
    }

    fn reason(input: &str) -> &'static str {
        match PhoneNumber::parse(input) {
            Ok(p) => panic!("{input:?} should be refused but parsed as {p}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn e164_us_number_is_kept_as_is() {
        assert_eq!(parsed("+14155550142"), "+14155550142");
    }

    #[test]
    fn bare_ten_digits_are_normalised_to_e164() {
        assert_eq!(parsed("4155550142"), "+14155550142");
    }

    #[test]
    fn dashed_us_number_is_normalised_to_e164() {
        assert_eq!(parsed("415-555-0142"), "+14155550142");
    }

    #[test]
    fn parenthesised_area_code_is_normalised_to_e164() {
        assert_eq!(parsed("(415) 555-0142"), "+14155550142");
        assert_eq!(parsed("(415)555-0142"), "+14155550142");
    }

    #[test]
    fn spaced_number_with_country_code_is_normalised_to_e164() {
        assert_eq!(parsed("+1 415 555 0142"), "+14155550142");
        assert_eq!(parsed("+1 (415) 555-0142"), "+14155550142");
    }

    #[test]
    fn leading_one_without_plus_is_read_as_country_code() {
        assert_eq!(parsed("1-415-555-0142"), "+14155550142");
        assert_eq!(parsed("14155550142"), "+14155550142");
        assert_eq!(parsed("1 (415) 555-0142"), "+14155550142");
    }

    #[test]
    fn dotted_number_is_normalised_to_e164() {
        assert_eq!(parsed("415.555.0142"), "+14155550142");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(parsed("  415-555-0142\n"), "+14155550142");
    }

    #[test]
    fn carrier_test_number_on_555_exchange_is_accepted() {
        assert_eq!(parsed("+14155554720"), "+14155554720");
    }

    #[test]
    fn empty_input_is_refused() {
        assert_eq!(reason(""), EMPTY.reason);
        assert_eq!(reason("   "), EMPTY.reason);
    }

    #[test]
    fn letters_are_refused() {
        assert_eq!(reason("415-555-CALL"), BAD_CHARACTER.reason);
        assert_eq!(reason("call me"), BAD_CHARACTER.reason);
    }

    #[test]
    fn other_symbols_are_refused() {
        assert_eq!(reason("415/555/0142"), BAD_CHARACTER.reason);
        assert_eq!(reason("415-555-0142 x12"), BAD_CHARACTER.reason);
    }

    #[test]
    fn plus_in_the_middle_is_refused() {
        assert_eq!(reason("415+5550142"), MISPLACED_PLUS.reason);
        assert_eq!(reason("++14155550142"), MISPLACED_PLUS.reason);
    }

    #[test]
    fn too_few_digits_are_refused() {
        assert_eq!(reason("555-0142"), WRONG_LENGTH.reason);
        assert_eq!(reason("415-555-014"), WRONG_LENGTH.reason);
        assert_eq!(reason("+1 415 555 014"), WRONG_LENGTH.reason);
        assert_eq!(reason("+"), WRONG_LENGTH.reason);
        assert_eq!(reason("()-"), WRONG_LENGTH.reason);
    }

    #[test]
    fn too_many_digits_are_refused() {
        assert_eq!(reason("415-555-01420"), WRONG_LENGTH.reason);
        assert_eq!(reason("+1 415 555 01420"), WRONG_LENGTH.reason);
        assert_eq!(reason("1141555501420"), WRONG_LENGTH.reason);
    }

    #[test]
    fn eleven_digits_not_starting_with_one_are_refused() {
        assert_eq!(reason("24155550142"), WRONG_LENGTH.reason);
    }

    #[test]
    fn international_numbers_are_refused() {
        assert_eq!(reason("+44 20 7946 0958"), NOT_US.reason);
        assert_eq!(reason("+52 55 1234 5678"), NOT_US.reason);
        assert_eq!(reason("+4155550142"), NOT_US.reason);
    }

    #[test]
    fn area_code_starting_with_zero_or_one_is_refused() {
        assert_eq!(reason("015-555-0142"), BAD_AREA_CODE.reason);
        assert_eq!(reason("+1 115 555 0142"), BAD_AREA_CODE.reason);
    }

    #[test]
    fn n11_area_code_is_refused() {
        assert_eq!(reason("911-555-0142"), BAD_AREA_CODE.reason);
        assert_eq!(reason("211-555-0142"), BAD_AREA_CODE.reason);
    }

    #[test]
    fn exchange_starting_with_zero_or_one_is_refused() {
        assert_eq!(reason("415-055-0142"), BAD_EXCHANGE.reason);
        assert_eq!(reason("415-155-0142"), BAD_EXCHANGE.reason);
    }

    #[test]
    fn n11_exchange_is_refused() {
        assert_eq!(reason("415-911-0142"), BAD_EXCHANGE.reason);
        assert_eq!(reason("415-411-0142"), BAD_EXCHANGE.reason);
    }

    #[test]
    fn n1x_codes_that_are_not_n11_are_accepted() {
        assert_eq!(parsed("212-512-0142"), "+12125120142");
        assert_eq!(parsed("219-219-0142"), "+12192190142");
    }

    #[test]
    fn error_message_tells_the_person_what_to_fix() {
        let err = PhoneNumber::parse("415-555-014").expect_err("too short");
        assert_eq!(
            err.to_string(),
            "is not a valid US phone number: it must have 10 digits (area code first)"
        );
    }

    #[test]
    fn last_four_is_the_final_four_digits() {
        let phone = PhoneNumber::parse("(415) 555-0142").expect("valid");
        assert_eq!(phone.last_four(), "0142");
    }

    #[test]
    fn display_shows_e164() {
        let phone = PhoneNumber::parse("415.555.0142").expect("valid");
        assert_eq!(phone.to_string(), "+14155550142");
    }

    #[test]
    fn same_number_typed_differently_is_equal() {
        let a = PhoneNumber::parse("415-555-0142").expect("valid");
        let b = PhoneNumber::parse("+1 (415) 555 0142").expect("valid");
        assert_eq!(a, b);
    }

    #[test]
    fn serialises_as_plain_e164_string() {
        let phone = PhoneNumber::parse("415-555-0142").expect("valid");
        let json = serde_json::to_string(&phone).expect("serialise");
        assert_eq!(json, "\"+14155550142\"");
    }

    #[test]
    fn deserialising_normalises_the_number() {
        let phone: PhoneNumber = serde_json::from_str("\"(415) 555-0142\"").expect("deserialise");
        assert_eq!(phone.as_str(), "+14155550142");
    }

    #[test]
    fn deserialising_an_invalid_number_fails_with_the_reason() {
        let err = serde_json::from_str::<PhoneNumber>("\"911\"").expect_err("invalid");
        assert!(
            err.to_string().contains("is not a valid US phone number"),
            "unexpected error: {err}"
        );
    }

    #[test]
    fn converts_into_its_e164_string() {
        let phone = PhoneNumber::parse("4155550142").expect("valid");
        assert_eq!(String::from(phone), "+14155550142");
    }
}
