//! Timestamps: stored with microsecond precision, shown on the wire as RFC 3339 UTC with
//! milliseconds and a `Z` suffix (`2026-04-26T12:00:00.123Z`), so that the events of one message
//! a few milliseconds apart show different times.

use chrono::{DateTime, SubsecRound, Utc};

/// A point in time in UTC, kept to the microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }

    /// Truncates to microseconds, the precision every store keeps.
    pub fn from_datetime(at: DateTime<Utc>) -> Timestamp {
        Timestamp(at.trunc_subsecs(6))
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// The wire form: milliseconds (always three digits), `Z` suffix. The same instant always
    /// gives the same text.
    pub fn to_wire(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// Reads an RFC 3339 timestamp in any offset.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp::from_datetime(t.with_timezone(&Utc)))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Timestamp::from_datetime(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_utc_with_milliseconds() {
        let t = Timestamp::parse_rfc3339("2026-04-26T12:00:00.987654321+00:00").unwrap();
        assert_eq!(t.to_wire(), "2026-04-26T12:00:00.987Z");
        let t = Timestamp::parse_rfc3339("2026-04-26T14:00:00+02:00").unwrap();
        assert_eq!(t.to_wire(), "2026-04-26T12:00:00.000Z");
    }

    #[test]
    fn keeps_microseconds() {
        let t = Timestamp::parse_rfc3339("2026-04-26T12:00:00.123456789Z").unwrap();
        assert_eq!(t.as_datetime().timestamp_subsec_nanos(), 123_456_000);
    }
}
