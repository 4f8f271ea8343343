//! Number lookups per organization and mode.

use entity::lookup;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{rows, Tenant};
use crate::domain::{
    idempotency::Completion,
    lookup::{LineType, Lookup},
    PhoneNumber, Timestamp,
};

impl Tenant {
    pub async fn insert_lookup(
        &self,
        number: &PhoneNumber,
        line_type: LineType,
    ) -> Result<Lookup, DbErr> {
        self.insert_lookup_completing(number, line_type, None).await
    }

    /// [`Tenant::insert_lookup`], recording `completion` (an `Idempotency-Key`'s outcome) in the
    /// same transaction.
    pub async fn insert_lookup_completing(
        &self,
        number: &PhoneNumber,
        line_type: LineType,
        completion: Option<&Completion<Lookup>>,
    ) -> Result<Lookup, DbErr> {
        let row = lookup::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(self.org_id),
            mode: Set(self.mode),
            phone_number: Set(number.as_str().to_owned()),
            line_type: Set(line_type),
            looked_up_at: Set(Timestamp::now().as_datetime()),
        };
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let stored = rows::lookup(
            lookup::Entity::insert(row)
                .exec_with_returning(&txn)
                .await?,
        );
        if let Some(completion) = completion {
            let body = (completion.render)(&stored);
            self.complete_idempotent(&txn, &completion.hold, completion.status, &body)
                .await?;
        }
        txn.commit().await?;
        Ok(stored)
    }

    /// The newest lookup of `number`.
    pub async fn latest_lookup(&self, number: &PhoneNumber) -> Result<Option<Lookup>, DbErr> {
        Ok(lookup::Entity::find()
            .filter(lookup::Column::OrgId.eq(self.org_id))
            .filter(lookup::Column::Mode.eq(self.mode))
            .filter(lookup::Column::PhoneNumber.eq(number.as_str()))
            .order_by_desc(lookup::Column::LookedUpAt)
            .order_by_desc(lookup::Column::Id)
            .one(&self.db)
            .await?
            .map(rows::lookup))
    }
}
