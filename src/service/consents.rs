//! Recording and reading a recipient's consent.

use entity::consent;

use super::{auth::Caller, Error, Services};
use crate::domain::{
    consent::{ConsentSource, ConsentStatus},
    PhoneNumber,
};

impl Services {
    pub async fn record_consent(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<consent::Model, Error> {
        Ok(self
            .store
            .insert_consent(caller.org_id, number, status, source, evidence)
            .await?)
    }

    /// The current consent state; 404 when nothing was ever recorded.
    pub async fn consent(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<consent::Model, Error> {
        self.store
            .latest_consent(caller.org_id, number)
            .await?
            .ok_or(Error::NotFound)
    }
}
