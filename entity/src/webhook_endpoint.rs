//! A URL an organization registered to receive webhook events of one key mode.

use sea_orm::entity::prelude::*;

use crate::values::KeyMode;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub mode: KeyMode,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// The subscribed event types, space-separated.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    pub enabled: bool,
    /// Why the server disabled the endpoint (410 Gone), or none.
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    /// The signing secret, sealed under the operator's key (`v1.{key id}.{…}`).
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
