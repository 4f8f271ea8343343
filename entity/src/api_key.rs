//! An API key: stored as a SHA-256 digest and a short display prefix, never in plaintext.

use sea_orm::entity::prelude::*;

use crate::values::KeyMode;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: Option<String>,
    /// Hex SHA-256 digest of the whole key.
    #[sea_orm(unique)]
    pub digest: String,
    /// The first characters of the key, safe to show (`am_live_AbCd`).
    pub display_prefix: String,
    /// Granted scopes, separated by single spaces.
    pub scopes: String,
    pub mode: KeyMode,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrgId",
        to = "super::organization::Column::Id"
    )]
    Organization,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
