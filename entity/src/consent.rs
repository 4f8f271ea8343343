//! One consent record (an opt-in or an opt-out); the newest per organization and number wins,
//! and older ones stay as history.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub phone_number: String,
    /// `opted_in` or `opted_out`.
    pub status: String,
    /// `web_form`, `paper_form`, `verbal`, `keyword`, `api` or `import`.
    pub source: String,
    pub evidence: Option<String>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
