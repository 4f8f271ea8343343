//! `Idempotency-Key` at the HTTP edge: the header documented as the `IdempotencyKey` schema but
//! read as text (a malformed key is 400 after authentication, like a bad query parameter), and
//! the run of a creating operation under a key: replay, record, or release.

use std::{collections::BTreeMap, future::Future};

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaParamIn, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use super::{envelope::ErrorCode, error::ApiError, request_id, types::IdempotencyKey};
use crate::{
    domain::{
        idempotency::{fingerprint, Begun, Completion, Recorded},
        rules,
    },
    service::{auth::Caller, idempotency::Keyed, Error, Services},
};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// The response header on a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The `Idempotency-Key` header, documented as [`IdempotencyKey`], kept as text.
pub struct KeyHeader {
    value: Option<String>,
    /// Present but not UTF-8 (a malformed key).
    unreadable: bool,
}

impl<'a> ApiExtractor<'a> for KeyHeader {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = false;
    type ParamType = String;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        IdempotencyKey::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(IdempotencyKey::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let header = request.headers().get(HEADER);
        Ok(KeyHeader {
            value: header.and_then(|v| v.to_str().ok()).map(str::to_owned),
            unreadable: header.is_some_and(|v| v.to_str().is_err()),
        })
    }
}

impl KeyHeader {
    /// The key, if one was sent; 400 with `details["Idempotency-Key"]` for a malformed one.
    pub fn key(&self) -> Result<Option<String>, ApiError> {
        let bad = |message: &str| {
            ApiError::with_details(
                ErrorCode::BadRequest,
                BTreeMap::from([(HEADER.to_owned(), message.to_owned())]),
            )
        };
        if self.unreadable {
            return Err(bad(rules::IDEMPOTENCY_KEY.pattern_message));
        }
        match &self.value {
            None => Ok(None),
            Some(value) => match rules::IDEMPOTENCY_KEY.check(value) {
                Ok(()) => Ok(Some(value.clone())),
                Err(e) => Err(bad(e.message())),
            },
        }
    }
}

/// A creating operation's answer: the resource it made, or the answer recorded for its key.
pub enum Answer<T> {
    Made(T),
    Replayed(Recorded),
}

/// Whether an answer is one the operation's own rules gave (recorded), rather than one decided
/// before it ran or a fault (not recorded: a retry runs again).
fn recorded_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ValidationFailed | ErrorCode::LineTypeBlocked | ErrorCode::ConsentRequired
    )
}

/// Runs `operation` for `caller`, under `key` when one was sent: a replay answers what was
/// recorded; otherwise the operation runs with a [`Completion`] (its success answer rendered by
/// `render` with `status`, stored with the resource), a rule's refusal is recorded, and any other
/// failure frees the key.
#[allow(clippy::too_many_arguments)]
pub async fn run<T: 'static, F, Fut>(
    services: &Services,
    caller: &Caller,
    operation: &str,
    key: Option<String>,
    body: &serde_json::Map<String, serde_json::Value>,
    status: u16,
    render: fn(&T) -> String,
    run: F,
) -> Result<Answer<T>, ApiError>
where
    F: FnOnce(Option<Completion<T>>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let Some(key) = key else {
        return run(None).await.map(Answer::Made).map_err(ApiError::from);
    };
    let print = fingerprint(&serde_json::Value::Object(body.clone()));
    let request_id = request_id::current();
    let keyed = Keyed {
        operation,
        key: &key,
        fingerprint: &print,
        request_id: &request_id,
    };
    let hold = match services.begin_idempotent(caller, &keyed).await? {
        Begun::Replay(recorded) => return Ok(Answer::Replayed(recorded)),
        Begun::Run(hold) => hold,
        Begun::Running { retry_after_secs } => {
            return Err(Error::IdempotencyConflict { retry_after_secs }.into())
        }
        Begun::Reused => return Err(Error::IdempotencyKeyReused.into()),
    };
    let completion = Completion {
        hold: hold.clone(),
        status,
        render: std::sync::Arc::new(render),
    };
    match run(Some(completion)).await {
        Ok(made) => Ok(Answer::Made(made)),
        Err(err) => {
            let error = ApiError::from(err);
            let outcome = if recorded_code(error.code) {
                let body = error.body().to_json_string();
                services
                    .complete_idempotent(caller, &hold, error.code.status(), &body)
                    .await
            } else {
                services.release_idempotent(caller, &hold).await
            };
            if let Err(cause) = outcome {
                tracing::error!(request_id = %request_id, %cause, "the idempotency record was not updated");
            }
            Err(error)
        }
    }
}
