//! How domain types appear on the wire and in the spec: timestamps, E.164 numbers, media URLs and
//! the named enums.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::domain::{
    consent::{ConsentSource, ConsentStatus},
    lookup::LineType,
    message::{
        Channel, Direction, MessageStatus, Priority, MAX_MEDIA_URL_CHARS, MEDIA_URL_PATTERN,
    },
    phone::E164_PATTERN,
    text::Encoding,
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
        description: Some("RFC 3339 time in UTC with whole seconds and a `Z` suffix."),
        example: Some(Value::String("2026-04-26T12:00:00Z".into())),
        ..MetaSchema::new_with_format("string", "date-time")
    },
    |t: &Timestamp| t.to_wire(),
    Timestamp::parse_rfc3339
);

string_type!(
    PhoneNumber,
    "phone_number",
    MetaSchema {
        description: Some("A phone number in E.164 form: `+`, country code and number, no spaces."),
        pattern: Some(E164_PATTERN.to_owned()),
        example: Some(Value::String("+15554443333".into())),
        ..MetaSchema::new("string")
    },
    |p: &PhoneNumber| p.as_str().to_owned(),
    PhoneNumber::parse
);

/// A media URL for MMS: absolute `http` or `https`.
#[derive(Debug, Clone)]
pub struct MediaUrl(pub String);

string_type!(
    MediaUrl,
    "media_url",
    MetaSchema {
        description: Some("An absolute `http` or `https` URL of an image, audio or video file."),
        pattern: Some(MEDIA_URL_PATTERN.to_owned()),
        max_length: Some(MAX_MEDIA_URL_CHARS),
        example: Some(Value::String("https://example.com/receipt.png".into())),
        ..MetaSchema::new_with_format("string", "uri")
    },
    |m: &MediaUrl| m.0.clone(),
    |s: &str| Some(MediaUrl(s.to_owned()))
);

/// Implements the wire traits for a domain enum with `ALL`, `as_str` and `parse`, as a string
/// schema with those values.
macro_rules! wire_enum {
    ($ty:ty, $name:literal, $description:literal, $example:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($name.into())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>($name.into(), |_| MetaSchema {
                    description: Some($description),
                    enum_items: <$ty>::ALL
                        .iter()
                        .map(|v| Value::String(v.as_str().into()))
                        .collect(),
                    example: Some(Value::String(($example).as_str().into())),
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

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.as_str().into()))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => {
                        <$ty>::parse(&s).ok_or_else(|| ParseError::custom("unknown value"))
                    }
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
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
wire_enum!(
    LineType,
    "LineType",
    "The kind of line behind a number.",
    LineType::Mobile
);
wire_enum!(
    Scope,
    "Scope",
    "A permission an API key can hold.",
    Scope::MessagesSend
);

/// The `limit` query parameter: 1 to 100 items per page.
#[derive(Debug, Clone, Copy)]
pub struct PageLimit(pub u64);

impl PageLimit {
    pub const DEFAULT: u64 = 20;
    pub const MAX: u64 = 100;
}

impl Type for PageLimit {
    const IS_REQUIRED: bool = false;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "page_limit".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("Items per page, 1 to 100."),
            minimum: Some(1.0),
            maximum: Some(PageLimit::MAX as f64),
            default: Some(Value::from(PageLimit::DEFAULT)),
            example: Some(Value::from(PageLimit::DEFAULT)),
            ..MetaSchema::new_with_format("integer", "int32")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}
