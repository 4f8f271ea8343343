//! The send path's group commit: the rule reads and the inserts of a batch of concurrent sends in
//! one transaction, with a constant number of statements per batch (not per send).

use std::collections::HashMap;

use entity::{consent, lookup, message, phone_number};
use sea_orm::{
    sea_query::{Alias, Asterisk, Query, SelectStatement, UnionType},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, TryIntoModel,
};
use uuid::Uuid;

use super::{rows, System, Tenant};
use crate::domain::message::NewMessage;
use crate::domain::{
    consent::{ConsentSource, ConsentState},
    idempotency::Completion,
    lookup::Lookup,
    message::Message,
    organization::KeyMode,
    PhoneNumber, Timestamp,
};

/// What the send rules read about one send, inside its batch's transaction.
#[derive(Debug, Clone, Default)]
pub struct SendFacts {
    /// Whether the sending organization owns `from`.
    pub owns_from: bool,
    /// The newest lookup of `to` made in the organization and mode, if any.
    pub lookup: Option<Lookup>,
    /// The consent state of `to` in the organization and mode.
    pub consent: ConsentState,
}

/// The rules' verdict on one send: the message to store, or the refusal `R` to answer.
pub type Decide<R> = Box<dyn Fn(&SendFacts) -> Result<NewMessage, R> + Send + Sync>;

/// One send waiting for its batch.
pub struct QueuedSend<R> {
    pub org_id: Uuid,
    pub mode: KeyMode,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    /// Applies the send rules to the facts read for this send.
    pub decide: Decide<R>,
    /// The `Idempotency-Key` outcome to record with the message.
    pub completion: Option<Completion<Message>>,
}

/// How one send of a batch ended.
#[allow(clippy::large_enum_variant)] // short-lived, one per send
pub enum SendOutcome<R> {
    /// Stored as `queued`; the batch committed.
    Stored(Message),
    /// The rules refused it; nothing was stored for it.
    Refused(R),
    /// Its `Idempotency-Key` was taken over by a retry meanwhile; nothing was stored for it.
    TakenOver,
}

/// SQLite allows at most 500 terms in one compound select; batches read their facts in chunks
/// below that.
const UNION_CHUNK: usize = 200;

type Recipient = (Uuid, KeyMode, String);

/// `SELECT * FROM (member) AS tN UNION ALL …`: one statement for the newest row of several keys.
fn union_of(members: Vec<SelectStatement>) -> Option<SelectStatement> {
    let mut wrapped = members.into_iter().enumerate().map(|(i, member)| {
        Query::select()
            .column(Asterisk)
            .from_subquery(member, Alias::new(format!("t{i}")))
            .to_owned()
    });
    let mut first = wrapped.next()?;
    for next in wrapped {
        first.union(UnionType::All, next);
    }
    Some(first)
}

/// The newest lookup of each recipient.
async fn latest_lookups(
    txn: &DatabaseTransaction,
    recipients: &[Recipient],
) -> Result<HashMap<Recipient, Lookup>, DbErr> {
    let backend = txn.get_database_backend();
    let mut found = HashMap::new();
    for chunk in recipients.chunks(UNION_CHUNK) {
        let members = chunk.iter().map(|(org, mode, number)| {
            lookup::Entity::find()
                .filter(lookup::Column::OrgId.eq(*org))
                .filter(lookup::Column::Mode.eq(*mode))
                .filter(lookup::Column::PhoneNumber.eq(number.as_str()))
                .order_by_desc(lookup::Column::LookedUpAt)
                .order_by_desc(lookup::Column::Id)
                .limit(1)
                .into_query()
        });
        let Some(query) = union_of(members.collect()) else {
            continue;
        };
        let rows = lookup::Entity::find()
            .from_raw_sql(backend.build(&query))
            .all(txn)
            .await?;
        for row in rows {
            let key = (row.org_id, row.mode, row.phone_number.clone());
            found.insert(key, rows::lookup(row));
        }
    }
    Ok(found)
}

/// The consent state of each recipient: its newest record and its newest keyword record, two
/// index seeks per recipient in one union per few hundred.
async fn consent_states(
    txn: &impl ConnectionTrait,
    recipients: &[Recipient],
) -> Result<HashMap<Recipient, ConsentState>, DbErr> {
    let backend = txn.get_database_backend();
    let mut found: HashMap<Recipient, ConsentState> = HashMap::new();
    // The (recorded_at, id) of each state's records, to keep the newest of each kind.
    let mut newest: HashMap<(Recipient, bool), (chrono::DateTime<chrono::Utc>, Uuid)> =
        HashMap::new();
    for chunk in recipients.chunks(UNION_CHUNK / 2) {
        let members = chunk.iter().flat_map(|(org, mode, number)| {
            let newest = || {
                consent::Entity::find()
                    .filter(consent::Column::OrgId.eq(*org))
                    .filter(consent::Column::Mode.eq(*mode))
                    .filter(consent::Column::PhoneNumber.eq(number.as_str()))
                    .order_by_desc(consent::Column::RecordedAt)
                    .order_by_desc(consent::Column::Id)
                    .limit(1)
            };
            [
                newest().into_query(),
                newest()
                    .filter(consent::Column::Source.eq(ConsentSource::Keyword))
                    .into_query(),
            ]
        });
        let Some(query) = union_of(members.collect()) else {
            continue;
        };
        let rows = consent::Entity::find()
            .from_raw_sql(backend.build(&query))
            .all(txn)
            .await?;
        for row in rows {
            let key = (row.org_id, row.mode, row.phone_number.clone());
            let at = (row.recorded_at, row.id);
            let state = found.entry(key.clone()).or_default();
            let is_keyword = row.source == ConsentSource::Keyword;
            if is_keyword
                && newest
                    .get(&(key.clone(), true))
                    .is_none_or(|seen| at > *seen)
            {
                newest.insert((key.clone(), true), at);
                state.keyword = Some(rows::consent(row.clone()));
            }
            if newest
                .get(&(key.clone(), false))
                .is_none_or(|seen| at > *seen)
            {
                newest.insert((key, false), at);
                state.latest = Some(rows::consent(row));
            }
        }
    }
    Ok(found)
}

/// Who owns each of `numbers`.
async fn owners(
    txn: &DatabaseTransaction,
    numbers: Vec<String>,
) -> Result<HashMap<String, Uuid>, DbErr> {
    let mut found = HashMap::new();
    for chunk in numbers.chunks(UNION_CHUNK) {
        let rows: Vec<(String, Uuid)> = phone_number::Entity::find()
            .select_only()
            .column(phone_number::Column::PhoneNumber)
            .column(phone_number::Column::OrgId)
            .filter(phone_number::Column::PhoneNumber.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

impl System {
    /// The consent state of each of `recipients` (organization, mode, number), in one query per
    /// few hundred: the worker's consent re-check of a claimed batch. A recipient with no record
    /// has the empty state.
    pub async fn consent_states(
        &self,
        recipients: &[(Uuid, KeyMode, PhoneNumber)],
    ) -> Result<HashMap<(Uuid, KeyMode, PhoneNumber), ConsentState>, DbErr> {
        let mut keys: Vec<Recipient> = recipients
            .iter()
            .map(|(org, mode, number)| (*org, *mode, number.as_str().to_owned()))
            .collect();
        keys.sort_unstable_by(|a, b| (a.0, a.1.as_str(), &a.2).cmp(&(b.0, b.1.as_str(), &b.2)));
        keys.dedup();
        let found = consent_states(&self.db, &keys).await?;
        Ok(recipients
            .iter()
            .map(|(org, mode, number)| {
                let state = found
                    .get(&(*org, *mode, number.as_str().to_owned()))
                    .cloned()
                    .unwrap_or_default();
                ((*org, *mode, number.clone()), state)
            })
            .collect())
    }

    /// Commits a batch of sends: reads every send's facts, applies each send's rules, and stores
    /// the accepted ones (message, first event, webhook event, `Idempotency-Key` outcome), all
    /// in one transaction. The outcomes are in the order of `sends`; on an error nothing of the
    /// batch is stored.
    pub async fn commit_sends<R>(
        &self,
        sends: &[QueuedSend<R>],
    ) -> Result<Vec<SendOutcome<R>>, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;

        let mut froms: Vec<String> = sends.iter().map(|s| s.from.as_str().to_owned()).collect();
        froms.sort_unstable();
        froms.dedup();
        let owners = owners(&txn, froms).await?;
        let mut recipients: Vec<Recipient> = sends
            .iter()
            .map(|s| (s.org_id, s.mode, s.to.as_str().to_owned()))
            .collect();
        recipients
            .sort_unstable_by(|a, b| (a.0, a.1.as_str(), &a.2).cmp(&(b.0, b.1.as_str(), &b.2)));
        recipients.dedup();
        let lookups = latest_lookups(&txn, &recipients).await?;
        let consents = consent_states(&txn, &recipients).await?;

        let now = Timestamp::now().as_datetime();
        let mut outcomes = Vec::with_capacity(sends.len());
        let mut message_rows = Vec::new();
        let mut event_rows = Vec::new();
        for send in sends {
            let key = (send.org_id, send.mode, send.to.as_str().to_owned());
            let facts = SendFacts {
                owns_from: owners.get(send.from.as_str()) == Some(&send.org_id),
                lookup: lookups.get(&key).cloned(),
                consent: consents.get(&key).cloned().unwrap_or_default(),
            };
            let new = match (send.decide)(&facts) {
                Ok(new) => new,
                Err(refusal) => {
                    outcomes.push(SendOutcome::Refused(refusal));
                    continue;
                }
            };
            let row = super::transitions::message_row(send.org_id, send.mode, new, now, 1)?;
            let model = row.clone().try_into_model()?;
            let message = rows::message(model)?;
            if let Some(completion) = &send.completion {
                let tenant = Tenant {
                    db: self.db.clone(),
                    org_id: send.org_id,
                    mode: send.mode,
                    hooks: self.hooks.clone(),
                    gate: self.gate.clone(),
                };
                let body = (completion.render)(&message);
                match tenant
                    .complete_idempotent(&txn, &completion.hold, completion.status, &body)
                    .await
                {
                    Ok(()) => {}
                    Err(DbErr::Custom(text)) if text == super::idempotency::TAKEN_OVER => {
                        outcomes.push(SendOutcome::TakenOver);
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            let created = super::transitions::creation(
                message.direction,
                message.status == crate::domain::message::MessageStatus::Scheduled,
            )?;
            event_rows.push(super::transitions::event_row(
                (message.id, message.org_id),
                1,
                created.event.0,
                created.to,
                &created.event.1,
                now,
            ));
            message_rows.push(row);
            outcomes.push(SendOutcome::Stored(message));
        }

        // Row-count chunks keep every statement under both databases' bound-parameter limits.
        for chunk in message_rows.chunks(UNION_CHUNK) {
            message::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        super::transitions::insert_events(&txn, event_rows).await?;
        let mut entered = Vec::new();
        for outcome in &outcomes {
            if let SendOutcome::Stored(message) = outcome {
                if let Some(kind) = super::transitions::creation(
                    message.direction,
                    message.status == crate::domain::message::MessageStatus::Scheduled,
                )?
                .webhook
                {
                    entered.push((message.clone(), 1, kind));
                }
            }
        }
        super::transitions::raise_webhooks(&txn, &self.hooks, &entered, now).await?;
        txn.commit().await?;
        self.hooks.committed();
        let mut stored = HashMap::new();
        for outcome in &outcomes {
            if let SendOutcome::Stored(message) = outcome {
                *stored.entry(message.status).or_insert(0u64) += 1;
            }
        }
        for (status, n) in stored {
            super::delivery::count_status(status, n);
        }
        Ok(outcomes)
    }
}
