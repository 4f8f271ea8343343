//! The keywords a recipient texts to change their consent, in one place, and how a text is
//! matched against them.
//!
//! A text is normalised before matching: Unicode NFKC (so fullwidth `ＳＴＯＰ` is `STOP`),
//! punctuation and invisible characters (zero-width spaces, joiners, soft hyphens, controls)
//! removed, runs of white space collapsed to one space, trimmed, upper-cased. `Stop.`,
//! ` stop `, `STOP ALL` and a STOP behind a zero-width space all match.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// What a keyword does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAction {
    /// The recipient opts out of the organization's messages.
    OptOut,
    /// The recipient opts back in.
    OptIn,
    /// The recipient asks for help; recorded.
    Help,
}

/// Every keyword as it matches a normalised text, with what it does. Opt-outs follow the US
/// carriers' (CTIA) list and the FCC's 2024 TCPA order (REVOKE, OPT OUT).
pub const KEYWORDS: [(&str, KeywordAction); 13] = [
    ("STOP", KeywordAction::OptOut),
    ("STOPALL", KeywordAction::OptOut),
    ("STOP ALL", KeywordAction::OptOut),
    ("UNSUBSCRIBE", KeywordAction::OptOut),
    ("CANCEL", KeywordAction::OptOut),
    ("END", KeywordAction::OptOut),
    ("QUIT", KeywordAction::OptOut),
    ("REVOKE", KeywordAction::OptOut),
    ("OPTOUT", KeywordAction::OptOut),
    ("OPT OUT", KeywordAction::OptOut),
    ("START", KeywordAction::OptIn),
    ("UNSTOP", KeywordAction::OptIn),
    ("HELP", KeywordAction::Help),
];

/// A text as keywords are matched against it.
pub fn normalise(text: &str) -> String {
    let kept: String = text
        .nfkc()
        .filter(|c| {
            let group = c.general_category_group();
            // Punctuation and invisible characters go; letters, digits and spaces stay.
            !matches!(
                group,
                GeneralCategoryGroup::Punctuation | GeneralCategoryGroup::Other
            ) || c.is_whitespace()
        })
        .collect();
    kept.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The keyword a text is, if it is one, and what it does.
pub fn keyword_of(text: &str) -> Option<(&'static str, KeywordAction)> {
    let normalised = normalise(text);
    KEYWORDS.into_iter().find(|(word, _)| *word == normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_outs_are_found_however_they_are_written() {
        for text in [
            "STOP",
            "  stop \n",
            "Stop.",
            "stop!",
            "STOP ALL",
            "stop   all",
            "ＳＴＯＰ",
            "\u{200B}STOP",
            "S\u{00AD}TOP",
            "Unsubscribe",
            "revoke",
            "OPT OUT",
            "opt-out",
            "OptOut",
        ] {
            assert_eq!(
                keyword_of(text).map(|(_, action)| action),
                Some(KeywordAction::OptOut),
                "{text:?}"
            );
        }
    }

    #[test]
    fn other_texts_are_not_keywords() {
        for text in ["please stop", "STOPP", "stop it", "", "   ", "S T O P"] {
            assert_eq!(keyword_of(text), None, "{text:?}");
        }
        assert_eq!(keyword_of("start"), Some(("START", KeywordAction::OptIn)));
        assert_eq!(keyword_of("Help?"), Some(("HELP", KeywordAction::Help)));
    }
}
