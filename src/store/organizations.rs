//! Organizations.

use entity::organization;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{rows, System};
use crate::domain::{organization::Organization, Timestamp};

impl System {
    pub async fn create_organization(
        &self,
        name: &str,
        rate_per_second: u32,
        burst: u32,
    ) -> Result<Organization, DbErr> {
        let row = organization::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.to_owned()),
            rate_per_second: Set(i32::try_from(rate_per_second).unwrap_or(i32::MAX)),
            burst: Set(i32::try_from(burst).unwrap_or(i32::MAX)),
            created_at: Set(Timestamp::now().as_datetime()),
        };
        let stored = organization::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await?;
        rows::organization(stored)
    }

    pub async fn organization(&self, id: Uuid) -> Result<Option<Organization>, DbErr> {
        organization::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(rows::organization)
            .transpose()
    }

    pub async fn organization_by_name(&self, name: &str) -> Result<Option<Organization>, DbErr> {
        organization::Entity::find()
            .filter(organization::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(rows::organization)
            .transpose()
    }
}
