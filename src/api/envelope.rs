//! The wire envelope: `{"success": true, "data": …}` for one resource,
//! `{"success": true, "data": […], "has_more", "next_cursor"}` for a list, and
//! `{"success": false, "error": {…}}` for every error.

use poem_openapi::types::Example;
use std::{borrow::Cow, collections::BTreeMap};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
    Enum, Object,
};
use serde_json::Value;

/// The constant `success` flag: a boolean whose schema admits only `B`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag<const B: bool>;

impl<const B: bool> Type for Flag<B> {
    const IS_REQUIRED: bool = true;
    type RawValueType = bool;
    type RawElementValueType = bool;

    fn name() -> Cow<'static, str> {
        if B { "success_true" } else { "success_false" }.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(if B {
                "Always `true` on a successful response."
            } else {
                "Always `false` on an error response."
            }),
            enum_items: vec![Value::Bool(B)],
            example: Some(Value::Bool(B)),
            ..MetaSchema::new("boolean")
        }))
    }

    fn as_raw_value(&self) -> Option<&bool> {
        Some(if B { &true } else { &false })
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a bool> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const B: bool> ToJSON for Flag<B> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Bool(B))
    }
}

impl<const B: bool> ParseFromJSON for Flag<B> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::Bool(b)) if b == B => Ok(Flag),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

/// `{"success": true, "data": T}`. Its schema is named `<T>Envelope`.
#[derive(Debug, Clone)]
pub struct Envelope<T>(pub T);

impl<T: Type> Type for Envelope<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("{}Envelope", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |registry| {
            T::register(registry);
            MetaSchema {
                description: Some(
                    "A successful response: `success` is true and `data` holds the resource.",
                ),
                required: vec!["success", "data"],
                properties: vec![
                    ("success", Flag::<true>::schema_ref()),
                    (
                        "data",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some("The resource."),
                            all_of: vec![T::schema_ref()],
                            ..MetaSchema::ANY
                        })),
                    ),
                ],
                ..MetaSchema::new("object")
            }
        });
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<T: ToJSON> ToJSON for Envelope<T> {
    fn to_json(&self) -> Option<Value> {
        let mut object = serde_json::Map::with_capacity(2);
        object.insert("success".into(), Value::Bool(true));
        object.insert("data".into(), self.0.to_json().unwrap_or(Value::Null));
        Some(Value::Object(object))
    }
}

/// `{"success": true, "data": [T], "has_more": bool, "next_cursor": string|null}`. Its schema is
/// named `<T>List`.
#[derive(Debug, Clone)]
pub struct ListEnvelope<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl<T> ListEnvelope<T> {
    /// A list that holds every item there is.
    pub fn complete(data: Vec<T>) -> Self {
        ListEnvelope {
            data,
            has_more: false,
            next_cursor: None,
        }
    }
}

impl<T: Type> Type for ListEnvelope<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("{}List", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |registry| {
            T::register(registry);
            MetaSchema {
                description: Some("One page of a list, newest first unless the operation says otherwise."),
                required: vec!["success", "data", "has_more", "next_cursor"],
                properties: vec![
                    ("success", Flag::<true>::schema_ref()),
                    (
                        "data",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some("The items on this page."),
                            items: Some(Box::new(T::schema_ref())),
                            ..MetaSchema::new("array")
                        })),
                    ),
                    (
                        "has_more",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some("Whether more items follow this page."),
                            example: Some(Value::Bool(false)),
                            ..MetaSchema::new("boolean")
                        })),
                    ),
                    (
                        "next_cursor",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some(
                                "Pass as `cursor` to fetch the next page; null when `has_more` is false.",
                            ),
                            nullable: true,
                            example: Some(Value::Null),
                            ..MetaSchema::new("string")
                        })),
                    ),
                ],
                ..MetaSchema::new("object")
            }
        });
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<T: ToJSON> ToJSON for ListEnvelope<T> {
    fn to_json(&self) -> Option<Value> {
        let mut object = serde_json::Map::with_capacity(4);
        object.insert("success".into(), Value::Bool(true));
        object.insert(
            "data".into(),
            Value::Array(self.data.iter().filter_map(ToJSON::to_json).collect()),
        );
        object.insert("has_more".into(), Value::Bool(self.has_more));
        object.insert(
            "next_cursor".into(),
            self.next_cursor.clone().map_or(Value::Null, Value::String),
        );
        Some(Value::Object(object))
    }
}

/// Every error code the server answers with; each has exactly one HTTP status.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: the body is not JSON or not a JSON object, or a query parameter is malformed.
    BadRequest,
    /// 401: the API key is missing, malformed, unknown or revoked; `details.authorization` says
    /// which, and `WWW-Authenticate` carries the challenge.
    Unauthorized,
    /// 403: the API key lacks the operation's scope.
    Forbidden,
    /// 404: no such route, or no such resource visible to the organization.
    NotFound,
    /// 405: the path exists but not with this method; see the `Allow` header.
    MethodNotAllowed,
    /// 413: the body is larger than 64 KiB.
    PayloadTooLarge,
    /// 414: the request target (path and query) is longer than 8 KiB.
    UriTooLong,
    /// 431: the request's headers are larger than 32 KiB.
    HeadersTooLarge,
    /// 415: a body was sent that is not `application/json` (form bodies are not accepted).
    UnsupportedMediaType,
    /// 408: the request body did not arrive within the server's body timeout.
    RequestTimeout,
    /// 409: an opt-in for a recipient whose latest record is their own keyword opt-out.
    ConsentLocked,
    /// 409: a request with this `Idempotency-Key` is still running; see `Retry-After`.
    IdempotencyConflict,
    /// 409: the organization already holds as many of these as it may (per mode);
    /// `details.limit` says how many. Delete (or revoke) one first.
    LimitReached,
    /// 409: only a `scheduled` message can be canceled; `details.status` is the message's.
    MessageNotCancelable,
    /// 422: one or more fields are invalid; `details` names each.
    ValidationFailed,
    /// 422: a recent lookup classified the recipient as a landline.
    LineTypeBlocked,
    /// 422: this `Idempotency-Key` was used with a different request.
    IdempotencyKeyReused,
    /// 429: the organization's send rate was exceeded; see `Retry-After`.
    RateLimited,
    /// 453: the recipient has not opted in to this organization, or opted out.
    ConsentRequired,
    /// 500: an unexpected fault; the request id finds its cause in the server log.
    InternalError,
    /// 501: this deployment cannot sign webhooks: its operator has not set a secret key.
    WebhooksNotConfigured,
    /// 503: the database cannot be reached; see `Retry-After`.
    ServiceUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RequestTimeout,
        ErrorCode::ConsentLocked,
        ErrorCode::IdempotencyConflict,
        ErrorCode::LimitReached,
        ErrorCode::MessageNotCancelable,
        ErrorCode::ValidationFailed,
        ErrorCode::LineTypeBlocked,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::RateLimited,
        ErrorCode::ConsentRequired,
        ErrorCode::InternalError,
        ErrorCode::WebhooksNotConfigured,
        ErrorCode::ServiceUnavailable,
    ];

    /// The one HTTP status of each code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UriTooLong => 414,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ConsentLocked
            | ErrorCode::IdempotencyConflict
            | ErrorCode::LimitReached
            | ErrorCode::MessageNotCancelable => 409,
            ErrorCode::ValidationFailed
            | ErrorCode::LineTypeBlocked
            | ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::ConsentRequired => 453,
            ErrorCode::InternalError => 500,
            ErrorCode::WebhooksNotConfigured => 501,
            ErrorCode::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase sent on the status line where the status has no standard one (453).
    pub fn reason_phrase(self) -> Option<&'static str> {
        match self {
            ErrorCode::ConsentRequired => Some("Consent Required"),
            _ => None,
        }
    }

    /// The client-facing message, the same for every occurrence of the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad request",
            ErrorCode::Unauthorized => "authentication failed",
            ErrorCode::Forbidden => "missing required scope",
            ErrorCode::NotFound => "not found",
            ErrorCode::MethodNotAllowed => "method not allowed",
            ErrorCode::PayloadTooLarge => "payload too large",
            ErrorCode::UriTooLong => "request target too long",
            ErrorCode::HeadersTooLarge => "request headers too large",
            ErrorCode::RequestTimeout => "request body timed out",
            ErrorCode::UnsupportedMediaType => {
                "unsupported media type: send JSON with Content-Type: application/json (form bodies are not accepted)"
            }
            ErrorCode::ConsentLocked => "consent locked",
            ErrorCode::IdempotencyConflict => "a request with this idempotency key is in progress",
            ErrorCode::LimitReached => "limit reached",
            ErrorCode::MessageNotCancelable => "message not cancelable",
            ErrorCode::IdempotencyKeyReused => "idempotency key reused with a different request",
            ErrorCode::ValidationFailed => "validation failed",
            ErrorCode::LineTypeBlocked => "recipient line type is blocked",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::ConsentRequired => "consent required",
            ErrorCode::InternalError => "internal error",
            ErrorCode::WebhooksNotConfigured => "webhooks are not configured on this deployment",
            ErrorCode::ServiceUnavailable => "service unavailable",
        }
    }

    /// The wire name (`VALIDATION_FAILED`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UriTooLong => "URI_TOO_LONG",
            ErrorCode::HeadersTooLarge => "HEADERS_TOO_LARGE",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::ConsentLocked => "CONSENT_LOCKED",
            ErrorCode::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            ErrorCode::LimitReached => "LIMIT_REACHED",
            ErrorCode::MessageNotCancelable => "MESSAGE_NOT_CANCELABLE",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::LineTypeBlocked => "LINE_TYPE_BLOCKED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ConsentRequired => "CONSENT_REQUIRED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::WebhooksNotConfigured => "WEBHOOKS_NOT_CONFIGURED",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

/// The error itself.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ErrorBody {
    /// Machine-readable error code from the catalogue.
    pub code: ErrorCode,
    /// Short human-readable message; the same for every occurrence of a code, except that when
    /// `details` would hold more than 100 entries it holds the first 100 and the message ends
    /// with how many more there were (`validation failed (and 12 more)`).
    pub message: String,
    /// The request's id (a ULID), equal to the `X-Request-Id` response header. Quote it when
    /// asking for help: the server log holds the cause under it.
    pub request_id: String,
    /// Present on some errors: for `VALIDATION_FAILED`, each failing field mapped to what is
    /// wrong with it; for `FORBIDDEN`, `required_scope` (and, when making or revoking a key,
    /// `missing_scopes`: every scope missing, space-separated).
    #[oai(skip_serializing_if_is_none)]
    pub details: Option<BTreeMap<String, String>>,
}

impl Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            code: ErrorCode::ValidationFailed,
            message: "validation failed".into(),
            request_id: "01JTBQH2FZ8K1RXC0WJ4Z9P3VM".into(),
            details: Some(BTreeMap::from([(
                "to".into(),
                crate::domain::rules::PHONE_NUMBER.pattern_message.into(),
            )])),
        }
    }
}

/// `{"success": false, "error": {…}}`: the body of every error response.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ErrorEnvelope {
    /// Always `false` on an error response.
    pub success: Flag<false>,
    /// What went wrong.
    pub error: ErrorBody,
}

impl Example for ErrorEnvelope {
    fn example() -> Self {
        ErrorEnvelope {
            success: Flag,
            error: ErrorBody::example(),
        }
    }
}

impl ErrorEnvelope {
    /// What an error with `code` looks like, for the spec's examples; `scope` is the operation's
    /// required scope, shown in a `FORBIDDEN` example.
    pub fn example_of(code: ErrorCode, scope: Option<&str>) -> Self {
        let details = match code {
            ErrorCode::ValidationFailed => Some(BTreeMap::from([(
                "to".into(),
                crate::domain::rules::PHONE_NUMBER.pattern_message.into(),
            )])),
            ErrorCode::Forbidden => Some(BTreeMap::from([(
                "required_scope".into(),
                scope.unwrap_or("messages:send").into(),
            )])),
            ErrorCode::Unauthorized => Some(BTreeMap::from([(
                "authorization".into(),
                crate::service::AuthFailure::NoCredentials.describe(),
            )])),
            ErrorCode::LimitReached => {
                // The default limit of what the operation adds: keys or webhook endpoints.
                let limit = match scope {
                    Some("api_keys:write") => crate::defaults::MAX_API_KEYS,
                    _ => crate::defaults::MAX_WEBHOOK_ENDPOINTS,
                };
                Some(BTreeMap::from([("limit".into(), limit.to_string())]))
            }
            ErrorCode::MessageNotCancelable => {
                Some(BTreeMap::from([("status".into(), "sent".into())]))
            }
            ErrorCode::ConsentRequired => {
                let refusal = crate::domain::consent::ConsentRefusal::NeverOptedIn;
                let to = crate::domain::PhoneNumber::parse("+15555550123").expect("E.164");
                Some(BTreeMap::from([
                    ("to".into(), to.as_str().into()),
                    ("consent".into(), refusal.as_str().into()),
                    ("fix".into(), refusal.fix(&to)),
                ]))
            }
            _ => None,
        };
        ErrorEnvelope {
            success: Flag,
            error: ErrorBody {
                code,
                message: code.message().into(),
                details,
                ..ErrorBody::example()
            },
        }
    }
}
