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

/// What the consent rules read about one recipient of one organization (and mode): the newest
/// record of any source, and the newest record the recipient made themselves, by keyword.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentState {
    /// The newest record, if any was ever made.
    pub latest: Option<Consent>,
    /// The newest keyword record (STOP, START, …), if the recipient ever sent one.
    pub keyword: Option<Consent>,
}

impl ConsentState {
    /// The lock: the recipient's newest keyword record is an opt-out. Carrier rules and the FCC's
    /// 2024 TCPA order make a keyword opt-out binding until the recipient opts back in
    /// themselves (START), whatever the organization records through the API after it.
    pub fn locked(&self) -> bool {
        self.keyword
            .as_ref()
            .is_some_and(|c| c.status == ConsentStatus::OptedOut)
    }

    /// Whether an organization may record an opt-in through the API: not while the lock holds
    /// (an opt-out it may always record).
    pub fn api_may_opt_in(&self) -> bool {
        !self.locked()
    }

    /// The one consent rule: a recipient may be messaged only while their newest record is an
    /// opt-in and no keyword opt-out of theirs stands. No record means no.
    pub fn may_receive(&self) -> bool {
        !self.locked()
            && self
                .latest
                .as_ref()
                .is_some_and(|c| c.status == ConsentStatus::OptedIn)
    }

    /// Why the recipient may not be messaged, or `None` when they may.
    pub fn refusal(&self) -> Option<ConsentRefusal> {
        if self.may_receive() {
            None
        } else if self.locked() {
            Some(ConsentRefusal::OptedOutByKeyword)
        } else if self.latest.is_some() {
            Some(ConsentRefusal::OptedOutThroughApi)
        } else {
            Some(ConsentRefusal::NeverOptedIn)
        }
    }
}

/// Why a send's recipient may not be messaged: what a 453 `CONSENT_REQUIRED` says, with the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRefusal {
    /// No consent record exists for the recipient.
    NeverOptedIn,
    /// The recipient texted an opt-out keyword (STOP, …): only they can undo it.
    OptedOutByKeyword,
    /// The organization recorded an opt-out through the API (or an import).
    OptedOutThroughApi,
}

impl ConsentRefusal {
    /// The name given in `details.consent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeverOptedIn => "never_opted_in",
            Self::OptedOutByKeyword => "opted_out_by_keyword",
            Self::OptedOutThroughApi => "opted_out_through_api",
        }
    }

    /// What makes the recipient `to` reachable, given in `details.fix`.
    pub fn fix(self, to: &PhoneNumber) -> String {
        match self {
            Self::NeverOptedIn | Self::OptedOutThroughApi => format!(
                "record the recipient's opt-in with PUT /v1/consents/{} (operation consents_update)",
                to.as_str()
            ),
            Self::OptedOutByKeyword => {
                "the recipient opted out by texting a keyword such as STOP: only they can opt back in, by texting START".into()
            }
        }
    }
}

/// The most characters consent evidence may have.
pub const MAX_EVIDENCE_CHARS: usize = 1000;
