//! The carrier error catalog: what each Bandwidth Messaging v2 error code
//! means and what the office should do about it.
//!
//! Entries are keyed by Bandwidth's numeric `errorCode` only. Bandwidth says
//! the accompanying `description` text is informative and must not drive
//! error handling, so nothing here matches on text.
//!
//! Bandwidth's scheme: the first digit says who is at fault (4 = the request
//! or recipient, so repeating the send gives the same result; 5 = a service
//! failure worth retrying; 9 = ambiguous), the second whether Bandwidth (1-4)
//! or the downstream carrier (6-7) reported it. `billable` follows
//! Bandwidth's published error table.

use serde::Serialize;

/// One carrier error code, explained for an office manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CarrierErrorInfo {
    /// Bandwidth's numeric error code, e.g. 4720.
    pub code: u16,
    /// Short name of the error.
    pub title: &'static str,
    /// What happened, in plain words.
    pub description: &'static str,
    /// What the office should do next.
    pub resolution: &'static str,
    /// Sending the same message again will fail the same way (all 4xxx
    /// codes); when false, a retry may succeed.
    pub permanent: bool,
    /// Bandwidth still bills the message.
    pub billable: bool,
    /// The patient's number itself cannot receive texts (e.g. a landline or
    /// a number that does not exist). Internal; not serialised.
    #[serde(skip_serializing)]
    pub undeliverable_number: bool,
}

const CONTACT_SUPPORT: &str = "Contact support and mention this error code.";
const RETRY: &str = "This is usually temporary. Send the message again; if it keeps failing, contact support and mention this error code.";

/// Builds an entry whose permanence follows the code: 4xxx codes are
/// permanent, everything else is retryable.
const fn entry(
    code: u16,
    title: &'static str,
    description: &'static str,
    resolution: &'static str,
    billable: bool,
) -> CarrierErrorInfo {
    CarrierErrorInfo {
        code,
        title,
        description,
        resolution,
        permanent: is_client_error(code),
        billable,
        undeliverable_number: false,
    }
}

/// Like [`entry`], for codes meaning the patient's number cannot receive
/// texts.
const fn undeliverable(
    code: u16,
    title: &'static str,
    description: &'static str,
    resolution: &'static str,
    billable: bool,
) -> CarrierErrorInfo {
    CarrierErrorInfo {
        undeliverable_number: true,
        ..entry(code, title, description, resolution, billable)
    }
}

/// Whether `code` is in Bandwidth's 4xxx client-error range.
const fn is_client_error(code: u16) -> bool {
    code >= 4000 && code <= 4999
}

/// Every known code, sorted by code (checked by the tests, relied on by
/// [`lookup`]).
static CATALOG: &[CarrierErrorInfo] = &[
    entry(
        4001,
        "Service not allowed",
        "Bandwidth refused the message for a reason not covered by a more specific code, usually because the account is not permitted to use this kind of messaging.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4301,
        "Malformed message encoding",
        "The message contains characters that cannot be encoded for the recipient's carrier.",
        "Remove unusual symbols or characters from the message and send it again.",
        false,
    ),
    entry(
        4302,
        "Malformed From number",
        "The office's sending number is not a number that can be routed to a carrier.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4303,
        "Malformed To number",
        "The patient's number is not a number that can be routed to a carrier (for example, it has too few digits).",
        "Check the number with the patient, correct it, and send again.",
        false,
    ),
    entry(
        4350,
        "Malformed for destination",
        "The message was accepted but failed when it was handed on, most likely because the patient's number is not valid.",
        "Check the number with the patient, correct it, and send again.",
        false,
    ),
    entry(
        4360,
        "Message expired",
        "The message's expiry time passed before it could be sent, so it was not sent.",
        "If the message still matters, send it again.",
        false,
    ),
    entry(
        4401,
        "Unable to route message",
        "Bandwidth could not route the message, typically because the sending and receiving numbers are the same or a number is set up incorrectly.",
        "Make sure the patient's number is not the office's own texting number; otherwise contact support and mention this error code.",
        false,
    ),
    entry(
        4403,
        "Messaging forbidden on From number",
        "The office's sending number is not allowed to send texts: it is not enabled for messaging, not on this account, or disconnected.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4404,
        "Messaging forbidden on To number",
        "Texts to the patient's number are not allowed: it is inactive, not enabled for messaging, or not a valid number.",
        "Check with the patient that the number is correct and can receive texts, then try again.",
        false,
    ),
    entry(
        4405,
        "Unallocated from Number",
        "The office's sending number is not listed as an active messaging number in the industry database, so messages from it cannot be sent.",
        CONTACT_SUPPORT,
        false,
    ),
    undeliverable(
        4406,
        "Unallocated to Number",
        "The patient's number is not assigned to any carrier, so the message cannot be delivered.",
        "The number does not exist or was entered incorrectly. Check with the patient that the number is correct and try again.",
        false,
    ),
    entry(
        4420,
        "Destination carrier not set up",
        "The patient's carrier is not one Bandwidth can reach.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4421,
        "No route to destination",
        "The account is not permitted to send to this destination.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4431,
        "Messaging on short code forbidden",
        "The account is not set up to send through short codes.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4432,
        "Messaging to country forbidden",
        "The account is not enabled to text the country of the patient's number.",
        "Only US numbers can be texted. Ask the patient for a US mobile number.",
        false,
    ),
    entry(
        4433,
        "Messaging on toll-free number forbidden",
        "The account is not enabled to send from a toll-free number.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4434,
        "Messaging to toll-free number forbidden",
        "The patient's number is a toll-free number that cannot receive texts.",
        "Ask the patient for a mobile number that can receive texts.",
        false,
    ),
    entry(
        4435,
        "Too many recipients",
        "The group message has more recipients than allowed (at most 10).",
        "Send to fewer people at once.",
        false,
    ),
    entry(
        4451,
        "Invalid user ID",
        "The messaging account user ID is not valid.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4452,
        "Invalid Application ID",
        "The messaging application the office's number sends through is not valid or does not belong to this account.",
        "If the message was sent from the office's ALT SMS number, submit a new port request for it. If it was sent from the MAIN SMS number, contact support.",
        false,
    ),
    entry(
        4470,
        "Rejected as Spam (Future)",
        "The message was blocked by spam filtering, for example because of its content, its sending volume, or the recipient number.",
        "The patient's number has been flagged as spam. Contact support.",
        true,
    ),
    entry(
        4481,
        "From number blocked",
        "The office's sending number has been barred from sending messages after reports of spam or other violations.",
        CONTACT_SUPPORT,
        false,
    ),
    entry(
        4482,
        "To number blocked",
        "The patient's number is blocked from receiving messages.",
        "Reach the patient another way, such as a phone call.",
        false,
    ),
    entry(
        4492,
        "Message to emergency number forbidden",
        "Texts cannot be sent to emergency numbers such as 911.",
        "Check the patient's number; it looks like an emergency number.",
        false,
    ),
    entry(
        4493,
        "Unauthorized",
        "The sender is not authorized to send messages from this account.",
        CONTACT_SUPPORT,
        false,
    ),
    undeliverable(
        4700,
        "Invalid Service Type",
        "The patient's carrier rejected the message because the number or handset does not support text messages.",
        "The receiving number does not accept texts, for example a landline, or the line's bill has not been paid. Check with the patient that the number can receive texts and try again.",
        true,
    ),
    entry(
        4701,
        "Destination not reachable",
        "The patient's carrier reports that the number is not reachable or text service is not available on it.",
        "Check with the patient that the number can receive texts, or call them instead.",
        true,
    ),
    entry(
        4702,
        "Destination subscriber unavailable",
        "The patient's phone could not take the message: it may be switched off, out of reach, barred, or its message storage is full.",
        "Call the patient, and check that their phone is on and can receive texts before sending again.",
        true,
    ),
    undeliverable(
        4720,
        "Carrier rejected as invalid destination address",
        "The patient's carrier rejected the number as an invalid destination.",
        "The number is not in the numbering plan (its area code does not exist or the number is invalid) or cannot receive texts, such as a landline. For toll-free messages to T-Mobile, the patient may have blocked texts from toll-free numbers and short codes. Check the number with the patient.",
        true,
    ),
    entry(
        4721,
        "Number deactivated",
        "The patient's number is on the deactivation list: it is inactive or not with any carrier that can receive texts.",
        "Ask the patient for their current mobile number.",
        true,
    ),
    entry(
        4730,
        "No route to destination carrier",
        "The carrier found no route for the message, for example because the patient's phone is roaming on a network that cannot be reached.",
        "Check with the patient that the number can receive texts, or call them instead.",
        true,
    ),
    entry(
        4740,
        "Carrier rejected as invalid source address",
        "The carrier rejected the office's sending number as invalid, disabled, or not authorized.",
        CONTACT_SUPPORT,
        true,
    ),
    entry(
        4750,
        "Carrier rejected message",
        "The patient's carrier rejected the message without giving a reason. On AT&T this can mean a prepaid account out of credit, a line set up not to receive this kind of text, or a message flagged as spam.",
        "Check with the patient that the number can receive texts from businesses. If many patients see this error, contact support.",
        true,
    ),
    entry(
        4751,
        "Message too long for carrier",
        "The patient's carrier rejected the message because of its length.",
        "Shorten the message and send it again.",
        true,
    ),
    entry(
        4752,
        "Message malformed for carrier",
        "The patient's carrier could not accept the message as formatted, for example because it was blank or contained content the carrier does not accept.",
        "Check the message text, remove unusual characters, and send it again.",
        true,
    ),
    entry(
        4770,
        "Carrier rejected as spam",
        "The patient's carrier blocked the message as spam, because of its content, prohibited topics or keywords, or the sending number's history.",
        "Review the wording (avoid link shorteners and promotional language) and send again. If it keeps happening, contact support.",
        true,
    ),
    entry(
        4771,
        "Rejected due to shortened URL",
        "The carrier rejected the message because of a shortened link in it.",
        "Replace the shortened link with a full link on the office's own website and send again.",
        true,
    ),
    entry(
        4772,
        "Blocked sender or receiver",
        "The carrier's platform has blocked either the office's number or the patient's number.",
        CONTACT_SUPPORT,
        true,
    ),
    entry(
        4773,
        "Campaign inactive for destination",
        "The office's registered texting campaign (10DLC) is not active with the patient's carrier: it is pending, rejected, or suspended.",
        CONTACT_SUPPORT,
        true,
    ),
    entry(
        4774,
        "Number provisioning issue",
        "The office's number is not set up correctly in the industry database for 10DLC texting.",
        CONTACT_SUPPORT,
        true,
    ),
    entry(
        4775,
        "Recipient opted out (replied STOP)",
        "The patient has opted out of texts from this number with their carrier, for example by replying STOP.",
        "Do not text this patient again unless they opt back in; reach them another way, such as a phone call. If they want texts again, they can reply START to the office's number.",
        true,
    ),
    entry(
        4780,
        "T-Mobile rejected due to volume limit",
        "T-Mobile rejected the message because the office sent more than its daily or per-second allowance.",
        "Send fewer messages at once or spread them over the day. If it keeps happening, contact support.",
        true,
    ),
    entry(
        4781,
        "AT&T rejected due to volume limit or throttling",
        "AT&T rejected the message because the office sent faster than its registered campaign allows, or AT&T is throttling it for another reason such as a high spam rate.",
        "Send fewer messages at once or spread them over the day. If it keeps happening, contact support.",
        true,
    ),
    entry(
        4785,
        "Carrier rejected due to volume limit",
        "The carrier rejected the message because the office sent more than its allowance.",
        "Wait a while before sending again, and spread messages out. If it keeps happening, contact support.",
        true,
    ),
    entry(
        4795,
        "TFN Not Verified",
        "The message was blocked because the office's toll-free sending number has not been verified, or there is spam on the unverified number.",
        CONTACT_SUPPORT,
        true,
    ),
    entry(
        5100,
        "Bandwidth application error",
        "A temporary error inside Bandwidth stopped the message from being processed.",
        RETRY,
        false,
    ),
    entry(
        5101,
        "Bandwidth application shutting down",
        "A Bandwidth service was going down and did not receive the message.",
        RETRY,
        false,
    ),
    entry(
        5106,
        "Impossible to route",
        "Bandwidth could not route the message, and retrying delivery failed.",
        RETRY,
        false,
    ),
    entry(
        5111,
        "Bandwidth connection closed",
        "The message arrived on a Bandwidth connection that had already closed.",
        RETRY,
        false,
    ),
    entry(
        5201,
        "Delivery retries exceeded",
        "Bandwidth gave up on the message after repeated delivery attempts failed.",
        RETRY,
        false,
    ),
    entry(
        5211,
        "Bandwidth application busy",
        "A Bandwidth service was temporarily too busy to accept the message.",
        RETRY,
        false,
    ),
    entry(
        5220,
        "Bandwidth storage error",
        "Bandwidth could not save the message, so it was not received.",
        RETRY,
        false,
    ),
    entry(
        5231,
        "Message parts missing",
        "Bandwidth did not receive every part of a multi-part message, so it could not be sent.",
        RETRY,
        false,
    ),
    entry(
        5500,
        "General message send failure",
        "The patient's carrier reported a general failure sending the message.",
        RETRY,
        false,
    ),
    entry(
        5501,
        "No destination available",
        "The message could not be sent because no destination was available.",
        RETRY,
        false,
    ),
    entry(
        5600,
        "Carrier service unavailable",
        "The patient's carrier was unavailable, for example because of network congestion, a full message queue, or throttling.",
        RETRY,
        true,
    ),
    entry(
        5610,
        "Carrier service failure",
        "The patient's carrier had an error while accepting the message.",
        RETRY,
        true,
    ),
    entry(
        5620,
        "Carrier application error",
        "The patient's carrier reported a general error while processing the message.",
        RETRY,
        true,
    ),
    entry(
        5630,
        "No acknowledgement from carrier",
        "The patient's carrier did not confirm that it received the message.",
        RETRY,
        true,
    ),
    entry(
        5650,
        "Carrier failed to deliver",
        "The patient's carrier reported that it could not pass the message on to the mobile network or the phone.",
        RETRY,
        true,
    ),
    entry(
        5999,
        "Unknown Bandwidth error",
        "Bandwidth reported an error it could not identify.",
        RETRY,
        false,
    ),
    entry(
        9902,
        "Delivery receipt timed out",
        "No delivery confirmation came back from the carrier within two hours. The message may or may not have reached the patient.",
        "Ask the patient whether they received the message before sending it again. If this happens often, contact support.",
        true,
    ),
    entry(
        9999,
        "Unrecognized carrier failure",
        "The carrier reported a failure code that Bandwidth does not recognize.",
        RETRY,
        true,
    ),
];

/// Every known carrier error, sorted by code.
pub fn catalog() -> &'static [CarrierErrorInfo] {
    CATALOG
}

/// The catalog entry for `code`, if it is a known code.
pub fn lookup(code: u16) -> Option<&'static CarrierErrorInfo> {
    CATALOG
        .binary_search_by_key(&code, |info| info.code)
        .ok()
        .and_then(|index| CATALOG.get(index))
}

/// The catalog entry for `code`, or a generic "unknown carrier error" entry
/// for a code the catalog does not list.
///
/// The generic entry is permanent for 4xxx codes (Bandwidth's client-error
/// range, where repeating the send gives the same result) and retryable
/// otherwise; it is never marked billable or undeliverable.
pub fn describe(code: u16) -> CarrierErrorInfo {
    match lookup(code) {
        Some(info) => *info,
        None => CarrierErrorInfo {
            code,
            title: "Unknown carrier error",
            description: "The carrier reported an error code that this system does not recognize.",
            resolution:
                "Contact support and give them the carrier error code shown with this message.",
            permanent: is_client_error(code),
            billable: false,
            undeliverable_number: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title_of(code: u16) -> &'static str {
        lookup(code)
            .unwrap_or_else(|| panic!("{code} missing from catalog"))
            .title
    }

    #[test]
    fn help_article_codes_have_their_exact_titles() {
        assert_eq!(
            title_of(4720),
            "Carrier rejected as invalid destination address"
        );
        assert_eq!(title_of(4452), "Invalid Application ID");
        assert_eq!(title_of(4795), "TFN Not Verified");
        assert_eq!(title_of(4470), "Rejected as Spam (Future)");
        assert_eq!(title_of(4406), "Unallocated to Number");
        assert_eq!(title_of(4405), "Unallocated from Number");
        assert_eq!(title_of(4700), "Invalid Service Type");
    }

    #[test]
    fn help_article_resolutions_say_what_to_do() {
        let resolution = |code| describe(code).resolution.to_lowercase();
        assert!(resolution(4720).contains("check the number with the patient"));
        assert!(resolution(4720).contains("landline"));
        assert!(resolution(4720).contains("t-mobile"));
        assert!(resolution(4452).contains("alt sms"));
        assert!(resolution(4452).contains("port request"));
        assert!(resolution(4452).contains("main sms"));
        assert!(resolution(4795).contains("contact support"));
        assert!(resolution(4470).contains("spam"));
        assert!(resolution(4470).contains("contact support"));
        assert!(resolution(4406).contains("does not exist"));
        assert!(resolution(4406).contains("try again"));
        assert!(resolution(4405).contains("contact support"));
        assert!(resolution(4700).contains("landline"));
        assert!(resolution(4700).contains("bill"));
        assert!(resolution(4700).contains("try again"));
    }

    #[test]
    fn catalog_is_sorted_by_code_with_no_duplicates() {
        for pair in catalog().windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} must come before {}",
                pair[0].code,
                pair[1].code
            );
        }
    }

    #[test]
    fn catalog_covers_the_common_bandwidth_codes() {
        let expected = [
            4001, 4301, 4350, 4360, 4405, 4406, 4432, 4434, 4452, 4470, 4481, 4492, 4493, 4700,
            4701, 4702, 4720, 4750, 4751, 4770, 4775, 4780, 4781, 4795, 5100, 5101, 5106, 5111,
            5201, 5211, 5220, 5231, 5600, 5610, 5620, 5630, 5650, 9902,
        ];
        for code in expected {
            assert!(lookup(code).is_some(), "{code} missing from catalog");
        }
    }

    #[test]
    fn every_4xxx_code_is_permanent() {
        for info in catalog().iter().filter(|i| (4000..5000).contains(&i.code)) {
            assert!(info.permanent, "{} should be permanent", info.code);
        }
    }

    #[test]
    fn every_5xxx_and_9xxx_code_is_retryable() {
        for info in catalog().iter().filter(|i| i.code >= 5000) {
            assert!(!info.permanent, "{} should be retryable", info.code);
        }
        assert!(!describe(9902).permanent);
    }

    #[test]
    fn every_entry_is_filled_in() {
        for info in catalog() {
            assert!((4000..10000).contains(&info.code), "{}", info.code);
            assert!(!info.title.is_empty(), "{} title", info.code);
            assert!(!info.description.is_empty(), "{} description", info.code);
            assert!(!info.resolution.is_empty(), "{} resolution", info.code);
        }
    }

    #[test]
    fn titles_are_unique() {
        let mut titles: Vec<&str> = catalog().iter().map(|i| i.title).collect();
        titles.sort_unstable();
        for pair in titles.windows(2) {
            assert_ne!(pair[0], pair[1], "duplicate title");
        }
    }

    #[test]
    fn invalid_landline_and_unallocated_numbers_are_undeliverable() {
        for code in [4720, 4700, 4406] {
            assert!(describe(code).undeliverable_number, "{code}");
        }
    }

    #[test]
    fn other_codes_do_not_mark_the_number_undeliverable() {
        let flagged: Vec<u16> = catalog()
            .iter()
            .filter(|i| i.undeliverable_number)
            .map(|i| i.code)
            .collect();
        assert_eq!(flagged, vec![4406, 4700, 4720]);
    }

    #[test]
    fn billable_flags_follow_bandwidths_table() {
        for code in [4470, 4700, 4720, 4750, 4775, 4795, 5600, 5620, 9902] {
            assert!(describe(code).billable, "{code} is billable");
        }
        for code in [4001, 4405, 4406, 4452, 4481, 5100, 5201, 5231] {
            assert!(!describe(code).billable, "{code} is not billable");
        }
    }

    #[test]
    fn opt_out_code_says_the_patient_replied_stop() {
        let info = describe(4775);
        assert!(info.title.contains("opted out"));
        assert!(info.title.contains("STOP"));
    }

    #[test]
    fn lookup_of_unknown_code_is_none() {
        assert!(lookup(4999).is_none());
        assert!(lookup(0).is_none());
        assert!(lookup(u16::MAX).is_none());
    }

    #[test]
    fn describe_of_known_code_is_its_catalog_entry() {
        assert_eq!(Some(&describe(4720)), lookup(4720));
    }

    #[test]
    fn describe_of_unknown_4xxx_code_is_a_permanent_generic_entry() {
        let info = describe(4999);
        assert_eq!(info.code, 4999);
        assert_eq!(info.title, "Unknown carrier error");
        assert!(info.permanent);
        assert!(!info.billable);
        assert!(!info.undeliverable_number);
        assert!(info.resolution.contains("Contact support"));
        assert!(info.resolution.contains("error code"));
    }

    #[test]
    fn describe_of_unknown_non_4xxx_code_is_retryable() {
        for code in [5555, 9000, 3999, 0] {
            let info = describe(code);
            assert_eq!(info.title, "Unknown carrier error");
            assert_eq!(info.code, code);
            assert!(!info.permanent, "{code}");
        }
    }

    #[test]
    fn serialised_entry_omits_the_undeliverable_flag() {
        let json = serde_json::to_value(describe(4720)).expect("serialise");
        assert_eq!(json["code"], 4720);
        assert_eq!(
            json["title"],
            "Carrier rejected as invalid destination address"
        );
        assert_eq!(json["permanent"], true);
        assert_eq!(json["billable"], true);
        assert!(json.get("undeliverable_number").is_none());
        assert!(json.get("description").is_some());
        assert!(json.get("resolution").is_some());
    }
}
