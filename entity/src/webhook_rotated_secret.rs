//! A webhook endpoint's secret rotated away, still signing beside the current one until
//! `signs_until`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_rotated_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Sealed under the operator's key, as the endpoint's own secret.
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    pub signs_until: DateTimeUtc,
    pub rotated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
