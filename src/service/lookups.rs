//! Number lookups through a [`LookupProvider`]; the default is the simulated provider, whose
//! answers follow the fictional test-number table.

use async_trait::async_trait;

use super::{auth::Caller, Error, Services};
use crate::domain::{
    lookup::{LineType, Lookup},
    test_numbers, PhoneNumber,
};

/// A line-type lookup vendor.
#[async_trait]
pub trait LookupProvider: Send + Sync {
    async fn line_type(&self, number: &PhoneNumber) -> anyhow::Result<LineType>;
}

/// Answers from the test-number table without any network.
pub struct SimulatedLookups;

#[async_trait]
impl LookupProvider for SimulatedLookups {
    async fn line_type(&self, number: &PhoneNumber) -> anyhow::Result<LineType> {
        Ok(test_numbers::behaviour(number).line_type)
    }
}

impl Services {
    /// Looks `number` up and stores the result for the caller.
    pub async fn look_up(&self, caller: &Caller, number: &PhoneNumber) -> Result<Lookup, Error> {
        let line_type = self
            .lookups
            .line_type(number)
            .await
            .map_err(Error::Internal)?;
        Ok(self.tenant(caller).insert_lookup(number, line_type).await?)
    }

    /// The caller's newest lookup of `number`; 404 when there is none.
    pub async fn latest_lookup(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<Lookup, Error> {
        self.tenant(caller)
            .latest_lookup(number)
            .await?
            .ok_or(Error::NotFound)
    }
}
