//! API keys: looked up by digest, made, listed and revoked per organization and mode.

use entity::{api_key, organization};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

use super::{rows, System, Tenant};
use crate::domain::{
    organization::{ApiKey, Organization},
    ScopeSet, Timestamp,
};

/// What a new key row holds besides the tenant.
pub struct NewApiKey<'a> {
    pub name: Option<&'a str>,
    pub digest: &'a str,
    pub display_prefix: &'a str,
    pub scopes: &'a ScopeSet,
}

impl Tenant {
    /// Stores a key of this organization in this handle's mode; with a `limit`, only while the
    /// tenant holds fewer unrevoked keys than that (checked in the transaction that writes).
    pub async fn insert_api_key(
        &self,
        key: NewApiKey<'_>,
        limit: Option<u64>,
    ) -> Result<Result<ApiKey, super::AtLimit>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        if let Some(limit) = limit {
            super::one_at_a_time(&txn, &format!("api-keys/{}/{}", self.org_id, self.mode)).await?;
            let held = self
                .keys()
                .filter(api_key::Column::RevokedAt.is_null())
                .count(&txn)
                .await?;
            if held >= limit {
                return Ok(Err(super::AtLimit(limit)));
            }
        }
        let row = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(self.org_id),
            name: Set(key.name.map(str::to_owned)),
            digest: Set(key.digest.to_owned()),
            display_prefix: Set(key.display_prefix.to_owned()),
            scopes: Set(key.scopes.to_stored()),
            mode: Set(self.mode),
            created_at: Set(Timestamp::now().as_datetime()),
            revoked_at: Set(None),
            last_used_at: Set(None),
        };
        let key = rows::api_key(
            api_key::Entity::insert(row)
                .exec_with_returning(&txn)
                .await?,
        )?;
        txn.commit().await?;
        Ok(Ok(key))
    }

    fn keys(&self) -> sea_orm::Select<api_key::Entity> {
        api_key::Entity::find()
            .filter(api_key::Column::OrgId.eq(self.org_id))
            .filter(api_key::Column::Mode.eq(self.mode))
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, DbErr> {
        self.keys()
            .order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(rows::api_key)
            .collect()
    }

    /// One of this tenant's keys, revoked or not.
    pub async fn api_key(&self, id: Uuid) -> Result<Option<ApiKey>, DbErr> {
        self.keys()
            .filter(api_key::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .map(rows::api_key)
            .transpose()
    }

    /// Marks one of this tenant's keys revoked (once: a second revocation keeps the first
    /// time). `None` when there is no such key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let revoked = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                Expr::value(Timestamp::now().as_datetime()),
            )
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::OrgId.eq(self.org_id))
            .filter(api_key::Column::Mode.eq(self.mode))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if revoked.rows_affected > 0 {
            raise_key_revision(&txn).await?;
        }
        txn.commit().await?;
        self.keys()
            .filter(api_key::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .map(rows::api_key)
            .transpose()
    }
}

/// Raises the key revision (in the revocation's transaction): every process's key cache is
/// dropped when it sees the revision move.
pub(super) async fn raise_key_revision(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("UPDATE key_revision SET revision = revision + 1 WHERE id = 1")
        .await?;
    Ok(())
}

impl System {
    /// The current key revision (see [`raise_key_revision`]).
    pub async fn key_revision(&self) -> Result<i64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT revision FROM key_revision WHERE id = 1",
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the key revision".into()))?;
        row.try_get("", "revision")
    }

    /// The key with this digest and its organization, revoked or not.
    pub async fn api_key_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<(ApiKey, Organization)>, DbErr> {
        let found = api_key::Entity::find()
            .filter(api_key::Column::Digest.eq(digest))
            .find_also_related(organization::Entity)
            .one(&self.db)
            .await?;
        match found {
            Some((key, Some(org))) => Ok(Some((rows::api_key(key)?, rows::organization(org)?))),
            _ => Ok(None),
        }
    }

    /// Revokes any organization's key (the admin command line). `None` when there is no such key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let revoked = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                Expr::value(Timestamp::now().as_datetime()),
            )
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if revoked.rows_affected > 0 {
            raise_key_revision(&txn).await?;
        }
        txn.commit().await?;
        api_key::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(rows::api_key)
            .transpose()
    }

    pub async fn touch_api_key(&self, id: Uuid, at: Timestamp) -> Result<(), DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(at.as_datetime()))
            .filter(api_key::Column::Id.eq(id))
            .exec(&w)
            .await?;
        Ok(())
    }
}
