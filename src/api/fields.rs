//! Request bodies declared once: [`request!`] declares the type whose schema the spec shows and
//! whose fields the parser fills, each field read by its type's [`FieldValue`] and every problem
//! collected at once.

use serde_json::{Map, Value};

use crate::service::FieldErrors;

pub const REQUIRED: &str = "is required";
pub const NOT_NULL: &str = "must not be null";
pub const NOT_STRING: &str = "must be a string";
pub const NOT_ARRAY: &str = "must be an array";
pub const NOT_BOOLEAN: &str = "must be true or false";
pub const UNKNOWN: &str = "is not a known field";

/// A value a request field can hold, read from JSON; the error is what the client is told.
pub trait FieldValue: Sized {
    /// Reads a value that is present and not `null`.
    fn read(value: Value) -> Result<Self, String>;

    /// The value of an absent field; `None` makes the field required.
    fn absent() -> Option<Self> {
        None
    }
}

/// An optional field: absent is `None`; `null` is still refused (a client sending `null` for a
/// field has usually mistaken its name or its meaning).
impl<T: FieldValue> FieldValue for Option<T> {
    fn read(value: Value) -> Result<Self, String> {
        T::read(value).map(Some)
    }

    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl FieldValue for bool {
    fn read(value: Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| NOT_BOOLEAN.to_owned())
    }
}

/// Reads a string value with `parse`.
pub fn read_string<T>(
    value: Value,
    parse: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, String> {
    match value {
        Value::String(s) => parse(s),
        _ => Err(NOT_STRING.to_owned()),
    }
}

/// A request object being read; fields not taken by the end are reported as unknown.
pub struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    pub fn new(object: Map<String, Value>) -> Self {
        Fields {
            object,
            errors: FieldErrors::new(),
        }
    }

    /// Records a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// Takes and reads `field`; `default` gives the value of an absent field that has one.
    pub fn field<T: FieldValue>(&mut self, field: &str, default: Option<fn() -> T>) -> Option<T> {
        let read = match self.object.remove(field) {
            None => default
                .map(|make| make())
                .or_else(T::absent)
                .ok_or_else(|| REQUIRED.to_owned()),
            Some(Value::Null) => Err(NOT_NULL.to_owned()),
            Some(value) => T::read(value),
        };
        read.map_err(|message| self.error(field, message)).ok()
    }

    /// Every problem found, unknown fields included; `Ok` with `value` when there is none.
    pub fn finish<T>(mut self, value: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        let unknown: Vec<String> = self.object.keys().cloned().collect();
        for field in unknown {
            self.error(&field, UNKNOWN);
        }
        match value() {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.errors),
        }
    }
}

/// A request body declared with [`request!`].
pub trait ReadRequest: Sized {
    /// Reads every declared field from `f`; `None` when any failed (the problems are in `f`).
    fn read_fields(f: &mut Fields) -> Option<Self>;

    /// Reads the request from a JSON object, reporting every failing and unknown field at once.
    fn from_object(object: Map<String, Value>) -> Result<Self, FieldErrors> {
        let mut f = Fields::new(object);
        let request = Self::read_fields(&mut f);
        f.finish(|| request)
    }
}

/// Declares a request body once: the poem-openapi object the spec shows, and its reading
/// ([`ReadRequest`]) field by field with each field type's [`FieldValue`]. A field written
/// `name: Type = default` takes `Type::default()` when absent and shows it in the spec.
macro_rules! request {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty $(= $default:ident)?
            ),* $(,)?
        }
    ) => {
        #[derive(poem_openapi::Object, Debug, Clone)]
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                $(#[oai($default)])?
                pub $field: $ty,
            )*
        }

        impl $crate::api::fields::ReadRequest for $name {
            fn read_fields(f: &mut $crate::api::fields::Fields) -> Option<Self> {
                $(
                    let $field = f.field::<$ty>(
                        stringify!($field),
                        $crate::api::fields::request!(@absent $ty $(, $default)?),
                    );
                )*
                Some($name { $($field: $field?,)* })
            }
        }
    };
    (@absent $ty:ty) => {
        None
    };
    (@absent $ty:ty, default) => {
        Some(<$ty as ::std::default::Default>::default as fn() -> $ty)
    };
}
pub(crate) use request;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use poem_openapi::{
        registry::Registry,
        types::{Example, ToJSON, Type},
    };
    use serde_json::{Map, Value};

    use super::{ReadRequest, NOT_NULL, REQUIRED};
    use crate::api::{
        api_keys::CreateApiKeyRequest,
        carrier::{InboundRequest, ReceiptRequest},
        consents::OptInRequest,
        lookups::LookupRequest,
        messages::SendMessageRequest,
        test_helpers::TestInboundRequest,
        webhooks::{CreateWebhookEndpointRequest, UpdateWebhookEndpointRequest},
    };

    /// The parser of `T` reads exactly the fields its published schema shows, requires exactly
    /// the required ones, and takes the published example.
    fn parser_matches_schema<T: ReadRequest + Type + Example + ToJSON>() {
        let mut registry = Registry::new();
        T::register(&mut registry);
        let schema = &registry.schemas[&*T::name()];
        let properties: BTreeSet<&str> = schema.properties.iter().map(|(n, _)| *n).collect();
        let required: BTreeSet<&str> = schema.required.iter().copied().collect();

        let errors = T::from_object(Map::new()).err().map(|e| e.into_map());
        let errors = errors.unwrap_or_default();
        let named: BTreeSet<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(named, required, "{}: fields reported missing", T::name());
        assert!(errors.values().all(|m| m == REQUIRED), "{errors:?}");

        let nulls: Map<String, Value> = properties
            .iter()
            .map(|p| ((*p).to_owned(), Value::Null))
            .collect();
        let errors = T::from_object(nulls)
            .err()
            .expect("nulls refused")
            .into_map();
        let named: BTreeSet<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(named, properties, "{}: fields read", T::name());
        assert!(errors.values().all(|m| m == NOT_NULL), "{errors:?}");

        let Some(Value::Object(example)) = T::example().to_json() else {
            panic!("{}: the example is an object", T::name());
        };
        let read = T::from_object(example.clone()).expect("the example is valid");
        assert_eq!(read.to_json(), Some(Value::Object(example)));
    }

    #[test]
    fn every_request_parser_reads_its_published_schema() {
        parser_matches_schema::<SendMessageRequest>();
        parser_matches_schema::<CreateApiKeyRequest>();
        parser_matches_schema::<ReceiptRequest>();
        parser_matches_schema::<InboundRequest>();
        parser_matches_schema::<OptInRequest>();
        parser_matches_schema::<LookupRequest>();
        parser_matches_schema::<TestInboundRequest>();
        parser_matches_schema::<CreateWebhookEndpointRequest>();
        parser_matches_schema::<UpdateWebhookEndpointRequest>();
    }

    #[test]
    fn an_absent_field_with_a_default_takes_it() {
        let mut object = Map::new();
        object.insert("from".into(), "+15551112222".into());
        object.insert("to".into(), "+15554443333".into());
        object.insert("text".into(), "hi".into());
        let read = SendMessageRequest::from_object(object).expect("valid");
        assert_eq!(read.priority.0, crate::domain::message::Priority::Default);
    }
}
