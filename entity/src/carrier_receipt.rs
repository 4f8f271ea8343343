//! A delivery receipt as the carrier sent it; `message_id` is set once it is matched.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carrier_receipts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub carrier: String,
    pub carrier_message_id: String,
    pub stat: String,
    /// The SMPP `err` field.
    #[sea_orm(column_name = "err")]
    pub carrier_err: Option<String>,
    pub done_date: Option<String>,
    pub received_at: DateTimeUtc,
    pub message_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
