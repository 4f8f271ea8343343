//! The one mapping from failures to HTTP: every error leaves the server as the error envelope
//! with a code from [`ErrorCode`], its status, and the request id. Causes go to the log.

use std::collections::BTreeMap;

use poem::{
    http::{header, HeaderValue, StatusCode},
    IntoResponse, Response,
};
use poem_openapi::types::ToJSON;

use super::{
    envelope::{ErrorBody, ErrorCode, ErrorEnvelope, Flag},
    request_id,
};
use crate::service;

/// The most entries an error's `details` holds.
pub const MAX_DETAILS: usize = 100;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub details: Option<BTreeMap<String, String>>,
    /// Entries left out of `details` past [`MAX_DETAILS`]; the message says how many.
    pub omitted: usize,
    /// Seconds for the `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// Methods for the `Allow` header (405).
    pub allow: Option<String>,
    /// The `WWW-Authenticate` challenge (401).
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            details: None,
            omitted: 0,
            retry_after: None,
            allow: None,
            challenge: None,
        }
    }

    /// An error naming what failed; past [`MAX_DETAILS`] entries the rest are counted in the
    /// message instead (`validation failed (and 12 more)`), so a huge body draws a small answer.
    pub fn with_details(code: ErrorCode, mut details: BTreeMap<String, String>) -> Self {
        let mut omitted = 0;
        while details.len() > MAX_DETAILS {
            details.pop_last();
            omitted += 1;
        }
        ApiError {
            details: Some(details),
            omitted,
            ..ApiError::new(code)
        }
    }

    /// The status a poem error carries, as the catalogue's code for it.
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 | 411 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::ConsentLocked,
            414 => ErrorCode::UriTooLong,
            431 => ErrorCode::HeadersTooLarge,
            422 => ErrorCode::ValidationFailed,
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::ServiceUnavailable,
            _ => ErrorCode::InternalError,
        };
        let mut error = ApiError::new(code);
        if code == ErrorCode::ServiceUnavailable {
            error.retry_after = Some(service::UNAVAILABLE_RETRY_AFTER_SECS);
        }
        error
    }

    /// Maps a poem error (from an extractor or the router) to the catalogue, logging its text.
    pub fn from_poem(err: poem::Error) -> Self {
        let error = ApiError::from_status(err.status());
        tracing::info!(
            request_id = %request_id::current(),
            status = err.status().as_u16(),
            cause = %err,
            "request refused by the framework"
        );
        error
    }

    pub fn body(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: Flag,
            error: ErrorBody {
                code: self.code,
                message: if self.omitted == 0 {
                    self.code.message().to_owned()
                } else {
                    format!("{} (and {} more)", self.code.message(), self.omitted)
                },
                request_id: request_id::current(),
                details: self.details.clone(),
            },
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> Self {
        use service::Error as E;
        match err {
            E::Unauthorized(why) => {
                // RFC 6750: a token that was sent and does not work is `invalid_token`; a
                // request without one gets the bare challenge.
                let challenge = match why {
                    service::AuthFailure::KeyNotWorking => {
                        r#"Bearer realm="agentmessage", error="invalid_token""#
                    }
                    _ => r#"Bearer realm="agentmessage""#,
                };
                ApiError {
                    challenge: Some(challenge.into()),
                    ..ApiError::with_details(
                        ErrorCode::Unauthorized,
                        BTreeMap::from([("authorization".into(), why.describe())]),
                    )
                }
            }
            E::Forbidden {
                required_scope,
                missing_scopes,
            } => {
                let mut details =
                    BTreeMap::from([("required_scope".into(), required_scope.as_str().into())]);
                if !missing_scopes.is_empty() {
                    let names: Vec<&str> = missing_scopes.iter().map(|s| s.as_str()).collect();
                    details.insert("missing_scopes".into(), names.join(" "));
                }
                ApiError::with_details(ErrorCode::Forbidden, details)
            }
            E::NotFound => ApiError::new(ErrorCode::NotFound),
            E::Validation(fields) => {
                ApiError::with_details(ErrorCode::ValidationFailed, fields.into_map())
            }
            E::LineTypeBlocked => ApiError::new(ErrorCode::LineTypeBlocked),
            E::ConsentRequired { to, refusal } => ApiError::with_details(
                ErrorCode::ConsentRequired,
                BTreeMap::from([
                    ("to".into(), to.as_str().into()),
                    ("consent".into(), refusal.as_str().into()),
                    ("fix".into(), refusal.fix(&to)),
                ]),
            ),
            E::ConsentLocked => ApiError::new(ErrorCode::ConsentLocked),
            E::IdempotencyConflict { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(ErrorCode::IdempotencyConflict)
            },
            E::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused),
            E::WebhooksNotConfigured => ApiError::new(ErrorCode::WebhooksNotConfigured),
            E::NotCancelable { status } => ApiError::with_details(
                ErrorCode::MessageNotCancelable,
                BTreeMap::from([("status".into(), status.as_str().to_owned())]),
            ),
            E::LimitReached { limit } => ApiError::with_details(
                ErrorCode::LimitReached,
                BTreeMap::from([("limit".into(), limit.to_string())]),
            ),
            E::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(ErrorCode::RateLimited)
            },
            E::Unavailable(cause) => {
                tracing::error!(request_id = %request_id::current(), %cause, "database unavailable");
                ApiError {
                    retry_after: Some(service::UNAVAILABLE_RETRY_AFTER_SECS),
                    ..ApiError::new(ErrorCode::ServiceUnavailable)
                }
            }
            E::Internal(cause) => {
                tracing::error!(request_id = %request_id::current(), cause = %format!("{cause:#}"), "internal error");
                ApiError::new(ErrorCode::InternalError)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let json = body.to_json_string();
        let mut response = Response::builder()
            .status(
                StatusCode::from_u16(self.code.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
            .content_type("application/json; charset=utf-8")
            .body(json);
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Some(challenge) = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        if let Ok(id) = HeaderValue::from_str(&body.error.request_id) {
            headers.insert(request_id::HEADER, id);
        }
        if let Some(phrase) = self.code.reason_phrase() {
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(phrase.as_bytes()));
        }
        response
    }
}
