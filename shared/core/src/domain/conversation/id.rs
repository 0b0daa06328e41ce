//! A conversation's id, derived from the patient's number.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::error::AppError;
use crate::domain::phone::PhoneNumber;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::test_support::*;
    use crate::domain::error::ErrorKind;

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
}
