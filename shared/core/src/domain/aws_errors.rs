//! The error catalog of AWS End User Messaging SMS: what each outcome AWS
//! reports means and what the office should do, in the same words as the
//! Bandwidth catalog (`carrier_errors`).
//!
//! AWS has no numeric codes. A text it accepted and could not deliver is
//! reported by a configuration-set event whose `eventType` names the
//! outcome (`TEXT_INVALID`, `TEXT_BLOCKED`, …); a send it refused at once
//! answers an API error whose `Reason` (or, without one, its exception
//! name) says why. Both are the `code` here, as AWS spells them.
//!
//! AWS tells less than Bandwidth: one `TEXT_INVALID` stands for Bandwidth's
//! invalid destination (4720), unallocated number (4406) *and* landline
//! (4700) — AWS has no landline-specific outcome — and its events carry no
//! carrier-specific code. `bandwidth` lists the Bandwidth codes each entry
//! stands in for (docs/carriers.md has the table).

/// One AWS outcome, explained for an office manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsErrorInfo {
    /// AWS's name for it: an event type (`TEXT_INVALID`) or an API error's
    /// reason (`DESTINATION_PHONE_NUMBER_OPTED_OUT`) or exception name.
    pub code: &'static str,
    /// Short name of the error.
    pub title: &'static str,
    /// What happened, in plain words.
    pub description: &'static str,
    /// What the office should do next.
    pub resolution: &'static str,
    /// Sending the same message again will fail the same way.
    pub permanent: bool,
    /// AWS still charges for the message (it was handed to a carrier).
    pub billable: bool,
    /// The patient's number itself cannot receive texts (the patient is
    /// marked, as for Bandwidth's 4720, 4700 and 4406).
    pub undeliverable_number: bool,
    /// The Bandwidth codes this outcome stands in for (empty: none).
    pub bandwidth: &'static [u16],
}

const CONTACT_SUPPORT: &str = "Contact support and mention this error code.";
const RETRY: &str = "This is usually temporary. Send the message again; if it keeps failing, contact support and mention this error code.";

/// The send-time refusal of a number on the AWS account's opt-out list.
pub const OPTED_OUT: &str = "DESTINATION_PHONE_NUMBER_OPTED_OUT";

/// Every known AWS outcome, sorted by code (checked by the tests, relied on
/// by [`lookup`]).
static CATALOG: &[AwsErrorInfo] = &[
    AwsErrorInfo {
        code: "ACCOUNT_DISABLED",
        title: "AWS account cannot send texts",
        description: "AWS refused the message because texting is disabled for the practice's AWS account.",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4001],
    },
    AwsErrorInfo {
        code: "AccessDeniedException",
        title: "Not allowed to send from this number",
        description: "AWS refused the request: this system is not permitted to send from the practice's number or with its configuration set.",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4493],
    },
    AwsErrorInfo {
        code: OPTED_OUT,
        title: "Recipient opted out (replied STOP)",
        description: "The patient's number is on the practice's AWS opt-out list, so AWS did not send the message.",
        resolution: "Do not text this patient again unless they opt back in; reach them another way, such as a phone call. If they want texts again, they can reply START to the office's number.",
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4775],
    },
    AwsErrorInfo {
        code: "INSUFFICIENT_ACCOUNT_REPUTATION",
        title: "Sending paused by AWS",
        description: "AWS refused the message because the practice's AWS account has been sending texts that recipients or carriers reject, and its sending is restricted.",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4481],
    },
    AwsErrorInfo {
        code: "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT",
        title: "Monthly texting budget reached",
        description: "AWS did not send the message because the practice's AWS account has reached its monthly spending limit for texts.",
        resolution: "Ask your administrator to raise the AWS account's text spending limit, then send the message again.",
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[],
    },
    AwsErrorInfo {
        code: "ResourceNotFoundException",
        title: "Sending number not set up",
        description: "AWS does not know the office's sending number or the configuration set this system sends with in the practice's AWS account.",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4403, 4405],
    },
    AwsErrorInfo {
        code: "TEXT_BLOCKED",
        title: "Blocked by the patient's phone or carrier",
        description: "The patient's phone or carrier is blocking texts to this number.",
        resolution: "Reach the patient another way, such as a phone call, and ask them to allow texts from the office's number.",
        permanent: true,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4482, 4750, 4772],
    },
    AwsErrorInfo {
        code: "TEXT_CARRIER_BLOCKED",
        title: "Carrier blocked the office's number",
        description: "The patient's carrier blocked the message, usually because the office's number or its registered texting campaign (10DLC) is not accepted by that carrier.",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4773, 4774, 4795, 4740, 4780, 4781, 4785],
    },
    AwsErrorInfo {
        code: "TEXT_CARRIER_UNREACHABLE",
        title: "Carrier service unavailable",
        description: "The patient's carrier had a temporary problem and could not take the message.",
        resolution: RETRY,
        permanent: false,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[5600, 5610, 5620, 5630, 5650],
    },
    AwsErrorInfo {
        code: "TEXT_INVALID",
        title: "Carrier rejected as invalid destination address",
        description: "The patient's number is not a valid mobile number: it does not exist, was entered incorrectly, or cannot receive texts (AWS does not say whether it is a landline).",
        resolution: "The number is invalid or cannot receive texts, such as a landline. Check the number with the patient, correct it, and send again.",
        permanent: true,
        billable: true,
        undeliverable_number: true,
        bandwidth: &[4720, 4700, 4406, 4303, 4404, 4721],
    },
    AwsErrorInfo {
        code: "TEXT_INVALID_MESSAGE",
        title: "Message malformed for carrier",
        description: "The patient's carrier could not accept the message as written, for example because of its length or characters it does not accept.",
        resolution: "Check the message text, remove unusual characters, and send it again.",
        permanent: true,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4301, 4751, 4752],
    },
    AwsErrorInfo {
        code: "TEXT_PROTECT_BLOCKED",
        title: "Blocked by the account's own protection rules",
        description: "AWS did not deliver the message because the practice's AWS account blocks texts to this destination (an SMS protect configuration).",
        resolution: CONTACT_SUPPORT,
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[],
    },
    AwsErrorInfo {
        code: "TEXT_SPAM",
        title: "Carrier rejected as spam",
        description: "The patient's carrier blocked the message as spam, because of its content or the sending number's history.",
        resolution: "Review the wording (avoid link shorteners and promotional language) and send again. If it keeps happening, contact support.",
        permanent: true,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4470, 4770, 4771],
    },
    AwsErrorInfo {
        code: "TEXT_TTL_EXPIRED",
        title: "Message expired",
        description: "The message could not be delivered before its time to live ran out, so it was given up.",
        resolution: "If the message still matters, send it again.",
        permanent: false,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4360],
    },
    AwsErrorInfo {
        code: "TEXT_UNKNOWN",
        title: "Delivery not confirmed",
        description: "AWS got no final report from the patient's carrier within 72 hours, or an error it could not identify. The message may or may not have reached the patient.",
        resolution: "Ask the patient whether they received the message before sending it again. If this happens often, contact support.",
        permanent: false,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[9902, 9999, 5999],
    },
    AwsErrorInfo {
        code: "TEXT_UNREACHABLE",
        title: "Destination subscriber unavailable",
        description: "The patient's phone could not take the message: it may be switched off, out of reach, or its message storage is full.",
        resolution: "Call the patient, and check that their phone is on and can receive texts before sending again.",
        permanent: false,
        billable: true,
        undeliverable_number: false,
        bandwidth: &[4701, 4702, 4730],
    },
    AwsErrorInfo {
        code: "ValidationException",
        title: "AWS refused the message",
        description: "AWS refused the send request as invalid, for example because the destination country is not enabled for the account.",
        resolution: "Only US numbers can be texted. Check the patient's number; if it is correct, contact support and mention this error code.",
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[4432],
    },
];

/// Every known AWS outcome, sorted by code.
pub fn catalog() -> &'static [AwsErrorInfo] {
    CATALOG
}

/// The catalog entry for `code`, if it is a known outcome.
pub fn lookup(code: &str) -> Option<&'static AwsErrorInfo> {
    CATALOG
        .binary_search_by(|info| info.code.cmp(code))
        .ok()
        .and_then(|index| CATALOG.get(index))
}

/// The catalog entry for `code`, or a generic "unknown" entry (permanent,
/// not billable, not marking the number) for one the catalog does not list.
pub fn describe(code: &str) -> AwsErrorInfo {
    lookup(code).copied().unwrap_or(AwsErrorInfo {
        code: "unknown",
        title: "Unknown carrier error",
        description: "AWS reported an outcome that this system does not recognize.",
        resolution: "Contact support and give them the carrier error code shown with this message.",
        permanent: true,
        billable: false,
        undeliverable_number: false,
        bandwidth: &[],
    })
}

/// The AWS outcome that stands where Bandwidth's `code` stands, if AWS has
/// one (the carrier simulator plays each Bandwidth code's counterpart).
pub fn counterpart_of_bandwidth(code: u16) -> Option<&'static AwsErrorInfo> {
    CATALOG.iter().find(|info| info.bandwidth.contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::carrier_errors;

    #[test]
    fn catalog_is_sorted_by_code_with_no_duplicates() {
        for pair in CATALOG.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} / {}",
                pair[0].code,
                pair[1].code
            );
        }
    }

    #[test]
    fn every_entry_is_filled_in_and_titled_once() {
        let mut titles = std::collections::HashSet::new();
        for e in CATALOG {
            assert!(!e.title.is_empty() && !e.description.is_empty() && !e.resolution.is_empty());
            assert!(titles.insert(e.title), "{} twice", e.title);
        }
    }

    #[test]
    fn the_codes_of_the_help_article_have_a_counterpart_or_are_said_to_have_none() {
        // The seed's codes and the opt-out: which AWS outcome stands there.
        let expect = [
            (4720, Some("TEXT_INVALID")),
            (4700, Some("TEXT_INVALID")),
            (4406, Some("TEXT_INVALID")),
            (4470, Some("TEXT_SPAM")),
            (4775, Some(OPTED_OUT)),
            (4405, Some("ResourceNotFoundException")),
            (4795, Some("TEXT_CARRIER_BLOCKED")),
            // An application id is Bandwidth's own idea.
            (4452, None),
        ];
        for (code, aws) in expect {
            assert_eq!(
                counterpart_of_bandwidth(code).map(|e| e.code),
                aws,
                "{code}"
            );
        }
    }

    #[test]
    fn every_counterpart_is_a_code_bandwidth_knows_and_stands_in_one_place() {
        let mut seen = std::collections::HashSet::new();
        for e in CATALOG {
            for code in e.bandwidth {
                assert!(
                    carrier_errors::lookup(*code).is_some(),
                    "{code} of {}",
                    e.code
                );
                assert!(seen.insert(*code), "{code} has two AWS counterparts");
            }
        }
    }

    #[test]
    fn an_invalid_number_is_marked_undeliverable_like_bandwidths_4720() {
        assert!(describe("TEXT_INVALID").undeliverable_number);
        assert!(carrier_errors::describe(4720).undeliverable_number);
        assert!(!describe("TEXT_BLOCKED").undeliverable_number);
        assert!(!describe(OPTED_OUT).undeliverable_number);
    }

    #[test]
    fn refusals_at_send_time_are_not_billed_and_an_unknown_code_is_generic() {
        assert!(!describe(OPTED_OUT).billable);
        assert!(describe("TEXT_SPAM").billable);
        let unknown = describe("TEXT_SOMETHING_NEW");
        assert_eq!(unknown.title, "Unknown carrier error");
        assert!(unknown.permanent && !unknown.billable && !unknown.undeliverable_number);
    }
}
