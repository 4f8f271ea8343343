//! The response type of every operation: one success status with its body, and the error statuses
//! the operation can really return. The spec is generated from the same type, so the documented
//! statuses and the answered ones cannot drift apart.

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{Mutex, OnceLock},
};

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
    ApiResponse,
};

use super::{
    envelope::{ErrorCode, ErrorEnvelope},
    error::ApiError,
    types::RetryAfter,
};

/// The error codes one operation documents (and so may answer with).
pub trait ErrorSet: Send + Sync + 'static {
    const CODES: &'static [ErrorCode];
}

/// Declares a marker type listing an operation's error codes.
macro_rules! error_set {
    ($(#[$meta:meta])* $name:ident: [$($code:ident),* $(,)?]) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::api::reply::ErrorSet for $name {
            const CODES: &'static [$crate::api::envelope::ErrorCode] =
                &[$($crate::api::envelope::ErrorCode::$code),*];
        }
    };
}
pub(crate) use error_set;

/// Codes that only faults produce; documented once for the whole API, not per operation.
pub const FAULT_CODES: [ErrorCode; 2] = [ErrorCode::InternalError, ErrorCode::ServiceUnavailable];

/// Codes every operation can answer before it runs (the body size is checked on every route),
/// documented on each operation.
pub const EVERY_OPERATION: [ErrorCode; 1] = [ErrorCode::PayloadTooLarge];

/// The codes an operation documents: its own and [`EVERY_OPERATION`]'s, in catalogue order.
fn documented_codes<E: ErrorSet>() -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = E::CODES.iter().chain(&EVERY_OPERATION).copied().collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// A response with success status `STATUS` and body `B`, or one of `E`'s errors.
pub struct Reply<const STATUS: u16, B, E: ErrorSet> {
    result: Result<B, ApiError>,
    /// An answer recorded under an `Idempotency-Key`, sent again byte for byte.
    replay: Option<crate::domain::idempotency::Recorded>,
    _errors: PhantomData<E>,
}

impl<const STATUS: u16, B, E: ErrorSet> Reply<STATUS, B, E> {
    pub fn ok(body: B) -> Self {
        Reply {
            result: Ok(body),
            replay: None,
            _errors: PhantomData,
        }
    }

    pub fn error(error: impl Into<ApiError>) -> Self {
        Reply {
            result: Err(error.into()),
            replay: None,
            _errors: PhantomData,
        }
    }

    /// The answer recorded under an `Idempotency-Key`, with the original `X-Request-Id` and
    /// `Idempotent-Replayed: true`.
    pub fn replayed(recorded: crate::domain::idempotency::Recorded) -> Self {
        Reply {
            result: Err(ApiError::new(ErrorCode::InternalError)),
            replay: Some(recorded),
            _errors: PhantomData,
        }
    }

    /// An operation's answer under an `Idempotency-Key`: the resource it made (rendered by
    /// `view`) or the recorded one.
    pub fn answer<T>(
        answer: Result<super::idempotency::Answer<T>, ApiError>,
        view: impl FnOnce(T) -> B,
    ) -> Self {
        match answer {
            Ok(super::idempotency::Answer::Made(made)) => Reply::ok(view(made)),
            Ok(super::idempotency::Answer::Replayed(recorded)) => Reply::replayed(recorded),
            Err(error) => Reply::error(error),
        }
    }
}

impl<const STATUS: u16, B, E: ErrorSet, X: Into<ApiError>> From<Result<B, X>>
    for Reply<STATUS, B, E>
{
    fn from(result: Result<B, X>) -> Self {
        match result {
            Ok(body) => Reply::ok(body),
            Err(error) => Reply::error(error),
        }
    }
}

impl<const STATUS: u16, B: ToJSON, E: ErrorSet> IntoResponse for Reply<STATUS, B, E> {
    fn into_response(self) -> Response {
        if let Some(recorded) = self.replay {
            let status =
                StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = Response::builder()
                .status(status)
                .content_type("application/json; charset=utf-8")
                .header(super::idempotency::REPLAYED_HEADER, "true")
                .header(super::request_id::HEADER, recorded.request_id.as_str())
                .body(recorded.body);
            if let Some(phrase) = ErrorCode::ALL
                .into_iter()
                .find(|c| c.status() == recorded.status)
                .and_then(|c| c.reason_phrase())
            {
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(phrase.as_bytes()));
            }
            return response;
        }
        match self.result {
            Ok(body) => Response::builder()
                .status(StatusCode::from_u16(STATUS).expect("a valid success status"))
                .content_type("application/json; charset=utf-8")
                .body(body.to_json_string()),
            Err(error) => {
                debug_assert!(
                    E::CODES.contains(&error.code) || FAULT_CODES.contains(&error.code),
                    "{} answered by an operation that does not document it",
                    error.code.as_str()
                );
                error.into_response()
            }
        }
    }
}

fn success_description(status: u16) -> &'static str {
    match status {
        200 => "OK: the resource in the success envelope.",
        201 => "Created: the new resource in the success envelope.",
        202 => "Accepted: the resource in the success envelope; processing continues.",
        _ => "Success.",
    }
}

/// "`CODE`: what it means" for each code sharing one status, built once per combination.
fn error_description(codes: &[ErrorCode]) -> &'static str {
    static CACHE: OnceLock<Mutex<HashMap<Vec<ErrorCode>, &'static str>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache.entry(codes.to_vec()).or_insert_with(|| {
        let text = codes
            .iter()
            .map(|code| format!("`{}`: {}", code.as_str(), code_meaning(*code)))
            .collect::<Vec<_>>()
            .join("\n\n");
        Box::leak(text.into_boxed_str())
    })
}

/// The catalogue's sentence for each code (the same text as the code's doc comment).
pub fn code_meaning(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "the body is not JSON or not a JSON object (`details.body` says where the JSON breaks: line and column), or a query parameter or header is malformed (`details` names it).",
        ErrorCode::Unauthorized => "the API key is missing, malformed, unknown or revoked; `details.authorization` says which of: no credentials, not a Bearer token (naming the scheme sent, such as Basic), a key that does not exist or no longer works. `WWW-Authenticate` carries the challenge.",
        ErrorCode::Forbidden => "the API key lacks the operation's scope (`details.required_scope`); making or revoking a key also needs every scope of that key (`details.missing_scopes` lists those missing).",
        ErrorCode::NotFound => "no such resource is visible to the organization.",
        ErrorCode::MethodNotAllowed => "the path exists but not with this method; see the `Allow` header.",
        ErrorCode::PayloadTooLarge => "the body is larger than 64 KiB.",
        ErrorCode::UriTooLong => "the request target (path and query) is longer than 8 KiB.",
        ErrorCode::HeadersTooLarge => "the request's headers are larger than 32 KiB.",
        ErrorCode::RequestTimeout => "the request body did not arrive within the server's body timeout.",
        ErrorCode::UnsupportedMediaType => "a body was sent that is not `application/json` (form bodies are not accepted): send JSON with `Content-Type: application/json`.",
        ErrorCode::IdempotencyConflict => "a request with the same `Idempotency-Key` and the same body is still running; retry after `Retry-After` seconds to get its answer.",
        ErrorCode::LimitReached => "the organization already holds as many of these as the deployment allows in this mode (`details.limit`; webhook endpoints: `--max-webhook-endpoints`, default 16; API keys not revoked: `--max-api-keys`, default 100); delete or revoke one first.",
        ErrorCode::MessageNotCancelable => "only a `scheduled` message can be canceled; `details.status` is the message's status now (`queued` once its `send_at` came, `canceled` when it was canceled already, …).",
        ErrorCode::IdempotencyKeyReused => "the `Idempotency-Key` was already used with a different request body (compared as RFC 8785 canonical JSON) for this operation.",
        ErrorCode::ConsentLocked => "the recipient's latest record is their own keyword opt-out (STOP): only the recipient can opt back in, by texting START.",
        ErrorCode::ValidationFailed => "one or more fields are invalid; `details` maps each failing field to what is wrong with it.",
        ErrorCode::LineTypeBlocked => "a recent lookup classified the recipient as a landline.",
        ErrorCode::RateLimited => "the organization's rate of sends and lookups was exceeded; retry after `Retry-After` seconds.",
        ErrorCode::ConsentRequired => "the recipient has not opted in to this organization, or has opted out. `details.to` names the recipient; `details.consent` says why: `never_opted_in`, `opted_out_through_api` (both fixed by recording an opt-in with `PUT /v1/consents/{phone_number}`) or `opted_out_by_keyword` (the recipient texted STOP or another opt-out keyword; only their START undoes it); `details.fix` says what to do.",
        ErrorCode::InternalError => "an unexpected fault; the server log holds its cause under the request id.",
        ErrorCode::WebhooksNotConfigured => "this deployment's operator has not set `AGENTMESSAGE_SECRET_KEY`, under which webhook signing secrets are stored, so it cannot create webhook endpoints.",
        ErrorCode::ServiceUnavailable => "the database cannot be reached, is locked by another process, or has no free connection in time; retry after `Retry-After` seconds.",
    }
}

/// Whether answers with `code` carry `Retry-After`.
fn has_retry_after(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited | ErrorCode::ServiceUnavailable | ErrorCode::IdempotencyConflict
    )
}

/// The `Retry-After` header as documented on 429, 503 and an idempotency conflict's 409;
/// `required` when every code of the status carries it.
pub fn retry_after_header(required: bool) -> MetaHeader {
    MetaHeader {
        name: "Retry-After".into(),
        description: Some(
            if required {
                "Whole seconds to wait before retrying; at least 1."
            } else {
                "Whole seconds to wait before retrying; at least 1. Sent with `IDEMPOTENCY_CONFLICT`, not with the other codes of this status."
            }
            .into(),
        ),
        required,
        deprecated: false,
        schema: RetryAfter::schema_ref(),
    }
}

impl<const STATUS: u16, B: Type + ToJSON, E: ErrorSet> ApiResponse for Reply<STATUS, B, E> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        let mut responses = vec![MetaResponse {
            description: success_description(STATUS),
            status: Some(STATUS),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: B::schema_ref(),
            }],
            headers: vec![],
        }];
        let documented = documented_codes::<E>();
        let mut statuses: Vec<u16> = documented.iter().map(|c| c.status()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            let codes: Vec<ErrorCode> = documented
                .iter()
                .copied()
                .filter(|c| c.status() == status)
                .collect();
            let mut headers = if codes.iter().any(|c| has_retry_after(*c)) {
                vec![retry_after_header(
                    codes.iter().all(|c| has_retry_after(*c)),
                )]
            } else {
                vec![]
            };
            if codes.contains(&ErrorCode::Unauthorized) {
                headers.push(MetaHeader {
                    name: "WWW-Authenticate".into(),
                    description: Some(
                        "The challenge (RFC 6750): `Bearer realm=\"agentmessage\"`, with `error=\"invalid_token\"` when the key sent does not work.".into(),
                    ),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                });
            }
            responses.push(MetaResponse {
                description: error_description(&codes),
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json",
                    schema: ErrorEnvelope::schema_ref(),
                }],
                headers,
            });
        }
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        B::register(registry);
        ErrorEnvelope::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Reply::error(ApiError::from_poem(err))
    }
}
