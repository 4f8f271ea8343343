//! One part of an outbound message as submitted to the carrier (SMPP: one `submit_sm`).

use sea_orm::entity::prelude::*;

use crate::values::PartState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_parts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub message_id: Uuid,
    /// From 1; unique together with `message_id`.
    pub part_number: i32,
    pub total_parts: i32,
    /// The concatenation header's reference, the same on every part and every retry.
    pub reference: i32,
    pub state: PartState,
    pub carrier: Option<String>,
    pub carrier_message_id: Option<String>,
    /// `carrier_message_id` as receipts look it up: lower case, no leading zeros.
    pub carrier_key: Option<String>,
    pub submitted_at: Option<DateTimeUtc>,
    /// The final receipt's `stat` (`DELIVRD`, `UNDELIV`, …), once one arrived.
    pub receipt_stat: Option<String>,
    /// When a deferred part may be submitted again.
    pub retry_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
