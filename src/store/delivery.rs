//! Queue, status changes and receipts: system work, on the [`System`] handle. Every status change
//! is planned by the domain's transition function and written by the one writer
//! ([`super::transitions`]): a compare-and-set on the status it was planned from, written with
//! its event in one transaction.

use chrono::{DateTime, Utc};
use entity::{carrier_receipt, message, message_event, message_part};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{
    rows,
    transitions::{PartWrite, Step},
    System,
};
use crate::domain::submission::carrier_id_keys;
pub use crate::domain::transition::EventDetail;
use crate::domain::{
    lifecycle::EventKind,
    message::{Direction, Message, MessageStatus, Part, PartState},
    transition::{plan, Cause, Write},
    Timestamp,
};

/// Counts messages entering `status` (`agentmessage_messages_total`), after the commit.
pub(super) fn count_status(status: MessageStatus, n: u64) {
    if n > 0 {
        metrics::counter!("agentmessage_messages_total", "status" => status.as_str()).increment(n);
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
) -> Result<i32, DbErr> {
    let of = (message.id, message.org_id);
    insert_event_of(txn, of, kind, status, detail, at).await
}

/// Writes one event of the message `(id, org_id)` inside `txn`, numbered next in its history.
pub(super) async fn insert_event_of(
    txn: &DatabaseTransaction,
    (message_id, org_id): (Uuid, Uuid),
    kind: EventKind,
    status: MessageStatus,
    detail: &EventDetail,
    at: DateTime<Utc>,
) -> Result<i32, DbErr> {
    let number = next_event_number(txn, message_id).await?;
    let row = super::transitions::event_row((message_id, org_id), number, kind, status, detail, at);
    message_event::Entity::insert(row)
        .exec_without_returning(txn)
        .await?;
    Ok(number)
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
    pub received_at: DateTime<Utc>,
}

impl From<carrier_receipt::Model> for StoredReceipt {
    fn from(r: carrier_receipt::Model) -> Self {
        StoredReceipt {
            id: r.id,
            received_at: r.received_at,
            carrier: r.carrier,
            carrier_message_id: r.carrier_message_id,
            stat: r.stat,
            err: r.carrier_err,
            done_date: r.done_date,
        }
    }
}

impl System {
    /// Applies each step (of distinct messages) through the one writer, all in one transaction
    /// (a worker's batch; a single change is a batch of one): for each, the message after it,
    /// or `None` when its guard no longer held and nothing of it was written.
    pub async fn apply(&self, steps: &[Step]) -> Result<Vec<Option<Message>>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let changed = super::transitions::apply(&txn, &self.hooks, steps, now).await?;
        txn.commit().await?;
        self.hooks.committed();
        for (step, made) in steps.iter().zip(&changed) {
            if let (Some(model), true) = (made, step.plans.iter().any(|p| p.changes_status())) {
                count_status(model.status, 1);
            }
        }
        super::transitions::messages(changed)
    }

    /// Records the attempt of each `(owner, message, part numbers)` whose message is still
    /// leased to its owner and not attempted: `attempted_at` set, a `submission_attempt` event,
    /// and those parts `submitting` if still pending — all in one transaction. For each, whether
    /// it was recorded (when not, the lease was lost: the carrier must not be called).
    pub async fn begin_attempts(
        &self,
        items: &[(String, Uuid, Vec<u8>)],
    ) -> Result<Vec<bool>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let mut steps = Vec::with_capacity(items.len());
        for (owner, id, numbers) in items {
            let attempt = plan(
                Some(MessageStatus::Sending),
                Cause::AttemptBegun {
                    owner: owner.clone(),
                    now,
                },
            )
            .map_err(|e| DbErr::Custom(e.to_string()))?;
            let parts = numbers
                .iter()
                .map(|number| PartWrite {
                    number: *number,
                    only_from: Some(PartState::Pending),
                    state: Write::Set(PartState::Submitting),
                    ..Default::default()
                })
                .collect();
            steps.push(Step {
                id: *id,
                plans: vec![attempt],
                parts,
            });
        }
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let began = super::transitions::apply(&txn, &self.hooks, &steps, now).await?;
        txn.commit().await?;
        Ok(began.iter().map(Option::is_some).collect())
    }
}

impl System {
    /// Claims up to `limit` queued outbound messages (high priority first, then oldest) for
    /// `owner` until `lease_until`, marking them `sending` (see [`super::transitions::claim`]),
    /// and writes their parts the first time (`parts_for` gives a message's `(total,
    /// reference)`), in one transaction: each message with every part, in part order.
    pub async fn claim_queued(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
        filter: super::QueueFilter<'_>,
        parts_for: &(dyn Fn(&Message) -> (u8, u8) + Sync),
    ) -> Result<Vec<(Message, Vec<Part>)>, DbErr> {
        if filter.modes.is_empty() || filter.channels.is_empty() {
            return Ok(Vec::new());
        }
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let claimed = rows::messages(
            super::transitions::claim(&txn, owner, lease_until, limit, filter, now).await?,
        )?;
        let items: Vec<(Uuid, u8, u8)> = claimed
            .iter()
            .map(|m| {
                let (total, reference) = parts_for(m);
                (m.id, Ord::max(total, 1), reference)
            })
            .collect();
        let mut parts = super::transitions::write_missing_parts(&txn, &items, now).await?;
        txn.commit().await?;
        count_status(MessageStatus::Sending, claimed.len() as u64);
        Ok(claimed
            .into_iter()
            .map(|m| {
                let of = parts.remove(&m.id).unwrap_or_default();
                (m, of)
            })
            .collect())
    }
}

impl System {
    /// How many outbound messages are queued, and how long the oldest has waited (from the
    /// queue's index: the cost follows the queue, not the table).
    pub async fn queue_stats(&self) -> Result<(u64, std::time::Duration), DbErr> {
        #[derive(FromQueryResult)]
        struct Stats {
            depth: i64,
            oldest: Option<DateTime<Utc>>,
        }
        let stats = message::Entity::find()
            .select_only()
            .column_as(Expr::col(message::Column::Id).count(), "depth")
            .column_as(Expr::col(message::Column::CreatedAt).min(), "oldest")
            .filter(message::Column::Status.eq(MessageStatus::Queued))
            .into_model::<Stats>()
            .one(&self.db)
            .await?;
        let Some(stats) = stats else {
            return Ok((0, std::time::Duration::ZERO));
        };
        let age = stats
            .oldest
            .map(|at| {
                (Timestamp::now().as_datetime() - at)
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Ok((u64::try_from(stats.depth).unwrap_or(0), age))
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

    /// Outbound messages still `queued` or `sent` whose validity ran out before a carrier took
    /// them or before a final receipt arrived: their own `valid_until` is before `now`, or they
    /// have none and were created before `before` (the deployment's validity ago).
    pub async fn past_validity(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.is_in([MessageStatus::Queued, MessageStatus::Sent]))
            .filter(message::Column::Direction.eq(Direction::Outbound))
            .filter(
                sea_orm::Condition::any()
                    .add(
                        sea_orm::Condition::all()
                            .add(message::Column::ValidUntil.is_null())
                            .add(message::Column::CreatedAt.lt(before)),
                    )
                    .add(message::Column::ValidUntil.lt(now)),
            )
            .limit_rows(500)
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// The parts of message `id`, in order.
    pub async fn parts_of(&self, id: Uuid) -> Result<Vec<Part>, DbErr> {
        let found = message_part::Entity::find()
            .filter(message_part::Column::MessageId.eq(id))
            .order_by_asc(message_part::Column::PartNumber)
            .all(&self.db)
            .await?;
        Ok(found.into_iter().map(rows::part).collect())
    }

    /// The outbound part a receipt for `carrier_message_id` is about, and its message: the newest
    /// part without a final receipt that the carrier gave that id (SMSCs reuse ids), else the
    /// newest one with that id (a repeated receipt). The id is looked up as written first, then
    /// as the same number in the other base ([`carrier_id_keys`]).
    pub async fn outbound_part_by_carrier_id(
        &self,
        carrier: &str,
        carrier_message_id: &str,
    ) -> Result<Option<(Message, u8)>, DbErr> {
        let mut found = None;
        for key in carrier_id_keys(carrier_message_id) {
            found = message_part::Entity::find()
                .filter(message_part::Column::Carrier.eq(carrier))
                .filter(message_part::Column::CarrierKey.eq(key))
                .order_by_desc(Expr::cust("receipt_stat IS NULL"))
                .order_by_desc(message_part::Column::SubmittedAt)
                .order_by_desc(message_part::Column::Id)
                .one(&self.db)
                .await?;
            if found.is_some() {
                break;
            }
        }
        let Some(part) = found else {
            return Ok(None);
        };
        let number = u8::try_from(part.part_number).unwrap_or(u8::MAX);
        Ok(self
            .message_by_id(part.message_id)
            .await?
            .map(|m| (m, number)))
    }

    /// Stores a receipt as the carrier sent it; returns its row.
    pub async fn insert_receipt(
        &self,
        carrier: &str,
        detail: &EventDetail,
    ) -> Result<StoredReceipt, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
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
            .exec_with_returning(&w)
            .await?
            .into())
    }

    /// Up to `limit` receipts not matched to a message yet whose id is above `after`, oldest
    /// first (a range of the primary key: the cost follows the receipts read).
    pub async fn unmatched_receipts_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredReceipt>, DbErr> {
        Ok(carrier_receipt::Entity::find()
            .filter(carrier_receipt::Column::Id.gt(after))
            .filter(carrier_receipt::Column::MessageId.is_null())
            .order_by_asc(carrier_receipt::Column::Id)
            .limit_rows(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredReceipt::from)
            .collect())
    }

    /// Deletes up to `limit` receipts that matched no message and arrived before `before`;
    /// returns how many.
    pub async fn purge_unmatched_receipts(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<u64, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let old: Vec<i64> = carrier_receipt::Entity::find()
            .select_only()
            .column(carrier_receipt::Column::Id)
            .filter(carrier_receipt::Column::MessageId.is_null())
            .filter(carrier_receipt::Column::ReceivedAt.lt(before))
            .order_by_asc(carrier_receipt::Column::Id)
            .limit_rows(limit)
            .into_tuple()
            .all(&w)
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let deleted = carrier_receipt::Entity::delete_many()
            .filter(carrier_receipt::Column::Id.is_in(old))
            .filter(carrier_receipt::Column::MessageId.is_null())
            .exec(&w)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Up to `limit` `scheduled` messages whose `send_at` is not after `now`, earliest first.
    pub async fn due_scheduled(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.eq(MessageStatus::Scheduled))
            .filter(message::Column::SendAt.lte(now))
            .order_by_asc(message::Column::SendAt)
            .limit_rows(limit)
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// The outbound message `carrier` accepted under `carrier_id`, if any.
    pub async fn message_by_carrier_id(
        &self,
        carrier: &str,
        carrier_id: &str,
    ) -> Result<Option<Message>, DbErr> {
        message::Entity::find()
            .filter(message::Column::Direction.eq(Direction::Outbound))
            .filter(message::Column::Carrier.eq(carrier))
            .filter(message::Column::CarrierMessageId.eq(carrier_id))
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

/// Receipts not matched to a message yet for any of the `(carrier, carrier id)` pairs, read
/// inside `txn`, oldest first.
pub(super) async fn unmatched_receipts_for(
    txn: &DatabaseTransaction,
    wanted: &[(&str, &str)],
) -> Result<Vec<StoredReceipt>, DbErr> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut carriers: Vec<&str> = wanted.iter().map(|(carrier, _)| *carrier).collect();
    carriers.sort_unstable();
    carriers.dedup();
    let mut found = Vec::new();
    for chunk in wanted.chunks(200) {
        let ids: Vec<&str> = chunk.iter().map(|(_, id)| *id).collect();
        // Both columns of the (carrier, carrier id) index; the exact pairs are kept below.
        found.extend(
            carrier_receipt::Entity::find()
                .filter(carrier_receipt::Column::MessageId.is_null())
                .filter(carrier_receipt::Column::Carrier.is_in(carriers.iter().copied()))
                .filter(carrier_receipt::Column::CarrierMessageId.is_in(ids))
                .order_by_asc(carrier_receipt::Column::Id)
                .all(txn)
                .await?,
        );
    }
    let mut found: Vec<StoredReceipt> = found
        .into_iter()
        .map(StoredReceipt::from)
        .filter(|r| wanted.contains(&(r.carrier.as_str(), r.carrier_message_id.as_str())))
        .collect();
    found.sort_by_key(|r| r.id);
    found.dedup_by_key(|r| r.id);
    Ok(found)
}
