//! Number lookups: the line type a provider reports for a number.

use super::message::named_enum;

named_enum!(
    /// The kind of line behind a number. Sends to a `landline` are refused after a recent lookup.
    LineType { Mobile => "mobile", Landline => "landline", Voip => "voip" }
);
