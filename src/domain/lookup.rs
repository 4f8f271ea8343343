//! Number lookups: the line type a provider reports for a number.

/// The kind of line behind a number. Sends to a `landline` are refused after a recent lookup.
pub use entity::values::LineType;

use super::{PhoneNumber, Timestamp};

/// The result of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub phone_number: PhoneNumber,
    pub line_type: LineType,
    pub looked_up_at: Timestamp,
}
