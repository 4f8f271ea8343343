//! The fictional test numbers that decide what the simulated lookup provider and the simulated
//! carrier do: North American numbers whose last seven digits are 555-01XX, any area code.

use super::{lookup::LineType, PhoneNumber};

/// What the simulated carrier does with a message to a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarrierOutcome {
    /// Accepts; the receipt says DELIVRD.
    Delivered,
    /// Accepts; the receipt says UNDELIV.
    Undelivered,
    /// Refuses the submission.
    Refused,
    /// Accepts and never sends a receipt.
    NoReceipt,
}

/// One row of the test-number table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestNumberBehaviour {
    pub line_type: LineType,
    pub carrier: CarrierOutcome,
}

/// The `XX` of a North American 555-01XX number, if the number is one.
fn fictional_suffix(number: &PhoneNumber) -> Option<u8> {
    let digits = number.digits();
    let local = digits.strip_prefix('1').filter(|rest| rest.len() == 10)?;
    let tail = local[3..].strip_prefix("55501")?;
    tail.parse().ok()
}

/// The behaviour DESIGN's test-number table gives a number; any other number is a mobile that
/// accepts and is delivered.
pub fn behaviour(number: &PhoneNumber) -> TestNumberBehaviour {
    use CarrierOutcome::*;
    let (line_type, carrier) = match fictional_suffix(number) {
        Some(0..=19) => (LineType::Mobile, Delivered),
        Some(20..=29) => (LineType::Landline, Delivered),
        Some(30..=39) => (LineType::Voip, Delivered),
        Some(40..=49) => (LineType::Mobile, Undelivered),
        Some(50..=59) => (LineType::Mobile, Refused),
        Some(60..=69) => (LineType::Mobile, NoReceipt),
        _ => (LineType::Mobile, Delivered),
    };
    TestNumberBehaviour { line_type, carrier }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(n: &str) -> TestNumberBehaviour {
        behaviour(&PhoneNumber::parse(n).unwrap())
    }

    #[test]
    fn follows_the_table() {
        assert_eq!(of("+12125550100").carrier, CarrierOutcome::Delivered);
        assert_eq!(of("+12125550119").line_type, LineType::Mobile);
        assert_eq!(of("+14155550120").line_type, LineType::Landline);
        assert_eq!(of("+14155550129").line_type, LineType::Landline);
        assert_eq!(of("+14155550130").line_type, LineType::Voip);
        assert_eq!(of("+14155550145").carrier, CarrierOutcome::Undelivered);
        assert_eq!(of("+14155550150").carrier, CarrierOutcome::Refused);
        assert_eq!(of("+14155550169").carrier, CarrierOutcome::NoReceipt);
        assert_eq!(of("+14155550170"), of("+15554443333"));
        assert_eq!(of("+15554443333").line_type, LineType::Mobile);
        // Not North American: the last row, whatever its digits.
        assert_eq!(of("+445550120999").line_type, LineType::Mobile);
        assert_eq!(of("+4412345550120").line_type, LineType::Mobile);
    }
}
