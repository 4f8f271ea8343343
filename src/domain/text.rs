//! Message text: length rules, character encoding and segment counting.
//!
//! A text that uses only the GSM 03.38 default alphabet (and its extension table, whose
//! characters take an escape and so count twice) is sent as GSM-7: 160 septets in a single
//! segment, 153 per segment once it is split. Anything else is sent as UCS-2: 70 UTF-16 units in a
//! single segment, 67 per segment. A split never separates an escape from its character, nor the
//! two halves of a surrogate pair.

/// No stored text may hold U+0000 (PostgreSQL cannot store it, and no handset shows it). The
/// published schemas carry this pattern on every free-text field.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// Whether a free-text value is free of U+0000.
pub fn has_no_nul(s: &str) -> bool {
    !s.contains('\0')
}

/// The most characters (Unicode scalar values) a message text may have.
pub const MAX_TEXT_CHARS: usize = 1600;

pub use entity::values::Encoding;

/// Units that fit a message sent whole.
fn single_limit(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => 160,
        Encoding::Ucs2 => 70,
    }
}

/// Units that fit each part of a split message (the rest holds the concatenation header).
fn part_limit(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => 153,
        Encoding::Ucs2 => 67,
    }
}

/// The GSM 03.38 default alphabet in table order, without the escape at 0x1B.
pub(crate) const GSM7_BASIC: &str =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table: each character and its code after the escape.
pub(crate) const GSM7_EXTENSION: [(char, u8); 10] = [
    ('\u{000C}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// Septets a character takes in GSM-7: 1 for the default alphabet, 2 for the extension table.
pub fn gsm7_units(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.iter().any(|(e, _)| *e == c) {
        Some(2)
    } else {
        None
    }
}

/// A message text of 1 to [`MAX_TEXT_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

/// Why a text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
    /// Holds U+0000.
    Nul,
}

impl MessageText {
    pub fn parse(s: &str) -> Result<MessageText, TextError> {
        match s.chars().count() {
            0 => Err(TextError::Empty),
            n if n > MAX_TEXT_CHARS => Err(TextError::TooLong),
            _ if !has_no_nul(s) => Err(TextError::Nul),
            _ => Ok(MessageText(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn encoding(&self) -> Encoding {
        encoding_of(&self.0)
    }

    pub fn segments(&self) -> usize {
        split_segments(&self.0).len()
    }
}

/// GSM-7 when every character is in the GSM 03.38 alphabet or its extension, else UCS-2.
pub fn encoding_of(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_units(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

fn units(encoding: Encoding, c: char) -> usize {
    match encoding {
        Encoding::Gsm7 => gsm7_units(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// The parts a text is sent in, in order. Their concatenation is the text; no character is
/// split across two parts. An empty text is one empty part.
pub fn split_segments(text: &str) -> Vec<&str> {
    let encoding = encoding_of(text);
    let total: usize = text.chars().map(|c| units(encoding, c)).sum();
    if total <= single_limit(encoding) {
        return vec![text];
    }
    let limit = part_limit(encoding);
    let mut parts = Vec::with_capacity(total / limit + 1);
    let (mut start, mut used) = (0, 0);
    for (at, c) in text.char_indices() {
        let u = units(encoding, c);
        if used + u > limit {
            parts.push(&text[start..at]);
            start = at;
            used = 0;
        }
        used += u;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn count(text: &str) -> (Encoding, usize) {
        (encoding_of(text), split_segments(text).len())
    }

    #[test]
    fn gsm7_single_and_split_boundaries() {
        assert_eq!(count(&"a".repeat(153)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(154)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(307)), (Encoding::Gsm7, 3));
    }

    #[test]
    fn extension_characters_count_twice() {
        // 80 euro signs are 160 septets: one segment; one more character makes two.
        assert_eq!(count(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(count(&format!("{}a", "€".repeat(80))), (Encoding::Gsm7, 2));
        assert_eq!(count(&format!("{}^", "a".repeat(159))), (Encoding::Gsm7, 2));
    }

    #[test]
    fn an_escape_pair_at_a_segment_boundary_moves_whole_to_the_next_part() {
        // 152 + 2 would overflow the first 153-septet part, so the euro starts part two:
        // 152 | € + 151 (153) | 1 — three parts where a naive count says two.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        let parts = split_segments(&text);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "a".repeat(152));
        assert!(parts[1].starts_with('€'));
    }

    #[test]
    fn ucs2_boundaries_and_surrogate_pairs() {
        assert_eq!(count(&"ж".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(count(&"ж".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(135)), (Encoding::Ucs2, 3));
        // 35 emoji are 70 UTF-16 units: still one segment.
        assert_eq!(count(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        // An emoji at unit 67 of 67 would be split: it moves whole to the next part.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        let parts = split_segments(&text);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "ж".repeat(66));
        assert!(parts[1].starts_with('😀'));
    }

    #[test]
    fn one_non_gsm_character_makes_the_whole_text_ucs2() {
        assert_eq!(count("hello from agentmessage"), (Encoding::Gsm7, 1));
        assert_eq!(count("hello “quoted”"), (Encoding::Ucs2, 1));
    }

    #[test]
    fn text_length_counts_unicode_scalar_values() {
        assert_eq!(MessageText::parse(""), Err(TextError::Empty));
        assert_eq!(MessageText::parse("a\0b"), Err(TextError::Nul));
        let nul = regex::Regex::new(NO_NUL_PATTERN).unwrap();
        assert!(nul.is_match("hello") && !nul.is_match("a\0b"));
        assert!(MessageText::parse(&"😀".repeat(1600)).is_ok());
        assert_eq!(
            MessageText::parse(&"a".repeat(1601)),
            Err(TextError::TooLong)
        );
    }

    use super::strategies::{any_text, gsm_char};

    proptest! {
        #[test]
        fn segments_cover_the_text_and_respect_limits(text in any_text()) {
            let encoding = encoding_of(&text);
            let parts = split_segments(&text);
            prop_assert_eq!(parts.concat(), text.clone());
            let total: usize = text.chars().map(|c| units(encoding, c)).sum();
            if total <= single_limit(encoding) {
                prop_assert_eq!(parts.len(), 1);
            } else {
                let limit = part_limit(encoding);
                for (i, part) in parts.iter().enumerate() {
                    let used: usize = part.chars().map(|c| units(encoding, c)).sum();
                    prop_assert!(used <= limit && used > 0);
                    // Greedy: a part ends only when the next character would not fit.
                    if let Some(next) = parts.get(i + 1).and_then(|p| p.chars().next()) {
                        prop_assert!(used + units(encoding, next) > limit);
                    }
                }
                prop_assert!(parts.len() >= total.div_ceil(limit));
                prop_assert!(parts.len() <= total.div_ceil(limit - 1));
            }
        }

        #[test]
        fn gsm_only_texts_are_gsm7(v in proptest::collection::vec(gsm_char(), 1..300)) {
            let text: String = v.into_iter().collect();
            prop_assert_eq!(encoding_of(&text), Encoding::Gsm7);
        }
    }
}

/// Texts for property tests: GSM-7 only, or mixed with any character and emoji.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    use super::{GSM7_BASIC, GSM7_EXTENSION};

    pub fn gsm_char() -> impl Strategy<Value = char> {
        let all: Vec<char> = GSM7_BASIC
            .chars()
            .chain(GSM7_EXTENSION.iter().map(|(c, _)| *c))
            .collect();
        proptest::sample::select(all)
    }

    pub fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(gsm_char(), 1..700).prop_map(|v| v.into_iter().collect()),
            proptest::collection::vec(prop_oneof![gsm_char(), any::<char>(), Just('😀')], 1..400)
                .prop_map(|v| v.into_iter().collect()),
        ]
    }
}
