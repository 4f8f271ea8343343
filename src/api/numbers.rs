//! `/v1/numbers`: the phone numbers your organization owns and can send from.

use super::operations::Operation;
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{
    auth::BearerKey,
    envelope::ListEnvelope,
    error::ApiError,
    reply::{error_set, Reply},
    ApiTags,
};
use crate::{
    domain::{organization::OwnedNumber, PhoneNumber, Timestamp},
    service::Services,
};

/// A number your organization owns.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct NumberView {
    /// The number's id.
    pub id: Uuid,
    /// The number, usable as `from` when sending.
    pub phone_number: PhoneNumber,
    /// When your organization got the number.
    pub created_at: Timestamp,
}

impl Example for NumberView {
    fn example() -> Self {
        NumberView {
            id: Uuid::parse_str("0196f1a2-3b4c-7d5e-8f60-718293a4b5c6").expect("valid"),
            phone_number: PhoneNumber::parse("+15551112222").expect("valid"),
            created_at: Timestamp::parse_rfc3339("2026-04-26T12:00:00Z").expect("valid"),
        }
    }
}

impl From<OwnedNumber> for NumberView {
    fn from(n: OwnedNumber) -> Self {
        NumberView {
            id: n.id,
            phone_number: n.phone_number,
            created_at: n.created_at,
        }
    }
}

error_set!(
    /// Listing numbers.
    NumbersListErrors: [Unauthorized, Forbidden]
);

pub struct NumbersApi;

#[OpenApi(tag = "ApiTags::Numbers")]
impl NumbersApi {
    /// List your numbers
    ///
    /// Every number your organization owns, in one page (`has_more` is false), ordered by number.
    #[oai(path = "/v1/numbers", method = "get", operation_id = "numbers_list")]
    async fn numbers_list(
        &self,
        key: BearerKey,
        services: Data<&Services>,
    ) -> Reply<200, ListEnvelope<NumberView>, NumbersListErrors> {
        let run = async {
            let caller = key.authorize(&services, Operation::NumbersList).await?;
            let numbers = services.phone_numbers(&caller).await?;
            Ok::<_, ApiError>(ListEnvelope::complete(
                numbers.into_iter().map(NumberView::from).collect(),
            ))
        };
        run.await.into()
    }
}
