//! Carrier receipts in batches: a batch of receipts matched to their parts, stored, and applied
//! to their messages through the one writer in one transaction, with a constant number of
//! statements per batch.

use std::collections::HashMap;

use entity::{carrier_receipt, message, message_part};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{
    delivery::{count_status, EventDetail},
    transitions::{PartWrite, Step},
    System,
};
use crate::domain::{
    lifecycle::is_final_stat,
    message::MessageStatus,
    submission::carrier_id_keys,
    transition::{plan, Cause, Plan, Write},
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

const CHUNK: usize = 200;

/// What a batch's receipts do to one message: the plans, in order, and its parts.
struct Touched {
    model: message::Model,
    /// The status as the plans leave it.
    status: MessageStatus,
    plans: Vec<Plan>,
    parts: Vec<message_part::Model>,
    /// Parts given their first final receipt: `(part number, stat)`.
    finals: Vec<(u8, String)>,
}

impl System {
    /// Stores `receipts` and applies each matched one to its message, in order, in one
    /// transaction: the part's final receipt, an event, and the status `rule` gives. Returns,
    /// for each receipt, whether it matched a part (an unmatched one is kept until its part is
    /// known). On an error nothing of the batch is stored.
    pub async fn record_receipts(&self, receipts: &[IncomingReceipt]) -> Result<Vec<bool>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let (matched, changed) = self.record_receipts_in(&txn, receipts).await?;
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
    pub async fn rematch_receipts(&self, ids: &[i64]) -> Result<usize, DbErr> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let (matched, changed) = self.rematch_in(&txn, ids).await?;
        txn.commit().await?;
        self.hooks.committed();
        for status in changed {
            count_status(status, 1);
        }
        Ok(matched)
    }

    /// Records the carrier's answers (`steps`, through the one writer) and, in the same
    /// transaction, matches and applies the stored receipts that name an accepted part of a
    /// message now `sent` — receipts that came before its answer was recorded. `accepted` gives
    /// each step's accepted `(carrier, carrier id)` pairs. For each step, the message after it,
    /// or `None` when its guard no longer held.
    pub async fn record_answers(
        &self,
        steps: &[Step],
        accepted: &[Vec<(String, String)>],
    ) -> Result<Vec<Option<crate::domain::message::Message>>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let made = super::transitions::apply(&txn, &self.hooks, steps, now).await?;
        let wanted: Vec<(&str, &str)> = made
            .iter()
            .zip(accepted)
            .filter(|(m, _)| m.as_ref().is_some_and(|m| m.status == MessageStatus::Sent))
            .flat_map(|(_, pairs)| pairs.iter().map(|(c, i)| (c.as_str(), i.as_str())))
            .collect();
        let waiting = super::delivery::unmatched_receipts_for(&txn, &wanted).await?;
        let ids: Vec<i64> = waiting.iter().map(|r| r.id).collect();
        let (_, receipts_changed) = self.rematch_in(&txn, &ids).await?;
        txn.commit().await?;
        self.hooks.committed();
        for (step, model) in steps.iter().zip(&made) {
            if let (Some(model), true) = (model, step.plans.iter().any(Plan::changes_status)) {
                count_status(model.status, 1);
            }
        }
        for status in receipts_changed {
            count_status(status, 1);
        }
        super::transitions::messages(made)
    }

    /// Takes the stored receipts `ids` that are still unmatched out and records them anew inside
    /// `txn`, as arriving ones are recorded, keeping when they arrived: how many matched, and
    /// the statuses messages moved to.
    async fn rematch_in(
        &self,
        txn: &DatabaseTransaction,
        ids: &[i64],
    ) -> Result<(usize, Vec<MessageStatus>), DbErr> {
        if ids.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut taken = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut query = carrier_receipt::Entity::find()
                .filter(carrier_receipt::Column::Id.is_in(chunk.iter().copied()))
                .filter(carrier_receipt::Column::MessageId.is_null());
            if txn.get_database_backend() == DbBackend::Postgres {
                // Another process matching the same receipts waits, then finds them gone.
                query = query.lock_exclusive();
            }
            taken.extend(query.all(txn).await?);
        }
        // In the order they arrived: the first final receipt of a part decides.
        taken.sort_by_key(|r| r.id);
        for chunk in taken.chunks(CHUNK) {
            carrier_receipt::Entity::delete_many()
                .filter(carrier_receipt::Column::Id.is_in(chunk.iter().map(|r| r.id)))
                .exec(txn)
                .await?;
        }
        let incoming: Vec<IncomingReceipt> = taken
            .into_iter()
            .map(|r| IncomingReceipt {
                detail: EventDetail {
                    carrier_message_id: Some(r.carrier_message_id),
                    stat: Some(r.stat),
                    err: r.carrier_err,
                    done_date: r.done_date,
                    error_code: None,
                    note: None,
                    connection: Some(r.carrier.clone()),
                },
                carrier: r.carrier,
                received_at: Some(r.received_at),
            })
            .collect();
        let (matched, changed) = self.record_receipts_in(txn, &incoming).await?;
        Ok((matched.into_iter().filter(|m| *m).count(), changed))
    }

    /// [`System::record_receipts`] inside `txn`: whether each receipt matched, and the statuses
    /// messages moved to.
    async fn record_receipts_in(
        &self,
        txn: &DatabaseTransaction,
        receipts: &[IncomingReceipt],
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
                        status: model.status,
                        model,
                        plans: Vec::new(),
                        parts: Vec::new(),
                        finals: Vec::new(),
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
                        let number = u8::try_from(part.part_number).unwrap_or(u8::MAX);
                        t.finals.push((number, stat.clone()));
                    }
                }
            }
            let cause = Cause::Receipt {
                detail: receipt.detail.clone(),
                finals: t.parts.iter().map(|p| p.receipt_stat.clone()).collect(),
            };
            let planned = plan(Some(t.status), cause).map_err(|e| DbErr::Custom(e.to_string()))?;
            t.status = planned.to;
            t.plans.push(planned);
        }

        for chunk in receipt_rows.chunks(CHUNK) {
            carrier_receipt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        // The messages touched, each under the status it was read in, through the one writer.
        let steps: Vec<Step> = touched
            .into_values()
            .filter(|t| !t.plans.is_empty())
            .map(|t| Step {
                id: t.model.id,
                parts: t
                    .finals
                    .into_iter()
                    .map(|(number, stat)| PartWrite {
                        number,
                        receipt_stat: Write::Set(stat),
                        ..Default::default()
                    })
                    .collect(),
                plans: t.plans,
            })
            .collect();
        let after = super::transitions::apply(txn, &self.hooks, &steps, now).await?;
        let mut changed = Vec::new();
        for (step, after) in steps.iter().zip(after) {
            let Some(after) = after else {
                return Err(DbErr::Custom(format!(
                    "message {} changed while its receipts were applied",
                    step.id
                )));
            };
            if step.plans.iter().any(Plan::changes_status) {
                changed.push(after.status);
            }
        }
        Ok((matched, changed))
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
