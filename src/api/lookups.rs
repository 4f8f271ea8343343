//! `/v1/lookups`: classify a number's line type, and read the newest result.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::{Example, ToJSON};
use poem_openapi::{Object, OpenApi};

use super::{
    auth::BearerKey,
    body::JsonBody,
    envelope::Envelope,
    error::ApiError,
    fields::request,
    idempotency::{self, KeyHeader},
    path::Path,
    reply::{error_set, Reply},
    types::Wire,
    ApiTags,
};
use crate::{
    domain::{
        lookup::{LineType, Lookup},
        PhoneNumber, Timestamp,
    },
    service::{lookups::LookupResult, Services},
};

request! {
    /// A number to look up.
    #[oai(deny_unknown_fields, example)]
    pub struct LookupRequest {
        /// The number to classify.
        pub phone_number: PhoneNumber,
    }
}

impl Example for LookupRequest {
    fn example() -> Self {
        LookupRequest {
            phone_number: PhoneNumber::parse("+12125550120").expect("valid"),
        }
    }
}

/// The result of a lookup.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct LookupView {
    /// The number looked up.
    pub phone_number: PhoneNumber,
    /// Its line type. A send to a number whose recent lookup says `landline` is refused.
    pub line_type: Wire<LineType>,
    /// When the lookup was made.
    pub looked_up_at: Timestamp,
    /// `true` when a lookup younger than the server's reuse age (24 hours by default) was
    /// returned instead of asking the vendor again; `false` for a fresh one. Always `false` when
    /// reading a stored lookup.
    pub cached: bool,
}

impl Example for LookupView {
    fn example() -> Self {
        LookupView {
            phone_number: PhoneNumber::parse("+12125550120").expect("valid"),
            line_type: Wire(LineType::Landline),
            looked_up_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            cached: false,
        }
    }
}

impl From<Lookup> for LookupView {
    fn from(l: Lookup) -> Self {
        LookupView {
            phone_number: l.phone_number,
            line_type: Wire(l.line_type),
            looked_up_at: l.looked_up_at,
            cached: false,
        }
    }
}

impl From<LookupResult> for LookupView {
    fn from(r: LookupResult) -> Self {
        LookupView {
            cached: r.cached,
            ..LookupView::from(r.lookup)
        }
    }
}

error_set!(
    /// Running a lookup.
    LookupCreateErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, IdempotencyConflict, ValidationFailed, IdempotencyKeyReused, RateLimited]
);
error_set!(
    /// Reading a lookup.
    LookupViewErrors: [Unauthorized, Forbidden, NotFound, ValidationFailed]
);

pub struct LookupsApi;

#[OpenApi(tag = "ApiTags::Lookups")]
impl LookupsApi {
    /// Look up a number
    ///
    /// Classifies the number's line type (`mobile`, `landline` or `voip`) and stores the result
    /// for your organization. For 30 days (by default) a `landline` result makes sends to the
    /// number answer 422 `LINE_TYPE_BLOCKED`, unless a newer lookup says otherwise. Sending never
    /// triggers a lookup by itself. A lookup of the number younger than 24 hours (by default) is
    /// returned again (`cached: true`) instead of asking the vendor; parallel lookups of one
    /// number ask it once. Each lookup spends one of the organization's rate-limit tokens, like a
    /// send: past them, 429 `RATE_LIMITED` with `Retry-After`.
    ///
    /// With an `Idempotency-Key`, a retry with the same key and body gets the first 201 again
    /// byte for byte (`Idempotent-Replayed: true`, the first `X-Request-Id`), spending no token;
    /// another body under the key is 422 `IDEMPOTENCY_KEY_REUSED`, and while the first request
    /// runs, 409 `IDEMPOTENCY_CONFLICT` with `Retry-After`. Keys are kept 24 hours.
    #[oai(path = "/v1/lookups", method = "post", operation_id = "lookups_create")]
    async fn lookups_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// Makes the lookup safe to retry: a retry with the same key and the same body gets the
        /// first answer again (`Idempotent-Replayed: true`) and spends no rate-limit token.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: KeyHeader,
        body: JsonBody<LookupRequest>,
    ) -> Reply<201, Envelope<LookupView>, LookupCreateErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::LookupsCreate).await?;
            let object = body.object()?;
            let idempotency = idempotency_key.key()?;
            let number = body.read(&object)?.phone_number;
            let (services, caller) = (&*services, &caller);
            idempotency::run(
                services,
                caller,
                "lookups_create",
                idempotency,
                &object,
                201,
                |r: &LookupResult| {
                    Envelope(LookupView::from(LookupResult {
                        lookup: r.lookup.clone(),
                        cached: r.cached,
                    }))
                    .to_json_string()
                },
                |completion| async move {
                    services
                        .look_up_completing(caller, &number, completion.as_ref())
                        .await
                },
            )
            .await
        };
        Reply::answer(run.await, |r| Envelope(LookupView::from(r)))
    }

    /// Retrieve the latest lookup
    ///
    /// Your organization's newest lookup of the number; 404 when there is none (or the number is
    /// not E.164).
    #[oai(
        path = "/v1/lookups/:phone_number",
        method = "get",
        operation_id = "lookups_view"
    )]
    async fn lookups_view(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The number, E.164 (`+` may be sent as `%2B`).
        phone_number: Path,
    ) -> Reply<200, Envelope<LookupView>, LookupViewErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::LookupsView).await?;
            let number = phone_number.e164()?;
            let lookup = services.latest_lookup(&caller, &number).await?;
            Ok::<_, ApiError>(Envelope(LookupView::from(lookup)))
        };
        run.await.into()
    }
}
