//! Phone numbers owned by organizations. Both key modes share an organization's numbers.

use entity::phone_number;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::{rows, System, Tenant};
use crate::domain::{organization::OwnedNumber, PhoneNumber, Timestamp};

impl Tenant {
    pub async fn phone_numbers(&self) -> Result<Vec<OwnedNumber>, DbErr> {
        Ok(phone_number::Entity::find()
            .filter(phone_number::Column::OrgId.eq(self.org_id))
            .order_by_asc(phone_number::Column::PhoneNumber)
            .all(&self.db)
            .await?
            .into_iter()
            .map(rows::owned_number)
            .collect())
    }

    pub async fn owns_number(&self, number: &PhoneNumber) -> Result<bool, DbErr> {
        let count = phone_number::Entity::find()
            .filter(phone_number::Column::OrgId.eq(self.org_id))
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .count(&self.db)
            .await?;
        Ok(count > 0)
    }
}

impl System {
    /// Gives `number` to an organization; a unique violation when another organization owns it.
    pub async fn insert_phone_number(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<OwnedNumber, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let row = phone_number::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            phone_number: Set(number.as_str().to_owned()),
            created_at: Set(Timestamp::now().as_datetime()),
        };
        let stored = phone_number::Entity::insert(row)
            .exec_with_returning(&w)
            .await?;
        Ok(rows::owned_number(stored))
    }

    /// Takes `number` away from organization `org_id`: whether it owned it. Messages already
    /// sent from it keep it; sends from it are refused from now on (422 on `from`).
    pub async fn remove_phone_number(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<bool, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let removed = phone_number::Entity::delete_many()
            .filter(phone_number::Column::OrgId.eq(org_id))
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .exec(&w)
            .await?;
        Ok(removed.rows_affected > 0)
    }

    /// Who owns `number`, if anyone.
    pub async fn phone_number(&self, number: &PhoneNumber) -> Result<Option<OwnedNumber>, DbErr> {
        Ok(phone_number::Entity::find()
            .filter(phone_number::Column::PhoneNumber.eq(number.as_str()))
            .one(&self.db)
            .await?
            .map(rows::owned_number))
    }
}
