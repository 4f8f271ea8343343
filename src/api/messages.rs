//! `/v1/messages`: send a message and read it back.

use entity::message;
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{
    auth::BearerKey,
    body::JsonBody,
    envelope::Envelope,
    error::ApiError,
    fields::Fields,
    path::Path,
    reply::{error_set, Reply},
    types::MediaUrl,
    ApiTags,
};
use crate::{
    domain::{
        message::{is_media_url, Channel, MessageStatus, Priority, MAX_MEDIA_URLS, MAX_TAG_CHARS},
        text::{Encoding, MessageText, TextError, MAX_TEXT_CHARS},
        PhoneNumber, Scope, Timestamp,
    },
    service::{messages::SendMessage, Services},
};

/// A message to send. `media_urls` makes it an MMS; `text` is then its caption.
#[derive(Object, Debug, Clone)]
#[oai(deny_unknown_fields, example)]
pub struct SendMessageRequest {
    /// The sender: a number your organization owns.
    pub from: PhoneNumber,
    /// The recipient, who must have opted in to your organization.
    pub to: PhoneNumber,
    /// The message text, or the MMS caption: 1 to 1600 characters (Unicode scalar values).
    #[oai(validator(min_length = 1, max_length = 1600, pattern = r"^[^\x00]*$"))]
    pub text: String,
    /// `high` is handed to the carrier before `default`.
    #[oai(default)]
    pub priority: Priority,
    /// Your own label, echoed back and usable to find the message later; up to 256 characters.
    #[oai(validator(max_length = 256, pattern = r"^[^\x00]*$"))]
    #[oai(skip_serializing_if_is_none)]
    pub tag: Option<String>,
    /// 1 to 10 http(s) URLs of media to send as MMS.
    #[oai(validator(min_items = 1, max_items = 10))]
    #[oai(skip_serializing_if_is_none)]
    pub media_urls: Option<Vec<MediaUrl>>,
}

impl Example for SendMessageRequest {
    fn example() -> Self {
        SendMessageRequest {
            from: PhoneNumber::parse("+15551112222").expect("valid"),
            to: PhoneNumber::parse("+15554443333").expect("valid"),
            text: "hello from agentmessage".into(),
            priority: Priority::Default,
            tag: Some("order-7421".into()),
            media_urls: None,
        }
    }
}

/// A message and its current status.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct MessageView {
    /// The message id (a time-ordered UUID).
    pub id: Uuid,
    /// The sender.
    pub from: PhoneNumber,
    /// The recipient.
    pub to: PhoneNumber,
    /// The text, or the MMS caption.
    pub text: String,
    /// `sms`, or `mms` when `media_urls` were given.
    pub channel: Channel,
    /// The send priority.
    pub priority: Priority,
    /// The current status; it starts as `queued`.
    pub status: MessageStatus,
    /// The tag given when sending, or null.
    #[oai(nullable)]
    pub tag: Option<String>,
    /// The media URLs of an MMS, or null for SMS.
    #[oai(nullable)]
    pub media_urls: Option<Vec<String>>,
    /// How many segments the carrier bills for the text.
    pub segments: u32,
    /// The encoding the text is sent in.
    pub encoding: Encoding,
    /// When the message was accepted.
    pub created_at: Timestamp,
    /// When the message last changed.
    pub updated_at: Timestamp,
}

impl Example for MessageView {
    fn example() -> Self {
        let at = Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid");
        MessageView {
            id: Uuid::parse_str("8f3a2b1c-1c2d-4e5f-9a8b-0c1d2e3f4a5b").expect("valid"),
            from: PhoneNumber::parse("+15551112222").expect("valid"),
            to: PhoneNumber::parse("+15554443333").expect("valid"),
            text: "hello from agentmessage".into(),
            channel: Channel::Sms,
            priority: Priority::Default,
            status: MessageStatus::Queued,
            tag: Some("order-7421".into()),
            media_urls: None,
            segments: 1,
            encoding: Encoding::Gsm7,
            created_at: at,
            updated_at: at,
        }
    }
}

impl From<message::Model> for MessageView {
    fn from(m: message::Model) -> Self {
        MessageView {
            id: m.id,
            from: PhoneNumber::parse(&m.from_number)
                .unwrap_or_else(|| stored_number_fallback(&m.from_number)),
            to: PhoneNumber::parse(&m.to_number)
                .unwrap_or_else(|| stored_number_fallback(&m.to_number)),
            text: m.body,
            channel: Channel::parse(&m.channel).unwrap_or(Channel::Sms),
            priority: Priority::parse(&m.priority).unwrap_or_default(),
            status: MessageStatus::parse(&m.status).unwrap_or(MessageStatus::Queued),
            tag: m.tag,
            media_urls: m
                .media_urls
                .and_then(|json| serde_json::from_str(&json).ok()),
            segments: u32::try_from(m.segments).unwrap_or(0),
            encoding: Encoding::parse(&m.encoding).unwrap_or(Encoding::Ucs2),
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// Numbers are validated before they are stored; this only keeps a damaged row readable.
fn stored_number_fallback(raw: &str) -> PhoneNumber {
    tracing::error!(number = raw, "stored phone number is not E.164");
    PhoneNumber::parse("+10000000000").expect("valid")
}

/// Reads a send request, reporting every failing field at once.
fn parse_send(object: serde_json::Map<String, serde_json::Value>) -> Result<SendMessage, ApiError> {
    const E164: &str = "must be E.164";
    let mut f = Fields::new(object);
    let from = f.string("from", true);
    let from = f.parse("from", from, PhoneNumber::parse, E164);
    let to = f.string("to", true);
    let to = f.parse("to", to, PhoneNumber::parse, E164);
    let text = f
        .string("text", true)
        .and_then(|t| match MessageText::parse(&t) {
            Ok(text) => Some(text),
            Err(TextError::Empty | TextError::TooLong) => {
                f.error("text", format!("must be 1 to {MAX_TEXT_CHARS} characters"));
                None
            }
            Err(TextError::Nul) => {
                f.error("text", super::fields::NUL);
                None
            }
        });
    let priority = match f.string("priority", false) {
        None => Some(Priority::Default),
        Some(p) => f.parse(
            "priority",
            Some(p),
            Priority::parse,
            "must be one of: default, high",
        ),
    };
    let tag = f.text("tag", false, MAX_TAG_CHARS);
    let media_urls = f.string_array("media_urls", false, "must contain only http(s) URLs");
    if let Some(urls) = &media_urls {
        if urls.is_empty() || urls.len() > MAX_MEDIA_URLS {
            f.error(
                "media_urls",
                format!("must have 1 to {MAX_MEDIA_URLS} URLs"),
            );
        } else if !urls.iter().all(|u| is_media_url(u)) {
            f.error("media_urls", "must contain only http(s) URLs");
        }
    }
    f.finish(|| {
        Some(SendMessage {
            from: from?,
            to: to?,
            text: text?,
            priority: priority?,
            tag,
            media_urls: media_urls.unwrap_or_default(),
        })
    })
    .map_err(|errors| crate::service::Error::Validation(errors).into())
}

error_set!(
    /// What sending can answer besides 202.
    SendErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, ValidationFailed, LineTypeBlocked, RateLimited, ConsentRequired]
);
error_set!(
    /// What reading one message can answer besides 200.
    ViewErrors: [Unauthorized, Forbidden, NotFound]
);

pub struct MessagesApi;

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagesApi {
    /// Send a message
    ///
    /// Send an SMS or MMS. The message is accepted asynchronously and returns 202 Accepted with
    /// the message resource; its status starts as `queued` and moves to a terminal state
    /// (`delivered`, `failed`, or `undelivered`) as carrier delivery receipts arrive.
    ///
    /// The `from` number must be one your organization owns, and the recipient must have opted
    /// in. If consent is missing, the call returns 453 `CONSENT_REQUIRED`. Sends are rate limited
    /// per organization; bursts return 429 `RATE_LIMITED` with a `Retry-After` header. If a recent
    /// number lookup classified the recipient as a fixed (landline) line, the send is rejected
    /// with 422 `LINE_TYPE_BLOCKED`.
    ///
    /// Requires the `messages:send` scope.
    #[oai(
        path = "/v1/messages",
        method = "post",
        operation_id = "messages_create"
    )]
    async fn messages_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        body: JsonBody<SendMessageRequest>,
    ) -> Reply<202, Envelope<MessageView>, SendErrors> {
        let run = async {
            let caller = key.authorize(&services, Scope::MessagesSend).await?;
            let send = parse_send(body.object()?)?;
            let message = services.send_message(&caller, send).await?;
            Ok::<_, ApiError>(Envelope(MessageView::from(message)))
        };
        run.await.into()
    }

    /// Retrieve a message
    ///
    /// The message as sending returned it, with its current status. A message of another
    /// organization, or a malformed id, is 404.
    ///
    /// Requires the `messages:read` scope.
    #[oai(
        path = "/v1/messages/:id",
        method = "get",
        operation_id = "messages_view"
    )]
    async fn messages_view(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The message id.
        id: Path,
    ) -> Reply<200, Envelope<MessageView>, ViewErrors> {
        let run = async {
            let caller = key.authorize(&services, Scope::MessagesRead).await?;
            let id = id
                .value()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or(crate::service::Error::NotFound)?;
            let message = services.message(&caller, id).await?;
            Ok::<_, ApiError>(Envelope(MessageView::from(message)))
        };
        run.await.into()
    }
}
