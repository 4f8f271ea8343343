//! API keys made, listed and revoked by an organization through the API.

use entity::api_key;
use uuid::Uuid;

use super::{
    auth::{mint_key, Caller},
    Error, Services,
};
use crate::{domain::ScopeSet, store::api_keys::NewApiKey};

impl Services {
    /// Creates a key for the caller's organization with `scopes`, which must all be held by the
    /// caller. Returns the row and the secret, which is never shown again.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: Option<&str>,
        scopes: &ScopeSet,
    ) -> Result<(api_key::Model, String), Error> {
        if let Some(missing) = scopes.iter().find(|s| !caller.scopes.contains(*s)) {
            return Err(Error::Forbidden {
                required_scope: missing,
            });
        }
        self.insert_key(caller.org_id, name, scopes).await
    }

    /// Creates a key for any organization (the admin command line and the demo).
    pub async fn insert_key(
        &self,
        org_id: Uuid,
        name: Option<&str>,
        scopes: &ScopeSet,
    ) -> Result<(api_key::Model, String), Error> {
        let minted = mint_key();
        let stored = scopes.to_stored();
        let row = self
            .store
            .insert_api_key(NewApiKey {
                org_id,
                name,
                digest: &minted.digest,
                display_prefix: &minted.display_prefix,
                scopes: &stored,
                mode: "live",
            })
            .await?;
        Ok((row, minted.secret))
    }

    pub async fn api_keys(&self, caller: &Caller) -> Result<Vec<api_key::Model>, Error> {
        Ok(self.store.api_keys(caller.org_id).await?)
    }

    /// Revokes one of the organization's keys; revoking twice keeps the first time.
    pub async fn revoke_api_key(&self, caller: &Caller, id: Uuid) -> Result<api_key::Model, Error> {
        self.store
            .revoke_api_key(Some(caller.org_id), id)
            .await?
            .ok_or(Error::NotFound)
    }
}
