//! Consent history per organization, mode and recipient; the newest record is the current state.

use entity::consent;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{rows, Tenant};
use crate::domain::{
    consent::{Consent, ConsentSource, ConsentStatus},
    PhoneNumber, Timestamp,
};

impl Tenant {
    pub async fn insert_consent(
        &self,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<Consent, DbErr> {
        let row = consent::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(self.org_id),
            mode: Set(self.mode),
            phone_number: Set(number.as_str().to_owned()),
            status: Set(status),
            source: Set(source),
            evidence: Set(evidence.map(str::to_owned)),
            recorded_at: Set(Timestamp::now().as_datetime()),
        };
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let stored = rows::consent(
            consent::Entity::insert(row)
                .exec_with_returning(&txn)
                .await?,
        );
        self.write_consent_event(&txn, &stored).await?;
        txn.commit().await?;
        self.hooks.committed();
        Ok(stored)
    }

    /// The newest consent record, if any was ever made.
    pub async fn latest_consent(&self, number: &PhoneNumber) -> Result<Option<Consent>, DbErr> {
        Ok(consent::Entity::find()
            .filter(consent::Column::OrgId.eq(self.org_id))
            .filter(consent::Column::Mode.eq(self.mode))
            .filter(consent::Column::PhoneNumber.eq(number.as_str()))
            .order_by_desc(consent::Column::RecordedAt)
            .order_by_desc(consent::Column::Id)
            .one(&self.db)
            .await?
            .map(rows::consent))
    }
}
