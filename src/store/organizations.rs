//! Organizations.

use entity::organization;
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
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
        let w = super::writer(&self.db, &self.gate).await?;
        let row = organization::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.to_owned()),
            rate_per_second: Set(i32::try_from(rate_per_second).unwrap_or(i32::MAX)),
            burst: Set(i32::try_from(burst).unwrap_or(i32::MAX)),
            created_at: Set(Timestamp::now().as_datetime()),
        };
        let stored = organization::Entity::insert(row)
            .exec_with_returning(&w)
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

    /// Every organization, oldest first (the admin command line).
    pub async fn organizations(&self) -> Result<Vec<Organization>, DbErr> {
        organization::Entity::find()
            .order_by_asc(organization::Column::CreatedAt)
            .order_by_asc(organization::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(rows::organization)
            .collect()
    }

    /// Sets an organization's rate limit; `None` when there is no such organization. The key
    /// revision moves with it, so every process's key cache (which holds the limit) reloads.
    pub async fn set_rate_limit(
        &self,
        id: Uuid,
        rate_per_second: u32,
        burst: u32,
    ) -> Result<Option<Organization>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let changed = organization::Entity::update_many()
            .col_expr(
                organization::Column::RatePerSecond,
                Expr::value(i32::try_from(rate_per_second).unwrap_or(i32::MAX)),
            )
            .col_expr(
                organization::Column::Burst,
                Expr::value(i32::try_from(burst).unwrap_or(i32::MAX)),
            )
            .filter(organization::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if changed.rows_affected > 0 {
            super::api_keys::raise_key_revision(&txn).await?;
        }
        txn.commit().await?;
        self.organization(id).await
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

impl super::System {
    /// Takes up to `want` whole tokens from the organization's shared bucket (PostgreSQL),
    /// refilled at `rate` a second up to `burst` since it was last touched: the tokens granted,
    /// and the tokens that were available (for the wait when none was).
    pub async fn lease_rate_tokens(
        &self,
        org_id: uuid::Uuid,
        mode: crate::domain::organization::KeyMode,
        rate: f64,
        burst: f64,
        want: f64,
    ) -> Result<(f64, f64), sea_orm::DbErr> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = self.db.get_database_backend();
        let values = || -> Vec<sea_orm::Value> {
            vec![
                org_id.into(),
                mode.as_str().into(),
                rate.into(),
                burst.into(),
                want.into(),
            ]
        };
        // On PostgreSQL (the only database this runs on) the door holds no gate.
        let w = super::writer(&self.db, &self.gate).await?;
        w.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO rate_buckets (org_id, mode, tokens, refilled_at) \
                 VALUES ($1, $2, $3, clock_timestamp()) ON CONFLICT DO NOTHING",
            [org_id.into(), mode.as_str().into(), burst.into()],
        ))
        .await?;
        let row = w
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "WITH b AS (\
                   SELECT org_id, mode, LEAST($4, tokens + $3 * EXTRACT(EPOCH FROM (clock_timestamp() - refilled_at))) AS available \
                   FROM rate_buckets WHERE org_id = $1 AND mode = $2 FOR UPDATE) \
                 UPDATE rate_buckets r SET tokens = b.available - FLOOR(LEAST(b.available, $5)), refilled_at = clock_timestamp() \
                 FROM b WHERE r.org_id = b.org_id AND r.mode = b.mode \
                 RETURNING FLOOR(LEAST(b.available, $5))::float8 AS granted, b.available::float8 AS available",
                values(),
            ))
            .await?
            .ok_or_else(|| sea_orm::DbErr::RecordNotFound("the rate bucket".into()))?;
        Ok((row.try_get("", "granted")?, row.try_get("", "available")?))
    }
}
