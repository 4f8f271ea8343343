//! A message, outbound or inbound, with its current status.

use sea_orm::entity::prelude::*;

use crate::values::{
    Channel, Direction, Encoding, KeyMode, MessageErrorCode, MessageStatus, Priority,
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// The mode of the key that made the row.
    pub mode: KeyMode,
    pub direction: Direction,
    pub from_number: String,
    pub to_number: String,
    pub body: String,
    pub channel: Channel,
    pub priority: Priority,
    pub status: MessageStatus,
    pub tag: Option<String>,
    /// JSON array of URLs, present only for MMS.
    pub media_urls: Option<String>,
    pub segments: i32,
    pub encoding: Encoding,
    pub error_code: Option<MessageErrorCode>,
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
    /// Set with the change to `delivered`.
    pub delivered_at: Option<DateTimeUtc>,
    /// A readable reason for `failed` or `undelivered`.
    pub error_message: Option<String>,
    /// How many events the message has; the next one is numbered one more.
    pub event_count: i32,
    /// Not claimed again before this time (the carrier deferred one of its parts).
    pub retry_at: Option<DateTimeUtc>,
    /// When a `scheduled` message becomes `queued` (the send's `send_at`).
    pub send_at: Option<DateTimeUtc>,
    /// When the message's validity runs out (its own `validity_period`, or the deployment's
    /// counted from `send_at`); null: the deployment's validity counted from creation.
    pub valid_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
