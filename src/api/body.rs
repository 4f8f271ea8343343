//! Request bodies, read leniently: the spec shows the strict schema of `T`, but the extractor
//! only keeps the bytes, so that the content type (415), JSON syntax (400) and fields (422) are
//! checked inside the operation after authentication, and every failing field is reported at
//! once.

use std::marker::PhantomData;

use poem::{http::header, Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use serde_json::{Map, Value};

use super::{envelope::ErrorCode, error::ApiError, fields::ReadRequest};
use crate::service::Error;

/// A JSON object body whose documented schema is `T`.
pub struct JsonBody<T> {
    bytes: Vec<u8>,
    content_type: Option<String>,
    _schema: PhantomData<T>,
}

/// Whether a `Content-Type` names JSON (`application/json`, any parameters).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

impl<T> JsonBody<T> {
    /// The body as a JSON object: 415 for a body that is not `application/json`, 400 for one
    /// that is not JSON or not an object.
    pub fn object(&self) -> Result<Map<String, Value>, ApiError> {
        let declared_json = self.content_type.as_deref().is_some_and(is_json);
        let acceptable = declared_json || (self.content_type.is_none() && self.bytes.is_empty());
        if !acceptable {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        let problem = match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(Value::Object(object)) => return Ok(object),
            Ok(_) => "must be a JSON object".to_owned(),
            Err(e) if e.is_eof() => {
                format!(
                    "is not JSON: it ends too early (line {}, column {})",
                    e.line(),
                    e.column()
                )
            }
            Err(e) => format!("is not JSON: line {}, column {}", e.line(), e.column()),
        };
        Err(ApiError::with_details(
            ErrorCode::BadRequest,
            std::collections::BTreeMap::from([("body".to_owned(), problem)]),
        ))
    }
}

impl<T: ReadRequest> JsonBody<T> {
    /// The request read from `object` (what [`JsonBody::object`] gave): 422 with every failing
    /// and unknown field.
    pub fn read(&self, object: &Map<String, Value>) -> Result<T, ApiError> {
        T::from_object(object.clone()).map_err(|errors| Error::Validation(errors).into())
    }

    /// The body read as `T`: 415, 400, or 422 with every failing and unknown field.
    pub fn request(&self) -> Result<T, ApiError> {
        let object = self.object()?;
        self.read(&object)
    }
}

impl<'a, T: Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = match body.take() {
            Ok(body) => body.into_vec().await?,
            Err(_) => Vec::new(),
        };
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        Ok(JsonBody {
            bytes,
            content_type,
            _schema: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
    }
}
