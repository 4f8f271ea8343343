//! Recording and reading a recipient's consent, and the one rule that decides whether a
//! recipient may be messaged.

use super::{auth::Caller, Error, Services};
use crate::{
    domain::{
        consent::{ConsentSource, ConsentState, ConsentStatus, API_SOURCES},
        PhoneNumber,
    },
    store::Tenant,
};

impl Services {
    /// Records an opt-in or opt-out made through the API. `source: keyword` is the recipient's
    /// alone (422), and an opt-in is refused while the recipient's own keyword opt-out stands
    /// (409 `CONSENT_LOCKED`).
    pub async fn record_consent(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<ConsentState, Error> {
        if !API_SOURCES.contains(&source) {
            return Err(Error::Validation(super::FieldErrors::single(
                "source",
                &source_message(),
            )));
        }
        // The lock is checked in the transaction that writes.
        self.tenant(caller)
            .record_api_consent(number, status, source, evidence)
            .await?
            .ok_or(Error::ConsentLocked)
    }

    /// The current consent state (the newest record and the lock); 404 when nothing was ever
    /// recorded.
    pub async fn consent(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<ConsentState, Error> {
        let state = self.tenant(caller).consent_state(number).await?;
        if state.latest.is_none() {
            return Err(Error::NotFound);
        }
        Ok(state)
    }

    /// May `tenant` message `to` now? The one consent rule ([`ConsentState::may_receive`]), as
    /// the send path and the worker's claim apply it.
    pub(crate) async fn may_message(
        &self,
        tenant: &Tenant,
        to: &PhoneNumber,
    ) -> Result<bool, Error> {
        Ok(tenant.consent_state(to).await?.may_receive())
    }
}

/// What a client is told about `source`: the values the API accepts.
pub fn source_message() -> String {
    let names: Vec<&str> = API_SOURCES.iter().map(|s| s.as_str()).collect();
    crate::domain::rules::one_of(&names)
}
