//! `Idempotency-Key` records of one organization and key mode. The unique constraint on
//! (organization, mode, operation, key) decides between concurrent requests, on both backends.

use chrono::{DateTime, Utc};
use entity::idempotency_record as record;
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

use super::Tenant;
use crate::domain::idempotency::{Begun, Hold, Recorded};

/// What a new request sends with its key.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub operation: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub request_id: &'a str,
}

/// A hold was lost: its record was taken over (the request ran past the takeover time).
pub const TAKEN_OVER: &str = "the idempotency record was taken over by a retry";

impl super::System {
    /// Deletes up to `limit` records past their retention (a retry with such a key runs afresh
    /// anyway); the worker's sweep calls it so the table holds about one retention's keys.
    pub async fn purge_idempotency(&self, now: DateTime<Utc>, limit: u64) -> Result<u64, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let expired: Vec<i64> = record::Entity::find()
            .select_only()
            .column(record::Column::Id)
            .filter(record::Column::ExpiresAt.lt(now))
            .limit(limit)
            .into_tuple()
            .all(&w)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let deleted = record::Entity::delete_many()
            .filter(record::Column::Id.is_in(expired))
            .filter(record::Column::ExpiresAt.lt(now))
            .exec(&w)
            .await?;
        Ok(deleted.rows_affected)
    }
}

impl Tenant {
    fn record(&self, attempt: &Attempt<'_>) -> sea_orm::Select<record::Entity> {
        record::Entity::find()
            .filter(record::Column::OrgId.eq(self.org_id))
            .filter(record::Column::Mode.eq(self.mode))
            .filter(record::Column::Operation.eq(attempt.operation))
            .filter(record::Column::IdempotencyKey.eq(attempt.key))
    }

    /// Decides what `attempt` does: run (the key is new, expired, or held by a request dead for
    /// `takeover_after`), replay, wait, or refuse a reused key.
    pub async fn begin_idempotent(
        &self,
        attempt: &Attempt<'_>,
        retention: std::time::Duration,
        takeover_after: std::time::Duration,
    ) -> Result<Begun, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let now = Utc::now();
        let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let stale = chrono::Duration::from_std(takeover_after).unwrap_or(chrono::Duration::MAX);
        // A record past its retention is gone: the key starts afresh.
        record::Entity::delete_many()
            .filter(record::Column::OrgId.eq(self.org_id))
            .filter(record::Column::Mode.eq(self.mode))
            .filter(record::Column::Operation.eq(attempt.operation))
            .filter(record::Column::IdempotencyKey.eq(attempt.key))
            .filter(record::Column::ExpiresAt.lt(now))
            .exec(&w)
            .await?;
        for _ in 0..3 {
            let token = ulid::Ulid::new().to_string();
            let row = record::ActiveModel {
                id: sea_orm::ActiveValue::NotSet,
                org_id: Set(self.org_id),
                mode: Set(self.mode),
                operation: Set(attempt.operation.to_owned()),
                idempotency_key: Set(attempt.key.to_owned()),
                fingerprint: Set(attempt.fingerprint.to_owned()),
                token: Set(token.clone()),
                request_id: Set(attempt.request_id.to_owned()),
                status_code: Set(None),
                response_body: Set(None),
                started_at: Set(now),
                expires_at: Set(now
                    .checked_add_signed(keep)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)),
            };
            let inserted = record::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        record::Column::OrgId,
                        record::Column::Mode,
                        record::Column::Operation,
                        record::Column::IdempotencyKey,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&w)
                .await?;
            let Some(existing) = self.record(attempt).one(&w).await? else {
                continue; // deleted meanwhile: try again
            };
            if inserted == 1 && existing.token == token {
                return Ok(Begun::Run(Hold {
                    record: existing.id,
                    token,
                }));
            }
            if existing.fingerprint != attempt.fingerprint {
                return Ok(Begun::Reused);
            }
            if let (Some(status), Some(body)) = (existing.status_code, existing.response_body) {
                return Ok(Begun::Replay(Recorded {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                    request_id: existing.request_id,
                }));
            }
            let held_for = now - existing.started_at;
            if held_for < stale {
                let left = (stale - held_for).num_seconds().max(1);
                return Ok(Begun::Running {
                    retry_after_secs: u64::try_from(left).unwrap_or(1),
                });
            }
            // The holder stopped without an outcome: take the key over.
            let taken = record::Entity::update_many()
                .col_expr(record::Column::Token, Expr::value(token.clone()))
                .col_expr(record::Column::StartedAt, Expr::value(now))
                .col_expr(record::Column::RequestId, Expr::value(attempt.request_id))
                .filter(record::Column::Id.eq(existing.id))
                .filter(record::Column::Token.eq(existing.token))
                .filter(record::Column::StatusCode.is_null())
                .exec(&w)
                .await?;
            if taken.rows_affected == 1 {
                return Ok(Begun::Run(Hold {
                    record: existing.id,
                    token,
                }));
            }
        }
        Err(DbErr::Custom("the idempotency record kept changing".into()))
    }

    /// Records the outcome of the request holding `hold`, on `db` (the resource's transaction,
    /// or alone). Fails with [`TAKEN_OVER`] when the hold was lost.
    pub async fn complete_idempotent(
        &self,
        db: &impl ConnectionTrait,
        hold: &Hold,
        status: u16,
        body: &str,
    ) -> Result<(), DbErr> {
        let done = record::Entity::update_many()
            .col_expr(record::Column::StatusCode, Expr::value(i32::from(status)))
            .col_expr(record::Column::ResponseBody, Expr::value(body))
            .filter(record::Column::Id.eq(hold.record))
            .filter(record::Column::Token.eq(hold.token.as_str()))
            .filter(record::Column::StatusCode.is_null())
            .exec(db)
            .await?;
        if done.rows_affected == 1 {
            Ok(())
        } else {
            Err(DbErr::Custom(TAKEN_OVER.into()))
        }
    }

    /// Records an outcome decided without a resource (a rule's 422 or 453).
    pub async fn complete_idempotent_alone(
        &self,
        hold: &Hold,
        status: u16,
        body: &str,
    ) -> Result<(), DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        self.complete_idempotent(&w, hold, status, body).await
    }

    /// Forgets the key of a request whose answer is not recorded (429, 5xx): a retry runs again.
    pub async fn release_idempotent(&self, hold: &Hold) -> Result<(), DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        record::Entity::delete_many()
            .filter(record::Column::Id.eq(hold.record))
            .filter(record::Column::Token.eq(hold.token.as_str()))
            .filter(record::Column::StatusCode.is_null())
            .exec(&w)
            .await?;
        Ok(())
    }
}
