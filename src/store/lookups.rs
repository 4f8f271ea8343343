//! Number lookups per organization.

use entity::lookup;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Store;
use crate::domain::{lookup::LineType, PhoneNumber, Timestamp};

impl Store {
    pub async fn insert_lookup(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
        line_type: LineType,
    ) -> Result<lookup::Model, DbErr> {
        let row = lookup::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            phone_number: Set(number.as_str().to_owned()),
            line_type: Set(line_type.as_str().to_owned()),
            looked_up_at: Set(Timestamp::now().as_datetime()),
        };
        lookup::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    /// The organization's newest lookup of `number`.
    pub async fn latest_lookup(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<Option<lookup::Model>, DbErr> {
        lookup::Entity::find()
            .filter(lookup::Column::OrgId.eq(org_id))
            .filter(lookup::Column::PhoneNumber.eq(number.as_str()))
            .order_by_desc(lookup::Column::LookedUpAt)
            .order_by_desc(lookup::Column::Id)
            .one(&self.db)
            .await
    }
}
