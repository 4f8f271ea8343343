//! Queue, status changes and receipts: system work, on the [`System`] handle. Every status change
//! is a compare-and-set on the current status, guarded by the status machine, and written together
//! with its event in one transaction.

use chrono::{DateTime, Utc};
use entity::{carrier_receipt, message, message_event};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use super::{rows, System};
use crate::domain::{
    lifecycle::{sources_of, transition, EventKind, MessageErrorCode, TransitionRefused},
    message::{Direction, Message, MessageStatus, Priority},
    Timestamp,
};

/// What an event carries besides its kind and status.
#[derive(Debug, Clone, Default)]
pub struct EventDetail {
    pub carrier_message_id: Option<String>,
    pub stat: Option<String>,
    pub err: Option<String>,
    pub done_date: Option<String>,
    pub error_code: Option<MessageErrorCode>,
}

/// A status change to make if the message is still in `from`. It can only be made for a pair the
/// status machine allows ([`transition`]).
#[derive(Debug, Clone)]
pub struct Change {
    from: MessageStatus,
    to: MessageStatus,
    /// Only if the lease is still this worker's.
    pub lease_owner: Option<String>,
    pub error_code: Option<MessageErrorCode>,
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

/// The next number in message `id`'s history, taken under the message row's lock (the counter
/// is on the row), so that concurrent writers number one message's events 1, 2, 3… without a gap
/// or a repeat.
async fn next_event_number(txn: &DatabaseTransaction, id: Uuid) -> Result<i32, DbErr> {
    let backend = txn.get_database_backend();
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let statement = Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE messages SET event_count = event_count + 1 WHERE id = {placeholder} \
             RETURNING event_count"
        ),
        [id.into()],
    );
    let row = txn
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("message {id}")))?;
    row.try_get("", "event_count")
}

/// Writes one event of `message` inside `txn`, numbered next in its history.
pub(super) async fn insert_event(
    txn: &DatabaseTransaction,
    message: &message::Model,
    kind: EventKind,
    status: MessageStatus,
    detail: &EventDetail,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let of = (message.id, message.org_id);
    insert_event_of(txn, of, kind, status, detail, at).await
}

/// Writes one event of the message `(id, org_id)` inside `txn`, numbered next in its history.
async fn insert_event_of(
    txn: &DatabaseTransaction,
    (message_id, org_id): (Uuid, Uuid),
    kind: EventKind,
    status: MessageStatus,
    detail: &EventDetail,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let number = next_event_number(txn, message_id).await?;
    let row = message_event::ActiveModel {
        sequence: sea_orm::ActiveValue::NotSet,
        number: Set(number),
        message_id: Set(message_id),
        org_id: Set(org_id),
        kind: Set(kind),
        status: Set(status),
        occurred_at: Set(at),
        carrier_message_id: Set(detail.carrier_message_id.clone()),
        stat: Set(detail.stat.clone()),
        carrier_err: Set(detail.err.clone()),
        done_date: Set(detail.done_date.clone()),
        error_code: Set(detail.error_code),
    };
    message_event::Entity::insert(row)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// A carrier's receipt as it was stored.
#[derive(Debug, Clone)]
pub struct StoredReceipt {
    pub id: i64,
    pub carrier: String,
    pub carrier_message_id: String,
    pub stat: String,
    pub err: Option<String>,
    pub done_date: Option<String>,
}

impl From<carrier_receipt::Model> for StoredReceipt {
    fn from(r: carrier_receipt::Model) -> Self {
        StoredReceipt {
            id: r.id,
            carrier: r.carrier,
            carrier_message_id: r.carrier_message_id,
            stat: r.stat,
            err: r.carrier_err,
            done_date: r.done_date,
        }
    }
}

impl System {
    /// Records an event that does not change the status.
    pub async fn record_event(
        &self,
        message: &Message,
        kind: EventKind,
        detail: EventDetail,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let now = Timestamp::now().as_datetime();
        let of = (message.id, message.org_id);
        insert_event_of(&txn, of, kind, message.status, &detail, now).await?;
        txn.commit().await
    }

    /// Applies `change` if the message is still in `change.from` (and, when given, still leased
    /// to `change.lease_owner`). `None` when it was not.
    pub async fn change_status(&self, id: Uuid, change: Change) -> Result<Option<Message>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let txn = self.db.begin().await?;
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::Status, Expr::value(change.to))
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .filter(message::Column::Id.eq(id))
            .filter(message::Column::Status.eq(change.from))
            // The guard the machine gives, whatever the caller expected.
            .filter(message::Column::Status.is_in(sources_of(change.to)));
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
        if let Some(code) = change.error_code {
            update = update.col_expr(message::Column::ErrorCode, Expr::value(code));
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
        rows::message(model).map(Some)
    }

    /// Claims up to `limit` queued outbound messages (high priority first, then oldest) for
    /// `owner` until `lease_until`, marking them `sending`. PostgreSQL skips rows other workers
    /// hold; SQLite serializes writers.
    pub async fn claim_queued(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Message>, DbErr> {
        // The claim is the machine's `queued → sending`, written as one statement for speed; the
        // statuses in it are the machine's own.
        let (from, to) = (MessageStatus::Queued, MessageStatus::Sending);
        transition(from, to).map_err(|e| DbErr::Custom(e.to_string()))?;
        let (from, to) = (from.as_str(), to.as_str());
        let (outbound, high) = (Direction::Outbound.as_str(), Priority::High.as_str());
        let backend = self.db.get_database_backend();
        let now = Timestamp::now().as_datetime();
        // PostgreSQL: the CTE is evaluated once, and SKIP LOCKED passes over rows other workers
        // are claiming. SQLite: one statement, writers serialized by the database lock.
        let sql = match backend {
            DbBackend::Postgres => format!(
                "WITH picked AS (\
                   SELECT id FROM messages WHERE status = '{from}' AND direction = '{outbound}' \
                   ORDER BY CASE priority WHEN '{high}' THEN 0 ELSE 1 END, created_at, id LIMIT $4 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE messages SET status = '{to}', lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
                 FROM picked WHERE messages.id = picked.id AND messages.status = '{from}' RETURNING messages.*"
            ),
            _ => format!(
                "UPDATE messages SET status = '{to}', lease_owner = ?, lease_expires_at = ?, updated_at = ? \
                 WHERE status = '{from}' AND id IN (\
                   SELECT id FROM messages WHERE status = '{from}' AND direction = '{outbound}' \
                   ORDER BY CASE priority WHEN '{high}' THEN 0 ELSE 1 END, created_at, id LIMIT ?) \
                 RETURNING *"
            ),
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
        claimed.sort_by_key(|m| (m.priority != Priority::High, m.created_at, m.id));
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
        rows::messages(claimed)
    }

    /// Records that the submission is being attempted, if the lease is still `owner`'s and no
    /// attempt was recorded before. `false` means: do not call the carrier.
    pub async fn record_attempt(&self, id: Uuid, owner: &str) -> Result<bool, DbErr> {
        let now = Timestamp::now().as_datetime();
        let txn = self.db.begin().await?;
        let updated = message::Entity::update_many()
            .col_expr(message::Column::AttemptedAt, Expr::value(now))
            .filter(message::Column::Id.eq(id))
            .filter(message::Column::Status.eq(MessageStatus::Sending))
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
    pub async fn expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Sending))
            .filter(message::Column::LeaseExpiresAt.lt(now))
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// Messages still `sent` through `carrier`.
    pub async fn sent_through(&self, carrier: &str) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Sent))
            .filter(message::Column::Carrier.eq(carrier))
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// Messages `sent` before `before` (their validity ran out without a final receipt).
    pub async fn sent_before(&self, before: DateTime<Utc>) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Sent))
            .filter(message::Column::SentAt.lt(before))
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// Stores a receipt as the carrier sent it; returns its row.
    pub async fn insert_receipt(
        &self,
        carrier: &str,
        detail: &EventDetail,
    ) -> Result<StoredReceipt, DbErr> {
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
        Ok(carrier_receipt::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await?
            .into())
    }

    /// Receipts not matched to a message yet, oldest first, optionally for one carrier id.
    pub async fn unmatched_receipts(
        &self,
        carrier: Option<(&str, &str)>,
    ) -> Result<Vec<StoredReceipt>, DbErr> {
        let mut query =
            carrier_receipt::Entity::find().filter(carrier_receipt::Column::MessageId.is_null());
        if let Some((carrier, id)) = carrier {
            query = query
                .filter(carrier_receipt::Column::Carrier.eq(carrier))
                .filter(carrier_receipt::Column::CarrierMessageId.eq(id));
        }
        Ok(query
            .order_by_asc(carrier_receipt::Column::Id)
            .limit_rows(500)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredReceipt::from)
            .collect())
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

    /// The outbound message a receipt for `carrier_message_id` is about: the newest one the
    /// carrier gave that id (carriers reuse ids; inbound messages are numbered apart and never
    /// match a receipt).
    pub async fn outbound_by_carrier_id(
        &self,
        carrier: &str,
        carrier_message_id: &str,
    ) -> Result<Option<Message>, DbErr> {
        message::Entity::find()
            .filter(message::Column::Carrier.eq(carrier))
            .filter(message::Column::CarrierMessageId.eq(carrier_message_id))
            .filter(message::Column::Direction.eq(Direction::Outbound))
            .order_by_desc(message::Column::CreatedAt)
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?
            .map(rows::message)
            .transpose()
    }

    /// The inbound message already stored for this delivery: the same receiving number,
    /// carrier and carrier id.
    pub async fn inbound_by_carrier_id(
        &self,
        to: &crate::domain::PhoneNumber,
        carrier: &str,
        carrier_message_id: &str,
    ) -> Result<Option<Message>, DbErr> {
        message::Entity::find()
            .filter(message::Column::ToNumber.eq(to.as_str()))
            .filter(message::Column::Carrier.eq(carrier))
            .filter(message::Column::CarrierMessageId.eq(carrier_message_id))
            .filter(message::Column::Direction.eq(Direction::Inbound))
            .one(&self.db)
            .await?
            .map(rows::message)
            .transpose()
    }

    pub async fn message_by_id(&self, id: Uuid) -> Result<Option<Message>, DbErr> {
        message::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(rows::message)
            .transpose()
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
