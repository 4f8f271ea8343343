//! `/v1/carrier/*`: the carrier's callbacks — delivery receipts and inbound messages —
//! authenticated with the carrier's own secret.

use poem::web::Data;
use poem_openapi::{types::Example, Object, OpenApi};

use super::{
    auth::CarrierKey,
    body::JsonBody,
    envelope::Envelope,
    error::ApiError,
    fields::request,
    messages::MessageView,
    reply::{error_set, Reply},
    types::{CarrierValue, MessageText, Wire},
    ApiTags,
};
use crate::{
    domain::{message::Message, PhoneNumber},
    service::{
        inbound::Inbound,
        receipts::{Receipt, ReceiptOutcome},
        Services,
    },
};

request! {
    /// A delivery receipt, in the SMPP delivery-receipt vocabulary.
    #[oai(deny_unknown_fields, example)]
    pub struct ReceiptRequest {
        /// The carrier's id for the message (what the submission returned).
        pub carrier_message_id: CarrierValue,
        /// The final or interim state: DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD (final), or
        /// ACCEPTD, ENROUTE, UNKNOWN (recorded, no status change). Other values are recorded too.
        pub stat: CarrierValue,
        /// The carrier's error code (`err`), if any.
        #[oai(skip_serializing_if_is_none)]
        pub err: Option<CarrierValue>,
        /// The receipt's `done date`, as the carrier writes it (SMPP: `YYMMDDhhmm`).
        #[oai(skip_serializing_if_is_none)]
        pub done_date: Option<CarrierValue>,
    }
}

impl Example for ReceiptRequest {
    fn example() -> Self {
        ReceiptRequest {
            carrier_message_id: CarrierValue("sim-0196f1a23b4c7d5e8f60718293a4b5c6".into()),
            stat: CarrierValue("DELIVRD".into()),
            err: Some(CarrierValue("000".into())),
            done_date: Some(CarrierValue("2604261200".into())),
        }
    }
}

/// What became of a receipt.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct ReceiptView {
    /// The carrier id the receipt named.
    pub carrier_message_id: String,
    /// `true` when it was applied to a known message; `false` when no message has that carrier
    /// id yet (it is kept, and applied once the message's submission is recorded).
    pub matched: bool,
}

impl Example for ReceiptView {
    fn example() -> Self {
        ReceiptView {
            carrier_message_id: "sim-0196f1a23b4c7d5e8f60718293a4b5c6".into(),
            matched: true,
        }
    }
}

request! {
    /// A message a recipient sent to one of your numbers.
    #[oai(deny_unknown_fields, example)]
    pub struct InboundRequest {
        /// The sender.
        pub from: PhoneNumber,
        /// The receiving number; an organization must own it.
        pub to: PhoneNumber,
        /// The text, 1 to 1600 characters. STOP, STOP ALL, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
        /// REVOKE, OPT OUT, OPTOUT, HALT and REMOVE opt the sender out, alone, repeated or in a
        /// message of at most five words; START and UNSTOP opt them back in; HELP is recorded (case,
        /// punctuation, symbols, character width and invisible characters are ignored).
        pub text: MessageText,
        /// The carrier's id for the message; a repeated delivery (same id, sender, receiving number
        /// and text) is stored once.
        #[oai(skip_serializing_if_is_none)]
        pub carrier_message_id: Option<CarrierValue>,
    }
}

impl Example for InboundRequest {
    fn example() -> Self {
        InboundRequest {
            from: PhoneNumber::parse("+15554443333").expect("valid"),
            to: PhoneNumber::parse("+15551112222").expect("valid"),
            text: MessageText::parse("STOP").expect("valid"),
            carrier_message_id: Some(CarrierValue("sim-in-0196f1a23b4c".into())),
        }
    }
}

/// The stored inbound message and the keyword it was, if any.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct InboundView {
    /// The inbound message (direction `inbound`, status `received`).
    pub message: MessageView,
    /// The keyword the text was (STOP, START, HELP, …), or null.
    #[oai(nullable)]
    pub keyword: Option<String>,
}

impl Example for InboundView {
    fn example() -> Self {
        let mut message = MessageView::example();
        message.from = PhoneNumber::parse("+15554443333").expect("valid");
        message.to = PhoneNumber::parse("+15551112222").expect("valid");
        message.text = "STOP".into();
        message.status = Wire(crate::domain::message::MessageStatus::Received);
        message.direction = Wire(crate::domain::message::Direction::Inbound);
        message.tag = None;
        InboundView {
            message,
            keyword: Some("STOP".into()),
        }
    }
}

error_set!(
    /// What the carrier callbacks can answer besides success.
    CarrierErrors: [BadRequest, Unauthorized, UnsupportedMediaType, PayloadTooLarge, ValidationFailed]
);

/// Reads an inbound message (`from`, `to`, `text`, and the carrier's id when `with_carrier_id`),
/// reporting every failing field at once.
impl From<InboundRequest> for Inbound {
    fn from(r: InboundRequest) -> Self {
        Inbound {
            from: r.from,
            to: r.to,
            text: r.text.as_str().to_owned(),
            carrier_message_id: r.carrier_message_id.map(|id| id.0),
            media: Vec::new(),
            carrier: None,
        }
    }
}

impl InboundView {
    /// The stored inbound message and its keyword, in the success envelope.
    pub(super) fn envelope(message: Message, keyword: Option<&str>) -> Envelope<InboundView> {
        Envelope(InboundView {
            message: MessageView::from(message),
            keyword: keyword.map(str::to_owned),
        })
    }
}

pub struct CarrierApi;

#[OpenApi(tag = "ApiTags::Carrier")]
impl CarrierApi {
    /// Deliver a receipt
    ///
    /// The carrier reports what became of a message. Every receipt is recorded — unknown ids,
    /// duplicates and late ones too — and answered 200, so a carrier never retries forever. A
    /// receipt for an id no message has yet is kept and applied when the submission is
    /// recorded. DELIVRD makes a `sent` message `delivered`; UNDELIV, EXPIRED, DELETED and REJECTD
    /// make it `undelivered`; other values change nothing. Terminal statuses never change.
    ///
    /// Authenticated with the carrier's secret, not an organization's key.
    #[oai(
        path = "/v1/carrier/receipts",
        method = "post",
        operation_id = "carrier_receipts_create"
    )]
    async fn carrier_receipts_create(
        &self,
        key: CarrierKey,
        services: Data<&Services>,
        body: JsonBody<ReceiptRequest>,
    ) -> Reply<200, Envelope<ReceiptView>, CarrierErrors> {
        let run = async {
            key.authorize(&services)?;
            let request = body.request()?;
            let id = request.carrier_message_id.0;
            let receipt = Receipt {
                carrier_message_id: id.clone(),
                stat: request.stat.0,
                err: request.err.map(|v| v.0),
                done_date: request.done_date.map(|v| v.0),
            };
            let carrier = services.settings.carrier_name.clone();
            let outcome = services.record_receipt(&carrier, receipt).await?;
            Ok::<_, ApiError>(Envelope(ReceiptView {
                carrier_message_id: id,
                matched: outcome == ReceiptOutcome::Matched,
            }))
        };
        run.await.into()
    }

    /// Deliver an inbound message
    ///
    /// The carrier hands over a message a recipient sent to a number an organization owns. It is
    /// stored with direction `inbound` and status `received`. Keywords act on the sender's
    /// consent for that organization: STOP, STOP ALL, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
    /// REVOKE, OPT OUT, OPTOUT, HALT and REMOVE record an opt-out (source `keyword`) when the
    /// text is one of them (alone or repeated) or a message of at most five words containing
    /// one, and messages still queued to the sender fail with `CONSENT_REVOKED`; a longer
    /// message containing one is recorded with a `keyword_mentioned` event, not acted on. START
    /// and UNSTOP record an opt-in; HELP is recorded. The text is matched after Unicode NFKC,
    /// with punctuation, symbols, marks and invisible characters removed and spaces collapsed,
    /// in any case (`Stop.`, `STOP🙂`, `ＳＴＯＰ` match).
    ///
    /// Authenticated with the carrier's secret, not an organization's key.
    #[oai(
        path = "/v1/carrier/inbound",
        method = "post",
        operation_id = "carrier_inbound_create"
    )]
    async fn carrier_inbound_create(
        &self,
        key: CarrierKey,
        services: Data<&Services>,
        body: JsonBody<InboundRequest>,
    ) -> Reply<201, Envelope<InboundView>, CarrierErrors> {
        let run = async {
            key.authorize(&services)?;
            let inbound = Inbound::from(body.request()?);
            let (message, keyword) = services.receive_inbound(inbound).await?;
            Ok::<_, ApiError>(InboundView::envelope(message, keyword))
        };
        run.await.into()
    }
}
