//! Listing messages: which ones (a filter) and where a page starts (a keyset position, handed to
//! clients as an opaque cursor).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    message::{Direction, MessageStatus},
    PhoneNumber,
};

/// Which messages a listing wants; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub direction: Option<Direction>,
    pub to: Option<PhoneNumber>,
    pub from: Option<PhoneNumber>,
    pub tag: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Where a page starts: after the message with this creation time and id (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ListPosition {
    /// The cursor a client is given: microseconds since 1970, a dot, the id in 32 hex digits
    /// (what [`super::rules::CURSOR_PATTERN`] publishes).
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Reads a cursor: exactly the strings [`super::rules::CURSOR_PATTERN`] matches, each of
    /// which is a position.
    pub fn decode(cursor: &str) -> Option<ListPosition> {
        let (micros, id) = cursor.split_once('.')?;
        let digits_ok =
            (1..=16).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
        let id_ok = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !(digits_ok && id_ok) {
            return None;
        }
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let id = Uuid::try_parse(id).ok()?;
        Some(ListPosition { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let position = ListPosition {
            created_at: Timestamp::now().as_datetime(),
            id: Uuid::now_v7(),
        };
        assert_eq!(ListPosition::decode(&position.encode()), Some(position));
        for bad in [
            "",
            "abc",
            "1.2",
            "x.0196f1a23b4c7d5e8f60718293a4b5c6",
            "-1.0196f1a23b4c7d5e8f60718293a4b5c6",
            "1.0196F1A23B4C7D5E8F60718293A4B5C6",
            "1.0196f1a2-3b4c-7d5e-8f60-718293a4b5c6",
            "99999999999999999999.0196f1a23b4c7d5e8f60718293a4b5c6",
        ] {
            assert_eq!(ListPosition::decode(bad), None, "{bad}");
        }
        // The largest value the pattern allows is still a position.
        assert!(
            ListPosition::decode("9999999999999999.ffffffffffffffffffffffffffffffff").is_some()
        );
    }
}
