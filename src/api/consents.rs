//! `/v1/consents/{phone_number}`: record opt-ins and opt-outs, and read the current state.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use super::{
    auth::BearerKey,
    body::JsonBody,
    envelope::Envelope,
    error::ApiError,
    fields::{request, Fields, ReadRequest},
    path::Path,
    reply::{error_set, Reply},
    types::{ConsentEvidence, OptInSource, Wire},
    ApiTags,
};
use crate::{
    domain::{
        consent::{ConsentSource, ConsentState, ConsentStatus},
        rules, PhoneNumber, Timestamp,
    },
    service::{Error, Services},
};

request! {
    /// An opt-in to record.
    #[oai(deny_unknown_fields, example)]
    pub struct OptInRequest {
        /// How the recipient gave consent.
        pub source: Wire<OptInSource>,
        /// What proves it: a form id, a URL, a note; up to 1000 characters.
        #[oai(skip_serializing_if_is_none)]
        pub evidence: Option<ConsentEvidence>,
    }
}

impl Example for OptInRequest {
    fn example() -> Self {
        OptInRequest {
            source: Wire(OptInSource(ConsentSource::WebForm)),
            evidence: Some(ConsentEvidence("signup form #5521, 2026-04-20".into())),
        }
    }
}

/// A recipient's current consent to messages from your organization.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ConsentView {
    /// The recipient.
    pub phone_number: PhoneNumber,
    /// `opted_in` or `opted_out`.
    pub status: Wire<ConsentStatus>,
    /// How the newest record was collected.
    pub source: Wire<ConsentSource>,
    /// The evidence given with the newest record, or null.
    #[oai(nullable)]
    pub evidence: Option<String>,
    /// When the newest record was made.
    pub updated_at: Timestamp,
    /// True while the recipient's own keyword opt-out (STOP, …) stands: whatever your
    /// organization records after it, the recipient cannot be messaged (sends answer 453) and
    /// an opt-in through the API answers 409 `CONSENT_LOCKED`. Only the recipient lifts it, by
    /// texting START (or UNSTOP).
    pub locked: bool,
}

impl Example for ConsentView {
    fn example() -> Self {
        ConsentView {
            phone_number: PhoneNumber::parse("+15554443333").expect("valid"),
            status: Wire(ConsentStatus::OptedIn),
            source: Wire(ConsentSource::WebForm),
            evidence: Some("signup form #5521, 2026-04-20".into()),
            updated_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            locked: false,
        }
    }
}

impl ConsentView {
    /// The view of a recipient's state: its newest record and the lock; `None` when nothing
    /// was ever recorded.
    pub fn of(state: &ConsentState) -> Option<ConsentView> {
        let c = state.latest.clone()?;
        Some(ConsentView {
            phone_number: c.phone_number,
            status: Wire(c.status),
            source: Wire(c.source),
            evidence: c.evidence,
            updated_at: c.recorded_at,
            locked: state.locked(),
        })
    }
}

/// The answer of a consent operation: the state's view, or 404 when nothing was recorded.
fn answer(state: &ConsentState) -> Result<Envelope<ConsentView>, ApiError> {
    ConsentView::of(state)
        .map(Envelope)
        .ok_or_else(|| Error::NotFound.into())
}

error_set!(
    /// Recording an opt-in.
    OptInErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, ConsentLocked, ValidationFailed]
);
error_set!(
    /// Recording an opt-out.
    OptOutErrors: [Unauthorized, Forbidden, ValidationFailed]
);
error_set!(
    /// Reading consent.
    ConsentViewErrors: [Unauthorized, Forbidden, NotFound, ValidationFailed]
);

pub struct ConsentsApi;

#[OpenApi(tag = "ApiTags::Consents")]
impl ConsentsApi {
    /// Record an opt-in
    ///
    /// Records that the recipient opted in to messages from your organization, with how the
    /// consent was collected. Earlier records are kept as history; the newest decides, except
    /// that a recipient whose latest keyword record is an opt-out (they texted STOP) cannot be
    /// opted back in through the API, whatever was recorded after it: 409 `CONSENT_LOCKED`;
    /// only their own START lifts it.
    #[oai(
        path = "/v1/consents/:phone_number",
        method = "put",
        operation_id = "consents_update"
    )]
    async fn consents_update(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The recipient, E.164 (`+` may be sent as `%2B`).
        phone_number: Path,
        body: JsonBody<OptInRequest>,
    ) -> Reply<200, Envelope<ConsentView>, OptInErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ConsentsUpdate).await?;
            let object = body.object()?;
            let number = phone_number.phone_number();
            let mut f = Fields::new(object);
            if number.is_none() {
                f.error("phone_number", rules::MUST_BE_E164_IN_PATH);
            }
            let request = OptInRequest::read_fields(&mut f);
            let (number, request) = f
                .finish(|| Some((number?, request?)))
                .map_err(Error::Validation)?;
            let evidence = request.evidence.map(|e| e.0);
            let record = services
                .record_consent(
                    &caller,
                    &number,
                    ConsentStatus::OptedIn,
                    request.source.0 .0,
                    evidence.as_deref(),
                )
                .await?;
            answer(&record)
        };
        run.await.into()
    }

    /// Record an opt-out
    ///
    /// Records that the recipient opted out of messages from your organization (source `api`).
    /// Sends to the recipient answer 453 `CONSENT_REQUIRED` until a new opt-in is recorded. It
    /// does not lift the recipient's own keyword opt-out (`locked` stays true).
    #[oai(
        path = "/v1/consents/:phone_number",
        method = "delete",
        operation_id = "consents_delete"
    )]
    async fn consents_delete(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The recipient, E.164 (`+` may be sent as `%2B`).
        phone_number: Path,
    ) -> Reply<200, Envelope<ConsentView>, OptOutErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ConsentsDelete).await?;
            let number = phone_number.e164()?;
            let record = services
                .record_consent(
                    &caller,
                    &number,
                    ConsentStatus::OptedOut,
                    ConsentSource::Api,
                    None,
                )
                .await?;
            answer(&record)
        };
        run.await.into()
    }

    /// Retrieve consent
    ///
    /// The recipient's current consent state; 404 when none was ever recorded (or the number is
    /// not E.164).
    #[oai(
        path = "/v1/consents/:phone_number",
        method = "get",
        operation_id = "consents_view"
    )]
    async fn consents_view(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The recipient, E.164 (`+` may be sent as `%2B`).
        phone_number: Path,
    ) -> Reply<200, Envelope<ConsentView>, ConsentViewErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::ConsentsView).await?;
            let number = phone_number.e164()?;
            let state = services.consent(&caller, &number).await?;
            answer(&state)
        };
        run.await.into()
    }
}
