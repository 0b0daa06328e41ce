//! Message text: how long it is, how carriers will encode it, and how many
//! SMS segments (billed units) it will be split into.
//!
//! Carriers send a text in GSM-7 when every character is in the GSM 03.38
//! alphabet, and in UCS-2 otherwise. One character outside GSM-7 (an emoji, a
//! curly quote, `á`) switches the whole message to UCS-2, which cuts a
//! segment from 160 to 70 characters, so the office sees this before sending.

use serde::{Deserialize, Serialize};

/// The most characters (Unicode code points) one message may carry.
pub const MAX_TEXT_CHARS: usize = 1600;

/// Septets in a single-segment GSM-7 message.
const GSM7_SINGLE: usize = 160;
/// Septets per segment once a GSM-7 message is split (the rest is the
/// concatenation header).
const GSM7_MULTI: usize = 153;
/// UTF-16 code units in a single-segment UCS-2 message.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per segment once a UCS-2 message is split.
const UCS2_MULTI: usize = 67;

/// The character encoding a carrier will use for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// The 7-bit GSM 03.38 alphabet: 160 characters fit in one segment.
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UTF-16 (UCS-2 on the wire): 70 code units fit in one segment.
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    /// The conventional name: `"GSM-7"` or `"UCS-2"` (the same as its serde
    /// form).
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// What a text will cost to send: its encoding, how many SMS segments it
/// takes, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TextStats {
    /// The encoding carriers will use.
    pub encoding: Encoding,
    /// SMS segments the text is split into; 0 for empty text.
    pub segments: u32,
    /// Length in Unicode code points (what [`MAX_TEXT_CHARS`] limits).
    pub characters: usize,
}

/// Why a text cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidText {
    /// The text is empty or only whitespace.
    #[error("text must not be empty")]
    Empty,
    /// The text has more than [`MAX_TEXT_CHARS`] code points; carries the
    /// actual count.
    #[error("text is {0} characters; the most a message can carry is 1600")]
    TooLong(usize),
}

/// Works out the encoding, segment count and length of `text`.
///
/// Length is counted in Unicode code points. The text is GSM-7 when every
/// character is in the GSM 03.38 basic set or its extension table (extension
/// characters `€ [ ] { } ^ ~ \ |` and form feed take two septets each), and
/// UCS-2 otherwise. A GSM-7 text up to 160 septets is one segment, longer ones
/// take `ceil(septets / 153)`; a UCS-2 text up to 70 UTF-16 code units is one
/// segment, longer ones take `ceil(units / 67)` (an emoji is two units).
/// Empty text is 0 segments.
pub fn analyze(text: &str) -> TextStats {
    let characters = text.chars().count();

    let septets = text
        .chars()
        .try_fold(0usize, |total, c| gsm7_septets(c).map(|n| total + n));

    let (encoding, segments) = match septets {
        Some(septets) => (
            Encoding::Gsm7,
            segment_count(septets, GSM7_SINGLE, GSM7_MULTI),
        ),
        None => {
            let units = text.encode_utf16().count();
            (
                Encoding::Ucs2,
                segment_count(units, UCS2_SINGLE, UCS2_MULTI),
            )
        }
    };

    TextStats {
        encoding,
        segments,
        characters,
    }
}

/// Checks that `text` can be sent: not empty (nor only whitespace) and at
/// most [`MAX_TEXT_CHARS`] code points.
///
/// # Errors
///
/// [`InvalidText::Empty`] for empty or whitespace-only text,
/// [`InvalidText::TooLong`] (with the length) when it is over the limit.
pub fn validate_text(text: &str) -> Result<(), InvalidText> {
    if text.trim().is_empty() {
        return Err(InvalidText::Empty);
    }
    let characters = text.chars().count();
    if characters > MAX_TEXT_CHARS {
        return Err(InvalidText::TooLong(characters));
    }
    Ok(())
}

/// Segments needed for `len` units given the single- and multi-segment
/// capacities.
fn segment_count(len: usize, single: usize, multi: usize) -> u32 {
    let segments = match len {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(multi),
    };
    u32::try_from(segments).unwrap_or(u32::MAX)
}

/// Septets `c` takes in GSM-7, or `None` when GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if is_gsm7_basic(c) {
        Some(1)
    } else if is_gsm7_extension(c) {
        Some(2)
    } else {
        None
    }
}

/// Whether `c` is in the GSM 03.38 basic character set (the escape code
/// 0x1B itself is not a character a person can type, so it is excluded).
fn is_gsm7_basic(c: char) -> bool {
    matches!(
        c,
        'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | ' '
            | '!'
            | '"'
            | '#'
            | '%'
            | '&'
            | '\''
            | '('
            | ')'
            | '*'
            | '+'
            | ','
            | '-'
            | '.'
            | '/'
            | ':'
            | ';'
            | '<'
            | '='
            | '>'
            | '?'
            | '_'
            | '@'
            | '$'
            | '\n'
            | '\r'
            | '£'
            | '¥'
            | '¤'
            | '§'
            | '¡'
            | '¿'
            | 'è'
            | 'é'
            | 'ù'
            | 'ì'
            | 'ò'
            | 'Ç'
            | 'Ø'
            | 'ø'
            | 'Å'
            | 'å'
            | 'Æ'
            | 'æ'
            | 'ß'
            | 'É'
            | 'Ä'
            | 'Ö'
            | 'Ñ'
            | 'Ü'
            | 'ä'
            | 'ö'
            | 'ñ'
            | 'ü'
            | 'à'
            | 'Δ'
            | 'Φ'
            | 'Γ'
            | 'Λ'
            | 'Ω'
            | 'Π'
            | 'Ψ'
            | 'Σ'
            | 'Θ'
            | 'Ξ'
    )
}

/// Whether `c` is in the GSM 03.38 extension table (sent as escape plus one
/// septet).
fn is_gsm7_extension(c: char) -> bool {
    matches!(
        c,
        '€' | '[' | ']' | '{' | '}' | '^' | '~' | '\\' | '|' | '\u{000C}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(encoding: Encoding, segments: u32, characters: usize) -> TextStats {
        TextStats {
            encoding,
            segments,
            characters,
        }
    }

    #[test]
    fn empty_text_is_zero_segments_of_gsm7() {
        assert_eq!(analyze(""), stats(Encoding::Gsm7, 0, 0));
    }

    #[test]
    fn short_plain_reminder_is_one_gsm7_segment() {
        let text = "Hi Maria, this is Bright Smile Dental: your cleaning is Tue 3/4 at 10:30am. Reply C to confirm.";
        let s = analyze(text);
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(s.segments, 1);
        assert_eq!(s.characters, text.chars().count());
    }

    #[test]
    fn gsm7_160_chars_fit_in_one_segment() {
        assert_eq!(analyze(&"a".repeat(160)), stats(Encoding::Gsm7, 1, 160));
    }

    #[test]
    fn gsm7_161_chars_take_two_segments() {
        assert_eq!(analyze(&"a".repeat(161)), stats(Encoding::Gsm7, 2, 161));
    }

    #[test]
    fn gsm7_306_chars_take_two_segments() {
        assert_eq!(analyze(&"a".repeat(306)), stats(Encoding::Gsm7, 2, 306));
    }

    #[test]
    fn gsm7_307_chars_take_three_segments() {
        assert_eq!(analyze(&"a".repeat(307)), stats(Encoding::Gsm7, 3, 307));
    }

    #[test]
    fn gsm7_1600_chars_take_eleven_segments() {
        assert_eq!(analyze(&"a".repeat(1600)).segments, 11);
    }

    #[test]
    fn eighty_euro_signs_fill_one_segment_as_160_septets() {
        assert_eq!(analyze(&"€".repeat(80)), stats(Encoding::Gsm7, 1, 80));
    }

    #[test]
    fn eighty_one_euro_signs_take_two_segments() {
        assert_eq!(analyze(&"€".repeat(81)), stats(Encoding::Gsm7, 2, 81));
    }

    #[test]
    fn every_extension_character_counts_double() {
        for c in ['€', '[', ']', '{', '}', '^', '~', '\\', '|', '\u{000C}'] {
            let text: String = std::iter::repeat_n(c, 80).collect();
            assert_eq!(analyze(&text).segments, 1, "80 x {c:?}");
            let text: String = std::iter::repeat_n(c, 81).collect();
            assert_eq!(analyze(&text).encoding, Encoding::Gsm7, "{c:?}");
            assert_eq!(analyze(&text).segments, 2, "81 x {c:?}");
        }
    }

    #[test]
    fn extension_character_tips_159_plain_chars_into_two_segments() {
        let text = format!("{}€", "a".repeat(159));
        assert_eq!(analyze(&text), stats(Encoding::Gsm7, 2, 160));
    }

    #[test]
    fn ucs2_70_chars_fit_in_one_segment() {
        let text = format!("á{}", "a".repeat(69));
        assert_eq!(analyze(&text), stats(Encoding::Ucs2, 1, 70));
    }

    #[test]
    fn ucs2_71_chars_take_two_segments() {
        let text = format!("á{}", "a".repeat(70));
        assert_eq!(analyze(&text), stats(Encoding::Ucs2, 2, 71));
    }

    #[test]
    fn ucs2_134_units_take_two_segments_and_135_take_three() {
        assert_eq!(analyze(&"á".repeat(134)).segments, 2);
        assert_eq!(analyze(&"á".repeat(135)).segments, 3);
    }

    #[test]
    fn emoji_forces_ucs2_and_counts_as_two_units() {
        let s = analyze("See you soon 😀");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.characters, 14);
        assert_eq!(s.segments, 1);

        // 35 emoji = 70 UTF-16 units = one segment; 36 = 72 units = two.
        assert_eq!(analyze(&"😀".repeat(35)), stats(Encoding::Ucs2, 1, 35));
        assert_eq!(analyze(&"😀".repeat(36)), stats(Encoding::Ucs2, 2, 36));
    }

    #[test]
    fn emoji_after_69_chars_pushes_text_into_two_segments() {
        let text = format!("{}😀", "a".repeat(69));
        assert_eq!(analyze(&text), stats(Encoding::Ucs2, 2, 70));
    }

    #[test]
    fn e_acute_is_in_gsm7_basic_set() {
        let s = analyze("Café é");
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(analyze(&"é".repeat(160)).segments, 1);
    }

    #[test]
    fn a_acute_is_not_in_gsm7_and_forces_ucs2() {
        let s = analyze("Adiós, José. Mañana á las 10");
        assert_eq!(s.encoding, Encoding::Ucs2);
    }

    #[test]
    fn curly_quote_forces_ucs2() {
        assert_eq!(analyze("We\u{2019}ll see you").encoding, Encoding::Ucs2);
    }

    #[test]
    fn gsm7_accented_and_greek_letters_stay_gsm7() {
        let text = "£¥èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà¡¿§¤ΔΦΓΛΩΠΨΣΘΞ@$_\n\r";
        assert_eq!(analyze(text).encoding, Encoding::Gsm7);
    }

    #[test]
    fn backtick_and_tab_are_not_gsm7() {
        assert_eq!(analyze("`").encoding, Encoding::Ucs2);
        assert_eq!(analyze("\t").encoding, Encoding::Ucs2);
    }

    #[test]
    fn characters_count_code_points_not_bytes() {
        assert_eq!(analyze("é€😀").characters, 3);
    }

    #[test]
    fn encoding_names_match_their_serde_form() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.as_str(), "UCS-2");
        for e in [Encoding::Gsm7, Encoding::Ucs2] {
            let json = serde_json::to_string(&e).expect("serialise");
            assert_eq!(json, format!("\"{}\"", e.as_str()));
            let back: Encoding = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn empty_text_is_refused() {
        assert_eq!(validate_text(""), Err(InvalidText::Empty));
    }

    #[test]
    fn whitespace_only_text_is_refused_as_empty() {
        assert_eq!(validate_text("  \n\t "), Err(InvalidText::Empty));
    }

    #[test]
    fn text_of_1600_code_points_is_accepted() {
        assert_eq!(validate_text(&"a".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(validate_text(&"😀".repeat(MAX_TEXT_CHARS)), Ok(()));
    }

    #[test]
    fn text_of_1601_code_points_is_refused_with_its_length() {
        assert_eq!(
            validate_text(&"a".repeat(1601)),
            Err(InvalidText::TooLong(1601))
        );
        assert_eq!(
            validate_text(&"😀".repeat(1601)),
            Err(InvalidText::TooLong(1601))
        );
    }

    #[test]
    fn too_long_message_states_length_and_limit() {
        assert_eq!(
            InvalidText::TooLong(1601).to_string(),
            format!("text is 1601 characters; the most a message can carry is {MAX_TEXT_CHARS}")
        );
        assert_eq!(InvalidText::Empty.to_string(), "text must not be empty");
    }

    #[test]
    fn ordinary_text_is_valid() {
        assert_eq!(validate_text("See you Tuesday!"), Ok(()));
    }
}
