//! Compliance keywords a patient can text back.

/// What an inbound text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP and its synonyms: no more texts from this practice.
    OptOut,
    /// START / UNSTOP: texts may resume.
    OptIn,
    /// HELP: reply with the practice's help text.
    Help,
}

const OPT_OUT: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: [&str; 2] = ["START", "UNSTOP"];
const HELP: [&str; 1] = ["HELP"];

/// Classifies an inbound text: the whole trimmed message, case-insensitively,
/// must be a keyword ("stop" yes; "please stop texting" no — as carriers do).
pub fn classify(text: &str) -> Option<Keyword> {
    let word = text.trim().to_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else if HELP.contains(&word.as_str()) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Help reply used when the practice has not set its own.
pub const DEFAULT_HELP_TEXT: &str =
    "{practice_name}: appointment and care messages. For help call {practice_phone}. Reply STOP to opt out.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_case_insensitively_on_the_trimmed_text() {
        assert_eq!(classify("  stop \n"), Some(Keyword::OptOut));
        assert_eq!(classify("Unsubscribe"), Some(Keyword::OptOut));
        assert_eq!(classify("quit"), Some(Keyword::OptOut));
        assert_eq!(classify("unstop"), Some(Keyword::OptIn));
        assert_eq!(classify("START"), Some(Keyword::OptIn));
        assert_eq!(classify("help"), Some(Keyword::Help));
    }

    #[test]
    fn sentences_containing_a_keyword_are_not_keywords() {
        assert_eq!(classify("please stop"), None);
        assert_eq!(classify("STOP!"), None);
        assert_eq!(classify("see you at 3"), None);
        assert_eq!(classify(""), None);
    }
}
