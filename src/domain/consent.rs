//! Consent: whether a recipient has opted in to messages from an organization, and how.

use super::message::named_enum;

named_enum!(
    /// The recipient's current choice.
    ConsentStatus { OptedIn => "opted_in", OptedOut => "opted_out" }
);

named_enum!(
    /// How the choice was collected.
    ConsentSource {
        WebForm => "web_form",
        PaperForm => "paper_form",
        Verbal => "verbal",
        Keyword => "keyword",
        Api => "api",
        Import => "import",
    }
);

/// The most characters consent evidence may have.
pub const MAX_EVIDENCE_CHARS: usize = 1000;
