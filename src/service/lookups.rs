//! Number lookups through a [`LookupProvider`]; the default is the simulated provider, whose
//! answers follow the fictional test-number table.

use async_trait::async_trait;
use entity::lookup;

use super::{auth::Caller, Error, Services};
use crate::domain::{lookup::LineType, test_numbers, PhoneNumber};

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
    /// Looks `number` up and stores the result for the organization.
    pub async fn look_up(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<lookup::Model, Error> {
        let line_type = self
            .lookups
            .line_type(number)
            .await
            .map_err(Error::Internal)?;
        Ok(self
            .store
            .insert_lookup(caller.org_id, number, line_type)
            .await?)
    }

    /// The organization's newest lookup of `number`; 404 when there is none.
    pub async fn latest_lookup(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<lookup::Model, Error> {
        self.store
            .latest_lookup(caller.org_id, number)
            .await?
            .ok_or(Error::NotFound)
    }
}
