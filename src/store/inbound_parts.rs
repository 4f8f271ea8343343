//! Parts of inbound concatenated messages, stored as they arrive (before the SMSC is answered)
//! and removed once their message is stored whole or part by part.

use chrono::{DateTime, Utc};
use entity::inbound_part as part;
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::System;
pub use crate::domain::submission::{PartAdded, PartLimits, PartSet};

/// The rows of `set`'s parts.
fn in_set(set: &PartSet) -> Condition {
    Condition::all()
        .add(part::Column::Carrier.eq(&set.carrier))
        .add(part::Column::Sender.eq(&set.sender))
        .add(part::Column::Recipient.eq(&set.recipient))
        .add(part::Column::Reference.eq(i32::from(set.reference)))
        .add(part::Column::Total.eq(i32::from(set.total)))
}

/// A message's waiting parts: (id, part number, text), in order.
pub type WaitingParts = Vec<(Uuid, u8, String)>;

impl System {
    /// Stores part `sequence` of `set` (a repeat replaces the earlier copy), within `limits`;
    /// tells whether the message is now whole.
    pub async fn add_inbound_part(
        &self,
        set: &PartSet,
        sequence: u8,
        text: &str,
        limits: PartLimits,
        now: DateTime<Utc>,
    ) -> Result<PartAdded, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        super::one_at_a_time(&txn, &format!("inbound-parts/{}", set.carrier)).await?;
        let of_set = || part::Entity::find().filter(in_set(set));
        let known = of_set().one(&txn).await?.is_some();
        let waiting: Vec<(String, String, i32, i32, i64)> = part::Entity::find()
            .select_only()
            .column(part::Column::Sender)
            .column(part::Column::Recipient)
            .column(part::Column::Reference)
            .column(part::Column::Total)
            .column_as(Expr::cust("SUM(LENGTH(text))"), "bytes")
            .filter(part::Column::Carrier.eq(&set.carrier))
            .group_by(part::Column::Sender)
            .group_by(part::Column::Recipient)
            .group_by(part::Column::Reference)
            .group_by(part::Column::Total)
            .into_tuple()
            .all(&txn)
            .await?;
        let bytes: u64 = waiting.iter().map(|w| w.4.max(0) as u64).sum();
        let sets = waiting.len() as u64;
        if (!known && sets >= limits.sets) || bytes + text.len() as u64 > limits.bytes {
            return Ok(PartAdded::Full);
        }
        part::Entity::delete_many()
            .filter(in_set(set))
            .filter(part::Column::Sequence.eq(i32::from(sequence)))
            .exec(&txn)
            .await?;
        part::Entity::insert(part::ActiveModel {
            id: Set(Uuid::now_v7()),
            carrier: Set(set.carrier.clone()),
            sender: Set(set.sender.clone()),
            recipient: Set(set.recipient.clone()),
            reference: Set(i32::from(set.reference)),
            total: Set(i32::from(set.total)),
            sequence: Set(i32::from(sequence)),
            text: Set(text.to_owned()),
            received_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let parts = of_set()
            .order_by_asc(part::Column::Sequence)
            .all(&txn)
            .await?;
        txn.commit().await?;
        let whole = parts.len() == usize::from(set.total)
            && parts
                .iter()
                .zip(1..)
                .all(|(p, n): (&part::Model, i32)| p.sequence == n);
        if !whole {
            return Ok(PartAdded::Waiting);
        }
        let first = parts.iter().map(|p| p.id).min().unwrap_or_default();
        Ok(PartAdded::Complete {
            texts: parts.into_iter().map(|p| p.text).collect(),
            first,
        })
    }

    /// Removes the stored parts of `set` (its message was stored).
    pub async fn remove_inbound_parts(&self, set: &PartSet) -> Result<(), DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        part::Entity::delete_many()
            .filter(in_set(set))
            .exec(&w)
            .await?;
        Ok(())
    }

    /// The parts of `carrier`'s messages whose first part arrived before `before`, by message,
    /// each message's parts in order with their ids.
    pub async fn stale_inbound_parts(
        &self,
        carrier: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<(PartSet, WaitingParts)>, DbErr> {
        let rows = part::Entity::find()
            .filter(part::Column::Carrier.eq(carrier))
            .order_by_asc(part::Column::Sender)
            .order_by_asc(part::Column::Recipient)
            .order_by_asc(part::Column::Reference)
            .order_by_asc(part::Column::Total)
            .order_by_asc(part::Column::Sequence)
            .all(&self.db)
            .await?;
        let mut sets: Vec<(PartSet, WaitingParts, DateTime<Utc>)> = Vec::new();
        for row in rows {
            let set = PartSet {
                carrier: row.carrier,
                sender: row.sender,
                recipient: row.recipient,
                reference: u16::try_from(row.reference).unwrap_or_default(),
                total: u8::try_from(row.total).unwrap_or_default(),
            };
            let sequence = u8::try_from(row.sequence).unwrap_or_default();
            match sets.last_mut() {
                Some((last, parts, first_at)) if *last == set => {
                    parts.push((row.id, sequence, row.text));
                    *first_at = (*first_at).min(row.received_at);
                }
                _ => sets.push((set, vec![(row.id, sequence, row.text)], row.received_at)),
            }
        }
        Ok(sets
            .into_iter()
            .filter(|(_, _, first_at)| *first_at < before)
            .map(|(set, parts, _)| (set, parts))
            .collect())
    }
}
