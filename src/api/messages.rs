//! `/v1/messages`: send a message and read it back.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::{Example, ToJSON};
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{
    auth::BearerKey,
    body::JsonBody,
    envelope::{Envelope, ErrorCode, ListEnvelope},
    error::ApiError,
    fields::request,
    idempotency::{self, KeyHeader},
    path::Path,
    query::Query,
    reply::{error_set, Reply},
    types::{
        Cursor, EventCursor, EventSequence, MediaUrls, MessageText, PageLimit, SegmentCount,
        SendAt, Tag, ValidityPeriod, Wire,
    },
    ApiTags,
};
use crate::{
    domain::{
        lifecycle::{Event, EventKind, MessageErrorCode},
        listing::{ListPosition, MessageFilter},
        message::{Channel, Direction, Message, MessageStatus, Priority},
        rules,
        text::Encoding,
        PhoneNumber, Timestamp,
    },
    service::{messages::SendMessage, Services},
};

request! {
    /// A message to send. `media_urls` makes it an MMS; `text` is then its caption.
    #[oai(deny_unknown_fields, example)]
    pub struct SendMessageRequest {
        /// The sender: a number your organization owns.
        pub from: PhoneNumber,
        /// The recipient, who must have opted in to your organization.
        pub to: PhoneNumber,
        /// The message text, or the MMS caption: 1 to 1600 characters (Unicode scalar values).
        pub text: MessageText,
        /// `high` is handed to the carrier before `default`.
        pub priority: Wire<Priority> = default,
        /// Your own label, echoed back and usable to find the message later; up to 256 characters.
        #[oai(skip_serializing_if_is_none)]
        pub tag: Option<Tag>,
        /// 1 to 10 URLs of media to send as MMS: https (plain http only where the deployment
        /// allows it), not pointing to a loopback, private, link-local or metadata address, else
        /// 422 naming the item. Refused with 422 by a deployment whose carrier cannot carry MMS
        /// (SMPP). The worker fetches each item before submission: one it cannot fetch, of a
        /// type an MMS cannot carry (allowed: image/jpeg, image/png, image/gif, video/mp4,
        /// video/3gpp, audio/mpeg, audio/amr, text/vcard, text/calendar, application/pdf), or
        /// media adding up to more than the deployment's cap, makes the message `failed` with
        /// `MEDIA_UNAVAILABLE`, `MEDIA_TYPE_UNSUPPORTED` or `MEDIA_TOO_LARGE`.
        #[oai(skip_serializing_if_is_none)]
        pub media_urls: Option<MediaUrls>,
        /// Send it later, at this time: between 5 minutes and 35 days from now (the
        /// deployment's `--schedule-min-lead` and `--schedule-max-lead`), else 422. The message
        /// is `scheduled` until then, and may be canceled (`POST /v1/messages/{id}/cancel`); the
        /// rate limit is spent now. At its time it becomes `queued` — or `failed`
        /// (`CONSENT_REVOKED`, `LINE_TYPE_BLOCKED`) when the recipient opted out, or was found
        /// to be a landline, meanwhile.
        #[oai(skip_serializing_if_is_none)]
        pub send_at: Option<SendAt>,
        /// Its own validity, in seconds from `send_at` (or from now): a message the carrier has
        /// not taken, or not reported delivered, by then ends `undelivered` (`EXPIRED`); the
        /// carrier is told (SMPP `validity_period`, MM7 `ExpiryDate`). 60 up to the deployment's
        /// validity (48 hours by default), else 422.
        #[oai(skip_serializing_if_is_none)]
        pub validity_period: Option<ValidityPeriod>,
    }
}

impl Example for SendMessageRequest {
    fn example() -> Self {
        SendMessageRequest {
            from: PhoneNumber::parse("+15551112222").expect("valid"),
            to: PhoneNumber::parse("+15554443333").expect("valid"),
            text: MessageText::parse("hello from agentmessage").expect("valid"),
            priority: Wire(Priority::Default),
            tag: Some(Tag("order-7421".into())),
            media_urls: None,
            send_at: None,
            validity_period: None,
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
    pub channel: Wire<Channel>,
    /// The send priority.
    pub priority: Wire<Priority>,
    /// The current status; it starts as `queued` (`scheduled` with a `send_at`).
    pub status: Wire<MessageStatus>,
    /// The tag given when sending, or null.
    #[oai(nullable)]
    pub tag: Option<String>,
    /// The media URLs of an MMS, or null for SMS.
    #[oai(nullable)]
    pub media_urls: Option<Vec<String>>,
    /// How many segments the carrier bills for the text.
    pub segments: SegmentCount,
    /// The encoding the text is sent in.
    pub encoding: Wire<Encoding>,
    /// `outbound` for messages you sent, `inbound` for messages to your numbers.
    pub direction: Wire<Direction>,
    /// Why the message is `failed` or `undelivered`, or null.
    #[oai(nullable)]
    pub error_code: Option<Wire<MessageErrorCode>>,
    /// A readable explanation of `error_code`, or null.
    #[oai(nullable)]
    pub error_message: Option<String>,
    /// When the message was accepted.
    pub created_at: Timestamp,
    /// When the message last changed.
    pub updated_at: Timestamp,
    /// When the carrier accepted the message (it became `sent`), or null until then and for
    /// inbound messages.
    #[oai(nullable)]
    pub sent_at: Option<Timestamp>,
    /// When the carrier's receipt said the message was delivered (it became `delivered`), or
    /// null until then.
    #[oai(nullable)]
    pub delivered_at: Option<Timestamp>,
    /// When a scheduled message is (or was) released to the queue: the send's `send_at`, or
    /// null for a message sent at once.
    #[oai(nullable)]
    pub send_at: Option<Timestamp>,
}

impl Example for MessageView {
    fn example() -> Self {
        let at = Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid");
        MessageView {
            id: Uuid::parse_str("8f3a2b1c-1c2d-4e5f-9a8b-0c1d2e3f4a5b").expect("valid"),
            from: PhoneNumber::parse("+15551112222").expect("valid"),
            to: PhoneNumber::parse("+15554443333").expect("valid"),
            text: "hello from agentmessage".into(),
            channel: Wire(Channel::Sms),
            priority: Wire(Priority::Default),
            status: Wire(MessageStatus::Queued),
            tag: Some("order-7421".into()),
            media_urls: None,
            segments: SegmentCount(1),
            encoding: Wire(Encoding::Gsm7),
            direction: Wire(Direction::Outbound),
            error_code: None,
            error_message: None,
            created_at: at,
            updated_at: at,
            sent_at: None,
            delivered_at: None,
            send_at: None,
        }
    }
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView {
            id: m.id,
            from: m.from,
            to: m.to,
            text: m.text,
            channel: Wire(m.channel),
            priority: Wire(m.priority),
            status: Wire(m.status),
            tag: m.tag,
            media_urls: (!m.media_urls.is_empty()).then_some(m.media_urls),
            segments: SegmentCount(i64::from(m.segments)),
            encoding: Wire(m.encoding),
            direction: Wire(m.direction),
            error_code: m.error_code.map(Wire),
            error_message: m.error_message,
            created_at: m.created_at,
            updated_at: m.updated_at,
            sent_at: m.delivery.sent_at.map(Timestamp::from),
            delivered_at: m.delivery.delivered_at.map(Timestamp::from),
            send_at: m.send_at.map(Timestamp::from),
        }
    }
}

impl From<SendMessageRequest> for SendMessage {
    fn from(r: SendMessageRequest) -> Self {
        SendMessage {
            from: r.from,
            to: r.to,
            text: r.text,
            priority: r.priority.0,
            tag: r.tag.map(|t| t.0),
            media_urls: r
                .media_urls
                .map(|urls| urls.0.into_iter().map(|u| u.0).collect())
                .unwrap_or_default(),
            send_at: r.send_at.map(|t| t.0),
            validity_period: r
                .validity_period
                .map(|p| u32::try_from(p.0).unwrap_or(u32::MAX)),
        }
    }
}

error_set!(
    /// What sending can answer besides 202.
    SendErrors: [BadRequest, Unauthorized, Forbidden, UnsupportedMediaType, PayloadTooLarge, IdempotencyConflict, ValidationFailed, LineTypeBlocked, IdempotencyKeyReused, RateLimited, ConsentRequired]
);
error_set!(
    /// What canceling a message can answer besides 200.
    CancelErrors: [BadRequest, Unauthorized, Forbidden, NotFound, IdempotencyConflict, MessageNotCancelable, IdempotencyKeyReused]
);
error_set!(
    /// What reading one message can answer besides 200.
    ViewErrors: [Unauthorized, Forbidden, NotFound]
);
error_set!(
    /// What listing a message's events can answer besides 200.
    EventListErrors: [BadRequest, Unauthorized, Forbidden, NotFound]
);
error_set!(
    /// What listing messages can answer besides 200.
    ListErrors: [BadRequest, Unauthorized, Forbidden]
);

/// One step in a message's life.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct EventView {
    /// The event's number in its message's history: 1, 2, 3… with no gaps.
    pub sequence: EventSequence,
    /// What the event records.
    pub kind: Wire<EventKind>,
    /// The message's status after the event.
    pub status: Wire<MessageStatus>,
    /// When the server recorded the event.
    pub occurred_at: Timestamp,
    /// The carrier's message id, or null.
    #[oai(nullable)]
    pub carrier_message_id: Option<String>,
    /// The receipt's SMPP `stat` (DELIVRD, UNDELIV, …), or the keyword; null otherwise.
    #[oai(nullable)]
    pub stat: Option<String>,
    /// The receipt's or refusal's error code from the carrier, or null.
    #[oai(nullable)]
    pub err: Option<String>,
    /// The receipt's SMPP `done date`, as the carrier sent it, or null.
    #[oai(nullable)]
    pub done_date: Option<String>,
    /// The message's `error_code` set by this event, or null.
    #[oai(nullable)]
    pub error_code: Option<Wire<MessageErrorCode>>,
    /// What the server did to the message, for a `media_converted` event (which image, from
    /// what size to what); null otherwise.
    #[oai(nullable)]
    pub note: Option<String>,
    /// The carrier connection the event came through, as the deployment names it: the one
    /// that answered a submission (`sent`, `deferred`, a refusal) or the one a receipt or an
    /// inbound message arrived on; null for the server's own events.
    #[oai(nullable)]
    pub connection: Option<String>,
}

impl Example for EventView {
    fn example() -> Self {
        EventView {
            sequence: EventSequence(4),
            kind: Wire(EventKind::Receipt),
            status: Wire(MessageStatus::Delivered),
            occurred_at: Timestamp::parse_rfc3339("2026-04-26T12:00:03Z").expect("valid"),
            carrier_message_id: Some("sim-0196f1a23b4c7d5e8f60718293a4b5c6".into()),
            stat: Some("DELIVRD".into()),
            err: Some("000".into()),
            done_date: Some("2604261200".into()),
            error_code: None,
            note: None,
            connection: Some("smsc-eu".into()),
        }
    }
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            sequence: EventSequence(e.sequence),
            kind: Wire(e.kind),
            status: Wire(e.status),
            occurred_at: e.occurred_at,
            carrier_message_id: e.carrier_message_id,
            stat: e.stat,
            err: e.err,
            done_date: e.done_date,
            error_code: e.error_code.map(Wire),
            note: e.note,
            connection: e.connection,
        }
    }
}

/// The `limit` query parameter, or 400 naming what is wrong with it.
pub(super) fn page_limit(
    limit: &Query<PageLimit>,
    errors: &mut std::collections::BTreeMap<String, String>,
) -> u64 {
    let rule = rules::PAGE_LIMIT;
    let default = rule.default.unwrap_or(rule.minimum);
    let value = match limit.value() {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if rule.allows(n) => n,
            _ => {
                errors.insert(
                    "limit".into(),
                    format!(
                        "must be a whole number from {} to {}",
                        rule.minimum,
                        rule.maximum.unwrap_or(i64::MAX)
                    ),
                );
                default
            }
        },
    };
    if limit.repeated() {
        errors.insert("limit".into(), REPEATED.into());
    }
    value as u64
}

/// Reads a page of events' parameters: after which event number, and how many.
fn parse_event_page(
    limit: &Query<PageLimit>,
    cursor: &Query<EventCursor>,
) -> Result<(i32, u64), ApiError> {
    let mut errors = std::collections::BTreeMap::new();
    let limit = page_limit(limit, &mut errors);
    let after = match cursor.value() {
        None => 0,
        Some(v) if rules::EVENT_CURSOR.check(v).is_ok() => v.parse().unwrap_or(i32::MAX),
        Some(_) => {
            errors.insert("cursor".into(), rules::EVENT_CURSOR.pattern_message.into());
            0
        }
    };
    if cursor.repeated() {
        errors.insert("cursor".into(), REPEATED.into());
    }
    if errors.is_empty() {
        Ok((after, limit))
    } else {
        Err(ApiError::with_details(ErrorCode::BadRequest, errors))
    }
}

/// What a client is told about a query parameter given twice.
const REPEATED: &str = "must be given at most once";

/// Reads the listing's query parameters, reporting every bad one at once (400).
#[allow(clippy::too_many_arguments)]
fn parse_listing(
    status: &Query<Wire<MessageStatus>>,
    direction: &Query<Wire<Direction>>,
    to: &Query<PhoneNumber>,
    from: &Query<PhoneNumber>,
    tag: &Query<Tag>,
    created_after: &Query<Timestamp>,
    created_before: &Query<Timestamp>,
    limit: &Query<PageLimit>,
    cursor: &Query<Cursor>,
) -> Result<(MessageFilter, Option<ListPosition>, u64), ApiError> {
    let repeated: Vec<&str> = [
        ("status", status.repeated()),
        ("direction", direction.repeated()),
        ("to", to.repeated()),
        ("from", from.repeated()),
        ("tag", tag.repeated()),
        ("created_after", created_after.repeated()),
        ("created_before", created_before.repeated()),
        ("limit", limit.repeated()),
        ("cursor", cursor.repeated()),
    ]
    .into_iter()
    .filter_map(|(name, repeated)| repeated.then_some(name))
    .collect();
    let mut errors = std::collections::BTreeMap::new();
    let limit = page_limit(limit, &mut errors);
    let mut bad = |name: &str, message: &str| {
        errors.insert(name.to_owned(), message.to_owned());
    };
    let mut filter = MessageFilter::default();
    if let Some(v) = status.value() {
        match MessageStatus::parse(v) {
            Some(s) => filter.status = Some(s),
            None => bad("status", &Wire::<MessageStatus>::allowed_message()),
        }
    }
    if let Some(v) = direction.value() {
        match Direction::parse(v) {
            Some(d) => filter.direction = Some(d),
            None => bad("direction", &Wire::<Direction>::allowed_message()),
        }
    }
    for (name, param, slot) in [("to", to, &mut filter.to), ("from", from, &mut filter.from)] {
        if let Some(v) = param.value() {
            match PhoneNumber::parse(v) {
                Some(n) => *slot = Some(n),
                None => bad(name, &rules::must_be_e164_in_query(name, v)),
            }
        }
    }
    if let Some(v) = tag.value() {
        match rules::TAG.check(v) {
            Ok(()) => filter.tag = Some(v.to_owned()),
            Err(e) => bad("tag", e.message()),
        }
    }
    for (name, param, slot) in [
        ("created_after", created_after, &mut filter.created_after),
        ("created_before", created_before, &mut filter.created_before),
    ] {
        if let Some(v) = param.value() {
            match Timestamp::parse_rfc3339(v) {
                Some(t) => *slot = Some(t.as_datetime()),
                None => bad(name, "must be an RFC 3339 time, like 2026-04-26T12:00:00Z"),
            }
        }
    }
    let after = match cursor.value() {
        None => None,
        Some(v) => match ListPosition::decode(v) {
            Some(p) => Some(p),
            None => {
                bad("cursor", rules::CURSOR.pattern_message);
                None
            }
        },
    };
    for name in repeated {
        errors.insert(name.to_owned(), REPEATED.to_owned());
    }
    if errors.is_empty() {
        Ok((filter, after, limit))
    } else {
        Err(ApiError::with_details(ErrorCode::BadRequest, errors))
    }
}

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
    /// A deployment whose carrier is an SMSC (SMPP) cannot carry MMS: there, a send with
    /// `media_urls` is refused with 422 `VALIDATION_FAILED` and `details.media_urls`
    /// `"mms is not supported by this deployment's carrier"`, with live and test keys alike.
    /// A text longer than one segment is sent in parts and delivered as one message.
    ///
    /// With `send_at` the message is `scheduled` until then (and may be canceled); with
    /// `validity_period` it has its own validity, past which a message not yet delivered is
    /// `undelivered` (`EXPIRED`).
    ///
    /// With an `Idempotency-Key`, a retry with the same key and the same body (compared as
    /// RFC 8785 canonical JSON) gets the first answer again — its 202, or the 422/453 its rules
    /// gave — byte for byte, with the first `X-Request-Id` and `Idempotent-Replayed: true`, and
    /// never sends twice. The same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`; while
    /// the first request still runs, 409 `IDEMPOTENCY_CONFLICT` with `Retry-After`. Answers given
    /// before the send ran (400, 401, 403, 413, 415, 422 for malformed fields) and 429/5xx are
    /// not recorded. Keys are kept 24 hours; replays spend no rate-limit token.
    #[oai(
        path = "/v1/messages",
        method = "post",
        operation_id = "messages_create"
    )]
    async fn messages_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// Makes the send safe to retry: a retry with the same key and the same body gets the
        /// first answer again (`Idempotent-Replayed: true`) and never sends twice.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: KeyHeader,
        body: JsonBody<SendMessageRequest>,
    ) -> Reply<202, Envelope<MessageView>, SendErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::MessagesCreate).await?;
            let object = body.object()?;
            let idempotency = idempotency_key.key()?;
            let send = SendMessage::from(body.read(&object)?);
            let (services, caller) = (&*services, &caller);
            idempotency::run(
                services,
                caller,
                "messages_create",
                idempotency,
                &object,
                202,
                |m: &Message| Envelope(MessageView::from(m.clone())).to_json_string(),
                |completion| async move {
                    services
                        .send_message_completing(caller, send, completion.as_ref())
                        .await
                },
            )
            .await
        };
        Reply::answer(run.await, |m| Envelope(MessageView::from(m)))
    }

    /// Cancel a scheduled message
    ///
    /// A message sent with a `send_at` is `scheduled` until then; canceled, it becomes
    /// `canceled` (an event, and a `message.canceled` webhook event) and never reaches a
    /// carrier. Only a `scheduled` message can be canceled: any other status — `queued` once its
    /// time came, `canceled` already, a message sent at once — is 409 `MESSAGE_NOT_CANCELABLE`
    /// with `details.status`. A message of another organization, or a malformed id, is 404.
    ///
    /// With an `Idempotency-Key`, a retry gets the first 200 again (`Idempotent-Replayed: true`);
    /// the same key for another message is 422 `IDEMPOTENCY_KEY_REUSED`.
    #[oai(
        path = "/v1/messages/:id/cancel",
        method = "post",
        operation_id = "messages_cancel"
    )]
    async fn messages_cancel(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The message id.
        id: Path,
        /// Makes the cancel safe to retry: a retry with the same key gets the first answer
        /// again (`Idempotent-Replayed: true`).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: KeyHeader,
    ) -> Reply<200, Envelope<MessageView>, CancelErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::MessagesCancel).await?;
            let idempotency = idempotency_key.key()?;
            let id = id.uuid().ok_or(crate::service::Error::NotFound)?;
            // The key is held to the message it canceled: the same key for another is reused.
            let object = serde_json::Map::from_iter([(
                "id".to_owned(),
                serde_json::Value::String(id.to_string()),
            )]);
            let (services, caller) = (&*services, &caller);
            idempotency::run(
                services,
                caller,
                "messages_cancel",
                idempotency,
                &object,
                200,
                |m: &Message| Envelope(MessageView::from(m.clone())).to_json_string(),
                |completion| async move {
                    services
                        .cancel_message(caller, id, completion.as_ref())
                        .await
                },
            )
            .await
        };
        Reply::answer(run.await, |m| Envelope(MessageView::from(m)))
    }

    /// List messages
    ///
    /// Your organization's messages, newest first, in pages of `limit` (default 20). Pass the
    /// page's `next_cursor` as `cursor` for the next page; a walk with cursors sees every message
    /// that existed when it began exactly once, however many arrive meanwhile. Filters combine;
    /// a bad filter value, or a parameter given twice, is 400 with `details` naming it.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/v1/messages", method = "get", operation_id = "messages_list")]
    async fn messages_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// Only messages with this status.
        status: Query<Wire<MessageStatus>>,
        /// Only `outbound` or only `inbound` messages.
        direction: Query<Wire<Direction>>,
        /// Only messages to this number.
        to: Query<PhoneNumber>,
        /// Only messages from this number.
        from: Query<PhoneNumber>,
        /// Only messages with this tag.
        tag: Query<Tag>,
        /// Only messages created after this time.
        created_after: Query<Timestamp>,
        /// Only messages created before this time.
        created_before: Query<Timestamp>,
        /// Items per page, 1 to 100 (default 20).
        limit: Query<PageLimit>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Cursor>,
    ) -> Reply<200, ListEnvelope<MessageView>, ListErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::MessagesList).await?;
            let (filter, after, limit) = parse_listing(
                &status,
                &direction,
                &to,
                &from,
                &tag,
                &created_after,
                &created_before,
                &limit,
                &cursor,
            )?;
            let page = services
                .list_messages(&caller, &filter, after, limit)
                .await?;
            Ok::<_, ApiError>(ListEnvelope {
                data: page.messages.into_iter().map(MessageView::from).collect(),
                has_more: page.next.is_some(),
                next_cursor: page.next.as_ref().map(ListPosition::encode),
            })
        };
        run.await.into()
    }

    /// List a message's events
    ///
    /// Every step of the message, oldest first, numbered 1, 2, 3…: its transitions (the first is
    /// `queued`), the submission attempt, and every carrier receipt — including duplicates and
    /// late ones, which are recorded without moving the status backward. In pages of `limit`
    /// (default 20); pass the page's `next_cursor` as `cursor` for the next. A bad parameter, or
    /// one given twice, is 400 with `details` naming it.
    #[oai(
        path = "/v1/messages/:id/events",
        method = "get",
        operation_id = "messages_events_list"
    )]
    async fn messages_events_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        /// The message id.
        id: Path,
        /// Items per page, 1 to 100 (default 20).
        limit: Query<PageLimit>,
        /// The `next_cursor` of the previous page.
        cursor: Query<EventCursor>,
    ) -> Reply<200, ListEnvelope<EventView>, EventListErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::MessagesEventsList)
                .await?;
            let (after, limit) = parse_event_page(&limit, &cursor)?;
            let id = id.uuid().ok_or(crate::service::Error::NotFound)?;
            let page = services.message_events(&caller, id, after, limit).await?;
            Ok::<_, ApiError>(ListEnvelope {
                data: page.events.into_iter().map(EventView::from).collect(),
                has_more: page.next.is_some(),
                next_cursor: page.next.map(|n| n.to_string()),
            })
        };
        run.await.into()
    }

    /// Retrieve a message
    ///
    /// The message as sending returned it, with its current status. A message of another
    /// organization, or a malformed id, is 404.
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
            let caller = key.authorize(&services, Operation::MessagesView).await?;
            let id = id.uuid().ok_or(crate::service::Error::NotFound)?;
            let message = services.message(&caller, id).await?;
            Ok::<_, ApiError>(Envelope(MessageView::from(message)))
        };
        run.await.into()
    }
}
