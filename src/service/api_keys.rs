//! API keys made, listed and revoked by an organization through the API, and by the admin
//! command line.

use uuid::Uuid;

use super::{
    auth::{mint_key, Caller},
    Error, Services,
};
use crate::{
    domain::{
        organization::{ApiKey, KeyMode},
        ScopeSet,
    },
    store::{api_keys::NewApiKey, Tenant},
};

impl Services {
    /// Creates a key for the caller's organization and mode with `scopes`, which must all be
    /// held by the caller. Returns the key and its secret, which is never shown again.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: Option<&str>,
        scopes: &ScopeSet,
        mode: Option<KeyMode>,
    ) -> Result<(ApiKey, String), Error> {
        caller.require_all(scopes)?;
        // A key works within its own mode: it makes keys of that mode only.
        if mode.is_some_and(|m| m != caller.mode) {
            return Err(Error::Validation(super::FieldErrors::single(
                "mode",
                &format!("must be the calling key's mode ({})", caller.mode),
            )));
        }
        let limit = self.settings.limits.api_keys;
        insert_key(&self.tenant(caller), name, scopes, Some(limit)).await
    }

    /// Creates a key of `mode` for any organization (the admin command line and the demo).
    pub async fn insert_key(
        &self,
        org_id: Uuid,
        name: Option<&str>,
        scopes: &ScopeSet,
        mode: KeyMode,
    ) -> Result<(ApiKey, String), Error> {
        // The operator is not held to a tenant's limit.
        insert_key(&self.store.tenant(org_id, mode), name, scopes, None).await
    }

    pub async fn api_keys(&self, caller: &Caller) -> Result<Vec<ApiKey>, Error> {
        Ok(self.tenant(caller).api_keys().await?)
    }

    /// Revokes one of the caller's keys; revoking twice keeps the first time. The caller must
    /// hold every scope of the key it revokes, so a narrow key cannot revoke a stronger one.
    pub async fn revoke_api_key(&self, caller: &Caller, id: Uuid) -> Result<ApiKey, Error> {
        let tenant = self.tenant(caller);
        let target = tenant.api_key(id).await?.ok_or(Error::NotFound)?;
        caller.require_all(&target.scopes)?;
        let revoked = tenant.revoke_api_key(id).await?.ok_or(Error::NotFound)?;
        // Refused at once by this process; other processes see the revision move.
        self.key_cache.clear();
        Ok(revoked)
    }

    /// Revokes any organization's key (the admin command line).
    pub async fn revoke_any_api_key(&self, id: Uuid) -> Result<ApiKey, Error> {
        let revoked = self
            .system()
            .revoke_api_key(id)
            .await?
            .ok_or(Error::NotFound)?;
        self.key_cache.clear();
        Ok(revoked)
    }
}

async fn insert_key(
    tenant: &Tenant,
    name: Option<&str>,
    scopes: &ScopeSet,
    limit: Option<u64>,
) -> Result<(ApiKey, String), Error> {
    let minted = mint_key(tenant.mode());
    let key = tenant
        .insert_api_key(
            NewApiKey {
                name,
                digest: &minted.digest,
                display_prefix: &minted.display_prefix,
                scopes,
            },
            limit,
        )
        .await?
        .map_err(|at| Error::LimitReached { limit: at.0 })?;
    Ok((key, minted.secret))
}
