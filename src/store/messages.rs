//! Messages.

use entity::message;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Store;

impl Store {
    /// Stores a new message: the send path's single write.
    pub async fn insert_message(&self, row: message::ActiveModel) -> Result<message::Model, DbErr> {
        message::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    pub async fn message(&self, org_id: Uuid, id: Uuid) -> Result<Option<message::Model>, DbErr> {
        message::Entity::find_by_id(id)
            .filter(message::Column::OrgId.eq(org_id))
            .one(&self.db)
            .await
    }
}
