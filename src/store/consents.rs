//! Consent history per organization and recipient; the newest record is the current state.

use entity::consent;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Store;
use crate::domain::{
    consent::{ConsentSource, ConsentStatus},
    PhoneNumber, Timestamp,
};

impl Store {
    pub async fn insert_consent(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<consent::Model, DbErr> {
        let row = consent::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            phone_number: Set(number.as_str().to_owned()),
            status: Set(status.as_str().to_owned()),
            source: Set(source.as_str().to_owned()),
            evidence: Set(evidence.map(str::to_owned)),
            recorded_at: Set(Timestamp::now().as_datetime()),
        };
        consent::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    /// The newest consent record, if any was ever made.
    pub async fn latest_consent(
        &self,
        org_id: Uuid,
        number: &PhoneNumber,
    ) -> Result<Option<consent::Model>, DbErr> {
        consent::Entity::find()
            .filter(consent::Column::OrgId.eq(org_id))
            .filter(consent::Column::PhoneNumber.eq(number.as_str()))
            .order_by_desc(consent::Column::RecordedAt)
            .order_by_desc(consent::Column::Id)
            .one(&self.db)
            .await
    }
}
