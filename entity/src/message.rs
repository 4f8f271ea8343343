//! A message, outbound or inbound, with its current status.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    pub body: String,
    /// `sms` or `mms`.
    pub channel: String,
    /// `default` or `high`.
    pub priority: String,
    pub status: String,
    pub tag: Option<String>,
    /// JSON array of URLs, present only for MMS.
    pub media_urls: Option<String>,
    pub segments: i32,
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
    pub error_code: Option<String>,
    pub carrier: Option<String>,
    pub carrier_message_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The worker holding the message while it is `sending`.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Set before the carrier is called: once set, the message is never submitted again.
    pub attempted_at: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    /// A readable reason for `failed` or `undelivered`.
    pub error_message: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
