//! Message attributes and the status values a message moves through. The closed sets are declared
//! in `entity::values`, where the database's column types must live; they are used from here.

pub use entity::values::{Channel, Direction, KeyMode, MessageStatus, PartState, Priority};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use entity::values::MessageErrorCode;

use super::{text::Encoding, PhoneNumber, Timestamp};

/// A message, outbound or inbound, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub org_id: Uuid,
    pub mode: KeyMode,
    pub direction: Direction,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    /// The text, or an MMS caption.
    pub text: String,
    pub channel: Channel,
    pub priority: Priority,
    pub status: MessageStatus,
    pub tag: Option<String>,
    /// Empty for SMS.
    pub media_urls: Vec<String>,
    pub segments: u32,
    pub encoding: Encoding,
    pub error_code: Option<MessageErrorCode>,
    pub error_message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a scheduled message is released to the queue.
    pub send_at: Option<DateTime<Utc>>,
    /// When its validity runs out, when it is its own (see [`NewMessage::valid_until`]).
    pub valid_until: Option<DateTime<Utc>>,
    pub delivery: Delivery,
}

/// Where the worker and the carrier are with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The carrier that took it, and its id there.
    pub carrier: Option<String>,
    pub carrier_message_id: Option<String>,
    /// The worker holding it while it is `sending`, and until when.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Set before the carrier is called: once set, it is never submitted again.
    pub attempted_at: Option<DateTime<Utc>>,
    /// When the carrier took it (its first part).
    pub sent_at: Option<DateTime<Utc>>,
    /// When it became `delivered`.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One part of an outbound message as the carrier takes it (one `submit_sm` over SMPP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// From 1.
    pub number: u8,
    pub total: u8,
    /// The concatenation header's reference: the same on every part and every retry.
    pub reference: u8,
    pub state: PartState,
    pub carrier_message_id: Option<String>,
    /// The final receipt's `stat`, once one arrived.
    pub receipt_stat: Option<String>,
}

/// The parts still to submit (never submitted, or deferred by the carrier), in order.
pub fn pending_parts(parts: &[Part]) -> Vec<Part> {
    parts
        .iter()
        .filter(|p| p.state == PartState::Pending)
        .cloned()
        .collect()
}

/// The most media URLs one MMS may carry.
pub const MAX_MEDIA_URLS: usize = 10;
/// The most characters a tag may have.
pub const MAX_TAG_CHARS: usize = 256;
/// The most characters one media URL may have.
pub const MAX_MEDIA_URL_CHARS: usize = 2048;

/// The published pattern for media URLs: http(s), a host, and no spaces or control characters.
///
/// The scheme is matched in any case (RFC 3986: `HTTPS://` is `https://`); the spec's pattern
/// language has no case flag, so the letters are spelled as classes.
pub const MEDIA_URL_PATTERN: &str = r"^[hH][tT][tT][pP][sS]?://[^\x00-\x20/?#]+[^\x00-\x20\x7f]*$";

/// A media URL: [`MEDIA_URL_PATTERN`] (the same rule the spec publishes) and at most
/// [`MAX_MEDIA_URL_CHARS`] characters.
pub fn is_media_url(s: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern =
        PATTERN.get_or_init(|| regex::Regex::new(MEDIA_URL_PATTERN).expect("a valid pattern"));
    s.chars().count() <= MAX_MEDIA_URL_CHARS && pattern.is_match(s)
}

/// A message to store, outbound (`queued`) or inbound (`received`): its first status comes
/// from the transition plan of its creation.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The id to give it (an inbound MMS's media URLs name it before it is stored); a fresh one
    /// when none.
    pub id: Option<uuid::Uuid>,
    pub direction: Direction,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    pub channel: Channel,
    pub priority: Priority,
    pub tag: Option<String>,
    pub media_urls: Vec<String>,
    pub segments: u32,
    pub encoding: Encoding,
    /// `(carrier, carrier_message_id)` of an inbound message.
    pub carrier: Option<(String, String)>,
    /// Accepted for later: `scheduled` until then.
    pub send_at: Option<DateTime<Utc>>,
    /// When its validity runs out, when that is not the deployment's validity counted from
    /// creation (a `validity_period` of its own, or a `send_at`).
    pub valid_until: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Priority::parse("urgent"), None);
    }

    #[test]
    fn media_urls_must_be_http_or_https() {
        assert!(is_media_url("https://example.com/cat.jpg"));
        assert!(is_media_url("http://example.com:8080/a?b=c"));
        assert!(!is_media_url("ftp://example.com/cat.jpg"));
        assert!(!is_media_url("example.com/cat.jpg"));
        assert!(!is_media_url("https://"));
        assert!(!is_media_url(""));
        assert!(!is_media_url("https://example.com/a b.png"));
        assert!(!is_media_url("https://example.com/a\0.png"));
    }

    #[test]
    fn media_url_check_agrees_with_the_published_pattern() {
        let re = regex::Regex::new(MEDIA_URL_PATTERN).unwrap();
        for url in [
            "https://example.com/cat.jpg",
            "http://a.b/c?d=e#f",
            "ftp://example.com/x",
            "https://",
            "https://a b/c",
            "https://example.com/a\u{7f}",
            "https://example.com/\0",
            "http:///path",
            "https://ex.com/ü",
        ] {
            assert_eq!(re.is_match(url), is_media_url(url), "{url:?}");
        }
    }
}
