//! One consent record (an opt-in or an opt-out); the newest per organization and number wins,
//! and older ones stay as history.

use sea_orm::entity::prelude::*;

use crate::values::{ConsentSource, ConsentStatus, KeyMode};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// The mode of the key that made the row.
    pub mode: KeyMode,
    pub phone_number: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub evidence: Option<String>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
