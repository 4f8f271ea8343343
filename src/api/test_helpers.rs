//! `/v1/test_helpers/*`: what a test-mode integrator needs to play the other side — a
//! recipient's reply, STOP or START — without a carrier. Test keys only: a live key is answered
//! 404, as if the path did not exist.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::{types::Example, OpenApi};

use super::{
    auth::BearerKey,
    body::JsonBody,
    carrier::InboundView,
    envelope::Envelope,
    error::ApiError,
    fields::request,
    reply::{error_set, Reply},
    types::MessageText,
    ApiTags,
};
use crate::{
    domain::PhoneNumber,
    service::{inbound::Inbound, Services},
};

request! {
    /// A message a recipient sends to one of your numbers, simulated in test mode.
    #[oai(deny_unknown_fields, example)]
    pub struct TestInboundRequest {
        /// The recipient who writes.
        pub from: PhoneNumber,
        /// Your organization's number that receives it.
        pub to: PhoneNumber,
        /// The text. Keywords act as from a real recipient: STOP (and the other opt-out words)
        /// records an opt-out in test mode, START an opt-in, HELP is recorded.
        pub text: MessageText,
    }
}

impl Example for TestInboundRequest {
    fn example() -> Self {
        TestInboundRequest {
            from: PhoneNumber::parse("+15554443333").expect("valid"),
            to: PhoneNumber::parse("+15551112222").expect("valid"),
            text: MessageText::parse("STOP").expect("valid"),
        }
    }
}

error_set!(
    /// What simulating an inbound message can answer besides 201.
    TestInboundErrors: [BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, PayloadTooLarge, ValidationFailed]
);

pub struct TestHelpersApi;

#[OpenApi(tag = "ApiTags::TestHelpers")]
impl TestHelpersApi {
    /// Simulate an inbound message
    ///
    /// In test mode, a recipient writes to one of your numbers: the message is stored (direction
    /// `inbound`, status `received`) and its keyword acts on the sender's test-mode consent
    /// exactly as a carrier's delivery would in live mode. Test keys only (`am_test_…`); a live
    /// key is answered 404.
    #[oai(
        path = "/v1/test_helpers/inbound",
        method = "post",
        operation_id = "test_helpers_inbound_create"
    )]
    async fn test_helpers_inbound_create(
        &self,
        key: BearerKey,
        services: Data<&Services>,
        body: JsonBody<TestInboundRequest>,
    ) -> Reply<201, Envelope<InboundView>, TestInboundErrors> {
        let run = async {
            let caller = key
                .authorize(&services, Operation::TestHelpersInboundCreate)
                .await?;
            services.require_test_mode(&caller)?;
            let request = body.request()?;
            let inbound = Inbound {
                from: request.from,
                to: request.to,
                text: request.text.as_str().to_owned(),
                carrier_message_id: None,
                media: Vec::new(),
                carrier: None,
            };
            let (message, keyword) = services.receive_test_inbound(&caller, inbound).await?;
            Ok::<_, ApiError>(InboundView::envelope(message, keyword))
        };
        run.await.into()
    }
}
