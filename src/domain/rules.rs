//! Every limit, pattern and range a client's input must keep, each stated once. The request
//! parsers check values with these rules, and the published schemas are built from them (each
//! rule is one named schema in the spec), so the two cannot disagree.

use super::{
    message::{
        is_media_url, MAX_MEDIA_URLS, MAX_MEDIA_URL_CHARS, MAX_TAG_CHARS, MEDIA_URL_PATTERN,
    },
    phone::{PhoneNumber, E164_PATTERN},
    text::{has_no_nul, MAX_TEXT_CHARS, NO_NUL_PATTERN},
};

/// A rule for a string: its length in Unicode scalar values and a pattern.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    /// The schema's name in the published spec.
    pub name: &'static str,
    pub min_chars: usize,
    pub max_chars: Option<usize>,
    /// The published pattern; `matches` is the same rule as code.
    pub pattern: &'static str,
    pub matches: fn(&str) -> bool,
    /// What a client is told when the pattern does not match.
    pub pattern_message: &'static str,
}

/// Why a string broke a [`TextRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRuleError {
    Length(String),
    Pattern(&'static str),
}

impl TextRuleError {
    pub fn message(&self) -> &str {
        match self {
            TextRuleError::Length(m) => m,
            TextRuleError::Pattern(m) => m,
        }
    }
}

impl TextRule {
    /// The length's description: "must be 1 to 1600 characters", "must be at most 256 characters".
    pub fn length_message(&self) -> String {
        match (self.min_chars, self.max_chars) {
            (0, Some(max)) => format!("must be at most {max} characters"),
            (min, Some(max)) => format!("must be {min} to {max} characters"),
            (min, None) => format!("must be at least {min} characters"),
        }
    }

    pub fn check(&self, value: &str) -> Result<(), TextRuleError> {
        let chars = value.chars().count();
        if chars < self.min_chars || self.max_chars.is_some_and(|max| chars > max) {
            return Err(TextRuleError::Length(self.length_message()));
        }
        if !(self.matches)(value) {
            return Err(TextRuleError::Pattern(self.pattern_message));
        }
        Ok(())
    }
}

/// A rule for a list: how many items, and whether they must differ.
#[derive(Debug, Clone, Copy)]
pub struct ListRule {
    pub name: &'static str,
    pub min_items: usize,
    pub max_items: usize,
    pub unique: bool,
    /// What the items are called in messages to clients ("URLs").
    pub noun: &'static str,
}

impl ListRule {
    pub fn count_message(&self) -> String {
        format!(
            "must have {} to {} {}",
            self.min_items, self.max_items, self.noun
        )
    }

    pub fn allows_count(&self, n: usize) -> bool {
        (self.min_items..=self.max_items).contains(&n)
    }
}

/// What a client is told when a value is not one of `names`.
pub fn one_of(names: &[&str]) -> String {
    format!("must be one of: {}", names.join(", "))
}

/// What a client is told about the item at `index` (from 0) of a list: "item 2 must be …".
pub fn item_message(index: usize, message: &str) -> String {
    format!("item {} {message}", index + 1)
}

/// What a client is told when the item at `index` repeats the one at `first` (both from 0).
pub fn repeat_message(index: usize, first: usize) -> String {
    format!("item {} repeats item {}", index + 1, first + 1)
}

/// A rule for a whole number.
#[derive(Debug, Clone, Copy)]
pub struct RangeRule {
    pub name: &'static str,
    pub minimum: i64,
    pub maximum: Option<i64>,
    /// The value taken when none is given, if the rule has one.
    pub default: Option<i64>,
}

impl RangeRule {
    pub fn allows(&self, n: i64) -> bool {
        n >= self.minimum && self.maximum.is_none_or(|max| n <= max)
    }
}

/// The most characters a carrier's id, `stat`, `err` or `done_date` may have.
pub const MAX_CARRIER_FIELD_CHARS: usize = 128;
/// The most characters an API key's name may have.
pub const MAX_KEY_NAME_CHARS: usize = 100;
/// The pattern of a listing cursor: microseconds since 1970 and a message id. Every string that
/// matches it is a position (an unknown one simply ends the walk).
pub const CURSOR_PATTERN: &str = r"^[0-9]{1,16}\.[0-9a-f]{32}$";

const MUST_BE_E164: &str = "must be E.164";
/// The E.164 message for a number in a path: the body's `"must be E.164"` (the published
/// example's wording) with an example.
pub const MUST_BE_E164_IN_PATH: &str =
    "must be E.164 (+, country code, number), such as +14155550123";

/// The E.164 message for a number in a query parameter `name`, given what arrived: a `+` sent
/// unencoded arrives as a space, and the message says so.
pub fn must_be_e164_in_query(name: &str, received: &str) -> String {
    let digits = received.trim_start_matches(' ');
    if digits.len() < received.len()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        format!("must be E.164: the + arrived as a space (a + in a query string means a space), so write it as %2B: {name}=%2B{digits}")
    } else {
        format!("must be E.164 (+, country code, number), such as +14155550123; in a query string write the + as %2B: {name}=%2B14155550123")
    }
}
const NO_NUL: &str = "must not contain NUL characters";

fn is_e164(s: &str) -> bool {
    PhoneNumber::parse(s).is_some()
}

fn is_cursor(s: &str) -> bool {
    super::listing::ListPosition::decode(s).is_some()
}

pub const PHONE_NUMBER: TextRule = TextRule {
    name: "PhoneNumber",
    min_chars: 0,
    max_chars: None,
    pattern: E164_PATTERN,
    matches: is_e164,
    pattern_message: MUST_BE_E164,
};

pub const MESSAGE_TEXT: TextRule = TextRule {
    name: "MessageText",
    min_chars: 1,
    max_chars: Some(MAX_TEXT_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

pub const TAG: TextRule = TextRule {
    name: "Tag",
    min_chars: 0,
    max_chars: Some(MAX_TAG_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

pub const MEDIA_URL: TextRule = TextRule {
    name: "MediaUrl",
    min_chars: 0,
    max_chars: Some(MAX_MEDIA_URL_CHARS),
    pattern: MEDIA_URL_PATTERN,
    matches: is_media_url,
    pattern_message: "must be an http(s) URL",
};

pub const EVIDENCE: TextRule = TextRule {
    name: "ConsentEvidence",
    min_chars: 0,
    max_chars: Some(super::consent::MAX_EVIDENCE_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

pub const KEY_NAME: TextRule = TextRule {
    name: "ApiKeyName",
    min_chars: 0,
    max_chars: Some(MAX_KEY_NAME_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

/// A carrier's id or receipt field.
pub const CARRIER_VALUE: TextRule = TextRule {
    name: "CarrierValue",
    min_chars: 1,
    max_chars: Some(MAX_CARRIER_FIELD_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

pub const IDEMPOTENCY_KEY: TextRule = TextRule {
    name: "IdempotencyKey",
    min_chars: 1,
    max_chars: Some(255),
    pattern: r"^[\x20-\x7E]*$",
    matches: is_printable_ascii,
    pattern_message: "must be printable ASCII",
};

fn is_printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7E).contains(&b))
}

pub const CURSOR: TextRule = TextRule {
    name: "Cursor",
    min_chars: 0,
    max_chars: None,
    pattern: CURSOR_PATTERN,
    matches: is_cursor,
    pattern_message: "is not a cursor this server returned",
};

/// The cursor of a message's events: the number of the last event of the previous page. Every
/// string that matches is a position.
pub const EVENT_CURSOR: TextRule = TextRule {
    name: "EventCursor",
    min_chars: 0,
    max_chars: None,
    pattern: EVENT_CURSOR_PATTERN,
    matches: is_event_cursor,
    pattern_message: "is not a cursor this server returned",
};

/// See [`EVENT_CURSOR`].
pub const EVENT_CURSOR_PATTERN: &str = r"^[0-9]{1,9}$";

fn is_event_cursor(s: &str) -> bool {
    (1..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

pub const MEDIA_URLS: ListRule = ListRule {
    name: "MediaUrls",
    min_items: 1,
    max_items: MAX_MEDIA_URLS,
    unique: false,
    noun: "URLs",
};

pub const SCOPES: ListRule = ListRule {
    name: "ScopeList",
    min_items: 1,
    max_items: super::scope::Scope::ALL.len(),
    unique: true,
    noun: "scopes",
};

pub const PAGE_LIMIT: RangeRule = RangeRule {
    name: "PageLimit",
    minimum: 1,
    maximum: Some(100),
    default: Some(20),
};

/// Seconds in a `Retry-After` header: at least 1.
pub const RETRY_AFTER: RangeRule = RangeRule {
    name: "RetryAfter",
    minimum: 1,
    maximum: None,
    default: None,
};

/// The cursor of an endpoint's deliveries: the id of the last delivery of the previous page.
pub const DELIVERY_CURSOR: TextRule = TextRule {
    name: "DeliveryCursor",
    min_chars: 0,
    max_chars: None,
    pattern: UUID_PATTERN,
    matches: is_uuid,
    pattern_message: "is not a cursor this server returned",
};

/// A UUID in its hyphenated form.
pub const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// A webhook endpoint's URL: absolute http(s), as a media URL, up to 2048 characters.
pub const WEBHOOK_URL: TextRule = TextRule {
    name: "WebhookUrl",
    min_chars: 0,
    max_chars: Some(MAX_MEDIA_URL_CHARS),
    pattern: MEDIA_URL_PATTERN,
    matches: is_media_url,
    pattern_message: "must be an absolute http or https URL",
};

/// A webhook endpoint's description.
pub const WEBHOOK_DESCRIPTION: TextRule = TextRule {
    name: "WebhookDescription",
    min_chars: 0,
    max_chars: Some(MAX_TAG_CHARS),
    pattern: NO_NUL_PATTERN,
    matches: has_no_nul,
    pattern_message: NO_NUL,
};

/// The event types an endpoint subscribes to.
pub const WEBHOOK_EVENTS: ListRule = ListRule {
    name: "WebhookEventTypes",
    min_items: 1,
    max_items: super::webhooks::SUBSCRIBABLE.len(),
    unique: true,
    noun: "event types",
};

pub const TEXT_RULES: [TextRule; 13] = [
    PHONE_NUMBER,
    MESSAGE_TEXT,
    TAG,
    MEDIA_URL,
    EVIDENCE,
    KEY_NAME,
    CARRIER_VALUE,
    IDEMPOTENCY_KEY,
    CURSOR,
    EVENT_CURSOR,
    WEBHOOK_URL,
    WEBHOOK_DESCRIPTION,
    DELIVERY_CURSOR,
];
pub const LIST_RULES: [ListRule; 3] = [MEDIA_URLS, SCOPES, WEBHOOK_EVENTS];
/// How many segments a message takes: at least 1.
pub const SEGMENT_COUNT: RangeRule = RangeRule {
    name: "SegmentCount",
    minimum: 1,
    maximum: None,
    default: None,
};

/// An event's number within its message's history: from 1.
pub const EVENT_SEQUENCE: RangeRule = RangeRule {
    name: "EventSequence",
    minimum: 1,
    maximum: None,
    default: None,
};

/// A send's own validity, in seconds: at least a minute (at most the deployment's `--validity`,
/// which the spec cannot know).
pub const VALIDITY_PERIOD: RangeRule = RangeRule {
    name: "ValidityPeriod",
    minimum: 60,
    maximum: None,
    default: None,
};

pub const RANGE_RULES: [RangeRule; 5] = [
    PAGE_LIMIT,
    RETRY_AFTER,
    SEGMENT_COUNT,
    EVENT_SEQUENCE,
    VALIDITY_PERIOD,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rule_names_are_unique() {
        let mut names: Vec<&str> = TEXT_RULES.iter().map(|r| r.name).collect();
        names.extend(LIST_RULES.iter().map(|r| r.name));
        names.extend(RANGE_RULES.iter().map(|r| r.name));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn lengths_count_unicode_scalar_values() {
        assert!(TAG.check(&"ж".repeat(256)).is_ok());
        assert!(TAG.check(&"ж".repeat(257)).is_err());
        assert!(MESSAGE_TEXT.check("").is_err());
        assert_eq!(
            MESSAGE_TEXT.check("a\0b"),
            Err(TextRuleError::Pattern(NO_NUL))
        );
    }

    proptest! {
        /// Each rule's code agrees with its published pattern.
        #[test]
        fn every_rule_matches_its_pattern(s in r"\PC{0,40}|[0-9]{1,17}\.[0-9a-f]{30,33}|\+[0-9]{0,17}|https?://[a-z]{0,5}[/ ?]?[a-z\x00]{0,4}") {
            for rule in TEXT_RULES {
                let re = regex::Regex::new(rule.pattern).unwrap();
                prop_assert_eq!((rule.matches)(&s), re.is_match(&s), "{} on {:?}", rule.name, s);
            }
        }
    }
}
