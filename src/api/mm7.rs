//! MMS over MM7: `POST /v1/carrier/mm7`, where the MMS centre delivers reports, read replies and
//! inbound MMS (SOAP 1.1, answered in SOAP), and `GET /v1/messages/{id}/media/{index}`, where an
//! inbound MMS's media are read back.

use poem::{http::header, web::Data, IntoResponse, Request, RequestBody, Response};
use poem_openapi::{
    registry::{
        MetaHeader, MetaMediaType, MetaRequest, MetaResponse, MetaResponses, MetaSchema,
        MetaSchemaRef, MetaSecurityScheme, Registry,
    },
    types::Type,
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi,
};

use super::{
    auth::BearerKey,
    envelope::ErrorEnvelope,
    error::ApiError,
    operations::Operation,
    path::Path,
    reply::{error_set, Reply},
    ApiTags,
};
use crate::{
    delivery::mm7::{self, soap},
    domain::{media::StoredMedia, PhoneNumber},
    service::{inbound::Inbound, receipts::Receipt, Mm7Inbound, Services},
};

/// The security scheme the MMS centre authenticates with.
pub const MM7_SCHEME: &str = "Mm7Basic";

/// The MMS centre's HTTP Basic credentials, checked against `--mm7-inbound-username` and
/// `AGENTMESSAGE_MM7_INBOUND_PASSWORD`.
pub struct Mm7Credentials(Option<(String, String)>);

impl Mm7Credentials {
    /// The deployment's MM7 settings when the credentials are theirs.
    fn authorize<'s>(&self, services: &'s Services) -> Option<&'s Mm7Inbound> {
        let inbound = services.settings.mm7_inbound.as_ref()?;
        let (user, password) = self.0.as_ref()?;
        let digest = crate::service::auth::digest;
        let same = digest(user) == digest(&inbound.username)
            && digest(password) == digest(&inbound.password);
        same.then_some(inbound)
    }
}

impl<'a> ApiExtractor<'a> for Mm7Credentials {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            MM7_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "The MMS centre's HTTP Basic credentials towards this server \
                     (`--mm7-inbound-username` and `AGENTMESSAGE_MM7_INBOUND_PASSWORD`). Not an \
                     organization's API key.",
                ),
                name: None,
                key_in: None,
                scheme: Some("basic"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![MM7_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let basic = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(token.trim())
            })
            .and_then(|token| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(token).ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok())
            .and_then(|pair| {
                let (user, password) = pair.split_once(':')?;
                Some((user.to_owned(), password.to_owned()))
            });
        Ok(Mm7Credentials(basic))
    }
}

/// The SOAP request as it came: its Content-Type (with the MIME boundary) and bytes.
pub struct SoapBody {
    content_type: String,
    bytes: Vec<u8>,
}

/// A string schema of XML or MIME text.
fn text_schema(description: &'static str) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        description: Some(description),
        ..MetaSchema::new("string")
    }))
}

impl<'a> ApiExtractor<'a> for SoapBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "An MM7 request (3GPP TS 23.140, SOAP 1.1): `DeliveryReportReq`, `ReadReplyReq` or \
                 `DeliverReq`, as `multipart/related` (the SOAP envelope the root part, a \
                 DeliverReq's content the next) or as a bare `text/xml` envelope.",
            ),
            content: vec![
                MetaMediaType {
                    content_type: "multipart/related",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        description: Some("The MIME body: the SOAP part, then the content."),
                        format: Some("binary"),
                        ..MetaSchema::new("string")
                    })),
                },
                MetaMediaType {
                    content_type: "text/xml",
                    schema: text_schema("The SOAP 1.1 envelope."),
                },
            ],
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
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        Ok(SoapBody {
            content_type,
            bytes,
        })
    }
}

/// The answer to the MMS centre, in SOAP.
pub enum Mm7Reply {
    /// The request's response (`DeliveryReportRsp`, `DeliverRsp`, `ReadReplyRsp`) with status 1000.
    Answered(String),
    /// A SOAP Fault: the request is malformed or not an operation this server takes.
    Fault(String),
    /// A SOAP Fault with status 4001: the credentials are missing or wrong.
    Unauthorized(String),
    /// A `Server` SOAP Fault with status 3000: the request was not stored; the MMSC sends it
    /// again.
    Unavailable(String),
}

const SOAP_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

impl IntoResponse for Mm7Reply {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Mm7Reply::Answered(body) => (poem::http::StatusCode::OK, body),
            Mm7Reply::Fault(body) => (poem::http::StatusCode::BAD_REQUEST, body),
            Mm7Reply::Unauthorized(body) => (poem::http::StatusCode::UNAUTHORIZED, body),
            Mm7Reply::Unavailable(body) => (poem::http::StatusCode::SERVICE_UNAVAILABLE, body),
        };
        let mut response = Response::builder()
            .status(status)
            .content_type(SOAP_CONTENT_TYPE)
            .body(body);
        if status == poem::http::StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"agentmessage-mm7\""),
            );
        }
        response
    }
}

impl ApiResponse for Mm7Reply {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        let soap = |description: &'static str| {
            vec![MetaMediaType {
                content_type: "text/xml",
                schema: text_schema(description),
            }]
        };
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "OK: the request's response (`DeliveryReportRsp`, `ReadReplyRsp` or `DeliverRsp`) with MM7 status 1000. A report or read reply for a message this server does not know is kept (reports) or dropped (read replies), and answered 1000 too, so the MMS centre never retries it forever.",
                    status: Some(200),
                    status_range: None,
                    content: soap("The SOAP 1.1 envelope of the response."),
                    headers: vec![],
                },
                MetaResponse {
                    description: "A SOAP Fault (`env:Client`) whose detail is an `RSErrorRsp`: MM7 status 4004 (Validation error) for malformed MIME, XML or SOAP, or a request missing a required element; 4003 (Unsupported operation) for a request this server does not take; 4004 for an inbound MMS to a number no organization owns.",
                    status: Some(400),
                    status_range: None,
                    content: soap("The SOAP 1.1 envelope of the fault."),
                    headers: vec![],
                },
                MetaResponse {
                    description: "A SOAP Fault with MM7 status 4001 (Improper identification): no HTTP Basic credentials, wrong ones, or this deployment takes no MM7 requests (`--mm7-inbound-username` is not set).",
                    status: Some(401),
                    status_range: None,
                    content: soap("The SOAP 1.1 envelope of the fault."),
                    headers: vec![MetaHeader {
                        name: "WWW-Authenticate".into(),
                        description: Some("The challenge: `Basic realm=\"agentmessage-mm7\"`.".into()),
                        required: true,
                        deprecated: false,
                        schema: String::schema_ref(),
                    }],
                },
                MetaResponse {
                    description: "A `Server` SOAP Fault with MM7 status 3000 (Server error): the request could not be stored (the database could not be reached); nothing of it was kept, and the MMS centre sends it again.",
                    status: Some(503),
                    status_range: None,
                    content: soap("The SOAP 1.1 envelope of the fault."),
                    headers: vec![],
                },
                MetaResponse {
                    description: "`PAYLOAD_TOO_LARGE`: the body is larger than this endpoint's limit (four thirds of `--mms-max-bytes`, as base64 would make it, plus 64 KiB).",
                    status: Some(413),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json",
                        schema: ErrorEnvelope::schema_ref(),
                    }],
                    headers: vec![],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        let incoming = soap::Incoming {
            transaction_id: None,
            namespace: None,
            version: None,
            request: Err(soap::Refusal::validation(err.to_string())),
        };
        Mm7Reply::Fault(soap::fault(
            &incoming,
            crate::defaults::MM7_VERSION,
            &soap::Refusal::validation("the request could not be read"),
        ))
    }
}

error_set!(
    /// What a media download can answer besides the media.
    MediaErrors: [Unauthorized, Forbidden, NotFound]
);

/// An inbound MMS's media item, with the Content-Type it was delivered with.
pub struct MediaReply(Result<StoredMedia, ApiError>);

impl IntoResponse for MediaReply {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(media) => Response::builder()
                .content_type(media.content_type)
                .header("x-content-type-options", "nosniff")
                .header(header::CONTENT_DISPOSITION, "attachment")
                .body(media.bytes),
            Err(error) => error.into_response(),
        }
    }
}

impl ApiResponse for MediaReply {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        let mut meta = Reply::<200, String, MediaErrors>::meta();
        if let Some(ok) = meta.responses.first_mut() {
            ok.description = "OK: the media item's bytes, with the Content-Type the MMS centre delivered it with (`image/jpeg`, `video/mp4`, …), as an attachment.";
            ok.content = vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    description: Some(
                        "The item's bytes; the response's Content-Type is the one it was delivered with.",
                    ),
                    format: Some("binary"),
                    ..MetaSchema::new("string")
                })),
            }];
        }
        meta
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        MediaReply(Err(ApiError::from_poem(err)))
    }
}

pub struct Mm7Api;

#[OpenApi(tag = "ApiTags::Carrier")]
impl Mm7Api {
    /// Deliver an MM7 request
    ///
    /// The MMS centre (MMSC) reaches this server over MM7 (3GPP TS 23.140: SOAP 1.1 over HTTP,
    /// `multipart/related` with the content as MIME parts), with HTTP Basic credentials:
    ///
    /// - `DeliveryReportReq`: what became of an MMS this server submitted, applied like every
    ///   other receipt: `MMStatus` Retrieved makes it `delivered`; Expired, Rejected,
    ///   Unrecognised, NotSupported and DeliveryConditionNotMet make it `undelivered`; Deferred,
    ///   Forwarded and Indeterminate are recorded and change nothing. Answered
    ///   `DeliveryReportRsp` 1000, unknown `MessageID`s too (kept and applied once the
    ///   submission is recorded).
    /// - `DeliverReq`: an MMS a phone sent to a number an organization owns, stored as an
    ///   inbound message (channel `mms`) whose `media_urls` name its media at
    ///   `/v1/messages/{id}/media/{index}`; keywords in its text act as they do for SMS.
    ///   Answered `DeliverRsp` 1000.
    /// - `ReadReplyReq`: the recipient read (or deleted) an MMS: a `read_reply` event on the
    ///   message. Answered `ReadReplyRsp` 1000.
    ///
    /// Every answer is SOAP (`text/xml`), faults included.
    #[oai(
        path = "/v1/carrier/mm7",
        method = "post",
        operation_id = "carrier_mm7_create"
    )]
    async fn carrier_mm7_create(
        &self,
        credentials: Mm7Credentials,
        services: Data<&Services>,
        body: SoapBody,
    ) -> Mm7Reply {
        let incoming = soap::read_request(&body.content_type, &body.bytes);
        let default_version = services
            .settings
            .mm7_inbound
            .as_ref()
            .map_or(crate::defaults::MM7_VERSION, |i| i.version.as_str())
            .to_owned();
        let Some(inbound) = credentials.authorize(&services) else {
            let refusal = soap::Refusal {
                code: 4001,
                text: "Improper identification: the MMS centre's credentials were not accepted"
                    .into(),
            };
            return Mm7Reply::Unauthorized(soap::fault(&incoming, &default_version, &refusal));
        };
        let request = match &incoming.request {
            Ok(request) => request.clone(),
            Err(refusal) => {
                tracing::info!(request_id = %super::request_id::current(), code = refusal.code, text = %refusal.text, "an MM7 request was refused");
                return Mm7Reply::Fault(soap::fault(&incoming, &default_version, refusal));
            }
        };
        match handle(&services, inbound, &request).await {
            Ok(text) => {
                let status = soap::Status {
                    code: 1000,
                    text: text.into(),
                };
                Mm7Reply::Answered(soap::response(
                    request.response_name(),
                    &incoming,
                    &default_version,
                    &status,
                ))
            }
            Err(Handled::Refused(refusal)) => {
                Mm7Reply::Fault(soap::fault(&incoming, &default_version, &refusal))
            }
            Err(Handled::Failed(err)) => {
                // The MMSC retries a request it gets no response to; a fault with 3000 (server
                // error) says the same without a bare 500.
                let api: ApiError = err.into();
                tracing::error!(request_id = %super::request_id::current(), code = api.code.as_str(), "an MM7 request could not be stored");
                let refusal = soap::Refusal {
                    code: 3000,
                    text: "Server error: the request was not stored; send it again".into(),
                };
                let fault = soap::fault(&incoming, &default_version, &refusal).replace(
                    "<faultcode>env:Client</faultcode>",
                    "<faultcode>env:Server</faultcode>",
                );
                Mm7Reply::Unavailable(fault)
            }
        }
    }

    /// Read an inbound MMS's media item
    ///
    /// Media item `index` (1, 2, …, in the order the MMS carried them) of an inbound MMS that
    /// reached this server over MM7, as listed in the message's `media_urls`: its bytes, with
    /// the Content-Type it was delivered with. A message of another organization or mode, a
    /// malformed id, or an index the message does not have is 404.
    #[oai(
        path = "/v1/messages/:id/media/:index",
        method = "get",
        operation_id = "messages_media_view"
    )]
    async fn messages_media_view(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The message id.
        id: Path,
        /// The media item's place in the message, from 1.
        index: poem_openapi::param::Path<String>,
    ) -> MediaReply {
        let run = async {
            let caller = key
                .authorize(&services, Operation::MessagesMediaView)
                .await?;
            let id = id.uuid().ok_or(crate::service::Error::NotFound)?;
            let index: u32 = index
                .0
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(crate::service::Error::NotFound)?;
            Ok::<_, ApiError>(services.message_media(&caller, id, index).await?)
        };
        MediaReply(run.await)
    }
}

/// Why a well-formed request was not taken.
enum Handled {
    /// The request is at fault (a 4xxx status).
    Refused(soap::Refusal),
    /// The server is (the request may be sent again).
    Failed(crate::service::Error),
}

/// Acts on one MM7 request; the StatusText of its response.
async fn handle(
    services: &Services,
    inbound: &Mm7Inbound,
    request: &soap::Request,
) -> Result<&'static str, Handled> {
    let carrier = inbound.carrier_name.as_str();
    match request {
        soap::Request::DeliveryReport {
            message_id,
            mm_status,
            date,
            ..
        } => {
            let receipt = Receipt {
                carrier_message_id: message_id.clone(),
                stat: mm7::receipt_stat(mm_status).into(),
                err: Some(mm_status.clone()),
                done_date: date.clone(),
            };
            services
                .record_receipt(carrier, receipt)
                .await
                .map_err(Handled::Failed)?;
            Ok("Success")
        }
        soap::Request::ReadReply {
            message_id,
            read_status,
            status_text,
            ..
        } => {
            let matched = services
                .record_read_reply(
                    carrier,
                    message_id,
                    read_status.clone(),
                    status_text.clone(),
                )
                .await
                .map_err(Handled::Failed)?;
            if !matched {
                tracing::info!(%message_id, "a read reply for no known message was dropped");
            }
            Ok("Success")
        }
        soap::Request::Deliver {
            sender,
            recipient,
            linked_id,
            text,
            media,
            ..
        } => {
            let number = |what: &str, value: &str| {
                let digits = value.trim_start_matches('+');
                PhoneNumber::parse(&format!("+{digits}")).ok_or_else(|| {
                    Handled::Refused(soap::Refusal::validation(format!(
                        "the {what} {value:?} is not an E.164 number"
                    )))
                })
            };
            let inbound = Inbound {
                from: number("Sender", sender)?,
                to: number("recipient", recipient)?,
                text: text.clone(),
                carrier_message_id: linked_id.clone(),
                media: media
                    .iter()
                    .map(|item| StoredMedia {
                        content_type: item.content_type.clone(),
                        content_id: Some(item.content_id.clone()),
                        bytes: item.bytes.clone(),
                    })
                    .collect(),
                carrier: Some(carrier.to_owned()),
            };
            match services.receive_inbound(inbound).await {
                Ok(_) => Ok("Success"),
                Err(crate::service::Error::Validation(_)) => {
                    Err(Handled::Refused(soap::Refusal::validation(
                        "the recipient is not a number any organization owns",
                    )))
                }
                Err(err) => Err(Handled::Failed(err)),
            }
        }
    }
}
