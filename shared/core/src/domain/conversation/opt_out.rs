//! Sentences asking the office to stop texting, flagged for staff (carriers
//! act only on exact keywords).

use crate::domain::keywords;

/// Whether a text that is not itself a keyword asks the office to stop
/// texting ("please stop texting me", "take me off your list").
///
/// Carriers act only on exact keywords; a sentence is flagged for staff
/// instead, who decide. The detector is a handful of rules over the words of
/// each clause (see [`opt_out_rule`]), tuned to not flag the everyday uses of
/// "stop" in a dental office: "can I stop by", "won't stop hurting",
/// "the bleeding stopped", "bus stop". An exact keyword returns `false`: it
/// is handled as a keyword, not an intent.
pub fn opt_out_intent(text: &str) -> bool {
    keywords::classify(text).is_none() && opt_out_rule(text).is_some()
}

/// Verbs that end something: "stop texting", "cancel these texts".
const STOP_VERBS: &[&str] = &[
    "stop",
    "quit",
    "cease",
    "end",
    "cancel",
    "discontinue",
    "halt",
];
/// What a patient asks to stop receiving.
const MESSAGES: &[&str] = &[
    "text",
    "texts",
    "texting",
    "txt",
    "txts",
    "txting",
    "message",
    "messages",
    "messaging",
    "msg",
    "msgs",
    "sms",
    "reminder",
    "reminders",
    "notification",
    "notifications",
    "alert",
    "alerts",
    "contacting",
];
/// Words that may sit between a verb and what it stops: "stop sending me
/// all these texts".
const FILLERS: &[&str] = &[
    "me",
    "all",
    "the",
    "these",
    "those",
    "this",
    "that",
    "your",
    "ur",
    "any",
    "my",
    "them",
    "future",
    "further",
    "automated",
    "more",
    "of",
    "u",
    "sending",
    "getting",
    "receiving",
];
/// "stop sending" needs nothing after it to be a request.
const SENDING: &[&str] = &["sending", "getting", "receiving"];
/// Words that turn a request around: "don't stop", "why did you stop".
const NEGATORS: &[&str] = &["dont", "not", "never", "didnt", "did", "doesnt"];
/// A clause made only of these words and a stop word is a bare "STOP!".
const BARE_STOP_WORDS: &[&str] = &["stop", "stopall", "quit", "unsubscribe"];
const BARE_EXTRAS: &[&str] = &[
    "please", "pls", "plz", "now", "it", "all", "thanks", "thank", "you", "ok", "okay",
];
/// Where a patient asks to be removed from: "take me off your list".
const LISTS: &[&str] = &[
    "list",
    "lists",
    "text",
    "texts",
    "texting",
    "messages",
    "messaging",
    "sms",
    "system",
    "contacts",
    "database",
    "number",
];
/// Lists a patient may rightly ask to leave that are not texting.
const OTHER_LISTS: &[&str] = &[
    "wait",
    "waitlist",
    "waiting",
    "cancellation",
    "cancellations",
    "appointment",
    "appointments",
    "schedule",
    "calendar",
    "recall",
];

/// Which rule flags `text` as asking to stop texts, if any: one of
/// `"bare stop"`, `"stop + messages"`, `"don't + text me"`,
/// `"don't want + messages"`, `"no more + messages"`, `"unsubscribe / opt
/// out"`, `"remove me"`, `"leave me alone"`. For tests and for explaining
/// a flag to staff.
pub fn opt_out_rule(text: &str) -> Option<&'static str> {
    clauses(text).iter().find_map(|words| clause_rule(words))
}

/// Lower-cased words, split into clauses at punctuation so a negation in one
/// clause ("I don't know who this is.") does not reach into the next.
/// Apostrophes are dropped, so "don't", "don’t" and "dont" are one word.
fn clauses(text: &str) -> Vec<Vec<String>> {
    let mut clauses = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if matches!(c, '\'' | '’' | '‘' | '`') {
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if matches!(c, '.' | '!' | '?' | ',' | ';' | ':' | '\n' | '(' | ')') && !words.is_empty() {
            clauses.push(std::mem::take(&mut words));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    if !words.is_empty() {
        clauses.push(words);
    }
    clauses
}

fn is(word: Option<&String>, set: &[&str]) -> bool {
    word.is_some_and(|w| set.contains(&w.as_str()))
}

/// Whether a negator is among the four words before `i`.
fn negated(words: &[String], i: usize) -> bool {
    words[i.saturating_sub(4)..i]
        .iter()
        .any(|w| NEGATORS.contains(&w.as_str()))
}

/// Index of the first word from `from` on that is not a filler, and whether a
/// "sending" word was skipped on the way.
fn skip_fillers(words: &[String], from: usize) -> (usize, bool) {
    let mut j = from;
    let mut sending = false;
    while is(words.get(j), FILLERS) {
        sending |= is(words.get(j), SENDING);
        j += 1;
    }
    (j, sending)
}

fn clause_rule(words: &[String]) -> Option<&'static str> {
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if has(BARE_STOP_WORDS)
        && words
            .iter()
            .all(|w| BARE_STOP_WORDS.contains(&w.as_str()) || BARE_EXTRAS.contains(&w.as_str()))
    {
        return Some("bare stop");
    }
    for i in 0..words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);

        // "stop texting me", "quit sending these", "cancel my reminders";
        // not "stop by", "won't stop hurting", "don't stop the reminders".
        if STOP_VERBS.contains(&w) && !negated(words, i) {
            let (j, sending) = skip_fillers(words, i + 1);
            if is(words.get(j), MESSAGES) || (sending && j == words.len()) {
                return Some("stop + messages");
            }
        }

        // "don't text me", "never contact this number", "do not send me any
        // more texts"; not "I did not text you", "don't send me the forms".
        if matches!(w, "dont" | "not" | "never") {
            let k = if next == Some("ever") { i + 2 } else { i + 1 };
            match words.get(k).map(String::as_str) {
                Some("text" | "txt" | "message" | "msg" | "contact" | "sms") => {
                    let after = words.get(k + 1).map(String::as_str);
                    if matches!(
                        after,
                        None | Some(
                            "me" | "this"
                                | "my"
                                | "us"
                                | "anymore"
                                | "again"
                                | "here"
                                | "on"
                                | "at"
                        )
                    ) {
                        return Some("don't + text me");
                    }
                }
                Some("send") => {
                    let (j, _) = skip_fillers(words, k + 1);
                    if is(words.get(j), MESSAGES) {
                        return Some("don't + text me");
                    }
                }
                _ => {}
            }
        }

        // "I don't want these texts", "I no longer wish to receive
        // messages"; not "I don't want you to stop texting", "don't want to
        // miss my reminder".
        if matches!(w, "dont" | "not" | "never" | "longer") && matches!(next, Some("want" | "wish"))
        {
            for word in words.iter().skip(i + 2).take(6) {
                let word = word.as_str();
                if STOP_VERBS.contains(&word) || word == "miss" {
                    break;
                }
                if MESSAGES.contains(&word) {
                    return Some("don't want + messages");
                }
            }
        }

        // "no more texts please"; not "no more pain".
        if w == "no" && next == Some("more") {
            let (j, _) = skip_fillers(words, i + 2);
            if is(words.get(j), MESSAGES) {
                return Some("no more + messages");
            }
        }

        // "unsubscribe me", "opt me out", "how do I opt out"; not "don't
        // unsubscribe me" (nor "I accidentally unsubscribed": past tense).
        let opt_out = match w {
            "unsubscribe" | "unsub" | "optout" => true,
            "opt" | "opting" => {
                next == Some("out") || (next == Some("me") && is(words.get(i + 2), &["out"]))
            }
            _ => false,
        };
        if opt_out && !negated(words, i) {
            return Some("unsubscribe / opt out");
        }

        // "remove me", "take me off your list", "delete my number"; not
        // "take me off the waitlist", "remove me from the cancellation list".
        if matches!(w, "remove" | "delete" | "take" | "drop")
            && matches!(next, Some("me" | "my" | "this" | "us" | "our"))
            && !negated(words, i)
        {
            let rest = &words[i + 2..words.len().min(i + 8)];
            let rest_has = |set: &[&str]| rest.iter().any(|r| set.contains(&r.as_str()));
            let off = w != "take" || rest.iter().take(3).any(|r| r == "off");
            let other_list = rest_has(OTHER_LISTS);
            let listed = rest.is_empty() || rest_has(LISTS);
            if off && !other_list && listed {
                return Some("remove me");
            }
        }

        if w == "leave" && next == Some("me") && is(words.get(i + 2), &["alone"]) {
            return Some("leave me alone");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- opt-out intent -----------------------------------------------------

    #[test]
    fn sentences_asking_to_stop_are_flagged() {
        for text in [
            "please stop texting me",
            "unsubscribe me",
            "Stop sending me messages",
            "take me off your list",
            "no more texts please",
            "don't text me anymore",
            "remove me from your list",
            "opt me out",
            "STOP!",
            "Stop please.",
            "STOP TEXTING ME",
            "Please remove my number from your system",
            "I do not want to receive these text messages",
            "Quit texting me!!",
            "Who is this? Stop messaging this number",
            "How do I unsubscribe from these?",
            "I want to opt out of text reminders",
            "Can you stop sending reminders to this number",
            "Don’t contact me again",
            "leave me alone",
            "cancel these texts",
            "Wrong number. Stop texting me.",
            "no more messages from this office",
            "Why won't you stop texting me",
            "I no longer wish to receive messages from you",
            "Do not send me any more texts",
            "I switched dentists, please stop the reminders",
            "delete my number",
            "stop sending",
        ] {
            assert!(opt_out_intent(text), "{text:?} should be flagged");
        }
    }

    #[test]
    fn everyday_uses_of_stop_are_not_flagged() {
        for text in [
            "stop by at 3?",
            "Can I stop by tomorrow to pick up my retainer?",
            "my tooth won't stop hurting",
            "the bleeding stopped",
            "Is there a bus stop near the office?",
            "I'll stop in after work",
            "Please don't stop sending me reminders, they help!",
            "Why did you stop texting me reminders?",
            "I don't want you to stop texting me",
            "I need to cancel my appointment on Friday",
            "Can you text me the address?",
            "Please remove me from the cancellation list, I found a time",
            "Can you take me off the waitlist for Thursday?",
            "Don't send me the paper forms, I'll fill them out online",
            "Stop at the front desk when you arrive?",
            "What time do you stop seeing patients on Fridays?",
            "I stopped taking the antibiotics yesterday",
            "Please keep texting me the reminders",
            "Is it normal that the numbness hasn't stopped?",
            "Can you stop the bleeding with gauze?",
            "Stop sign on Main St is where I turn?",
            "No more pain after the filling, thank you!",
            "I don't want to miss my reminder texts",
            "I did not text you, sorry",
            "You don't need to text me back",
            "I accidentally unsubscribed, how do I get texts again?",
            "At the end of the day works for me",
            "Thanks for the reminder text! See you Tuesday",
        ] {
            assert_eq!(opt_out_rule(text), None, "{text:?} should not be flagged");
        }
    }

    #[test]
    fn exact_keywords_are_keywords_not_intents() {
        for text in [
            "STOP",
            "stop",
            "Unsubscribe",
            "quit",
            "CANCEL",
            "HELP",
            "START",
        ] {
            assert!(!opt_out_intent(text), "{text:?}");
        }
    }

    #[test]
    fn each_flag_can_be_explained_by_its_rule() {
        assert_eq!(opt_out_rule("STOP!"), Some("bare stop"));
        assert_eq!(
            opt_out_rule("please stop texting me"),
            Some("stop + messages")
        );
        assert_eq!(
            opt_out_rule("don't text me anymore"),
            Some("don't + text me")
        );
        assert_eq!(
            opt_out_rule("I don't want these texts"),
            Some("don't want + messages")
        );
        assert_eq!(
            opt_out_rule("no more texts please"),
            Some("no more + messages")
        );
        assert_eq!(opt_out_rule("opt me out"), Some("unsubscribe / opt out"));
        assert_eq!(opt_out_rule("take me off your list"), Some("remove me"));
        assert_eq!(opt_out_rule("leave me alone"), Some("leave me alone"));
    }

    #[test]
    fn a_negation_in_an_earlier_sentence_does_not_cancel_a_request() {
        assert!(opt_out_intent("I don't know who this is. Stop texting me"));
        assert!(opt_out_intent("Not sure why I get these, stop texting"));
    }
}
