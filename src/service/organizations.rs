//! Organizations and their numbers, as the admin command line and the demo set them up.

use uuid::Uuid;

use super::{Error, FieldErrors, Services};
use crate::{
    domain::{
        consent::{ConsentSource, ConsentStatus},
        organization::{KeyMode, Organization, OwnedNumber},
        PhoneNumber, ScopeSet,
    },
    store::is_unique_violation,
};

/// The demo organization's name; `serve --demo` finds it by this name.
pub const DEMO_ORG_NAME: &str = "AgentMessage demo";
/// The seed example's sender, owned by the demo organization.
pub const DEMO_FROM: &str = "+15551112222";
/// The seed example's recipient, opted in to the demo organization.
pub const DEMO_TO: &str = "+15554443333";

/// What `serve --demo` prepared.
pub struct Demo {
    pub org_id: Uuid,
    pub key: String,
}

impl Services {
    pub async fn create_organization(
        &self,
        name: &str,
        rate_per_second: u32,
        burst: u32,
    ) -> Result<Organization, Error> {
        Ok(self
            .system()
            .create_organization(name, rate_per_second, burst)
            .await?)
    }

    /// The organization with this id; 404 when there is none.
    pub async fn organization(&self, org_id: Uuid) -> Result<Organization, Error> {
        self.system()
            .organization(org_id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Gives a number to an organization. A number owned by another organization is refused.
    pub async fn add_number(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<OwnedNumber, Error> {
        self.organization(org_id).await?;
        let system = self.system();
        match system.insert_phone_number(org_id, number).await {
            Ok(row) => Ok(row),
            Err(err) if is_unique_violation(&err) => match system.phone_number(number).await? {
                Some(existing) if existing.org_id == org_id => Ok(existing),
                _ => Err(Error::Validation(FieldErrors::single(
                    "number",
                    "is owned by another organization",
                ))),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// Makes sure the demo organization exists, owns the seed's `from` and may message the
    /// seed's `to`, and mints a fresh key with every scope.
    pub async fn prepare_demo(&self) -> Result<Demo, Error> {
        let org = match self.system().organization_by_name(DEMO_ORG_NAME).await? {
            Some(org) => org,
            None => self.create_organization(DEMO_ORG_NAME, 10, 20).await?,
        };
        let from = PhoneNumber::parse(DEMO_FROM).expect("a valid demo number");
        let to = PhoneNumber::parse(DEMO_TO).expect("a valid demo number");
        self.add_number(org.id, &from).await?;
        let tenant = self.store.tenant(org.id, KeyMode::Live);
        if !self.may_message(&tenant, &to).await? {
            // Through the lock check: a recipient who texted STOP stays opted out.
            tenant
                .record_api_consent(
                    &to,
                    ConsentStatus::OptedIn,
                    ConsentSource::Api,
                    Some("demo set-up"),
                )
                .await?;
        }
        let (_, key) = self
            .insert_key(org.id, Some("demo"), &ScopeSet::all(), KeyMode::Live)
            .await?;
        Ok(Demo {
            org_id: org.id,
            key,
        })
    }
}
