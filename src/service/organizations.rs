//! Organizations and their numbers, as the admin command line and the demo set them up.

use uuid::Uuid;

use super::{Error, FieldErrors, Services};
use crate::{
    domain::{
        consent::{ConsentSource, ConsentStatus},
        organization::{ApiKey, KeyMode, Organization, OwnedNumber},
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
    /// A live key with every scope.
    pub key: String,
    /// A test-mode key with every scope (its messages go to the simulated carrier only).
    pub test_key: String,
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

    /// Every organization (the admin command line).
    pub async fn organizations(&self) -> Result<Vec<Organization>, Error> {
        Ok(self.system().organizations().await?)
    }

    /// An organization's keys of both modes, revoked ones too (never their secrets).
    pub async fn keys_of(&self, org_id: Uuid) -> Result<Vec<ApiKey>, Error> {
        self.organization(org_id).await?;
        let mut keys = self.store.tenant(org_id, KeyMode::Live).api_keys().await?;
        keys.extend(self.store.tenant(org_id, KeyMode::Test).api_keys().await?);
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    /// The numbers an organization owns.
    pub async fn numbers_of(&self, org_id: Uuid) -> Result<Vec<OwnedNumber>, Error> {
        self.organization(org_id).await?;
        Ok(self
            .store
            .tenant(org_id, KeyMode::Live)
            .phone_numbers()
            .await?)
    }

    /// Takes a number away from an organization; 404 when it does not own it.
    pub async fn remove_number(&self, org_id: Uuid, number: &PhoneNumber) -> Result<(), Error> {
        self.organization(org_id).await?;
        if self.system().remove_phone_number(org_id, number).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Sets an organization's rate limit (sends and lookups a second, and the burst).
    pub async fn set_rate_limit(
        &self,
        org_id: Uuid,
        rate_per_second: u32,
        burst: u32,
    ) -> Result<Organization, Error> {
        self.system()
            .set_rate_limit(org_id, rate_per_second, burst)
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
        // Test mode has its own consent records: the same recipient is opted in there too.
        let test = self.store.tenant(org.id, KeyMode::Test);
        if !self.may_message(&test, &to).await? {
            test.record_api_consent(
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
        let (_, test_key) = self
            .insert_key(
                org.id,
                Some("demo (test mode)"),
                &ScopeSet::all(),
                KeyMode::Test,
            )
            .await?;
        Ok(Demo {
            org_id: org.id,
            key,
            test_key,
        })
    }
}
