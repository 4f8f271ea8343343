//! Consent: whether a recipient has opted in to messages from an organization, and how.

pub use entity::values::{ConsentSource, ConsentStatus};

use super::{PhoneNumber, Timestamp};

/// One consent record; the newest per organization and recipient is the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub phone_number: PhoneNumber,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub evidence: Option<String>,
    pub recorded_at: Timestamp,
}

/// The sources an organization may record through the API. `keyword` is not among them: only
/// the recipient's own message (STOP, START) records it.
pub const API_SOURCES: [ConsentSource; 5] = [
    ConsentSource::WebForm,
    ConsentSource::PaperForm,
    ConsentSource::Verbal,
    ConsentSource::Api,
    ConsentSource::Import,
];

/// Whether an organization may record an opt-in through the API after `latest`: not while the
/// recipient's own keyword opt-out stands (carrier rules and the FCC's 2024 TCPA order make it
/// binding until the recipient opts back in themselves).
pub fn api_may_opt_in(latest: Option<&Consent>) -> bool {
    !latest
        .is_some_and(|c| c.status == ConsentStatus::OptedOut && c.source == ConsentSource::Keyword)
}

/// The one consent rule: a recipient may be messaged only while their newest record is an
/// opt-in. No record, or an opt-out, means no.
pub fn may_receive(latest: Option<&Consent>) -> bool {
    latest.is_some_and(|c| c.status == ConsentStatus::OptedIn)
}

/// The most characters consent evidence may have.
pub const MAX_EVIDENCE_CHARS: usize = 1000;
