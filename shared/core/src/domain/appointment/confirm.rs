//! Whether a patient's reply says yes to "Reply C to confirm".

/// The words that confirm on their own.
pub const YES_WORDS: [&str; 10] = [
    "c",
    "y",
    "yes",
    "confirm",
    "confirmed",
    "ok",
    "okay",
    "si",
    "sí",
    "👍",
];

/// Words that may come with a yes without changing it ("yes thanks", "C, see
/// you then").
const POLITE_WORDS: [&str; 22] = [
    "thanks", "thank", "you", "thx", "ty", "see", "then", "please", "will", "be", "there", "i",
    "we", "great", "sounds", "good", "perfect", "gracias", "sure", "yep", "👍", "🙂",
];

/// The most words a confirming reply has.
const MAX_WORDS: usize = 6;

/// Whether `text` confirms: it starts with a yes word and the rest, if
/// anything, is a few polite words. "Yes but can we move it" does not;
/// neither does STOP or CANCEL (those keep their opt-out meaning).
pub fn is_yes(text: &str) -> bool {
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';' | ':' | '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let Some((first, rest)) = words.split_first() else {
        return false;
    };
    YES_WORDS.contains(first)
        && words.len() <= MAX_WORDS
        && rest
            .iter()
            .all(|w| POLITE_WORDS.contains(w) || YES_WORDS.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_words_alone_or_with_polite_words_confirm() {
        for yes in [
            "C",
            "c",
            "Y",
            "YES",
            "yes!",
            "Confirm",
            "CONFIRMED",
            "ok",
            "Okay.",
            "SI",
            "Sí",
            "👍",
            "yes thanks",
            "C, see you then",
            "Yes, thank you!",
            " ok  ",
            "y thx",
        ] {
            assert!(is_yes(yes), "{yes:?}");
        }
    }

    #[test]
    fn anything_else_stays_an_ordinary_text() {
        for no in [
            "",
            "STOP",
            "CANCEL",
            "no",
            "can I move it?",
            "yes but can we make it later",
            "C you at 3 if my car works",
            "cancel please",
            "Ok I need to reschedule",
        ] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
