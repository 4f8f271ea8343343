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
/// carriers' (CTIA) list and the FCC's 2024 TCPA order (STOP, QUIT, END, REVOKE, OPT OUT,
/// CANCEL, UNSUBSCRIBE), with STOPALL and OPTOUT as carriers spell them.
///
/// HALT and REMOVE are opt-outs too: the FCC's order makes a revocation by any reasonable means
/// binding, and in a short message ("remove me", "halt") both can only mean stop. Honouring one
/// that was not meant costs the recipient a START; missing one that was meant is a message sent
/// after a valid opt-out.
pub const KEYWORDS: [(&str, KeywordAction); 15] = [
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
    ("HALT", KeywordAction::OptOut),
    ("REMOVE", KeywordAction::OptOut),
    ("START", KeywordAction::OptIn),
    ("UNSTOP", KeywordAction::OptIn),
    ("HELP", KeywordAction::Help),
];

/// The most words a message may have for an opt-out keyword inside it to opt out ("stop
/// please", "STOP texting me"); a longer one that contains one is recorded, not acted on.
pub const SHORT_MESSAGE_WORDS: usize = 5;

/// What a recipient's text says, as keywords go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordMatch {
    /// The text is this keyword (alone or repeated), or a short message containing this
    /// opt-out keyword: act on it.
    Act(&'static str, KeywordAction),
    /// A longer message that contains this opt-out keyword: recorded, not acted on.
    Mentioned(&'static str),
}

/// A text as keywords are matched against it: Unicode NFKC, punctuation, symbols (emoji among
/// them), marks and invisible characters removed, white space collapsed, upper-cased.
pub fn normalise(text: &str) -> String {
    let kept: String = text
        .nfkc()
        .filter(|c| {
            let group = c.general_category_group();
            // Letters, digits and spaces stay.
            !matches!(
                group,
                GeneralCategoryGroup::Punctuation
                    | GeneralCategoryGroup::Symbol
                    | GeneralCategoryGroup::Mark
                    | GeneralCategoryGroup::Other
            ) || c.is_whitespace()
        })
        .collect();
    kept.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// What `text` says as keywords go, if anything: the one matcher for every inbound path.
pub fn match_keyword(text: &str) -> Option<KeywordMatch> {
    let normalised = normalise(text);
    let words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return None;
    }
    // The text is one keyword, alone or repeated ("STOP", "STOP STOP", "stop all stop all").
    for (keyword, action) in KEYWORDS {
        let parts: Vec<&str> = keyword.split(' ').collect();
        if words.len().is_multiple_of(parts.len()) && words.chunks(parts.len()).all(|c| c == parts)
        {
            return Some(KeywordMatch::Act(keyword, action));
        }
    }
    // An opt-out keyword inside it, as whole words: the first one in the text.
    let found = (0..words.len()).find_map(|at| {
        KEYWORDS
            .into_iter()
            .filter(|(_, action)| *action == KeywordAction::OptOut)
            .map(|(keyword, _)| keyword)
            // The longer spelling first: "STOP ALL" before "STOP".
            .filter(|keyword| {
                let parts: Vec<&str> = keyword.split(' ').collect();
                words[at..].starts_with(&parts)
            })
            .max_by_key(|keyword| keyword.len())
    })?;
    Some(if words.len() <= SHORT_MESSAGE_WORDS {
        KeywordMatch::Act(found, KeywordAction::OptOut)
    } else {
        KeywordMatch::Mentioned(found)
    })
}

/// The keyword a text acts as, if any, and what it does.
pub fn keyword_of(text: &str) -> Option<(&'static str, KeywordAction)> {
    match match_keyword(text)? {
        KeywordMatch::Act(word, action) => Some((word, action)),
        KeywordMatch::Mentioned(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeywordAction::{Help, OptIn, OptOut};

    /// Texts and what they say, written out from the rules: a keyword alone or repeated acts;
    /// an opt-out keyword inside a message of at most five words opts out; inside a longer one
    /// it is recorded only; anything else is no keyword.
    const TABLE: &[(&str, Option<KeywordMatch>)] = &[
        ("STOP", Some(KeywordMatch::Act("STOP", OptOut))),
        ("stop", Some(KeywordMatch::Act("STOP", OptOut))),
        ("  stop \n", Some(KeywordMatch::Act("STOP", OptOut))),
        ("Stop.", Some(KeywordMatch::Act("STOP", OptOut))),
        ("Stop!!", Some(KeywordMatch::Act("STOP", OptOut))),
        ("STOP STOP", Some(KeywordMatch::Act("STOP", OptOut))),
        ("stop stop stop", Some(KeywordMatch::Act("STOP", OptOut))),
        ("STOP🙂", Some(KeywordMatch::Act("STOP", OptOut))),
        ("🛑 STOP 🛑", Some(KeywordMatch::Act("STOP", OptOut))),
        ("ＳＴＯＰ", Some(KeywordMatch::Act("STOP", OptOut))),
        ("\u{200B}STOP", Some(KeywordMatch::Act("STOP", OptOut))),
        ("S\u{00AD}TOP", Some(KeywordMatch::Act("STOP", OptOut))),
        ("STOP ALL", Some(KeywordMatch::Act("STOP ALL", OptOut))),
        ("stop   all", Some(KeywordMatch::Act("STOP ALL", OptOut))),
        ("StopAll", Some(KeywordMatch::Act("STOPALL", OptOut))),
        (
            "Unsubscribe",
            Some(KeywordMatch::Act("UNSUBSCRIBE", OptOut)),
        ),
        ("cancel", Some(KeywordMatch::Act("CANCEL", OptOut))),
        ("END", Some(KeywordMatch::Act("END", OptOut))),
        ("quit", Some(KeywordMatch::Act("QUIT", OptOut))),
        ("revoke", Some(KeywordMatch::Act("REVOKE", OptOut))),
        ("OPT OUT", Some(KeywordMatch::Act("OPT OUT", OptOut))),
        ("opt-out", Some(KeywordMatch::Act("OPTOUT", OptOut))),
        ("OptOut", Some(KeywordMatch::Act("OPTOUT", OptOut))),
        ("halt", Some(KeywordMatch::Act("HALT", OptOut))),
        ("REMOVE", Some(KeywordMatch::Act("REMOVE", OptOut))),
        ("stop please", Some(KeywordMatch::Act("STOP", OptOut))),
        ("please stop", Some(KeywordMatch::Act("STOP", OptOut))),
        ("STOP texting me", Some(KeywordMatch::Act("STOP", OptOut))),
        (
            "Please STOP texting me!",
            Some(KeywordMatch::Act("STOP", OptOut)),
        ),
        (
            "remove me from this list",
            Some(KeywordMatch::Act("REMOVE", OptOut)),
        ),
        (
            "stop all messages please",
            Some(KeywordMatch::Act("STOP ALL", OptOut)),
        ),
        (
            "ok, unsubscribe",
            Some(KeywordMatch::Act("UNSUBSCRIBE", OptOut)),
        ),
        ("START", Some(KeywordMatch::Act("START", OptIn))),
        ("start start", Some(KeywordMatch::Act("START", OptIn))),
        ("Unstop", Some(KeywordMatch::Act("UNSTOP", OptIn))),
        ("Help?", Some(KeywordMatch::Act("HELP", Help))),
        ("HELP HELP", Some(KeywordMatch::Act("HELP", Help))),
        (
            "I will stop by the office later today",
            Some(KeywordMatch::Mentioned("STOP")),
        ),
        (
            "please do not cancel my appointment on friday",
            Some(KeywordMatch::Mentioned("CANCEL")),
        ),
        (
            "the meeting will end at five tomorrow afternoon",
            Some(KeywordMatch::Mentioned("END")),
        ),
        ("STOPP", None),
        ("S T O P", None),
        ("stopwatch", None),
        ("", None),
        ("   ", None),
        ("🙂", None),
        ("hello", None),
        ("start the engine please", None),
        ("can you help me with my order", None),
        ("unstoppable", None),
    ];

    #[test]
    fn every_text_of_the_table_says_what_the_rules_say() {
        assert!(TABLE.len() >= 40);
        for (text, expected) in TABLE {
            assert_eq!(match_keyword(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn only_acted_keywords_change_consent() {
        assert_eq!(keyword_of("please stop"), Some(("STOP", OptOut)));
        assert_eq!(keyword_of("I will stop by the office later today"), None);
        assert_eq!(keyword_of("hello"), None);
    }
}
