//! Recording and reading a recipient's consent, and the one rule that decides whether a
//! recipient may be messaged.

use super::{auth::Caller, Error, Services};
use crate::{
    domain::{
        consent::{may_receive, Consent, ConsentSource, ConsentStatus},
        PhoneNumber,
    },
    store::Tenant,
};

impl Services {
    pub async fn record_consent(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<Consent, Error> {
        Ok(self
            .tenant(caller)
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
