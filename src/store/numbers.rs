//! Phone numbers owned by organizations.

use entity::phone_number;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::Store;
use crate::domain::{PhoneNumber, Timestamp};

impl Store {
    /// Gives `number` to the organization; a unique violation when another organization owns it.
    pub async fn insert_phone_number(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<phone_number::Model, DbErr> {
        let row = phone_number::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            phone_number: Set(number.as_str().to_owned()),
            created_at: Set(Timestamp::now().as_datetime()),
        };
        phone_number::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    pub async fn phone_number(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<phone_number::Model>, DbErr> {
        phone_number::Entity::find()
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .one(&self.db)
            .await
    }

    pub async fn phone_numbers(&self, org_id: Uuid) -> Result<Vec<phone_number::Model>, DbErr> {
        phone_number::Entity::find()
            .filter(phone_number::Column::OrgId.eq(org_id))
            .order_by_asc(phone_number::Column::PhoneNumber)
            .all(&self.db)
            .await
    }

    pub async fn owns_number(&self, org_id: Uuid, number: &PhoneNumber) -> Result<bool, DbErr> {
        let count = phone_number::Entity::find()
            .filter(phone_number::Column::OrgId.eq(org_id))
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .count(&self.db)
            .await?;
        Ok(count > 0)
    }
}
