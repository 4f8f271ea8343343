//! Bearer API keys. The extractor only captures the `Authorization` header, so that the checks
//! run in the documented order inside the operation: authenticate (401), then scope (403), then
//! the body.

use poem::{http::header, Request, RequestBody};
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use crate::service::{auth::Caller, Error, Services};

/// The name of the security scheme in the published spec.
pub const SCHEME: &str = "ApiKeyAuth";

/// The bearer token a request carried, if any; checked by [`BearerKey::authorize`].
pub struct BearerKey(Option<String>);

impl BearerKey {
    /// Authenticates the key and checks that it holds the scope `operation` requires.
    pub async fn authorize(
        &self,
        services: &Services,
        operation: super::operations::Operation,
    ) -> Result<Caller, Error> {
        let token = self.0.as_deref().ok_or(Error::Unauthorized)?;
        let caller = services.authenticate(token).await?;
        caller.require(operation.scope())?;
        Ok(caller)
    }
}

impl<'a> ApiExtractor<'a> for BearerKey {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "Send your API key as a bearer token: `Authorization: Bearer am_live_...`. \
                     Every request is scoped to the organization that owns the key and to the \
                     scopes granted to that key.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("am_live_..."),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(BearerKey(bearer_token(request)))
    }
}

/// The name of the carrier's security scheme in the published spec.
pub const CARRIER_SCHEME: &str = "CarrierAuth";

/// The bearer token on a carrier callback; checked by [`CarrierKey::authorize`].
pub struct CarrierKey(Option<String>);

impl CarrierKey {
    /// 401 unless the token equals the configured carrier secret (compared as digests, so the
    /// time taken says nothing about the secret).
    pub fn authorize(&self, services: &Services) -> Result<(), Error> {
        let (Some(token), Some(secret)) = (
            self.0.as_deref(),
            services.settings.carrier_secret.as_deref(),
        ) else {
            return Err(Error::Unauthorized);
        };
        if crate::service::auth::digest(token) == crate::service::auth::digest(secret) {
            Ok(())
        } else {
            Err(Error::Unauthorized)
        }
    }
}

impl<'a> ApiExtractor<'a> for CarrierKey {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            CARRIER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "The carrier's own credential (the server's `AGENTMESSAGE_CARRIER_SECRET`), \
                     sent as a bearer token. Not an organization's API key.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![CARRIER_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(CarrierKey(bearer_token(request)))
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
}
