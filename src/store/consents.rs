//! Consent history per organization, mode and recipient; the newest record is the current state,
//! and the newest keyword record decides the lock.

use entity::consent;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::{rows, Tenant};
use crate::domain::{
    consent::{ConsentSource, ConsentState, ConsentStatus},
    PhoneNumber, Timestamp,
};

impl Tenant {
    /// Records a keyword's consent change (the recipient's own STOP or START), or a set-up's.
    /// API changes go through [`Tenant::record_api_consent`], which checks the lock.
    pub async fn insert_consent(
        &self,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<ConsentState, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        self.serialize_recipient(&txn, number).await?;
        let before = self.state_on(&txn, number).await?;
        let after = self
            .insert_consent_on(&txn, number, status, source, evidence, before)
            .await?;
        txn.commit().await?;
        self.hooks.committed();
        Ok(after)
    }

    /// Records an opt-in or opt-out made through the API, after reading the recipient's state in
    /// the same transaction: `None`, with nothing written, when an opt-in meets the recipient's
    /// own keyword opt-out (the lock).
    pub async fn record_api_consent(
        &self,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
    ) -> Result<Option<ConsentState>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        self.serialize_recipient(&txn, number).await?;
        let before = self.state_on(&txn, number).await?;
        if status == ConsentStatus::OptedIn && !before.api_may_opt_in() {
            return Ok(None);
        }
        let after = self
            .insert_consent_on(&txn, number, status, source, evidence, before)
            .await?;
        txn.commit().await?;
        self.hooks.committed();
        Ok(Some(after))
    }

    /// The recipient's consent state: the newest record and the newest keyword record.
    pub async fn consent_state(&self, number: &PhoneNumber) -> Result<ConsentState, DbErr> {
        self.state_on(&self.db, number).await
    }

    /// Consent writes for one recipient take turns, so a lock check and the write after it
    /// cannot interleave with another write.
    pub(super) async fn serialize_recipient(
        &self,
        txn: &DatabaseTransaction,
        number: &PhoneNumber,
    ) -> Result<(), DbErr> {
        let key = format!(
            "consent:{}:{}:{}",
            self.org_id,
            self.mode.as_str(),
            number.as_str()
        );
        super::one_at_a_time(txn, &key).await
    }

    /// Stores a record and its event inside `txn`; the state after it.
    pub(super) async fn insert_consent_on(
        &self,
        txn: &DatabaseTransaction,
        number: &PhoneNumber,
        status: ConsentStatus,
        source: ConsentSource,
        evidence: Option<&str>,
        before: ConsentState,
    ) -> Result<ConsentState, DbErr> {
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
        let stored = rows::consent(
            consent::Entity::insert(row)
                .exec_with_returning(txn)
                .await?,
        );
        let at = stored.recorded_at.as_datetime();
        let after = ConsentState {
            keyword: if source == ConsentSource::Keyword {
                Some(stored.clone())
            } else {
                before.keyword
            },
            latest: Some(stored),
        };
        self.write_consent_event(txn, &after, at).await?;
        Ok(after)
    }

    pub(super) async fn state_on(
        &self,
        conn: &impl ConnectionTrait,
        number: &PhoneNumber,
    ) -> Result<ConsentState, DbErr> {
        let newest = || {
            consent::Entity::find()
                .filter(consent::Column::OrgId.eq(self.org_id))
                .filter(consent::Column::Mode.eq(self.mode))
                .filter(consent::Column::PhoneNumber.eq(number.as_str()))
                .order_by_desc(consent::Column::RecordedAt)
                .order_by_desc(consent::Column::Id)
        };
        let latest = newest().one(conn).await?;
        let keyword = match &latest {
            Some(l) if l.source == ConsentSource::Keyword => Some(l.clone()),
            _ => {
                newest()
                    .filter(consent::Column::Source.eq(ConsentSource::Keyword))
                    .one(conn)
                    .await?
            }
        };
        Ok(ConsentState {
            latest: latest.map(rows::consent),
            keyword: keyword.map(rows::consent),
        })
    }
}
