//! Queue, status changes and receipts. Every status change is a compare-and-set on the current
//! status, written together with its event in one transaction.

use chrono::{DateTime, Utc};
use entity::{carrier_receipt, message, message_event};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::Store;
use crate::domain::{
    lifecycle::{sources_of, transition, EventKind, TransitionRefused},
    message::MessageStatus,
    Timestamp,
};

/// What an event carries besides its kind and status.
#[derive(Debug, Clone, Default)]
pub struct EventDetail {
    pub carrier_message_id: Option<String>,
    pub stat: Option<String>,
    pub err: Option<String>,
    pub done_date: Option<String>,
    pub error_code: Option<String>,
}

/// A status change to make if the message is still in `from`. It can only be made for a pair the
/// status machine allows ([`transition`]).
#[derive(Debug, Clone)]
pub struct Change {
    from: MessageStatus,
    to: MessageStatus,
    /// Only if the lease is still this worker's.
    pub lease_owner: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// `(carrier, carrier_message_id)` to store (on `sent`).
    pub carrier: Option<(String, String)>,
    pub kind: EventKind,
    pub detail: EventDetail,
}

impl Change {
    pub fn new(from: MessageStatus, to: MessageStatus) -> Result<Change, TransitionRefused> {
        let to = transition(from, to)?;
        Ok(Change {
            from,
            to,
            lease_owner: None,
            error_code: None,
            error_message: None,
            carrier: None,
            kind: EventKind::Transition,
            detail: EventDetail::default(),
        })
    }

    pub fn from(&self) -> MessageStatus {
        self.from
    }

    pub fn to(&self) -> MessageStatus {
        self.to
    }
}

async fn insert_event(
    txn: &DatabaseTransaction,
    message: &message::Model,
    kind: EventKind,
    status: MessageStatus,
    detail: &EventDetail,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = message_event::ActiveModel {
        sequence: sea_orm::ActiveValue::NotSet,
        message_id: Set(message.id),
        org_id: Set(message.org_id),
        kind: Set(kind.as_str().to_owned()),
        status: Set(status.as_str().to_owned()),
        occurred_at: Set(at),
        carrier_message_id: Set(detail.carrier_message_id.clone()),
        stat: Set(detail.stat.clone()),
        carrier_err: Set(detail.err.clone()),
        done_date: Set(detail.done_date.clone()),
        error_code: Set(detail.error_code.clone()),
    };
    message_event::Entity::insert(row)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

impl Store {
    /// Stores a new message with its first event: the send path's single write.
    pub async fn insert_message_with_event(
        &self,
        row: message::ActiveModel,
        kind: EventKind,
        detail: EventDetail,
    ) -> Result<message::Model, DbErr> {
        let txn = self.db.begin().await?;
        let model = message::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        let status = MessageStatus::parse(&model.status).unwrap_or(MessageStatus::Queued);
        insert_event(&txn, &model, kind, status, &detail, model.created_at).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// Records an event that does not change the status.
    pub async fn record_event(
        &self,
        message: &message::Model,
        kind: EventKind,
        detail: EventDetail,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let status = MessageStatus::parse(&message.status).unwrap_or(MessageStatus::Queued);
        insert_event(
            &txn,
            message,
            kind,
            status,
            &detail,
            Timestamp::now().as_datetime(),
        )
        .await?;
        txn.commit().await
    }

    /// Applies `change` if the message is still in `change.from` (and, when given, still leased
    /// to `change.lease_owner`). `None` when it was not.
    pub async fn change_status(
        &self,
        id: Uuid,
        change: Change,
    ) -> Result<Option<message::Model>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let txn = self.db.begin().await?;
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::Status, Expr::value(change.to.as_str()))
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .filter(message::Column::Id.eq(id))
            .filter(message::Column::Status.eq(change.from.as_str()))
            // The guard the machine gives, whatever the caller expected.
            .filter(
                message::Column::Status.is_in(sources_of(change.to).iter().map(|s| s.as_str())),
            );
        if let Some(owner) = &change.lease_owner {
            update = update.filter(message::Column::LeaseOwner.eq(owner.as_str()));
        }
        if change.to != MessageStatus::Sending {
            update = update
                .col_expr(
                    message::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    message::Column::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
        }
        if let Some(code) = &change.error_code {
            update = update.col_expr(message::Column::ErrorCode, Expr::value(code.as_str()));
        }
        if let Some(text) = &change.error_message {
            update = update.col_expr(message::Column::ErrorMessage, Expr::value(text.as_str()));
        }
        if let Some((carrier, carrier_id)) = &change.carrier {
            update = update
                .col_expr(message::Column::Carrier, Expr::value(carrier.as_str()))
                .col_expr(
                    message::Column::CarrierMessageId,
                    Expr::value(carrier_id.as_str()),
                )
                .col_expr(message::Column::SentAt, Expr::value(now));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        let model = message::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(DbErr::RecordNotFound("message".into()))?;
        insert_event(&txn, &model, change.kind, change.to, &change.detail, now).await?;
        txn.commit().await?;
        Ok(Some(model))
    }

    /// Claims up to `limit` queued outbound messages (high priority first, then oldest) for
    /// `owner` until `lease_until`, marking them `sending`. PostgreSQL skips rows other workers
    /// hold; SQLite serializes writers.
    pub async fn claim_queued(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<message::Model>, DbErr> {
        // The claim is the machine's `queued → sending`, written as one statement for speed.
        transition(MessageStatus::Queued, MessageStatus::Sending)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let backend = self.db.get_database_backend();
        let now = Timestamp::now().as_datetime();
        // PostgreSQL: the CTE is evaluated once, and SKIP LOCKED passes over rows other workers
        // are claiming. SQLite: one statement, writers serialized by the database lock.
        let sql = match backend {
            DbBackend::Postgres => "WITH picked AS (\
                   SELECT id FROM messages WHERE status = 'queued' AND direction = 'outbound' \
                   ORDER BY CASE priority WHEN 'high' THEN 0 ELSE 1 END, created_at, id LIMIT $4 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE messages SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
                 FROM picked WHERE messages.id = picked.id AND messages.status = 'queued' RETURNING messages.*",
            _ => "UPDATE messages SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ? \
                 WHERE status = 'queued' AND id IN (\
                   SELECT id FROM messages WHERE status = 'queued' AND direction = 'outbound' \
                   ORDER BY CASE priority WHEN 'high' THEN 0 ELSE 1 END, created_at, id LIMIT ?) \
                 RETURNING *",
        };
        let txn = self.db.begin().await?;
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [
                owner.into(),
                lease_until.into(),
                now.into(),
                (limit as i64).into(),
            ],
        );
        let mut claimed = message::Model::find_by_statement(statement)
            .all(&txn)
            .await?;
        // RETURNING has no order: hand them over high priority first, then oldest.
        claimed.sort_by_key(|m| (m.priority != "high", m.created_at, m.id));
        for m in &claimed {
            insert_event(
                &txn,
                m,
                EventKind::Transition,
                MessageStatus::Sending,
                &EventDetail::default(),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(claimed)
    }

    /// Records that the submission is being attempted, if the lease is still `owner`'s and no
    /// attempt was recorded before. `false` means: do not call the carrier.
    pub async fn record_attempt(&self, id: Uuid, owner: &str) -> Result<bool, DbErr> {
        let now = Timestamp::now().as_datetime();
        let txn = self.db.begin().await?;
        let updated = message::Entity::update_many()
            .col_expr(message::Column::AttemptedAt, Expr::value(now))
            .filter(message::Column::Id.eq(id))
            .filter(message::Column::Status.eq(MessageStatus::Sending.as_str()))
            .filter(message::Column::LeaseOwner.eq(owner))
            .filter(message::Column::AttemptedAt.is_null())
            .filter(message::Column::LeaseExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let model = message::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(DbErr::RecordNotFound("message".into()))?;
        insert_event(
            &txn,
            &model,
            EventKind::SubmissionAttempt,
            MessageStatus::Sending,
            &EventDetail::default(),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Messages still `sending` whose lease ran out.
    pub async fn expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Sending.as_str()))
            .filter(message::Column::LeaseExpiresAt.lt(now))
            .all(&self.db)
            .await
    }

    /// Messages `sent` before `before` (their validity ran out without a final receipt).
    pub async fn sent_before(&self, before: DateTime<Utc>) -> Result<Vec<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Sent.as_str()))
            .filter(message::Column::SentAt.lt(before))
            .all(&self.db)
            .await
    }

    /// Stores a receipt as the carrier sent it; returns its row.
    pub async fn insert_receipt(
        &self,
        carrier: &str,
        detail: &EventDetail,
    ) -> Result<carrier_receipt::Model, DbErr> {
        let row = carrier_receipt::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            carrier: Set(carrier.to_owned()),
            carrier_message_id: Set(detail.carrier_message_id.clone().unwrap_or_default()),
            stat: Set(detail.stat.clone().unwrap_or_default()),
            carrier_err: Set(detail.err.clone()),
            done_date: Set(detail.done_date.clone()),
            received_at: Set(Timestamp::now().as_datetime()),
            message_id: Set(None),
        };
        carrier_receipt::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    /// Receipts not matched to a message yet, oldest first, optionally for one carrier id.
    pub async fn unmatched_receipts(
        &self,
        carrier: Option<(&str, &str)>,
    ) -> Result<Vec<carrier_receipt::Model>, DbErr> {
        let mut query =
            carrier_receipt::Entity::find().filter(carrier_receipt::Column::MessageId.is_null());
        if let Some((carrier, id)) = carrier {
            query = query
                .filter(carrier_receipt::Column::Carrier.eq(carrier))
                .filter(carrier_receipt::Column::CarrierMessageId.eq(id));
        }
        query
            .order_by_asc(carrier_receipt::Column::Id)
            .limit_rows(500)
            .all(&self.db)
            .await
    }

    /// Marks a receipt as matched to `message_id`; `false` if another process matched it first.
    pub async fn mark_receipt_matched(
        &self,
        receipt_id: i64,
        message_id: Uuid,
    ) -> Result<bool, DbErr> {
        let updated = carrier_receipt::Entity::update_many()
            .col_expr(carrier_receipt::Column::MessageId, Expr::value(message_id))
            .filter(carrier_receipt::Column::Id.eq(receipt_id))
            .filter(carrier_receipt::Column::MessageId.is_null())
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// The message a carrier knows by `carrier_message_id`.
    pub async fn message_by_carrier_id(
        &self,
        carrier: &str,
        carrier_message_id: &str,
    ) -> Result<Option<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::Carrier.eq(carrier))
            .filter(message::Column::CarrierMessageId.eq(carrier_message_id))
            .one(&self.db)
            .await
    }

    pub async fn message_by_id(&self, id: Uuid) -> Result<Option<message::Model>, DbErr> {
        message::Entity::find_by_id(id).one(&self.db).await
    }

    /// A message's events, oldest first.
    pub async fn message_events(
        &self,
        org_id: Uuid,
        message_id: Uuid,
    ) -> Result<Vec<message_event::Model>, DbErr> {
        message_event::Entity::find()
            .filter(message_event::Column::OrgId.eq(org_id))
            .filter(message_event::Column::MessageId.eq(message_id))
            .order_by_asc(message_event::Column::Sequence)
            .all(&self.db)
            .await
    }
}

/// `LIMIT` for a select.
trait LimitRows: Sized {
    fn limit_rows(self, n: u64) -> Self;
}

impl<E: EntityTrait> LimitRows for sea_orm::Select<E> {
    fn limit_rows(self, n: u64) -> Self {
        sea_orm::QuerySelect::limit(self, n)
    }
}
