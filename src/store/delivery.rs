//! Queue, status changes and receipts: system work, on the [`System`] handle. Every status change
//! is a compare-and-set on the current status, guarded by the status machine, and written together
//! with its event in one transaction.

use chrono::{DateTime, Utc};
use entity::{carrier_receipt, message, message_event, message_part};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{rows, System};
use crate::domain::submission::{carrier_id_key, carrier_id_keys};
use crate::domain::{
    lifecycle::{sources_of, transition, EventKind, MessageErrorCode, TransitionRefused},
    message::{Direction, KeyMode, Message, MessageStatus, Part, PartState, Priority},
    webhooks::event_for_status,
    Timestamp,
};

/// Counts messages entering `status` (`agentmessage_messages_total`), after the commit.
pub(super) fn count_status(status: MessageStatus, n: u64) {
    if n > 0 {
        metrics::counter!("agentmessage_messages_total", "status" => status.as_str()).increment(n);
    }
}

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
    /// On `sending → queued`: not claimed again before this time.
    pub retry_at: Option<DateTime<Utc>>,
    /// Parts whose submission state changes with the message, in the same transaction.
    pub parts: Vec<PartUpdate>,
}

/// A new submission state of one part.
#[derive(Debug, Clone)]
pub struct PartUpdate {
    pub number: u8,
    pub state: PartState,
    /// `(carrier, carrier_message_id)` when accepted.
    pub carrier: Option<(String, String)>,
    /// When a deferred part may be submitted again.
    pub retry_at: Option<DateTime<Utc>>,
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
            retry_at: None,
            parts: Vec::new(),
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
    let row = event_row((message_id, org_id), number, kind, status, detail, at);
    message_event::Entity::insert(row)
        .exec_without_returning(txn)
        .await?;
    Ok(number)
}

/// Writes `part`'s new state inside `txn`.
async fn update_part(
    txn: &DatabaseTransaction,
    message_id: Uuid,
    part: &PartUpdate,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut update = message_part::Entity::update_many()
        .col_expr(message_part::Column::State, Expr::value(part.state))
        .col_expr(message_part::Column::RetryAt, Expr::value(part.retry_at))
        .col_expr(message_part::Column::UpdatedAt, Expr::value(now))
        .filter(message_part::Column::MessageId.eq(message_id))
        .filter(message_part::Column::PartNumber.eq(i32::from(part.number)));
    if let Some((carrier, carrier_id)) = &part.carrier {
        update = update
            .col_expr(message_part::Column::Carrier, Expr::value(carrier.as_str()))
            .col_expr(
                message_part::Column::CarrierMessageId,
                Expr::value(carrier_id.as_str()),
            )
            .col_expr(
                message_part::Column::CarrierKey,
                Expr::value(carrier_id_key(carrier_id)),
            )
            .col_expr(message_part::Column::SubmittedAt, Expr::value(now));
    }
    update.exec(txn).await?;
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
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let now = Timestamp::now().as_datetime();
        let of = (message.id, message.org_id);
        insert_event_of(&txn, of, kind, message.status, &detail, now).await?;
        txn.commit().await
    }

    /// Applies `change` if the message is still in `change.from` (and, when given, still leased
    /// to `change.lease_owner`). `None` when it was not.
    pub async fn change_status(&self, id: Uuid, change: Change) -> Result<Option<Message>, DbErr> {
        Ok(self.change_statuses(&[(id, change)]).await?.pop().flatten())
    }

    /// Applies each change as [`System::change_status`] does, all in one transaction (a worker's
    /// batch); `None` for each one that was not made.
    pub async fn change_statuses(
        &self,
        changes: &[(Uuid, Change)],
    ) -> Result<Vec<Option<Message>>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let borrowed: Vec<(Uuid, &Change)> = changes.iter().map(|(id, c)| (*id, c)).collect();
        let changed = change_statuses_in(&txn, &self.hooks, &borrowed, now).await?;
        txn.commit().await?;
        self.hooks.committed();
        for ((_, change), made) in changes.iter().zip(&changed) {
            if made.is_some() {
                count_status(change.to(), 1);
            }
        }
        changed
            .into_iter()
            .map(|m| m.map(rows::message).transpose())
            .collect()
    }

    /// Writes each message's parts the first time (`total` under `reference`) and records the
    /// attempt of those not yet accepted (`attempted_at` set, the parts `submitting`, a
    /// `submission_attempt` event), all in one
    /// transaction. For each message: every part and the parts to submit now, or `None` when its
    /// lease was lost (the carrier must not be called).
    pub async fn begin_attempts(
        &self,
        owner: &str,
        items: &[(Uuid, u8, u8)],
    ) -> Result<Vec<Option<(Vec<Part>, Vec<Part>)>>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        // The attempt of every message still leased to `owner` and not attempted, with its
        // `submission_attempt` event counted on the row, in one statement.
        let began: Vec<message::Model> = message::Entity::update_many()
            .col_expr(message::Column::AttemptedAt, Expr::value(now))
            .col_expr(
                message::Column::EventCount,
                Expr::col(message::Column::EventCount).add(1),
            )
            .filter(message::Column::Id.is_in(items.iter().map(|(id, _, _)| *id)))
            .filter(message::Column::Status.eq(MessageStatus::Sending))
            .filter(message::Column::LeaseOwner.eq(owner))
            .filter(message::Column::AttemptedAt.is_null())
            .filter(message::Column::LeaseExpiresAt.gt(now))
            .exec_with_returning(&txn)
            .await?;
        let began: std::collections::HashMap<Uuid, message::Model> =
            began.into_iter().map(|m| (m.id, m)).collect();
        let ids: Vec<Uuid> = began.keys().copied().collect();
        let mut parts = parts_of_all(&txn, &ids).await?;
        // Parts are written the first time a message is attempted.
        let missing: Vec<message_part::ActiveModel> = items
            .iter()
            .filter(|(id, _, _)| began.contains_key(id) && !parts.contains_key(id))
            .flat_map(|(id, total, reference)| {
                (1..=*total).map(move |number| message_part::ActiveModel {
                    id: sea_orm::ActiveValue::NotSet,
                    message_id: Set(*id),
                    part_number: Set(i32::from(number)),
                    total_parts: Set(i32::from(*total)),
                    reference: Set(i32::from(*reference)),
                    state: Set(PartState::Pending),
                    carrier: Set(None),
                    carrier_message_id: Set(None),
                    carrier_key: Set(None),
                    submitted_at: Set(None),
                    receipt_stat: Set(None),
                    retry_at: Set(None),
                    updated_at: Set(now),
                })
            })
            .collect();
        if !missing.is_empty() {
            for chunk in missing.chunks(200) {
                message_part::Entity::insert_many(chunk.to_vec())
                    .on_conflict(
                        sea_orm::sea_query::OnConflict::columns([
                            message_part::Column::MessageId,
                            message_part::Column::PartNumber,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?;
            }
            parts = parts_of_all(&txn, &ids).await?;
        }
        let mut begun = Vec::with_capacity(items.len());
        let mut submitting = Vec::new();
        let mut events = Vec::new();
        for (id, _, _) in items {
            let (Some(model), Some(rows)) = (began.get(id), parts.get(id)) else {
                begun.push(None);
                continue;
            };
            submitting.extend(
                rows.iter()
                    .filter(|p| p.state == PartState::Pending)
                    .map(|p| p.id),
            );
            events.push(event_row(
                (model.id, model.org_id),
                model.event_count,
                EventKind::SubmissionAttempt,
                MessageStatus::Sending,
                &EventDetail::default(),
                now,
            ));
            let all: Vec<Part> = rows.iter().cloned().map(rows::part).collect();
            let pending = crate::domain::message::pending_parts(&all);
            begun.push(Some((all, pending)));
        }
        for chunk in submitting.chunks(200) {
            message_part::Entity::update_many()
                .col_expr(
                    message_part::Column::State,
                    Expr::value(PartState::Submitting),
                )
                .col_expr(message_part::Column::UpdatedAt, Expr::value(now))
                .filter(message_part::Column::Id.is_in(chunk.iter().copied()))
                .filter(message_part::Column::State.eq(PartState::Pending))
                .exec(&txn)
                .await?;
        }
        insert_events(&txn, events).await?;
        txn.commit().await?;
        Ok(begun)
    }
}

/// The parts of each of `ids`, in part order.
async fn parts_of_all(
    txn: &DatabaseTransaction,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Vec<message_part::Model>>, DbErr> {
    let mut found: std::collections::HashMap<Uuid, Vec<message_part::Model>> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let rows = message_part::Entity::find()
            .filter(message_part::Column::MessageId.is_in(chunk.iter().copied()))
            .order_by_asc(message_part::Column::PartNumber)
            .all(txn)
            .await?;
        for row in rows {
            found.entry(row.message_id).or_default().push(row);
        }
    }
    Ok(found)
}

/// The guarded update of [`System::change_status`] inside `txn`, counting the change's event on
/// the row in the same statement; the row after it with the event's number, or `None` when the
/// message was not in `change.from` (or not leased to `change.lease_owner`).
async fn guarded_update(
    txn: &DatabaseTransaction,
    id: Uuid,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Option<message::Model>, DbErr> {
    let mut update = message::Entity::update_many()
        .col_expr(message::Column::Status, Expr::value(change.to))
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            message::Column::EventCount,
            Expr::col(message::Column::EventCount).add(1),
        )
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
    if change.to == MessageStatus::Queued {
        // Back to the queue: a later claim attempts it afresh (only its unaccepted parts).
        update = update
            .col_expr(
                message::Column::AttemptedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(message::Column::RetryAt, Expr::value(change.retry_at));
    }
    Ok(update.exec_with_returning(txn).await?.pop())
}

/// `CASE id WHEN … THEN … ELSE otherwise END` over messages: each one's own value where it has
/// one (`otherwise` alone when none has).
pub(super) fn case_by_message(
    values: impl IntoIterator<Item = (Uuid, Option<sea_orm::sea_query::SimpleExpr>)>,
    otherwise: sea_orm::sea_query::SimpleExpr,
) -> sea_orm::sea_query::SimpleExpr {
    let mut case = sea_orm::sea_query::CaseStatement::new();
    let mut any = false;
    for (id, value) in values {
        if let Some(v) = value {
            case = case.case(message::Column::Id.eq(id), v);
            any = true;
        }
    }
    if any {
        case.finally(otherwise).into()
    } else {
        otherwise
    }
}

/// [`case_by_message`] over `changes`.
fn per_message(
    changes: &[(Uuid, &Change)],
    value: impl Fn(&Change) -> Option<sea_orm::sea_query::SimpleExpr>,
    otherwise: sea_orm::sea_query::SimpleExpr,
) -> sea_orm::sea_query::SimpleExpr {
    case_by_message(changes.iter().map(|(id, c)| (*id, value(c))), otherwise)
}

/// The guarded updates of [`guarded_update`] for several distinct messages in one statement:
/// each row changes only under its own guard. Returns the rows changed.
async fn guarded_updates(
    txn: &DatabaseTransaction,
    changes: &[(Uuid, &Change)],
    now: DateTime<Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    use sea_orm::sea_query::{Condition, SimpleExpr};
    let keep = |c: message::Column| -> SimpleExpr { Expr::col(c) };
    let null_time = || -> SimpleExpr { Expr::value(Option::<DateTime<Utc>>::None) };
    let mut guard = Condition::any();
    for (id, change) in changes {
        let mut one = Condition::all()
            .add(message::Column::Id.eq(*id))
            .add(message::Column::Status.eq(change.from))
            .add(message::Column::Status.is_in(sources_of(change.to)));
        if let Some(owner) = &change.lease_owner {
            one = one.add(message::Column::LeaseOwner.eq(owner.as_str()));
        }
        guard = guard.add(one);
    }
    let update = message::Entity::update_many()
        .col_expr(
            message::Column::Status,
            per_message(
                changes,
                |c| Some(Expr::value(c.to)),
                keep(message::Column::Status),
            ),
        )
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            message::Column::EventCount,
            Expr::col(message::Column::EventCount).add(1),
        )
        .col_expr(
            message::Column::LeaseOwner,
            per_message(
                changes,
                |c| (c.to != MessageStatus::Sending).then(|| Expr::value(Option::<String>::None)),
                keep(message::Column::LeaseOwner),
            ),
        )
        .col_expr(
            message::Column::LeaseExpiresAt,
            per_message(
                changes,
                |c| (c.to != MessageStatus::Sending).then(null_time),
                keep(message::Column::LeaseExpiresAt),
            ),
        )
        .col_expr(
            message::Column::ErrorCode,
            per_message(
                changes,
                |c| c.error_code.map(Expr::value),
                keep(message::Column::ErrorCode),
            ),
        )
        .col_expr(
            message::Column::ErrorMessage,
            per_message(
                changes,
                |c| c.error_message.as_deref().map(Expr::value),
                keep(message::Column::ErrorMessage),
            ),
        )
        .col_expr(
            message::Column::Carrier,
            per_message(
                changes,
                |c| {
                    c.carrier
                        .as_ref()
                        .map(|(carrier, _)| Expr::value(carrier.as_str()))
                },
                keep(message::Column::Carrier),
            ),
        )
        .col_expr(
            message::Column::CarrierMessageId,
            per_message(
                changes,
                |c| c.carrier.as_ref().map(|(_, id)| Expr::value(id.as_str())),
                keep(message::Column::CarrierMessageId),
            ),
        )
        .col_expr(
            message::Column::SentAt,
            per_message(
                changes,
                |c| c.carrier.as_ref().map(|_| Expr::value(now)),
                keep(message::Column::SentAt),
            ),
        )
        .col_expr(
            message::Column::AttemptedAt,
            per_message(
                changes,
                |c| (c.to == MessageStatus::Queued).then(null_time),
                keep(message::Column::AttemptedAt),
            ),
        )
        .col_expr(
            message::Column::RetryAt,
            per_message(
                changes,
                |c| (c.to == MessageStatus::Queued).then(|| Expr::value(c.retry_at)),
                keep(message::Column::RetryAt),
            ),
        )
        .filter(message::Column::Id.is_in(changes.iter().map(|(id, _)| *id)))
        .filter(guard);
    update.exec_with_returning(txn).await
}

/// [`update_part`] for several parts (of distinct messages or numbers) in one statement.
async fn update_parts(
    txn: &DatabaseTransaction,
    parts: &[(Uuid, &PartUpdate)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{CaseStatement, Condition, SimpleExpr};
    if parts.is_empty() {
        return Ok(());
    }
    let which = |id: Uuid, part: &PartUpdate| {
        Condition::all()
            .add(message_part::Column::MessageId.eq(id))
            .add(message_part::Column::PartNumber.eq(i32::from(part.number)))
    };
    let per_part = |value: &dyn Fn(&PartUpdate) -> Option<SimpleExpr>,
                    column: message_part::Column|
     -> SimpleExpr {
        let mut case = CaseStatement::new();
        let mut any = false;
        for (id, part) in parts {
            if let Some(v) = value(part) {
                case = case.case(which(*id, part), v);
                any = true;
            }
        }
        if any {
            case.finally(Expr::col(column)).into()
        } else {
            Expr::col(column)
        }
    };
    let mut all = Condition::any();
    for (id, part) in parts {
        all = all.add(which(*id, part));
    }
    message_part::Entity::update_many()
        .col_expr(
            message_part::Column::State,
            per_part(&|p| Some(Expr::value(p.state)), message_part::Column::State),
        )
        .col_expr(
            message_part::Column::RetryAt,
            per_part(
                &|p| Some(Expr::value(p.retry_at)),
                message_part::Column::RetryAt,
            ),
        )
        .col_expr(message_part::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            message_part::Column::Carrier,
            per_part(
                &|p| p.carrier.as_ref().map(|(c, _)| Expr::value(c.as_str())),
                message_part::Column::Carrier,
            ),
        )
        .col_expr(
            message_part::Column::CarrierMessageId,
            per_part(
                &|p| p.carrier.as_ref().map(|(_, id)| Expr::value(id.as_str())),
                message_part::Column::CarrierMessageId,
            ),
        )
        .col_expr(
            message_part::Column::CarrierKey,
            per_part(
                &|p| {
                    p.carrier
                        .as_ref()
                        .map(|(_, id)| Expr::value(carrier_id_key(id)))
                },
                message_part::Column::CarrierKey,
            ),
        )
        .col_expr(
            message_part::Column::SubmittedAt,
            per_part(
                &|p| p.carrier.as_ref().map(|_| Expr::value(now)),
                message_part::Column::SubmittedAt,
            ),
        )
        .filter(message_part::Column::MessageId.is_in(parts.iter().map(|(id, _)| *id)))
        .filter(all)
        .exec(txn)
        .await?;
    Ok(())
}

/// Applies `changes` inside `txn`: one guarded update per message (with its parts), then every
/// event in one insert and the webhook events. `None` for each change that was not made.
async fn change_statuses_in(
    txn: &DatabaseTransaction,
    hooks: &super::webhooks::Hooks,
    changes: &[(Uuid, &Change)],
    now: DateTime<Utc>,
) -> Result<Vec<Option<message::Model>>, DbErr> {
    let mut changed = Vec::with_capacity(changes.len());
    let mut events = Vec::new();
    let mut ids: Vec<Uuid> = changes.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut made = if changes.len() > 1 && ids.len() == changes.len() {
        // Several messages, each once: every guarded update in one statement, every part in
        // another.
        // Chunks keep each statement's expression within SQLite's depth limit.
        let mut made: std::collections::HashMap<Uuid, message::Model> =
            std::collections::HashMap::new();
        for chunk in changes.chunks(200) {
            made.extend(
                guarded_updates(txn, chunk, now)
                    .await?
                    .into_iter()
                    .map(|m| (m.id, m)),
            );
        }
        let parts: Vec<(Uuid, &PartUpdate)> = changes
            .iter()
            .filter(|(id, _)| made.contains_key(id))
            .flat_map(|(id, change)| change.parts.iter().map(move |p| (*id, p)))
            .collect();
        for chunk in parts.chunks(200) {
            update_parts(txn, chunk, now).await?;
        }
        changes
            .iter()
            .map(|(id, _)| made.remove(id))
            .collect::<Vec<_>>()
    } else {
        let mut made = Vec::with_capacity(changes.len());
        for (id, change) in changes {
            let model = guarded_update(txn, *id, change, now).await?;
            if model.is_some() {
                for part in &change.parts {
                    update_part(txn, *id, part, now).await?;
                }
            }
            made.push(model);
        }
        made
    }
    .into_iter();
    for (_, change) in changes {
        let Some(model) = made.next().flatten() else {
            changed.push(None);
            continue;
        };
        events.push(event_row(
            (model.id, model.org_id),
            model.event_count,
            change.kind,
            change.to,
            &change.detail,
            now,
        ));
        changed.push(Some(model));
    }
    insert_events(txn, events).await?;
    let mut entered = Vec::new();
    for model in changed.iter().flatten() {
        entered.push((rows::message(model.clone())?, model.event_count));
    }
    status_webhooks(txn, hooks, &entered, now).await?;
    Ok(changed)
}

/// The webhook events of messages that entered a status with an event type (`message.sent`,
/// `message.delivered`, …): each `(message as it now stands, its event's number)`, inside `txn`.
pub(super) async fn status_webhooks(
    txn: &DatabaseTransaction,
    hooks: &super::webhooks::Hooks,
    entered: &[(Message, i32)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut endpoints = super::webhooks::EnabledEndpoints::default();
    for (message, number) in entered {
        let Some(kind) = event_for_status(message.status) else {
            continue;
        };
        let of = (message.org_id, message.mode);
        let subject = super::webhooks::Subject::Message(message, *number);
        super::webhooks::write_event(txn, hooks, of, kind, subject, now, &mut endpoints).await?;
    }
    Ok(())
}

/// The row of event number `number` of the message `(id, org_id)`.
pub(super) fn event_row(
    (message_id, org_id): (Uuid, Uuid),
    number: i32,
    kind: EventKind,
    status: MessageStatus,
    detail: &EventDetail,
    at: DateTime<Utc>,
) -> message_event::ActiveModel {
    message_event::ActiveModel {
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
    }
}

/// Inserts `events`, a few hundred rows per statement.
pub(super) async fn insert_events(
    txn: &DatabaseTransaction,
    events: Vec<message_event::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in events.chunks(200) {
        message_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

impl System {
    /// Claims up to `limit` queued outbound messages (high priority first, then oldest) for
    /// `owner` until `lease_until`, marking them `sending`. PostgreSQL skips rows other workers
    /// hold; SQLite serializes writers.
    pub async fn claim_queued(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
        modes: &[KeyMode],
    ) -> Result<Vec<Message>, DbErr> {
        if modes.is_empty() {
            return Ok(Vec::new());
        }
        // Closed value names, never client text.
        let modes = modes
            .iter()
            .map(|m| format!("'{}'", m.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // The claim is the machine's `queued → sending`, written as one statement for speed; the
        // statuses in it are the machine's own.
        let (from, to) = (MessageStatus::Queued, MessageStatus::Sending);
        transition(from, to).map_err(|e| DbErr::Custom(e.to_string()))?;
        let (from, to) = (from.as_str(), to.as_str());
        let outbound = Direction::Outbound.as_str();
        let backend = self.db.get_database_backend();
        let now = Timestamp::now().as_datetime();
        // One statement per priority, high first, each reading the queue index in its order
        // (status, priority, created_at, id): a claim costs the rows it takes, however long the
        // queue. PostgreSQL: the CTE is evaluated once, and SKIP LOCKED passes over rows other
        // workers are claiming. SQLite: writers take turns.
        let claim = |priority: &str| {
            match backend {
            DbBackend::Postgres => format!(
                "WITH picked AS (\
                   SELECT id FROM messages WHERE status = '{from}' AND priority = '{priority}' \
                   AND direction = '{outbound}' AND mode IN ({modes}) \
                   AND (retry_at IS NULL OR retry_at <= $3) \
                   ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE messages SET status = '{to}', lease_owner = $1, lease_expires_at = $2, updated_at = $3, \
                 event_count = messages.event_count + 1 FROM picked WHERE messages.id = picked.id AND messages.status = '{from}' RETURNING messages.*"
            ),
            _ => format!(
                "UPDATE messages SET status = '{to}', lease_owner = ?1, lease_expires_at = ?2, updated_at = ?3, \
                 event_count = event_count + 1 WHERE status = '{from}' AND id IN (\
                   SELECT id FROM messages WHERE status = '{from}' AND priority = '{priority}' \
                   AND direction = '{outbound}' AND mode IN ({modes}) \
                   AND (retry_at IS NULL OR retry_at <= ?3) \
                   ORDER BY created_at, id LIMIT ?4) \
                 RETURNING *"
            ),
        }
        };
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let mut claimed = Vec::new();
        // Every priority, high first (the match stops compiling when a priority is added).
        let _every = |p: Priority| match p {
            Priority::High | Priority::Default => (),
        };
        for priority in [Priority::High, Priority::Default] {
            let left = limit.saturating_sub(claimed.len() as u64);
            if left == 0 {
                break;
            }
            let statement = Statement::from_sql_and_values(
                backend,
                claim(priority.as_str()),
                [
                    owner.into(),
                    lease_until.into(),
                    now.into(),
                    (left as i64).into(),
                ],
            );
            claimed.extend(
                message::Model::find_by_statement(statement)
                    .all(&txn)
                    .await?,
            );
        }
        // RETURNING has no order: hand them over high priority first, then oldest.
        claimed.sort_by_key(|m| (m.priority != Priority::High, m.created_at, m.id));
        let events = claimed
            .iter()
            .map(|m| {
                event_row(
                    (m.id, m.org_id),
                    m.event_count,
                    EventKind::Transition,
                    MessageStatus::Sending,
                    &EventDetail::default(),
                    now,
                )
            })
            .collect();
        insert_events(&txn, events).await?;
        txn.commit().await?;
        count_status(MessageStatus::Sending, claimed.len() as u64);
        rows::messages(claimed)
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

    /// Outbound messages created before `before` that are still `queued` or `sent`: their
    /// validity ran out before a carrier took them or before a final receipt arrived.
    pub async fn past_validity(&self, before: DateTime<Utc>) -> Result<Vec<Message>, DbErr> {
        let found = message::Entity::find()
            .filter(message::Column::Status.is_in([MessageStatus::Queued, MessageStatus::Sent]))
            .filter(message::Column::Direction.eq(Direction::Outbound))
            .filter(message::Column::CreatedAt.lt(before))
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
        let _turn = self.gate.turn().await;
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

    /// Receipts not matched to a message yet for any of the `(carrier, carrier id)` pairs,
    /// oldest first.
    pub async fn unmatched_receipts_for(
        &self,
        wanted: &[(&str, &str)],
    ) -> Result<Vec<StoredReceipt>, DbErr> {
        let mut carriers: Vec<&str> = wanted.iter().map(|(carrier, _)| *carrier).collect();
        carriers.sort_unstable();
        carriers.dedup();
        let ids: Vec<&str> = wanted.iter().map(|(_, id)| *id).collect();
        // Both columns of the (carrier, carrier id) index; the exact pairs are kept below.
        let found = carrier_receipt::Entity::find()
            .filter(carrier_receipt::Column::MessageId.is_null())
            .filter(carrier_receipt::Column::Carrier.is_in(carriers))
            .filter(carrier_receipt::Column::CarrierMessageId.is_in(ids))
            .order_by_asc(carrier_receipt::Column::Id)
            .all(&self.db)
            .await?;
        Ok(found
            .into_iter()
            .map(StoredReceipt::from)
            .filter(|r| wanted.contains(&(r.carrier.as_str(), r.carrier_message_id.as_str())))
            .collect())
    }

    /// Receipts not matched to a message yet, oldest first.
    pub async fn unmatched_receipts(&self) -> Result<Vec<StoredReceipt>, DbErr> {
        let query =
            carrier_receipt::Entity::find().filter(carrier_receipt::Column::MessageId.is_null());
        Ok(query
            .order_by_asc(carrier_receipt::Column::Id)
            .limit_rows(500)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredReceipt::from)
            .collect())
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
