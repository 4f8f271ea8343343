//! One part of an inbound concatenated message, kept until its message is whole.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_parts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The carrier connection it came from.
    #[sea_orm(column_type = "Text")]
    pub carrier: String,
    #[sea_orm(column_type = "Text")]
    pub sender: String,
    #[sea_orm(column_type = "Text")]
    pub recipient: String,
    /// The concatenation reference, the number of parts and this part's number (1-based).
    pub reference: i32,
    pub total: i32,
    pub sequence: i32,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
