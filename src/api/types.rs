//! How domain types appear on the wire and in the spec: timestamps, E.164 numbers, media URLs and
//! the named enums.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use super::fields::{read_string, FieldValue, NOT_ARRAY};

use crate::domain::{
    consent::{ConsentSource, ConsentStatus, API_SOURCES},
    lifecycle::{EventKind, MessageErrorCode},
    lookup::LineType,
    message::{Channel, Direction, MessageStatus, Priority},
    organization::KeyMode,
    rules::{self, RangeRule, TextRule},
    text::Encoding,
    webhooks::{DeliveryState, WebhookEventType},
    PhoneNumber, Scope, Timestamp,
};

/// Implements `Type`, `ToJSON` and `ParseFromJSON` for a type shown as a JSON string.
macro_rules! string_type {
    ($ty:ty, $name:literal, $schema:expr, $to:expr, $from:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                #[allow(clippy::redundant_closure_call)]
                Some(Value::String(($to)(self)))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    #[allow(clippy::redundant_closure_call)]
                    Some(Value::String(s)) => {
                        ($from)(s.as_str()).ok_or_else(|| ParseError::custom("invalid value"))
                    }
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }
    };
}

string_type!(
    Timestamp,
    "timestamp",
    MetaSchema {
        description: Some("RFC 3339 time in UTC with milliseconds and a `Z` suffix."),
        example: Some(Value::String("2026-04-26T12:00:00.000Z".into())),
        ..MetaSchema::new_with_format("string", "date-time")
    },
    |t: &Timestamp| t.to_wire(),
    Timestamp::parse_rfc3339
);

/// A string schema built from a domain rule: its length and pattern, with a description and an
/// example.
fn text_schema(rule: &TextRule, description: &'static str, example: &str) -> MetaSchema {
    MetaSchema {
        description: Some(description),
        pattern: Some(rule.pattern.to_owned()),
        min_length: (rule.min_chars > 0).then_some(rule.min_chars),
        max_length: rule.max_chars,
        example: Some(Value::String(example.to_owned())),
        ..MetaSchema::new("string")
    }
}

/// Implements the wire traits for a string type whose schema is the named component built from
/// a [`TextRule`]; `$from` turns a string that keeps the rule into the type.
macro_rules! rule_string {
    ($ty:ty, $rule:expr, $description:literal, $example:literal, $to:expr, $from:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $rule.name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($rule.name.into())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>($rule.name.into(), |_| {
                    text_schema(&$rule, $description, $example)
                });
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                #[allow(clippy::redundant_closure_call)]
                Some(Value::String(($to)(self)))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => {
                        $rule
                            .check(&s)
                            .map_err(|e| ParseError::custom(e.message().to_owned()))?;
                        #[allow(clippy::redundant_closure_call)]
                        ($from)(s).ok_or_else(|| ParseError::custom("invalid value"))
                    }
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl FieldValue for $ty {
            fn read(value: Value) -> Result<Self, String> {
                read_string(value, |s| {
                    $rule.check(&s).map_err(|e| e.message().to_owned())?;
                    #[allow(clippy::redundant_closure_call)]
                    ($from)(s).ok_or_else(|| $rule.pattern_message.to_owned())
                })
            }
        }
    };
}

/// Declares a string newtype whose schema is built from a [`TextRule`].
macro_rules! rule_newtype {
    ($(#[$meta:meta])* $ty:ident, $rule:expr, $description:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub String);

        rule_string!($ty, $rule, $description, $example, |v: &$ty| v.0.clone(), |s: String| Some($ty(s)));
    };
}

rule_string!(
    PhoneNumber,
    rules::PHONE_NUMBER,
    "A phone number in E.164 form: `+`, country code and number, no spaces.",
    "+15554443333",
    |p: &PhoneNumber| p.as_str().to_owned(),
    |s: String| PhoneNumber::parse(&s)
);

rule_newtype!(
    /// A media URL for MMS: absolute `http` or `https`.
    MediaUrl,
    rules::MEDIA_URL,
    "An absolute `http` or `https` URL of an image, audio or video file.",
    "https://example.com/receipt.png"
);
pub use crate::domain::text::MessageText;

rule_string!(
    MessageText,
    rules::MESSAGE_TEXT,
    "Message text: 1 to 1600 characters (Unicode scalar values), no U+0000.",
    "hello from agentmessage",
    |t: &MessageText| t.as_str().to_owned(),
    |s: String| MessageText::parse(&s).ok()
);
rule_newtype!(
    /// A client's key that makes a creating request safe to retry.
    IdempotencyKey,
    rules::IDEMPOTENCY_KEY,
    "Your key for this request, 1 to 255 printable ASCII characters (a UUID is a good choice). A retry with the same key and the same body gets the first answer again instead of running twice; see the operation's description.",
    "5f0c7a1e-8a43-4c3e-9b0e-2f1d7c9a6b11"
);
rule_newtype!(
    /// A client's own label for a message.
    Tag,
    rules::TAG,
    "Your own label for a message: up to 256 characters, no U+0000.",
    "order-7421"
);
rule_newtype!(
    /// What proves a recipient's consent.
    ConsentEvidence,
    rules::EVIDENCE,
    "What proves a consent (a form id, a URL, a note): up to 1000 characters, no U+0000.",
    "signup form #5521, 2026-04-20"
);
rule_newtype!(
    /// An API key's label.
    ApiKeyName,
    rules::KEY_NAME,
    "A label for an API key: up to 100 characters, no U+0000.",
    "reporting"
);
rule_newtype!(
    /// A carrier's id or receipt field.
    CarrierValue,
    rules::CARRIER_VALUE,
    "A carrier's value (message id, receipt `stat`, `err` or `done date`): 1 to 128 characters, no U+0000.",
    "DELIVRD"
);
rule_newtype!(
    /// A listing cursor.
    Cursor,
    rules::CURSOR,
    "A position in a listing: the `next_cursor` of the previous page, passed back unchanged. Any value of this form is accepted; one that matches no message simply ends the walk.",
    "1777204800000000.0196f1a23b4c7d5e8f60718293a4b5c6"
);

rule_newtype!(
    /// The cursor of a message's events.
    EventCursor,
    rules::EVENT_CURSOR,
    "A position in a message's events: the `next_cursor` of the previous page, passed back unchanged.",
    "20"
);

/// An array schema built from a [`ListRule`], with `T` as its items.
macro_rules! rule_list {
    ($(#[$meta:meta])* $ty:ident, $item:ty, $rule:expr, $description:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub Vec<$item>);

        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $rule.name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($rule.name.into())
            }

            fn register(registry: &mut Registry) {
                <$item>::register(registry);
                registry.create_schema::<Self, _>($rule.name.into(), |_| MetaSchema {
                    description: Some($description),
                    items: Some(Box::new(<$item>::schema_ref())),
                    min_items: Some($rule.min_items),
                    max_items: Some($rule.max_items),
                    unique_items: $rule.unique.then_some(true),
                    ..MetaSchema::new("array")
                });
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::Array(self.0.iter().filter_map(ToJSON::to_json).collect()))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::Array(items)) if $rule.allows_count(items.len()) => {
                        let parsed = items
                            .into_iter()
                            .map(|item| <$item>::parse_from_json(Some(item)).map_err(ParseError::propagate))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok($ty(parsed))
                    }
                    Some(Value::Array(_)) => Err(ParseError::custom($rule.count_message())),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl FieldValue for $ty {
            fn read(value: Value) -> Result<Self, String> {
                let Value::Array(items) = value else {
                    return Err(NOT_ARRAY.to_owned());
                };
                if !$rule.allows_count(items.len()) {
                    return Err($rule.count_message());
                }
                let mut read: Vec<$item> = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let item = <$item as FieldValue>::read(item)
                        .map_err(|message| rules::item_message(i, &message))?;
                    if $rule.unique {
                        if let Some(first) = read.iter().position(|seen| *seen == item) {
                            return Err(rules::repeat_message(i, first));
                        }
                    }
                    read.push(item);
                }
                Ok($ty(read))
            }
        }
    };
}

rule_list!(
    /// The media of an MMS.
    MediaUrls,
    MediaUrl,
    rules::MEDIA_URLS,
    "1 to 10 media URLs; present, the message is sent as MMS."
);
rule_newtype!(
    /// Where a webhook endpoint receives events.
    WebhookUrl,
    rules::WEBHOOK_URL,
    "An absolute `http` or `https` URL, up to 2048 characters. Loopback, private, link-local and cloud metadata addresses (and host names resolving to them) are refused unless the deployment allows private destinations.",
    "https://example.com/agentmessage/webhooks"
);
rule_newtype!(
    /// The cursor of an endpoint's deliveries.
    DeliveryCursor,
    rules::DELIVERY_CURSOR,
    "The `next_cursor` of the previous page of deliveries.",
    "0196f1a2-3b4c-7d5e-8f60-718293a4b5c8"
);
rule_newtype!(
    /// A webhook endpoint's label.
    WebhookDescription,
    rules::WEBHOOK_DESCRIPTION,
    "Your own note about the endpoint: up to 256 characters, no U+0000.",
    "order status to the fulfilment service"
);
rule_list!(
    /// The event types of an endpoint.
    WebhookEventTypes,
    Wire<Subscribable>,
    rules::WEBHOOK_EVENTS,
    "The event types to receive: at least one, none repeated."
);
rule_list!(
    /// The scopes of an API key.
    ScopeList,
    Wire<Scope>,
    rules::SCOPES,
    "Scopes to grant: at least one, none repeated."
);

/// A closed set as the wire shows it: a string schema with its values, named like the set.
pub trait WireEnum: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    const EXAMPLE: Self;
    fn all() -> Vec<Self>;
    fn name_of(self) -> &'static str;
    fn from_name(s: &str) -> Option<Self>;
}

/// A domain value set on the wire. (The sets are declared beside the database columns, in the
/// `entity` crate, so the wire traits are implemented on this wrapper.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire<T>(pub T);

impl<T: WireEnum> Type for Wire<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        T::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(T::NAME.into())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(T::NAME.into(), |_| MetaSchema {
            description: Some(T::DESCRIPTION),
            enum_items: T::all()
                .iter()
                .map(|v| Value::String(v.name_of().into()))
                .collect(),
            example: Some(Value::String(T::EXAMPLE.name_of().into())),
            ..MetaSchema::new("string")
        });
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<T: WireEnum> ToJSON for Wire<T> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.name_of().into()))
    }
}

impl<T: WireEnum> ParseFromJSON for Wire<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => T::from_name(&s)
                .map(Wire)
                .ok_or_else(|| ParseError::custom("unknown value")),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<T: WireEnum> Wire<T> {
    /// What a client is told when a value is not in the set: every value it may take.
    pub fn allowed_message() -> String {
        let names: Vec<&str> = T::all().into_iter().map(T::name_of).collect();
        rules::one_of(&names)
    }
}

impl<T: WireEnum> FieldValue for Wire<T> {
    fn read(value: Value) -> Result<Self, String> {
        value
            .as_str()
            .and_then(T::from_name)
            .map(Wire)
            .ok_or_else(Self::allowed_message)
    }
}

/// Describes a domain value set for the wire.
macro_rules! wire_enum {
    ($ty:ty, $name:literal, $description:literal, $example:expr) => {
        impl WireEnum for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            const EXAMPLE: Self = $example;

            fn all() -> Vec<Self> {
                <$ty>::ALL.to_vec()
            }

            fn name_of(self) -> &'static str {
                self.as_str()
            }

            fn from_name(s: &str) -> Option<Self> {
                <$ty>::parse(s)
            }
        }
    };
}

wire_enum!(
    Channel,
    "Channel",
    "`sms`, or `mms` when the message carries media.",
    Channel::Sms
);
wire_enum!(
    Direction,
    "Direction",
    "`outbound` for messages your organization sent, `inbound` for messages sent to your numbers.",
    Direction::Outbound
);
wire_enum!(
    Priority,
    "Priority",
    "`high` messages are handed to the carrier before `default` ones.",
    Priority::Default
);
wire_enum!(
    MessageStatus,
    "MessageStatus",
    "Where the message is: `queued`, `sending`, `sent`, then `delivered` or `undelivered`; `failed` when it could not be sent. `received` for inbound messages. `delivered`, `undelivered`, `failed` and `received` never change again.",
    MessageStatus::Queued
);
wire_enum!(
    Encoding,
    "Encoding",
    "`gsm7` when every character is in the GSM 03.38 alphabet (160 characters in one segment, 153 per part when split; extension characters such as `€` count twice), otherwise `ucs2` (70 UTF-16 units in one segment, 67 per part).",
    Encoding::Gsm7
);
wire_enum!(
    EventKind,
    "EventKind",
    "What an event records: `transition` (the status changed), `submission_attempt` (the message is being handed to the carrier), `receipt` (a carrier delivery receipt for one part of the message, applied or not), `keyword` (an inbound keyword such as STOP, acted on; `stat` names it), `keyword_mentioned` (an inbound message of more than five words that contains an opt-out keyword: recorded, not acted on; `stat` names it) or `deferred` (the carrier refused a part for now, for example throttling; the message is queued again and only the parts the carrier has not accepted are submitted again, `err` names the carrier's answer).",
    EventKind::Receipt
);
wire_enum!(
    MessageErrorCode,
    "MessageErrorCode",
    "Why a message is `failed` or `undelivered`: `CONSENT_REVOKED` (the recipient opted out while it was queued), `CARRIER_REFUSED` (the carrier refused it), `SUBMISSION_UNCERTAIN` (the hand-over was attempted but its outcome is unknown; it is never submitted twice), `UNDELIVERED` (the carrier's receipt said it was not delivered), `EXPIRED` (its validity period, counted from its creation, ran out before it could be sent or before a final receipt arrived), `MEDIA_UNAVAILABLE` (a media item could not be fetched: no answer, not found, a refused destination), `MEDIA_TYPE_UNSUPPORTED` (a media item's Content-Type is not one an MMS may carry) or `MEDIA_TOO_LARGE` (the media add up to more than the deployment's MMS size cap).",
    MessageErrorCode::CarrierRefused
);
wire_enum!(
    ConsentStatus,
    "ConsentStatus",
    "Whether the recipient has opted in or out.",
    ConsentStatus::OptedIn
);
wire_enum!(
    ConsentSource,
    "ConsentSource",
    "How the consent was collected. `keyword` is recorded when the recipient texts a keyword such as STOP or START.",
    ConsentSource::WebForm
);
/// How a consent recorded through the API was collected: every source but `keyword`, which only
/// the recipient's own message records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptInSource(pub ConsentSource);

impl WireEnum for OptInSource {
    const NAME: &'static str = "OptInSource";
    const DESCRIPTION: &'static str = "How the recipient's consent was collected. `keyword` is not accepted here: it is recorded only when the recipient texts a keyword such as STOP or START.";
    const EXAMPLE: Self = OptInSource(ConsentSource::WebForm);

    fn all() -> Vec<Self> {
        API_SOURCES.into_iter().map(OptInSource).collect()
    }

    fn name_of(self) -> &'static str {
        self.0.as_str()
    }

    fn from_name(s: &str) -> Option<Self> {
        ConsentSource::parse(s)
            .filter(|s| API_SOURCES.contains(s))
            .map(OptInSource)
    }
}

wire_enum!(
    KeyMode,
    "KeyMode",
    "`live` keys send through the deployment's carrier; `test` keys see only test data and their messages only reach the simulated carrier (the test-number table), never a phone.",
    KeyMode::Live
);
wire_enum!(
    LineType,
    "LineType",
    "The kind of line behind a number.",
    LineType::Mobile
);
wire_enum!(
    WebhookEventType,
    "WebhookDeliveryEventType",
    "The type of the event a delivery carries: one of `WebhookEventType`, or `webhook.test` (sent by `POST /v1/webhook_endpoints/{id}/test`).",
    WebhookEventType::MessageDelivered
);

/// An event type an endpoint can subscribe to (every type but `webhook.test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribable(pub WebhookEventType);

impl WireEnum for Subscribable {
    const NAME: &'static str = "WebhookEventType";
    const DESCRIPTION: &'static str = "What a webhook event reports: `message.sent` (the carrier accepted an outbound message), `message.delivered` and `message.undelivered` (the carrier's final receipt, or the validity running out), `message.failed` (refused or failed before delivery), `message.received` (an inbound message to one of your numbers), `consent.updated` (an opt-in or opt-out, through the API or by the recipient's keyword).";
    const EXAMPLE: Self = Subscribable(WebhookEventType::MessageDelivered);

    fn all() -> Vec<Self> {
        crate::domain::webhooks::SUBSCRIBABLE
            .into_iter()
            .map(Subscribable)
            .collect()
    }

    fn name_of(self) -> &'static str {
        self.0.as_str()
    }

    fn from_name(s: &str) -> Option<Self> {
        WebhookEventType::parse(s)
            .filter(|t| crate::domain::webhooks::SUBSCRIBABLE.contains(t))
            .map(Subscribable)
    }
}
wire_enum!(
    DeliveryState,
    "WebhookDeliveryState",
    "`pending` (an attempt is due or scheduled), `delivered` (the endpoint answered 2xx) or `failed` (every attempt of the schedule failed, or the endpoint answered 410 Gone).",
    DeliveryState::Delivered
);
wire_enum!(
    Scope,
    "Scope",
    "A permission an API key can hold.",
    Scope::MessagesSend
);

/// A whole-number schema built from a [`RangeRule`].
fn range_schema(rule: &RangeRule, description: &'static str, example: i64) -> MetaSchema {
    let fits_int32 = rule.minimum >= i64::from(i32::MIN)
        && rule.maximum.is_some_and(|m| m <= i64::from(i32::MAX));
    MetaSchema {
        description: Some(description),
        minimum: Some(rule.minimum as f64),
        maximum: rule.maximum.map(|m| m as f64),
        default: rule.default.map(Value::from),
        example: Some(Value::from(example)),
        ..MetaSchema::new_with_format("integer", if fits_int32 { "int32" } else { "int64" })
    }
}

/// Declares a whole-number type whose schema is the named component built from a [`RangeRule`].
macro_rules! rule_range {
    ($(#[$meta:meta])* $ty:ident, $rule:expr, $description:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty(pub i64);

        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $rule.name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($rule.name.into())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>($rule.name.into(), |_| {
                    range_schema(&$rule, $description, $example)
                });
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::from(self.0))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value.as_ref().and_then(Value::as_i64) {
                    Some(n) if $rule.allows(n) => Ok($ty(n)),
                    _ => Err(ParseError::expected_type(value.unwrap_or_default())),
                }
            }
        }
    };
}

rule_range!(
    /// The `limit` query parameter.
    PageLimit,
    rules::PAGE_LIMIT,
    "Items per page, 1 to 100.",
    20
);
rule_range!(
    /// How many segments a message takes.
    SegmentCount,
    rules::SEGMENT_COUNT,
    "How many segments the carrier bills for the text: at least 1.",
    1
);
rule_range!(
    /// An event's number within its message's history.
    EventSequence,
    rules::EVENT_SEQUENCE,
    "The event's place in its message's history, from 1.",
    3
);
rule_range!(
    /// A send's own validity.
    ValidityPeriod,
    rules::VALIDITY_PERIOD,
    "How long the message may take, in seconds from its `send_at` (or from its acceptance), to reach the carrier and get its final receipt: at least 60, at most the deployment's validity (48 hours by default).",
    600
);

impl FieldValue for ValidityPeriod {
    fn read(value: Value) -> Result<Self, String> {
        match value.as_i64() {
            Some(n) if rules::VALIDITY_PERIOD.allows(n) => Ok(ValidityPeriod(n)),
            _ => Err(format!(
                "must be a whole number of seconds, at least {}",
                rules::VALIDITY_PERIOD.minimum
            )),
        }
    }
}

/// When a send is to go out: RFC 3339 with an offset, any offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendAt(pub chrono::DateTime<chrono::Utc>);

/// What a client is told about a `send_at` that is not a time.
pub const SEND_AT_FORMAT: &str =
    "must be an RFC 3339 time with an offset, such as 2026-12-24T09:00:00+01:00";

string_type!(
    SendAt,
    "send_at",
    MetaSchema {
        description: Some("RFC 3339 time with an offset (`Z` or `+01:00`, …)."),
        example: Some(Value::String("2026-12-24T09:00:00+01:00".into())),
        ..MetaSchema::new_with_format("string", "date-time")
    },
    |t: &SendAt| t.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    |s: &str| chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| SendAt(t.with_timezone(&chrono::Utc)))
);

impl FieldValue for SendAt {
    fn read(value: Value) -> Result<Self, String> {
        read_string(value, |s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| SendAt(t.with_timezone(&chrono::Utc)))
                .map_err(|_| SEND_AT_FORMAT.to_owned())
        })
    }
}

rule_range!(
    /// The `Retry-After` header's seconds.
    RetryAfter,
    rules::RETRY_AFTER,
    "Whole seconds to wait before retrying; at least 1.",
    1
);
