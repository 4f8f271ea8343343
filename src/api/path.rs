//! Path parameters read without failing: a segment that does not percent-decode to UTF-8 is kept
//! as `None`, so the operation answers it in the documented order (after authentication) and with
//! its documented status (404 for an id that names nothing, 422 for a number that is not E.164).

use poem::{Request, RequestBody};

use crate::domain::PhoneNumber;
use poem_openapi::{
    registry::{MetaParamIn, MetaSchemaRef},
    types::Type,
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

/// One path segment, decoded; `None` when it is not valid percent-encoded UTF-8.
///
/// It is named `Path` because poem-openapi recognises path parameters by that type name.
pub struct Path(Option<String>);

impl Path {
    pub fn value(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The segment as an E.164 number, if it is one.
    pub fn phone_number(&self) -> Option<PhoneNumber> {
        self.value().and_then(PhoneNumber::parse)
    }

    /// The segment named `phone_number` as an E.164 number: 422 `VALIDATION_FAILED` naming it
    /// when it is not one.
    pub fn e164(&self) -> Result<PhoneNumber, crate::service::Error> {
        self.phone_number().ok_or_else(|| {
            crate::service::Error::Validation(crate::service::FieldErrors::single(
                "phone_number",
                crate::domain::rules::MUST_BE_E164_IN_PATH,
            ))
        })
    }

    /// The segment as a UUID, if it is one.
    pub fn uuid(&self) -> Option<uuid::Uuid> {
        self.value().and_then(|v| uuid::Uuid::parse_str(v).ok())
    }
}

impl<'a> ApiExtractor<'a> for Path {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = true;
    type ParamType = String;
    type ParamRawType = String;

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Path)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(String::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Path(
            request.raw_path_param(param_opts.name).map(str::to_owned),
        ))
    }
}
