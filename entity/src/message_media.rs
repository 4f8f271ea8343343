//! One media item of an inbound MMS, as the MMS centre delivered it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_media")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: Uuid,
    /// Its place in the message (1-based), as `/v1/messages/{id}/media/{index}` names it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    /// The Content-Type it was delivered with (its essence).
    #[sea_orm(column_type = "Text")]
    pub content_type: String,
    /// Its Content-ID in the delivery, if it had one.
    #[sea_orm(column_type = "Text", nullable)]
    pub content_id: Option<String>,
    #[sea_orm(column_type = "Blob")]
    pub bytes: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
