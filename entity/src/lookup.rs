//! The result of one number lookup made by an organization.

use sea_orm::entity::prelude::*;

use crate::values::{KeyMode, LineType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lookups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// The mode of the key that made the row.
    pub mode: KeyMode,
    pub phone_number: String,
    pub line_type: LineType,
    pub looked_up_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
