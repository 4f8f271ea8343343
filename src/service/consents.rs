//! Recording and reading a recipient's consent, and the one rule that decides whether a
//! recipient may be messaged.

use super::{auth::Caller, Error, Services};
use crate::{
    domain::{
        consent::{
            api_may_opt_in, may_receive, Consent, ConsentSource, ConsentStatus, API_SOURCES,
        },
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
    ) -> Result<Consent, Error> {
        if !API_SOURCES.contains(&source) {
            return Err(Error::Validation(super::FieldErrors::single(
                "source",
                &source_message(),
            )));
        }
        let tenant = self.tenant(caller);
        if status == ConsentStatus::OptedIn
            && !api_may_opt_in(tenant.latest_consent(number).await?.as_ref())
        {
            return Err(Error::ConsentLocked);
        }
        Ok(tenant
            .insert_consent(number, status, source, evidence)
            .await?)
    }

    /// The current consent state; 404 when nothing was ever recorded.
    pub async fn consent(&self, caller: &Caller, number: &PhoneNumber) -> Result<Consent, Error> {
        self.tenant(caller)
            .latest_consent(number)
            .await?
            .ok_or(Error::NotFound)
    }

    /// May `tenant` message `to` now? The one consent rule ([`may_receive`]), used by the send
    /// path, the worker's claim and the demo set-up.
    pub(crate) async fn may_message(
        &self,
        tenant: &Tenant,
        to: &PhoneNumber,
    ) -> Result<bool, Error> {
        Ok(may_receive(tenant.latest_consent(to).await?.as_ref()))
    }
}

/// What a client is told about `source`: the values the API accepts.
pub fn source_message() -> String {
    let names: Vec<&str> = API_SOURCES.iter().map(|s| s.as_str()).collect();
    format!("must be one of: {}", names.join(", "))
}
