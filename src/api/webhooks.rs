//! `/v1/webhook_endpoints`: where your organization receives signed events, and how each event
//! was delivered.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::{Example, ToJSON};
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{
    auth::BearerKey,
    body::JsonBody,
    consents::ConsentView,
    envelope::{Envelope, ErrorCode, ListEnvelope},
    error::ApiError,
    fields::request,
    idempotency::{self, KeyHeader},
    messages::MessageView,
    path::Path,
    query::Query,
    reply::{error_set, Reply},
    types::{
        DeliveryCursor, PageLimit, Subscribable, WebhookDescription, WebhookEventTypes, WebhookUrl,
        Wire,
    },
    ApiTags,
};
use crate::{
    domain::{
        consent::ConsentState,
        message::Message,
        organization::KeyMode,
        webhooks::{
            CreatedEndpoint, DeliveryState, EndpointChanges, RenderResource, WebhookDelivery,
            WebhookEndpoint, WebhookEventType,
        },
        Timestamp,
    },
    service::{webhooks::CreateEndpoint, Error, Services},
};

/// The resources' API form, for the `data` of webhook events.
pub struct ApiRender;

impl RenderResource for ApiRender {
    fn message(&self, message: &Message) -> serde_json::Value {
        MessageView::from(message.clone())
            .to_json()
            .unwrap_or_default()
    }

    fn consent(&self, state: &ConsentState) -> serde_json::Value {
        ConsentView::of(state)
            .and_then(|view| view.to_json())
            .unwrap_or_default()
    }
}

/// The body of a message event (`message.sent`, `message.delivered`, `message.undelivered`,
/// `message.failed`, `message.received`), POSTed to each subscribed endpoint.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct MessageWebhookEvent {
    /// The event's id, also sent as the `webhook-id` header: the same on every attempt, so a
    /// receiver can drop an event it has already processed.
    pub id: Uuid,
    /// The event's type.
    #[oai(rename = "type")]
    pub kind: Wire<Subscribable>,
    /// When the change happened.
    pub created_at: Timestamp,
    /// The message as `GET /v1/messages/{id}` showed it right after the change.
    pub data: MessageView,
    /// The change's `sequence` among the message's events (`GET /v1/messages/{id}/events`).
    /// One endpoint receives one message's events in this order; not every event of a message is
    /// a webhook event, so the numbers it sees can have gaps.
    pub sequence: super::types::EventSequence,
}

impl Example for MessageWebhookEvent {
    fn example() -> Self {
        let mut data = MessageView::example();
        data.status = Wire(crate::domain::message::MessageStatus::Delivered);
        MessageWebhookEvent {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c9").expect("valid"),
            kind: Wire(Subscribable(WebhookEventType::MessageDelivered)),
            created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:03Z").expect("valid"),
            data,
            sequence: super::types::EventSequence(5),
        }
    }
}

/// The body of a `consent.updated` event, POSTed to each subscribed endpoint.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ConsentWebhookEvent {
    /// The event's id, also sent as the `webhook-id` header.
    pub id: Uuid,
    /// `consent.updated`.
    #[oai(rename = "type")]
    pub kind: Wire<Subscribable>,
    /// When the consent was recorded.
    pub created_at: Timestamp,
    /// The recipient's consent as `GET /v1/consents/{phone_number}` showed it right after the
    /// change. One endpoint receives one number's consent events in the order they were made.
    pub data: ConsentView,
}

impl Example for ConsentWebhookEvent {
    fn example() -> Self {
        ConsentWebhookEvent {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5ca").expect("valid"),
            kind: Wire(Subscribable(WebhookEventType::ConsentUpdated)),
            created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            data: ConsentView::example(),
        }
    }
}

/// The `data` of a `webhook.test` event.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct TestEventData {
    /// The endpoint the test was sent to.
    pub endpoint_id: Uuid,
    /// A sentence for whoever reads the receiver's log.
    pub text: String,
}

impl TestEventData {
    pub fn of(endpoint_id: Uuid) -> Self {
        TestEventData {
            endpoint_id,
            text: "A test event from AgentMessage: this endpoint receives and can verify its webhooks.".into(),
        }
    }
}

impl Example for TestEventData {
    fn example() -> Self {
        TestEventData::of(Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c7").expect("valid"))
    }
}

/// The body of a `webhook.test` event, POSTed to the one endpoint it was asked for.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct TestWebhookEvent {
    /// The event's id, also sent as the `webhook-id` header.
    pub id: Uuid,
    /// `webhook.test`.
    #[oai(rename = "type")]
    pub kind: Wire<WebhookEventType>,
    /// When the test was asked for.
    pub created_at: Timestamp,
    /// The endpoint, and a sentence.
    pub data: TestEventData,
}

impl Example for TestWebhookEvent {
    fn example() -> Self {
        TestWebhookEvent {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5cb").expect("valid"),
            kind: Wire(WebhookEventType::WebhookTest),
            created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            data: TestEventData::example(),
        }
    }
}

/// The `x-webhooks` section of the spec: one entry per event type, with the headers every
/// delivery carries and its body's schema.
pub fn spec_section() -> serde_json::Value {
    use serde_json::json;
    let headers = json!([
        {"name": "webhook-id", "in": "header", "required": true,
         "description": "The event's id (the body's `id`): the same on every attempt.",
         "schema": {"type": "string", "example": "0196f1a2-3b4c-7d5e-8f60-718293a4b5c9"}},
        {"name": "webhook-timestamp", "in": "header", "required": true,
         "description": "When this attempt was signed, in Unix seconds. Refuse timestamps far from your clock (the Standard Webhooks libraries allow five minutes).",
         "schema": {"type": "string", "example": "1777204803"}},
        {"name": "webhook-signature", "in": "header", "required": true,
         "description": "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the secret's bytes (the base64 after `whsec_`). During a secret rotation one signature per signing secret is sent (up to four), space-separated; accept the delivery when any verifies.",
         "schema": {"type": "string", "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}},
    ]);
    let mut section = serde_json::Map::new();
    for kind in WebhookEventType::ALL {
        let schema = match kind {
            WebhookEventType::ConsentUpdated => "ConsentWebhookEvent",
            WebhookEventType::WebhookTest => "TestWebhookEvent",
            _ => "MessageWebhookEvent",
        };
        let what = match kind {
            WebhookEventType::MessageSent => "The carrier accepted an outbound message (`status: sent`).",
            WebhookEventType::MessageDelivered => "The carrier's receipt says the message reached the handset (`status: delivered`).",
            WebhookEventType::MessageUndelivered => "The carrier's receipt says the message was not delivered, or its validity ran out (`status: undelivered`).",
            WebhookEventType::MessageFailed => "The message failed before or at submission (`status: failed`; see `error_code`).",
            WebhookEventType::MessageReceived => "An inbound message arrived on one of your numbers (`status: received`).",
            WebhookEventType::MessageCanceled => "A scheduled message was canceled before its `send_at` (`status: canceled`); it never reaches a carrier.",
            WebhookEventType::ConsentUpdated => "A recipient's consent changed: an opt-in or opt-out through the API, or the recipient's own keyword (STOP, START).",
            WebhookEventType::WebhookTest => "A test asked for with `POST /v1/webhook_endpoints/{id}/test`: sent to that endpoint alone, whatever it subscribes to (an endpoint cannot subscribe to it), signed like every event.",
        };
        let to_whom = if *kind == WebhookEventType::WebhookTest {
            "POSTed to the endpoint it was asked for (once it is enabled)".to_owned()
        } else {
            format!("POSTed to each enabled endpoint subscribed to `{}` (of the key mode the endpoint was made with)", kind.as_str())
        };
        section.insert(
            kind.as_str().to_owned(),
            json!({"post": {
                "tags": ["Webhooks"],
                "operationId": format!("webhook_{}", kind.as_str().replace('.', "_")),
                "summary": format!("{} event", kind.as_str()),
                "description": format!("{what}\n\n{to_whom}, signed per the Standard Webhooks specification. A 2xx answer acknowledges it; anything else, or no answer within 15 seconds, is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (a `Retry-After` in seconds replaces the wait, within 5 s to 24 h by default), then the delivery is `failed`. `410 Gone` disables the endpoint. Redirects are not followed."),
                "security": [],
                "parameters": headers,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
                "responses": {"2XX": {"description": "Acknowledged: the delivery is done."}},
            }}),
        );
    }
    serde_json::Value::Object(section)
}

request! {
    /// An endpoint to register.
    #[oai(deny_unknown_fields, example)]
    pub struct CreateWebhookEndpointRequest {
        /// Where events are POSTed.
        pub url: WebhookUrl,
        /// The event types to receive.
        pub events: WebhookEventTypes,
        /// Your own note about the endpoint.
        #[oai(skip_serializing_if_is_none)]
        pub description: Option<WebhookDescription>,
    }
}

impl Example for CreateWebhookEndpointRequest {
    fn example() -> Self {
        CreateWebhookEndpointRequest {
            url: WebhookUrl("https://example.com/agentmessage/webhooks".into()),
            events: WebhookEventTypes(vec![
                Wire(Subscribable(WebhookEventType::MessageDelivered)),
                Wire(Subscribable(WebhookEventType::MessageUndelivered)),
            ]),
            description: None,
        }
    }
}

request! {
    /// Changes to an endpoint; fields left out stay as they are.
    #[oai(deny_unknown_fields, example)]
    pub struct UpdateWebhookEndpointRequest {
        /// A new URL, checked as at creation.
        #[oai(skip_serializing_if_is_none)]
        pub url: Option<WebhookUrl>,
        /// The event types to receive from now on.
        #[oai(skip_serializing_if_is_none)]
        pub events: Option<WebhookEventTypes>,
        /// `false` pauses deliveries (events are not recorded for a disabled endpoint); `true`
        /// resumes them, also after the server disabled the endpoint for a 410 Gone.
        #[oai(skip_serializing_if_is_none)]
        pub enabled: Option<bool>,
        /// A new note; an empty string removes it.
        #[oai(skip_serializing_if_is_none)]
        pub description: Option<WebhookDescription>,
    }
}

impl Example for UpdateWebhookEndpointRequest {
    fn example() -> Self {
        UpdateWebhookEndpointRequest {
            url: None,
            events: None,
            enabled: Some(true),
            description: None,
        }
    }
}

/// A registered webhook endpoint. Its signing secret is shown only when it is created or
/// rotated.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct WebhookEndpointView {
    /// The endpoint's id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// Your note, or null.
    #[oai(nullable)]
    pub description: Option<String>,
    /// The event types it receives.
    pub events: Vec<Wire<Subscribable>>,
    /// Whether events are recorded and delivered to it.
    pub enabled: bool,
    /// Why the server disabled it (it answered 410 Gone), or null.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// The mode of the events it receives: a test key's endpoints receive test-mode events only.
    pub mode: Wire<KeyMode>,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Example for WebhookEndpointView {
    fn example() -> Self {
        let at = Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid");
        WebhookEndpointView {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c7").expect("valid"),
            url: "https://example.com/agentmessage/webhooks".into(),
            description: None,
            events: vec![
                Wire(Subscribable(WebhookEventType::MessageDelivered)),
                Wire(Subscribable(WebhookEventType::MessageUndelivered)),
            ],
            enabled: true,
            disabled_reason: None,
            mode: Wire(KeyMode::Live),
            created_at: at,
            updated_at: at,
        }
    }
}

impl From<WebhookEndpoint> for WebhookEndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        WebhookEndpointView {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e
                .events
                .into_iter()
                .map(|t| Wire(Subscribable(t)))
                .collect(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            mode: Wire(e.mode),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct WebhookEndpointWithSecretView {
    /// The signing secret (`whsec_` and the base64 of 32 random bytes). Store it now: it is
    /// never shown again. Verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
    /// The endpoint's id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// Your note, or null.
    #[oai(nullable)]
    pub description: Option<String>,
    /// The event types it receives.
    pub events: Vec<Wire<Subscribable>>,
    /// Whether events are recorded and delivered to it.
    pub enabled: bool,
    /// Why the server disabled it (it answered 410 Gone), or null.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// The mode of the events it receives.
    pub mode: Wire<KeyMode>,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Example for WebhookEndpointWithSecretView {
    fn example() -> Self {
        CreatedEndpoint {
            endpoint: WebhookEndpoint {
                id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c7").expect("valid"),
                url: "https://example.com/agentmessage/webhooks".into(),
                description: None,
                events: vec![WebhookEventType::MessageDelivered],
                enabled: true,
                disabled_reason: None,
                mode: KeyMode::Live,
                created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
                updated_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
            },
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        }
        .into()
    }
}

impl From<CreatedEndpoint> for WebhookEndpointWithSecretView {
    fn from(c: CreatedEndpoint) -> Self {
        let v = WebhookEndpointView::from(c.endpoint);
        WebhookEndpointWithSecretView {
            secret: c.secret,
            id: v.id,
            url: v.url,
            description: v.description,
            events: v.events,
            enabled: v.enabled,
            disabled_reason: v.disabled_reason,
            mode: v.mode,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct WebhookDeliveryView {
    /// The delivery's id.
    pub id: Uuid,
    /// The event's id: the `webhook-id` header of every attempt, and the payload's `id`.
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: Wire<WebhookEventType>,
    /// The endpoint's id.
    pub endpoint_id: Uuid,
    /// Where the delivery stands.
    pub state: Wire<DeliveryState>,
    /// Attempts made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt, or null (none yet, or no answer).
    #[oai(nullable)]
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed when it got no answer, as a coarse class: `no answer within
    /// …` (connected, no answer in time), `the connection could not be made` (refused, or no
    /// connection in time: the two read the same), `the TLS handshake failed`, `the request
    /// could not be sent`, or a destination not allowed; null otherwise.
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// When the next attempt is due, or null when none is.
    #[oai(nullable)]
    pub next_attempt_at: Option<Timestamp>,
    /// When the event was written.
    pub created_at: Timestamp,
    /// When the endpoint acknowledged it, or null.
    #[oai(nullable)]
    pub delivered_at: Option<Timestamp>,
}

impl Example for WebhookDeliveryView {
    fn example() -> Self {
        let at = Timestamp::parse_rfc3339("2026-04-26T12:00:03Z").expect("valid");
        WebhookDeliveryView {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c8").expect("valid"),
            event_id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c9").expect("valid"),
            event_type: Wire(WebhookEventType::MessageDelivered),
            endpoint_id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c7").expect("valid"),
            state: Wire(DeliveryState::Delivered),
            attempts: 1,
            last_status_code: Some(204),
            last_error: None,
            next_attempt_at: None,
            created_at: at,
            delivered_at: Some(at),
        }
    }
}

impl From<WebhookDelivery> for WebhookDeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        WebhookDeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: Wire(d.event_type),
            endpoint_id: d.endpoint_id,
            state: Wire(d.state),
            attempts: i64::from(d.attempts),
            last_status_code: d.last_status_code.map(i64::from),
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

impl From<CreateWebhookEndpointRequest> for CreateEndpoint {
    fn from(r: CreateWebhookEndpointRequest) -> Self {
        CreateEndpoint {
            url: r.url.0,
            events: event_types(r.events),
            description: r.description.map(|d| d.0).filter(|d| !d.is_empty()),
        }
    }
}

impl From<UpdateWebhookEndpointRequest> for EndpointChanges {
    fn from(r: UpdateWebhookEndpointRequest) -> Self {
        EndpointChanges {
            url: r.url.map(|u| u.0),
            events: r.events.map(event_types),
            enabled: r.enabled,
            description: r.description.map(|d| (!d.0.is_empty()).then_some(d.0)),
        }
    }
}

fn event_types(types: WebhookEventTypes) -> Vec<WebhookEventType> {
    types.0.into_iter().map(|t| t.0 .0).collect()
}

error_set!(
    /// Registering an endpoint.
    CreateEndpointErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, IdempotencyConflict, LimitReached, ValidationFailed, IdempotencyKeyReused, WebhooksNotConfigured]
);
error_set!(
    /// Listing endpoints.
    ListEndpointsErrors: [Unauthorized, Forbidden]
);
error_set!(
    /// Reading or deleting one endpoint.
    EndpointErrors: [Unauthorized, Forbidden, NotFound]
);
error_set!(
    /// Changing an endpoint.
    UpdateEndpointErrors: [BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, PayloadTooLarge, ValidationFailed]
);
error_set!(
    /// Rotating an endpoint's secret.
    RotateErrors: [BadRequest, Unauthorized, Forbidden, NotFound, IdempotencyConflict, LimitReached, IdempotencyKeyReused, WebhooksNotConfigured]
);
error_set!(
    /// Listing an endpoint's deliveries.
    DeliveryListErrors: [BadRequest, Unauthorized, Forbidden, NotFound]
);

pub struct WebhooksApi;

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Register a webhook endpoint
    ///
    /// Registers a URL to receive the chosen events of the calling key's mode, signed per the
    /// Standard Webhooks specification. The answer shows the signing secret once.
    ///
    /// The URL must be http or https, not port 0; loopback, private, link-local and cloud
    /// metadata addresses, special-purpose blocks that are not the public internet, IPv6
    /// addresses carrying such an IPv4 address, the addresses of the server's own network
    /// interfaces, and host names that resolve to any of them are
    /// refused with 422 `details.url`, at creation and again at each delivery, unless the
    /// deployment allows private destinations. A deployment
    /// without `AGENTMESSAGE_SECRET_KEY` cannot store secrets and answers 501
    /// `WEBHOOKS_NOT_CONFIGURED`. An organization holds at most the deployment's limit of
    /// endpoints per mode (16 by default, enabled or not): one more is 409 `LIMIT_REACHED` with
    /// `details.limit`.
    ///
    /// With an `Idempotency-Key`, a retry with the same key and body gets the first answer again
    /// (secret included) with `Idempotent-Replayed: true`, and registers nothing twice; the rules
    /// are those of `POST /v1/messages`.
    #[oai(
        path = "/v1/webhook_endpoints",
        method = "post",
        operation_id = "webhook_endpoints_create"
    )]
    async fn webhook_endpoints_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// Makes the registration safe to retry: a retry with the same key and the same body
        /// gets the first answer again (`Idempotent-Replayed: true`).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: KeyHeader,
        body: JsonBody<CreateWebhookEndpointRequest>,
    ) -> Reply<201, Envelope<WebhookEndpointWithSecretView>, CreateEndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsCreate)
                .await?;
            let object = body.object()?;
            let idempotency = idempotency_key.key()?;
            let new = CreateEndpoint::from(body.read(&object)?);
            let (services, caller) = (&*services, &caller);
            idempotency::run(
                services,
                caller,
                "webhook_endpoints_create",
                idempotency,
                &object,
                201,
                |c: &CreatedEndpoint| {
                    Envelope(WebhookEndpointWithSecretView::from(c.clone())).to_json_string()
                },
                |completion| async move {
                    services
                        .create_webhook_endpoint(caller, new, completion.as_ref())
                        .await
                },
            )
            .await
        };
        Reply::answer(run.await, |c| {
            Envelope(WebhookEndpointWithSecretView::from(c))
        })
    }

    /// List webhook endpoints
    ///
    /// Every endpoint of your organization in the calling key's mode, newest first, in one page
    /// (`has_more` is false). Secrets are never shown.
    #[oai(
        path = "/v1/webhook_endpoints",
        method = "get",
        operation_id = "webhook_endpoints_list"
    )]
    async fn webhook_endpoints_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
    ) -> Reply<200, ListEnvelope<WebhookEndpointView>, ListEndpointsErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsList)
                .await?;
            let all = services.webhook_endpoints(&caller).await?;
            Ok::<_, ApiError>(ListEnvelope::complete(
                all.into_iter().map(WebhookEndpointView::from).collect(),
            ))
        };
        run.await.into()
    }

    /// Get a webhook endpoint
    #[oai(
        path = "/v1/webhook_endpoints/:id",
        method = "get",
        operation_id = "webhook_endpoints_get"
    )]
    async fn webhook_endpoints_get(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
    ) -> Reply<200, Envelope<WebhookEndpointView>, EndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsGet)
                .await?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            let endpoint = services.webhook_endpoint(&caller, id).await?;
            Ok::<_, ApiError>(Envelope(WebhookEndpointView::from(endpoint)))
        };
        run.await.into()
    }

    /// Change a webhook endpoint
    ///
    /// Changes the URL (checked as at creation), the event types, the description, or whether
    /// it is enabled. Enabling an endpoint the server disabled (for a 410 Gone) resumes its
    /// pending deliveries.
    #[oai(
        path = "/v1/webhook_endpoints/:id",
        method = "patch",
        operation_id = "webhook_endpoints_update"
    )]
    async fn webhook_endpoints_update(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
        body: JsonBody<UpdateWebhookEndpointRequest>,
    ) -> Reply<200, Envelope<WebhookEndpointView>, UpdateEndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsUpdate)
                .await?;
            let changes = EndpointChanges::from(body.request()?);
            let id = id.uuid().ok_or(Error::NotFound)?;
            let endpoint = services
                .update_webhook_endpoint(&caller, id, changes)
                .await?;
            Ok::<_, ApiError>(Envelope(WebhookEndpointView::from(endpoint)))
        };
        run.await.into()
    }

    /// Delete a webhook endpoint
    ///
    /// Deletes the endpoint and its pending deliveries; the answer shows it as it was.
    #[oai(
        path = "/v1/webhook_endpoints/:id",
        method = "delete",
        operation_id = "webhook_endpoints_delete"
    )]
    async fn webhook_endpoints_delete(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
    ) -> Reply<200, Envelope<WebhookEndpointView>, EndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsDelete)
                .await?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            let endpoint = services.delete_webhook_endpoint(&caller, id).await?;
            Ok::<_, ApiError>(Envelope(WebhookEndpointView::from(endpoint)))
        };
        run.await.into()
    }

    /// Rotate a webhook endpoint's secret
    ///
    /// Makes a new signing secret and shows it once. For 24 hours the old secret keeps signing
    /// beside the new one: `webhook-signature` then holds one space-separated signature per
    /// signing secret, and a receiver accepts a delivery when any verifies. Every secret rotated
    /// away signs until its own 24 hours end, whatever rotations come after it; at most three
    /// do at once (four signatures with the current one), and a rotation past that is 409
    /// `LIMIT_REACHED` (`details.limit`: 3) until the oldest one's time ends.
    ///
    /// With an `Idempotency-Key`, a retry with the same key for the same endpoint gets the
    /// first answer again (the same new secret) with `Idempotent-Replayed: true` and rotates
    /// nothing more; the same key for another endpoint is 422 `IDEMPOTENCY_KEY_REUSED`; while
    /// the first request still runs, 409 `IDEMPOTENCY_CONFLICT` with `Retry-After`.
    #[oai(
        path = "/v1/webhook_endpoints/:id/rotate_secret",
        method = "post",
        operation_id = "webhook_endpoints_rotate_secret"
    )]
    async fn webhook_endpoints_rotate_secret(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
        /// Makes the rotation safe to retry: a retry with the same key gets the first answer
        /// again (`Idempotent-Replayed: true`) and rotates nothing more.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: KeyHeader,
    ) -> Reply<200, Envelope<WebhookEndpointWithSecretView>, RotateErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsRotateSecret)
                .await?;
            let idempotency = idempotency_key.key()?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            // What a retry must repeat: the endpoint (the request has no body).
            let request = serde_json::Map::from_iter([("id".to_owned(), id.to_string().into())]);
            let (services, caller) = (&*services, &caller);
            idempotency::run(
                services,
                caller,
                "webhook_endpoints_rotate_secret",
                idempotency,
                &request,
                200,
                |c: &CreatedEndpoint| {
                    Envelope(WebhookEndpointWithSecretView::from(c.clone())).to_json_string()
                },
                |completion| async move {
                    services
                        .rotate_webhook_secret(caller, id, completion.as_ref())
                        .await
                },
            )
            .await
        };
        Reply::answer(run.await, |c| {
            Envelope(WebhookEndpointWithSecretView::from(c))
        })
    }

    /// List an endpoint's deliveries
    ///
    /// Each event's delivery to the endpoint, newest first, in pages of `limit` (default 20):
    /// its state, attempts, the last attempt's status code or error, and when the next attempt
    /// is due. Pass `next_cursor` as `cursor` for the next page.
    #[oai(
        path = "/v1/webhook_endpoints/:id/deliveries",
        method = "get",
        operation_id = "webhook_deliveries_list"
    )]
    async fn webhook_deliveries_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
        /// Items per page, 1 to 100 (default 20).
        limit: Query<PageLimit>,
        /// The `next_cursor` of the previous page.
        cursor: Query<DeliveryCursor>,
    ) -> Reply<200, ListEnvelope<WebhookDeliveryView>, DeliveryListErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookDeliveriesList)
                .await?;
            let mut errors = std::collections::BTreeMap::new();
            let limit = super::messages::page_limit(&limit, &mut errors);
            let before = match cursor.value() {
                None => None,
                Some(v) => match Uuid::parse_str(v) {
                    Ok(id) => Some(id),
                    Err(_) => {
                        errors.insert(
                            "cursor".into(),
                            "is not a cursor this server returned".into(),
                        );
                        None
                    }
                },
            };
            if cursor.repeated() {
                errors.insert("cursor".into(), "must be given at most once".into());
            }
            if !errors.is_empty() {
                return Err(ApiError::with_details(ErrorCode::BadRequest, errors));
            }
            let id = id.uuid().ok_or(Error::NotFound)?;
            let mut page = services
                .webhook_deliveries(&caller, id, limit + 1, before)
                .await?;
            let has_more = page.len() as u64 > limit;
            page.truncate(limit as usize);
            let next_cursor = has_more
                .then(|| page.last().map(|d| d.id.to_string()))
                .flatten();
            Ok::<_, ApiError>(ListEnvelope {
                data: page.into_iter().map(WebhookDeliveryView::from).collect(),
                has_more,
                next_cursor,
            })
        };
        run.await.into()
    }

    /// Send a test event
    ///
    /// Sends a signed `webhook.test` event to this endpoint alone, whatever event types it
    /// subscribes to: a way to check that it receives and verifies AgentMessage's webhooks. The
    /// answer is the delivery, `pending`; it is attempted at once (and retried like every
    /// delivery), and shows in the endpoint's deliveries. A disabled endpoint's test waits until
    /// it is enabled again.
    #[oai(
        path = "/v1/webhook_endpoints/:id/test",
        method = "post",
        operation_id = "webhook_endpoints_test"
    )]
    async fn webhook_endpoints_test(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
    ) -> Reply<202, Envelope<WebhookDeliveryView>, EndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookEndpointsTest)
                .await?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            let data = TestEventData::of(id).to_json().unwrap_or_default();
            let delivery = services.send_test_webhook(&caller, id, data).await?;
            Ok::<_, ApiError>(Envelope(WebhookDeliveryView::from(delivery)))
        };
        run.await.into()
    }

    /// Retry a delivery
    ///
    /// Makes the delivery due now with a fresh retry schedule, whatever its state: a failed one
    /// is attempted again, a delivered one is sent again (with the same `webhook-id`, so a
    /// receiver that already processed it can tell).
    #[oai(
        path = "/v1/webhook_endpoints/:id/deliveries/:delivery_id/retry",
        method = "post",
        operation_id = "webhook_deliveries_retry"
    )]
    async fn webhook_deliveries_retry(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The endpoint's id.
        id: Path,
        /// The delivery's id.
        delivery_id: Path,
    ) -> Reply<200, Envelope<WebhookDeliveryView>, EndpointErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::WebhookDeliveriesRetry)
                .await?;
            let id = id.uuid().ok_or(Error::NotFound)?;
            let delivery_id = delivery_id.uuid().ok_or(Error::NotFound)?;
            let delivery = services
                .retry_webhook_delivery(&caller, id, delivery_id)
                .await?;
            Ok::<_, ApiError>(Envelope(WebhookDeliveryView::from(delivery)))
        };
        run.await.into()
    }
}
