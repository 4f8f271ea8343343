//! Bearer API keys. The extractor only captures the `Authorization` header, so that the checks
//! run in the documented order inside the operation: authenticate (401), then scope (403), then
//! the body.

use poem::{http::header, Request, RequestBody};
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use crate::service::{auth::Caller, AuthFailure, Error, Services};

/// The name of the security scheme in the published spec.
pub const SCHEME: &str = "ApiKeyAuth";

/// The bearer token a request carried, or why it has none; checked by [`BearerKey::authorize`].
pub struct BearerKey(Result<String, AuthFailure>);

impl BearerKey {
    /// Authenticates the key and checks that it holds the scope `operation` requires.
    pub async fn authorize(
        &self,
        services: &Services,
        operation: super::operations::Operation,
    ) -> Result<Caller, Error> {
        let token = self
            .0
            .as_deref()
            .map_err(|why| Error::Unauthorized(why.clone()))?;
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

/// The bearer token on a carrier callback, or why it has none; checked by
/// [`CarrierKey::authorize`].
pub struct CarrierKey(Result<String, AuthFailure>);

impl CarrierKey {
    /// 401 unless the token equals the configured carrier secret (compared as digests, so the
    /// time taken says nothing about the secret).
    pub fn authorize(&self, services: &Services) -> Result<(), Error> {
        let token = self
            .0
            .as_deref()
            .map_err(|why| Error::Unauthorized(why.clone()))?;
        let refused = Error::Unauthorized(AuthFailure::KeyNotWorking);
        let secret = services.settings.carrier_secret.as_deref().ok_or(refused)?;
        if crate::service::auth::digest(token) == crate::service::auth::digest(secret) {
            Ok(())
        } else {
            Err(Error::Unauthorized(AuthFailure::KeyNotWorking))
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

/// The token of an `Authorization: Bearer …` header, or why there is none.
fn bearer_token(request: &Request) -> Result<String, AuthFailure> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AuthFailure::NoCredentials)?;
    let value = String::from_utf8_lossy(value.as_bytes());
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(token.trim().to_owned())
    } else if scheme.is_empty() {
        Err(AuthFailure::NoCredentials)
    } else {
        // The scheme's name as registered when it is a common one; another is not echoed.
        let named = ["Basic", "Digest", "Token", "ApiKey"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(scheme))
            .unwrap_or("another");
        Err(AuthFailure::NotBearer(named.to_owned()))
    }
}
