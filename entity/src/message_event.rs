//! One step of a message's life, in the server's own order.

use sea_orm::entity::prelude::*;

use crate::values::{EventKind, MessageErrorCode, MessageStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_events")]
pub struct Model {
    /// The event's place in the server's order of all events (internal).
    #[sea_orm(primary_key)]
    pub sequence: i64,
    /// The event's place in its message's history: 1, 2, 3…
    pub number: i32,
    pub message_id: Uuid,
    pub org_id: Uuid,
    pub kind: EventKind,
    /// The message's status after the event.
    pub status: MessageStatus,
    pub occurred_at: DateTimeUtc,
    pub carrier_message_id: Option<String>,
    pub stat: Option<String>,
    /// The SMPP `err` field.
    #[sea_orm(column_name = "err")]
    pub carrier_err: Option<String>,
    pub done_date: Option<String>,
    pub error_code: Option<MessageErrorCode>,
    /// What the server did to the message, when the event says (a media conversion).
    pub note: Option<String>,
    /// The carrier connection the event came through (a carrier's answer, a receipt).
    pub connection: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
