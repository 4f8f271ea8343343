//! Query parameters read without failing: the spec shows `T`'s schema, the operation gets the raw
//! text and parses it after authentication, answering 400 with `details` for a bad value.

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaParamIn, MetaSchemaRef, Registry},
    types::Type,
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

/// One query parameter documented as `T`, kept as text.
pub struct Query<T> {
    value: Option<String>,
    /// Given more than once: which value was meant cannot be known.
    repeated: bool,
    _schema: PhantomData<T>,
}

impl<T> Query<T> {
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    pub fn repeated(&self) -> bool {
        self.repeated
    }
}

impl<'a, T: Type> ApiExtractor<'a> for Query<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = false;
    type ParamType = String;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Query)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(T::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let mut values = request
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k == param_opts.name)
            .map(|(_, v)| v);
        let value = values.next();
        Ok(Query {
            value,
            repeated: values.next().is_some(),
            _schema: PhantomData,
        })
    }
}
