//! Carrier receipts in batches: a batch of receipts matched to their parts, stored, and applied
//! to their messages in one transaction, with a constant number of statements per batch besides
//! one update per message touched.

use std::collections::HashMap;

use entity::{carrier_receipt, message, message_part};
use sea_orm::{
    sea_query::{Condition, Expr, ExprTrait, SimpleExpr},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    delivery::{count_status, event_row, insert_events, status_webhooks, Change, EventDetail},
    rows, System,
};
use crate::domain::{
    lifecycle::{is_final_stat, EventKind},
    message::{Message, MessageStatus},
    submission::carrier_id_keys,
    Timestamp,
};

/// A receipt as a carrier sent it.
#[derive(Debug, Clone)]
pub struct IncomingReceipt {
    pub carrier: String,
    /// `carrier_message_id`, `stat`, `err` and `done_date` as received.
    pub detail: EventDetail,
    /// When it arrived, for one stored earlier and matched again; `None`: now.
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The status rule for a receipt: given the message as it stands, every part's final receipt
/// (in part order) and the receipt, the status change to make, if any.
pub type ReceiptRule<'r> =
    dyn Fn(&Message, &[Option<&str>], &EventDetail) -> Result<Option<Change>, String> + Sync + 'r;

const CHUNK: usize = 200;

/// The events and the status change a batch makes to one message.
struct Touched {
    model: message::Model,
    /// The status the message had when read (the update's guard).
    read_status: MessageStatus,
    events: Vec<(EventKind, MessageStatus, EventDetail)>,
    change: Option<Change>,
    /// Which of `events` is the status change's.
    change_event: Option<usize>,
    parts: Vec<message_part::Model>,
}

/// [`super::delivery::case_by_message`] over `touched`, the column as it is for the rest.
fn per_message(
    touched: &[&Touched],
    value: impl Fn(&Touched) -> Option<SimpleExpr>,
    column: message::Column,
) -> SimpleExpr {
    super::delivery::case_by_message(
        touched.iter().map(|t| (t.model.id, value(t))),
        Expr::col(column),
    )
}

/// Writes what a batch's receipts did to each of `touched`: its events counted, and its new
/// status with its error when it changed; each row only if still in the status it was read in.
async fn guarded_receipt_updates(
    txn: &sea_orm::DatabaseTransaction,
    touched: &[&Touched],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    let changed = |t: &Touched| t.change.is_some();
    let mut guard = Condition::any();
    for t in touched {
        guard = guard.add(
            Condition::all()
                .add(message::Column::Id.eq(t.model.id))
                .add(message::Column::Status.eq(t.read_status)),
        );
    }
    message::Entity::update_many()
        .col_expr(
            message::Column::EventCount,
            Expr::col(message::Column::EventCount).add(per_message(
                touched,
                |t| {
                    Some(Expr::value(
                        i32::try_from(t.events.len()).unwrap_or(i32::MAX),
                    ))
                },
                message::Column::EventCount,
            )),
        )
        .col_expr(
            message::Column::Status,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(t.model.status)),
                message::Column::Status,
            ),
        )
        .col_expr(
            message::Column::UpdatedAt,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(now)),
                message::Column::UpdatedAt,
            ),
        )
        .col_expr(
            message::Column::LeaseOwner,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(Option::<String>::None)),
                message::Column::LeaseOwner,
            ),
        )
        .col_expr(
            message::Column::LeaseExpiresAt,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None)),
                message::Column::LeaseExpiresAt,
            ),
        )
        .col_expr(
            message::Column::ErrorCode,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(t.model.error_code)),
                message::Column::ErrorCode,
            ),
        )
        .col_expr(
            message::Column::ErrorMessage,
            per_message(
                touched,
                |t| changed(t).then(|| Expr::value(t.model.error_message.clone())),
                message::Column::ErrorMessage,
            ),
        )
        .filter(message::Column::Id.is_in(touched.iter().map(|t| t.model.id)))
        .filter(guard)
        .exec_with_returning(txn)
        .await
}

impl System {
    /// Stores `receipts` and applies each matched one to its message, in order, in one
    /// transaction: the part's final receipt, an event, and the status `rule` gives. Returns,
    /// for each receipt, whether it matched a part (an unmatched one is kept until its part is
    /// known). On an error nothing of the batch is stored.
    pub async fn record_receipts(
        &self,
        receipts: &[IncomingReceipt],
        rule: &ReceiptRule<'_>,
    ) -> Result<Vec<bool>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let (matched, changed) = self.record_receipts_in(&txn, receipts, rule).await?;
        txn.commit().await?;
        self.hooks.committed();
        for status in changed {
            count_status(status, 1);
        }
        Ok(matched)
    }

    /// Matches again the stored receipts `ids` that are still unmatched (their part has become
    /// known since they arrived), in one transaction: each is taken out and recorded anew as
    /// [`System::record_receipts`] records an arriving one — matched, applied to its message
    /// with its event — keeping when it arrived. A crash keeps all or none of that. Returns how
    /// many matched.
    pub async fn rematch_receipts(
        &self,
        ids: &[i64],
        rule: &ReceiptRule<'_>,
    ) -> Result<usize, DbErr> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let mut taken = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut query = carrier_receipt::Entity::find()
                .filter(carrier_receipt::Column::Id.is_in(chunk.iter().copied()))
                .filter(carrier_receipt::Column::MessageId.is_null());
            if txn.get_database_backend() == DbBackend::Postgres {
                // Another process matching the same receipts waits, then finds them gone.
                query = query.lock_exclusive();
            }
            taken.extend(query.all(&txn).await?);
        }
        // In the order they arrived: the first final receipt of a part decides.
        taken.sort_by_key(|r| r.id);
        for chunk in taken.chunks(CHUNK) {
            carrier_receipt::Entity::delete_many()
                .filter(carrier_receipt::Column::Id.is_in(chunk.iter().map(|r| r.id)))
                .exec(&txn)
                .await?;
        }
        let incoming: Vec<IncomingReceipt> = taken
            .into_iter()
            .map(|r| IncomingReceipt {
                carrier: r.carrier,
                detail: EventDetail {
                    carrier_message_id: Some(r.carrier_message_id),
                    stat: Some(r.stat),
                    err: r.carrier_err,
                    done_date: r.done_date,
                    error_code: None,
                },
                received_at: Some(r.received_at),
            })
            .collect();
        let (matched, changed) = self.record_receipts_in(&txn, &incoming, rule).await?;
        txn.commit().await?;
        self.hooks.committed();
        for status in changed {
            count_status(status, 1);
        }
        Ok(matched.into_iter().filter(|m| *m).count())
    }

    /// [`System::record_receipts`] inside `txn`: whether each receipt matched, and the statuses
    /// messages moved to.
    async fn record_receipts_in(
        &self,
        txn: &DatabaseTransaction,
        receipts: &[IncomingReceipt],
        rule: &ReceiptRule<'_>,
    ) -> Result<(Vec<bool>, Vec<MessageStatus>), DbErr> {
        let backend = txn.get_database_backend();
        let now = Timestamp::now().as_datetime();

        // Every part any receipt's id may name, in one query per chunk.
        let keys_of: Vec<Vec<String>> = receipts
            .iter()
            .map(|r| carrier_id_keys(r.detail.carrier_message_id.as_deref().unwrap_or_default()))
            .collect();
        let mut carriers: Vec<&str> = receipts.iter().map(|r| r.carrier.as_str()).collect();
        carriers.sort_unstable();
        carriers.dedup();
        let mut all_keys: Vec<&str> = keys_of.iter().flatten().map(String::as_str).collect();
        all_keys.sort_unstable();
        all_keys.dedup();
        let mut candidates: Vec<message_part::Model> = Vec::new();
        for chunk in all_keys.chunks(CHUNK) {
            candidates.extend(
                message_part::Entity::find()
                    .filter(message_part::Column::Carrier.is_in(carriers.iter().copied()))
                    .filter(message_part::Column::CarrierKey.is_in(chunk.iter().copied()))
                    .all(txn)
                    .await?,
            );
        }
        let mut message_ids: Vec<Uuid> = candidates.iter().map(|p| p.message_id).collect();
        message_ids.sort_unstable();
        message_ids.dedup();

        // The messages they belong to (locked on PostgreSQL; SQLite's write lock is held) and
        // all of their parts.
        let mut touched: HashMap<Uuid, Touched> = HashMap::new();
        for chunk in message_ids.chunks(CHUNK) {
            let mut query =
                message::Entity::find().filter(message::Column::Id.is_in(chunk.iter().copied()));
            if backend == DbBackend::Postgres {
                query = query.lock_exclusive();
            }
            for model in query.all(txn).await? {
                touched.insert(
                    model.id,
                    Touched {
                        read_status: model.status,
                        model,
                        events: Vec::new(),
                        change: None,
                        change_event: None,
                        parts: Vec::new(),
                    },
                );
            }
            let parts = message_part::Entity::find()
                .filter(message_part::Column::MessageId.is_in(chunk.iter().copied()))
                .all(txn)
                .await?;
            for part in parts {
                if let Some(t) = touched.get_mut(&part.message_id) {
                    t.parts.push(part);
                }
            }
        }
        for t in touched.values_mut() {
            t.parts.sort_by_key(|p| p.part_number);
        }

        // Each receipt in order, against the state the earlier ones left.
        let mut matched = Vec::with_capacity(receipts.len());
        let mut receipt_rows = Vec::with_capacity(receipts.len());
        let mut part_stats: Vec<(i64, String)> = Vec::new();
        for (receipt, keys) in receipts.iter().zip(&keys_of) {
            let found = self.part_for(&touched, &receipt.carrier, keys);
            receipt_rows.push(carrier_receipt::ActiveModel {
                id: sea_orm::ActiveValue::NotSet,
                carrier: Set(receipt.carrier.clone()),
                carrier_message_id: Set(receipt
                    .detail
                    .carrier_message_id
                    .clone()
                    .unwrap_or_default()),
                stat: Set(receipt.detail.stat.clone().unwrap_or_default()),
                carrier_err: Set(receipt.detail.err.clone()),
                done_date: Set(receipt.detail.done_date.clone()),
                received_at: Set(receipt.received_at.unwrap_or(now)),
                message_id: Set(found.map(|(id, _)| id)),
            });
            matched.push(found.is_some());
            let Some((message_id, part_id)) = found else {
                continue;
            };
            let t = touched.get_mut(&message_id).expect("read above");
            let stat = receipt.detail.stat.clone().unwrap_or_default();
            if is_final_stat(&stat) {
                if let Some(part) = t.parts.iter_mut().find(|p| p.id == part_id) {
                    if part.receipt_stat.is_none() {
                        part.receipt_stat = Some(stat.clone());
                        part_stats.push((part_id, stat.clone()));
                    }
                }
            }
            let finals: Vec<Option<&str>> =
                t.parts.iter().map(|p| p.receipt_stat.as_deref()).collect();
            let current = rows::message(t.model.clone())?;
            match rule(&current, &finals, &receipt.detail).map_err(DbErr::Custom)? {
                Some(change) => {
                    if change.from() != t.model.status
                        || change.lease_owner.is_some()
                        || change.carrier.is_some()
                        || !change.parts.is_empty()
                    {
                        return Err(DbErr::Custom(format!(
                            "a receipt's change of message {message_id} cannot be batched"
                        )));
                    }
                    t.model.status = change.to();
                    t.model.updated_at = now;
                    t.model.lease_owner = None;
                    t.model.lease_expires_at = None;
                    if change.error_code.is_some() {
                        t.model.error_code = change.error_code;
                    }
                    if change.error_message.is_some() {
                        t.model.error_message = change.error_message.clone();
                    }
                    t.change_event = Some(t.events.len());
                    t.events
                        .push((change.kind, change.to(), change.detail.clone()));
                    t.change = Some(change);
                }
                None => t
                    .events
                    .push((EventKind::Receipt, t.model.status, receipt.detail.clone())),
            }
        }

        for chunk in receipt_rows.chunks(CHUNK) {
            carrier_receipt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        let mut by_stat: HashMap<&str, Vec<i64>> = HashMap::new();
        for (id, stat) in &part_stats {
            by_stat.entry(stat.as_str()).or_default().push(*id);
        }
        for (stat, ids) in by_stat {
            for chunk in ids.chunks(CHUNK) {
                message_part::Entity::update_many()
                    .col_expr(message_part::Column::ReceiptStat, Expr::value(stat))
                    .col_expr(message_part::Column::UpdatedAt, Expr::value(now))
                    .filter(message_part::Column::Id.is_in(chunk.iter().copied()))
                    .filter(message_part::Column::ReceiptStat.is_null())
                    .exec(txn)
                    .await?;
            }
        }

        // The messages touched, each under its own guard (the status it was read in), in one
        // statement per chunk: its new status (if any) and its event count.
        let mut event_rows = Vec::new();
        let mut changed: Vec<(Message, i32)> = Vec::new();
        let busy: Vec<&Touched> = touched.values().filter(|t| !t.events.is_empty()).collect();
        let mut after_of: HashMap<Uuid, message::Model> = HashMap::new();
        for chunk in busy.chunks(CHUNK) {
            let rows = guarded_receipt_updates(txn, chunk, now).await?;
            after_of.extend(rows.into_iter().map(|m| (m.id, m)));
        }
        for t in busy {
            let added = i32::try_from(t.events.len()).unwrap_or(i32::MAX);
            let Some(after) = after_of.remove(&t.model.id) else {
                return Err(DbErr::Custom(format!(
                    "message {} changed while its receipts were applied",
                    t.model.id
                )));
            };
            let first = after.event_count - added + 1;
            for (i, (kind, status, detail)) in t.events.iter().enumerate() {
                let number = first + i32::try_from(i).unwrap_or(i32::MAX);
                event_rows.push(event_row(
                    (after.id, after.org_id),
                    number,
                    *kind,
                    *status,
                    detail,
                    now,
                ));
                if t.change_event == Some(i) {
                    changed.push((rows::message(after.clone())?, number));
                }
            }
        }
        insert_events(txn, event_rows).await?;
        status_webhooks(txn, &self.hooks, &changed, now).await?;
        Ok((matched, changed.iter().map(|(m, _)| m.status).collect()))
    }

    /// The part a receipt names among the parts read: for the first of its keys that any part
    /// has, the newest such part without a final receipt, else the newest one (a repeated
    /// receipt) — as [`System::outbound_part_by_carrier_id`] chooses.
    fn part_for(
        &self,
        touched: &HashMap<Uuid, Touched>,
        carrier: &str,
        keys: &[String],
    ) -> Option<(Uuid, i64)> {
        for key in keys {
            let best = touched
                .values()
                .flat_map(|t| t.parts.iter())
                .filter(|p| {
                    p.carrier.as_deref() == Some(carrier) && p.carrier_key.as_deref() == Some(key)
                })
                .max_by_key(|p| (p.receipt_stat.is_none(), p.submitted_at, p.id));
            if let Some(part) = best {
                return Some((part.message_id, part.id));
            }
        }
        None
    }
}
