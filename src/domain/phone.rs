//! E.164 phone numbers, checked by pattern alone and never reformatted.

use std::fmt;

/// The one E.164 rule shared by the server's check and the published spec's `pattern`.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{6,14}$";

/// A phone number in E.164 form: `+`, a non-zero digit, then 6 to 14 more digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts exactly the strings that match [`E164_PATTERN`].
    pub fn parse(s: &str) -> Option<PhoneNumber> {
        let digits = s.strip_prefix('+')?;
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| PhoneNumber(s.to_owned()))
    }

    /// A number read back from the store, which holds only numbers parsed on the way in. It is
    /// not checked again: a damaged row is shown as it is rather than replaced.
    pub fn from_stored(s: String) -> PhoneNumber {
        PhoneNumber(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits after the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_seed_numbers_unchanged() {
        for n in ["+15551112222", "+15554443333", "+4915112345678", "+1234567"] {
            assert_eq!(PhoneNumber::parse(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn rejects_numbers_outside_the_pattern() {
        for n in [
            "",
            "+",
            "15551112222",
            "+0555111222",
            "+123456",
            "+1234567890123456",
            "+1555 111 2222",
            "+1-555-111-2222",
            " +15551112222",
            "+15551112222\n",
            "+1555111222a",
            "++15551112222",
            "+１５５５１１１２２２２",
        ] {
            assert!(PhoneNumber::parse(n).is_none(), "{n:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_published_pattern(s in r"\PC{0,20}|\+[0-9]{0,17}") {
            let re = regex::Regex::new(E164_PATTERN).unwrap();
            prop_assert_eq!(PhoneNumber::parse(&s).is_some(), re.is_match(&s));
        }
    }
}
