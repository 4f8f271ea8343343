//! `/v1/api_keys`: make restricted keys, list them, revoke them.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{
    auth::BearerKey,
    body::JsonBody,
    envelope::{Envelope, ListEnvelope},
    error::ApiError,
    fields::request,
    path::Path,
    reply::{error_set, Reply},
    types::{ApiKeyName, ScopeList, Wire},
    ApiTags,
};
use crate::{
    domain::{
        organization::{ApiKey, KeyMode},
        Scope, ScopeSet, Timestamp,
    },
    service::{Error, Services},
};

request! {
    /// A key to create. Its scopes must all be held by the key that creates it.
    #[oai(deny_unknown_fields, example)]
    pub struct CreateApiKeyRequest {
        /// A label for the key, up to 100 characters.
        #[oai(skip_serializing_if_is_none)]
        pub name: Option<ApiKeyName>,
        /// The scopes to grant: at least one, each held by the calling key.
        pub scopes: ScopeList,
        /// The key's mode; a key makes keys of its own mode only (the default).
        #[oai(skip_serializing_if_is_none)]
        pub mode: Option<Wire<KeyMode>>,
    }
}

impl Example for CreateApiKeyRequest {
    fn example() -> Self {
        CreateApiKeyRequest {
            name: Some(ApiKeyName("reporting".into())),
            scopes: ScopeList(vec![Wire(Scope::MessagesRead)]),
            mode: None,
        }
    }
}

/// An API key. The secret itself is shown only once, when the key is created.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ApiKeyView {
    /// The key's id.
    pub id: Uuid,
    /// The label given at creation, or null.
    #[oai(nullable)]
    pub name: Option<String>,
    /// The first characters of the key, to recognise it by.
    pub prefix: String,
    /// The scopes the key holds.
    pub scopes: Vec<Wire<Scope>>,
    /// `live`, or `test` for a key whose messages only reach the simulated carrier.
    pub mode: Wire<KeyMode>,
    /// When the key was created.
    pub created_at: Timestamp,
    /// When the key was last used (updated at most once a minute), or null.
    #[oai(nullable)]
    pub last_used_at: Option<Timestamp>,
    /// When the key was revoked, or null while it works.
    #[oai(nullable)]
    pub revoked_at: Option<Timestamp>,
}

impl Example for ApiKeyView {
    fn example() -> Self {
        ApiKeyView {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c6").expect("valid"),
            name: Some("reporting".into()),
            prefix: "am_live_Xk3d".into(),
            scopes: vec![Wire(Scope::MessagesRead)],
            mode: Wire(KeyMode::Live),
            created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            last_used_at: None,
            revoked_at: None,
        }
    }
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.display_prefix,
            scopes: k.scopes.iter().map(Wire).collect(),
            mode: Wire(k.mode),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key with its secret.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct NewApiKeyView {
    /// The full key (`am_live_` and 32 characters). Store it now: it is never shown again.
    pub key: String,
    /// The key's id.
    pub id: Uuid,
    /// The label given at creation, or null.
    #[oai(nullable)]
    pub name: Option<String>,
    /// The first characters of the key, to recognise it by.
    pub prefix: String,
    /// The scopes the key holds.
    pub scopes: Vec<Wire<Scope>>,
    /// `live`, or `test` for a key whose messages only reach the simulated carrier.
    pub mode: Wire<KeyMode>,
    /// When the key was created.
    pub created_at: Timestamp,
}

impl Example for NewApiKeyView {
    fn example() -> Self {
        let view = ApiKeyView::example();
        NewApiKeyView {
            key: "am_live_Xk3dQ9vL2mN8pR4sT6uW1yZ5aB7cD0eF".into(),
            id: view.id,
            name: view.name,
            prefix: view.prefix,
            scopes: view.scopes,
            mode: view.mode,
            created_at: view.created_at,
        }
    }
}

error_set!(
    /// Creating a key.
    CreateKeyErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, LimitReached, ValidationFailed]
);
error_set!(
    /// Listing keys.
    ListKeysErrors: [Unauthorized, Forbidden]
);
error_set!(
    /// Revoking a key.
    RevokeKeyErrors: [Unauthorized, Forbidden, NotFound]
);

pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Create an API key
    ///
    /// Creates a key for your organization with the given scopes, each of which the calling key
    /// must hold (else 403 with `details.required_scope`, the first missing scope, and
    /// `details.missing_scopes`, all of them). The response shows the key once. An organization
    /// holds at most the deployment's limit of unrevoked keys per mode (100 by default): one more
    /// is 409 `LIMIT_REACHED` with `details.limit`.
    #[oai(
        path = "/v1/api_keys",
        method = "post",
        operation_id = "api_keys_create"
    )]
    async fn api_keys_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> Reply<201, Envelope<NewApiKeyView>, CreateKeyErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ApiKeysCreate).await?;
            let request = body.request()?;
            let scopes: ScopeSet = request.scopes.0.iter().map(|s| s.0).collect();
            let name = request.name.map(|n| n.0);
            let mode = request.mode.map(|m| m.0);
            let (row, secret) = services
                .create_api_key(&caller, name.as_deref(), &scopes, mode)
                .await?;
            let view = ApiKeyView::from(row);
            Ok::<_, ApiError>(Envelope(NewApiKeyView {
                key: secret,
                id: view.id,
                name: view.name,
                prefix: view.prefix,
                scopes: view.scopes,
                mode: view.mode,
                created_at: view.created_at,
            }))
        };
        run.await.into()
    }

    /// List API keys
    ///
    /// Every key of your organization in the calling key's mode, newest first, in one page
    /// (`has_more` is false). Secrets are never shown.
    #[oai(path = "/v1/api_keys", method = "get", operation_id = "api_keys_list")]
    async fn api_keys_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
    ) -> Reply<200, ListEnvelope<ApiKeyView>, ListKeysErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ApiKeysList).await?;
            let keys = services.api_keys(&caller).await?;
            Ok::<_, ApiError>(ListEnvelope::complete(
                keys.into_iter().map(ApiKeyView::from).collect(),
            ))
        };
        run.await.into()
    }

    /// Revoke an API key
    ///
    /// Revokes one of your organization's keys at once: requests with it answer 401 from then
    /// on. Revoking a revoked key keeps its first revocation time. The calling key must hold every
    /// scope of the key it revokes, so a narrow key cannot revoke a stronger one (403 with
    /// `details.required_scope`, the first missing scope, and `details.missing_scopes`, all of
    /// them).
    #[oai(
        path = "/v1/api_keys/:id",
        method = "delete",
        operation_id = "api_keys_delete"
    )]
    async fn api_keys_delete(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The key's id.
        id: Path,
    ) -> Reply<200, Envelope<ApiKeyView>, RevokeKeyErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ApiKeysDelete).await?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            let row = services.revoke_api_key(&caller, id).await?;
            Ok::<_, ApiError>(Envelope(ApiKeyView::from(row)))
        };
        run.await.into()
    }
}
