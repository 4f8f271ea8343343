//! The transition pipeline's second half: the one writer of `messages.status` and of message
//! parts. It applies plans made by [`crate::domain::transition::plan`] — a batch of them, a
//! single change being a batch of one — each row guarded by the status it was planned from, the
//! machine's sources of the status it moves to, and the plan's lease guard; the events numbered
//! per message on the row, and the webhook events, in the same transaction. Creating a message
//! (its first status) and claiming queued ones are written here too. No other store function
//! writes `messages.status` (a test in `src/architecture.rs` reads the sources to hold it so).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{message, message_event, message_part};
use sea_orm::{
    sea_query::{CaseStatement, Condition, Expr, ExprTrait, SimpleExpr},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

use super::rows;
use crate::domain::{
    lifecycle::{sources_of, EventKind},
    message::{Direction, KeyMode, Message, MessageStatus, NewMessage, Part, PartState, Priority},
    submission::carrier_id_key,
    transition::{plan, Cause, EventDetail, Plan, Write},
    webhooks::WebhookEventType,
};

/// Rows per statement: keeps each statement's expression within SQLite's depth limit and its
/// arguments within both databases' limits.
const CHUNK: usize = 200;

/// What happens to one message in a batch: its plans in order (a receipt batch may record
/// several events on one message; at most the first plan's status is guarded), and its parts.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: Uuid,
    pub plans: Vec<Plan>,
    pub parts: Vec<PartWrite>,
}

impl Step {
    pub fn one(id: Uuid, plan: Plan) -> Step {
        Step {
            id,
            plans: vec![plan],
            parts: Vec::new(),
        }
    }

    /// The columns the plans write, later ones over earlier ones.
    fn effects(&self) -> Effects<'_> {
        let mut out = Effects::default();
        for plan in &self.plans {
            let e = &plan.effects;
            if let Write::Set(v) = &e.lease {
                out.lease = Some(v.as_ref());
            }
            if let Write::Set(v) = &e.attempted_at {
                out.attempted_at = Some(*v);
            }
            if let Write::Set(v) = &e.retry_at {
                out.retry_at = Some(*v);
            }
            if let Write::Set(v) = &e.error {
                out.error = Some(v);
            }
            if let Write::Set(v) = &e.carrier {
                out.carrier = Some(v);
            }
        }
        out
    }

    fn to(&self) -> Option<MessageStatus> {
        self.plans.last().map(|p| p.to)
    }

    fn changes_status(&self) -> bool {
        self.plans.iter().any(Plan::changes_status)
    }
}

#[derive(Default)]
struct Effects<'a> {
    lease: Option<Option<&'a (String, DateTime<Utc>)>>,
    attempted_at: Option<Option<DateTime<Utc>>>,
    retry_at: Option<Option<DateTime<Utc>>>,
    error: Option<&'a (crate::domain::lifecycle::MessageErrorCode, String)>,
    carrier: Option<&'a (String, String)>,
}

/// A new state of one part (by number), made only if the part is still in `only_from` when given;
/// a final receipt is written only on a part that has none.
#[derive(Debug, Clone, Default)]
pub struct PartWrite {
    pub number: u8,
    pub only_from: Option<PartState>,
    pub state: Write<PartState>,
    /// `(carrier, carrier_message_id)` when accepted, with `submitted_at`.
    pub carrier: Write<(String, String)>,
    /// When a deferred part may be submitted again.
    pub retry_at: Write<Option<DateTime<Utc>>>,
    /// The part's first final receipt.
    pub receipt_stat: Write<String>,
}

/// `CASE id WHEN … THEN … ELSE otherwise END` over messages: each one's own value where it has
/// one (`otherwise` alone when none has).
fn per_message(
    steps: &[&Step],
    value: impl Fn(&Step) -> Option<SimpleExpr>,
    otherwise: SimpleExpr,
) -> SimpleExpr {
    let mut case = CaseStatement::new();
    let mut any = false;
    for step in steps {
        if let Some(v) = value(step) {
            case = case.case(message::Column::Id.eq(step.id), v);
            any = true;
        }
    }
    if any {
        case.finally(otherwise).into()
    } else {
        otherwise
    }
}

/// The guard of one step: the status its first plan was made from, the machine's sources of the
/// status it moves to, and the plan's lease guard.
fn guard_of(step: &Step) -> Result<Condition, DbErr> {
    let first = step
        .plans
        .first()
        .ok_or_else(|| DbErr::Custom(format!("message {}: a step without a plan", step.id)))?;
    let from = first
        .from
        .ok_or_else(|| DbErr::Custom(format!("message {}: a creation is not a change", step.id)))?;
    let mut one = Condition::all()
        .add(message::Column::Id.eq(step.id))
        .add(message::Column::Status.eq(from));
    if let Some(moving) = step.plans.iter().find(|p| p.changes_status()) {
        one = one.add(message::Column::Status.is_in(sources_of(moving.to)));
    }
    if let Some(owner) = &first.guard.lease_owner {
        one = one.add(message::Column::LeaseOwner.eq(owner.as_str()));
    }
    if let Some(at) = first.guard.unattempted_with_lease_at {
        one = one
            .add(message::Column::AttemptedAt.is_null())
            .add(message::Column::LeaseExpiresAt.gt(at));
    }
    Ok(one)
}

/// One statement for up to [`CHUNK`] steps of distinct messages: each row changes only under its
/// own guard. Returns the rows changed, as they are after it.
async fn update_messages(
    txn: &DatabaseTransaction,
    steps: &[&Step],
    now: DateTime<Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    type Col = message::Column;
    let keep = |c: Col| -> SimpleExpr { Expr::col(c) };
    let effects: HashMap<Uuid, Effects<'_>> = steps.iter().map(|s| (s.id, s.effects())).collect();
    let of = |s: &Step| &effects[&s.id];
    let mut guard = Condition::any();
    for step in steps {
        guard = guard.add(guard_of(step)?);
    }
    let events = |s: &Step| i32::try_from(s.plans.len()).unwrap_or(i32::MAX);
    message::Entity::update_many()
        .col_expr(
            Col::Status,
            per_message(
                steps,
                |s| s.changes_status().then(|| Expr::value(s.to())),
                keep(Col::Status),
            ),
        )
        .col_expr(
            Col::UpdatedAt,
            per_message(
                steps,
                |s| s.changes_status().then(|| Expr::value(now)),
                keep(Col::UpdatedAt),
            ),
        )
        .col_expr(
            Col::EventCount,
            Expr::col(Col::EventCount).add(per_message(
                steps,
                |s| Some(Expr::value(events(s))),
                Expr::value(0),
            )),
        )
        .col_expr(
            Col::LeaseOwner,
            per_message(
                steps,
                |s| {
                    of(s)
                        .lease
                        .map(|l| Expr::value(l.map(|(owner, _)| owner.clone())))
                },
                keep(Col::LeaseOwner),
            ),
        )
        .col_expr(
            Col::LeaseExpiresAt,
            per_message(
                steps,
                |s| of(s).lease.map(|l| Expr::value(l.map(|(_, until)| *until))),
                keep(Col::LeaseExpiresAt),
            ),
        )
        .col_expr(
            Col::AttemptedAt,
            per_message(
                steps,
                |s| of(s).attempted_at.map(Expr::value),
                keep(Col::AttemptedAt),
            ),
        )
        .col_expr(
            Col::RetryAt,
            per_message(
                steps,
                |s| of(s).retry_at.map(Expr::value),
                keep(Col::RetryAt),
            ),
        )
        .col_expr(
            Col::ErrorCode,
            per_message(
                steps,
                |s| of(s).error.map(|(code, _)| Expr::value(*code)),
                keep(Col::ErrorCode),
            ),
        )
        .col_expr(
            Col::ErrorMessage,
            per_message(
                steps,
                |s| of(s).error.map(|(_, text)| Expr::value(text.as_str())),
                keep(Col::ErrorMessage),
            ),
        )
        .col_expr(
            Col::Carrier,
            per_message(
                steps,
                |s| of(s).carrier.map(|(c, _)| Expr::value(c.as_str())),
                keep(Col::Carrier),
            ),
        )
        .col_expr(
            Col::CarrierMessageId,
            per_message(
                steps,
                |s| of(s).carrier.map(|(_, id)| Expr::value(id.as_str())),
                keep(Col::CarrierMessageId),
            ),
        )
        .col_expr(
            Col::SentAt,
            per_message(
                steps,
                |s| of(s).carrier.map(|_| Expr::value(now)),
                keep(Col::SentAt),
            ),
        )
        .col_expr(
            Col::DeliveredAt,
            per_message(
                steps,
                |s| {
                    (s.changes_status() && s.to() == Some(MessageStatus::Delivered))
                        .then(|| Expr::value(now))
                },
                keep(Col::DeliveredAt),
            ),
        )
        .filter(Col::Id.is_in(steps.iter().map(|s| s.id)))
        .filter(guard)
        .exec_with_returning(txn)
        .await
}

/// Writes `parts` (of distinct messages or numbers) inside `txn`, a few hundred per statement.
pub(super) async fn write_parts(
    txn: &DatabaseTransaction,
    parts: &[(Uuid, &PartWrite)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    type Col = message_part::Column;
    for chunk in parts.chunks(CHUNK) {
        let which = |id: Uuid, part: &PartWrite| {
            let mut one = Condition::all()
                .add(Col::MessageId.eq(id))
                .add(Col::PartNumber.eq(i32::from(part.number)));
            if let Some(state) = part.only_from {
                one = one.add(Col::State.eq(state));
            }
            if part.receipt_stat != Write::Keep {
                one = one.add(Col::ReceiptStat.is_null());
            }
            one
        };
        let per_part = |value: &dyn Fn(&PartWrite) -> Option<SimpleExpr>, column: Col| {
            let mut case = CaseStatement::new();
            let mut any = false;
            for (id, part) in chunk {
                if let Some(v) = value(part) {
                    case = case.case(which(*id, part), v);
                    any = true;
                }
            }
            let expr: SimpleExpr = if any {
                case.finally(Expr::col(column)).into()
            } else {
                Expr::col(column)
            };
            expr
        };
        let mut all = Condition::any();
        for (id, part) in chunk {
            all = all.add(which(*id, part));
        }
        message_part::Entity::update_many()
            .col_expr(
                Col::State,
                per_part(&|p| p.state.value().map(|s| Expr::value(*s)), Col::State),
            )
            .col_expr(
                Col::RetryAt,
                per_part(
                    &|p| p.retry_at.value().map(|r| Expr::value(*r)),
                    Col::RetryAt,
                ),
            )
            .col_expr(Col::UpdatedAt, Expr::value(now))
            .col_expr(
                Col::Carrier,
                per_part(
                    &|p| p.carrier.value().map(|(c, _)| Expr::value(c.as_str())),
                    Col::Carrier,
                ),
            )
            .col_expr(
                Col::CarrierMessageId,
                per_part(
                    &|p| p.carrier.value().map(|(_, id)| Expr::value(id.as_str())),
                    Col::CarrierMessageId,
                ),
            )
            .col_expr(
                Col::CarrierKey,
                per_part(
                    &|p| {
                        p.carrier
                            .value()
                            .map(|(_, id)| Expr::value(carrier_id_key(id)))
                    },
                    Col::CarrierKey,
                ),
            )
            .col_expr(
                Col::SubmittedAt,
                per_part(
                    &|p| p.carrier.value().map(|_| Expr::value(now)),
                    Col::SubmittedAt,
                ),
            )
            .col_expr(
                Col::ReceiptStat,
                per_part(
                    &|p| p.receipt_stat.value().map(|s| Expr::value(s.as_str())),
                    Col::ReceiptStat,
                ),
            )
            .filter(Col::MessageId.is_in(chunk.iter().map(|(id, _)| *id)))
            .filter(all)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Applies `steps` (of distinct messages) inside `txn`: the guarded updates, the parts of the
/// messages changed, every event in one insert and the webhook events. For each step, the row
/// after it, or `None` when its guard did not hold (nothing of it was written).
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    hooks: &super::webhooks::Hooks,
    steps: &[Step],
    now: DateTime<Utc>,
) -> Result<Vec<Option<message::Model>>, DbErr> {
    let mut seen = std::collections::HashSet::new();
    if let Some(step) = steps.iter().find(|s| !seen.insert(s.id)) {
        return Err(DbErr::Custom(format!(
            "message {} appears twice in one batch of changes",
            step.id
        )));
    }
    let busy: Vec<&Step> = steps.iter().filter(|s| !s.plans.is_empty()).collect();
    let mut made: HashMap<Uuid, message::Model> = HashMap::new();
    for chunk in busy.chunks(CHUNK) {
        made.extend(
            update_messages(txn, chunk, now)
                .await?
                .into_iter()
                .map(|m| (m.id, m)),
        );
    }
    let parts: Vec<(Uuid, &PartWrite)> = steps
        .iter()
        .filter(|s| made.contains_key(&s.id))
        .flat_map(|s| s.parts.iter().map(move |p| (s.id, p)))
        .collect();
    write_parts(txn, &parts, now).await?;
    let mut events = Vec::new();
    let mut entered = Vec::new();
    for step in steps {
        let Some(after) = made.get(&step.id) else {
            continue;
        };
        let added = i32::try_from(step.plans.len()).unwrap_or(i32::MAX);
        let first = after.event_count - added + 1;
        for (i, plan) in step.plans.iter().enumerate() {
            let number = first + i32::try_from(i).unwrap_or(i32::MAX);
            let (kind, detail) = &plan.event;
            events.push(event_row(
                (after.id, after.org_id),
                number,
                *kind,
                plan.to,
                detail,
                now,
            ));
            if let Some(kind) = plan.webhook {
                entered.push((rows::message(after.clone())?, number, kind));
            }
        }
    }
    insert_events(txn, events).await?;
    raise_webhooks(txn, hooks, &entered, now).await?;
    Ok(steps.iter().map(|s| made.remove(&s.id)).collect())
}

/// The plan that creates a message of `direction` (accepted for later when `scheduled`): its
/// first status, event and webhook event.
pub(super) fn creation(direction: Direction, scheduled: bool) -> Result<Plan, DbErr> {
    let cause = match (direction, scheduled) {
        (Direction::Outbound, false) => Cause::Accepted,
        (Direction::Outbound, true) => Cause::Scheduled,
        (Direction::Inbound, _) => Cause::Received,
    };
    plan(None, cause).map_err(|e| DbErr::Custom(e.to_string()))
}

/// The row of a new message of `org_id` in `mode`, in the status its creation plan gives.
pub(super) fn message_row(
    org_id: Uuid,
    mode: KeyMode,
    new: NewMessage,
    now: DateTime<Utc>,
    event_count: i32,
) -> Result<message::ActiveModel, DbErr> {
    let created = creation(new.direction, new.send_at.is_some())?;
    let media_urls = (!new.media_urls.is_empty())
        .then(|| serde_json::to_string(&new.media_urls).expect("strings serialize"));
    let (carrier, carrier_message_id) = new.carrier.unzip();
    Ok(message::ActiveModel {
        id: Set(new.id.unwrap_or_else(Uuid::now_v7)),
        org_id: Set(org_id),
        mode: Set(mode),
        direction: Set(new.direction),
        from_number: Set(new.from.as_str().to_owned()),
        to_number: Set(new.to.as_str().to_owned()),
        body: Set(new.text),
        channel: Set(new.channel),
        priority: Set(new.priority),
        status: Set(created.to),
        tag: Set(new.tag),
        media_urls: Set(media_urls),
        segments: Set(i32::try_from(new.segments).unwrap_or(i32::MAX)),
        encoding: Set(new.encoding),
        error_code: Set(None),
        carrier: Set(carrier),
        carrier_message_id: Set(carrier_message_id),
        created_at: Set(now),
        updated_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        attempted_at: Set(None),
        sent_at: Set(None),
        delivered_at: Set(None),
        error_message: Set(None),
        event_count: Set(event_count),
        retry_at: Set(None),
        send_at: Set(new.send_at),
        valid_until: Set(new.valid_until),
    })
}

/// Claims up to `limit` queued outbound messages of `modes` (high priority first, then oldest)
/// for `owner` until `until` inside `txn`, with their events: the plan of a claim written as one
/// statement per priority for speed. PostgreSQL skips rows other workers hold; SQLite
/// serializes writers.
pub(super) async fn claim(
    txn: &DatabaseTransaction,
    owner: &str,
    until: DateTime<Utc>,
    limit: u64,
    filter: super::QueueFilter<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    let claimed_plan = plan(
        Some(MessageStatus::Queued),
        Cause::Claimed {
            owner: owner.to_owned(),
            until,
        },
    )
    .map_err(|e| DbErr::Custom(e.to_string()))?;
    let (Some(from), to) = (claimed_plan.from, claimed_plan.to) else {
        return Err(DbErr::Custom("a claim starts from a status".into()));
    };
    if claimed_plan.effects.lease != Write::Set(Some((owner.to_owned(), until))) {
        return Err(DbErr::Custom("a claim takes the lease".into()));
    }
    // Closed value names, never client text.
    let modes = filter
        .modes
        .iter()
        .map(|m| format!("'{}'", m.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let channels = filter
        .channels
        .iter()
        .map(|c| format!("'{}'", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let recipient = filter.recipient_condition()?;
    let (from, to) = (from.as_str(), to.as_str());
    let outbound = Direction::Outbound.as_str();
    let backend = txn.get_database_backend();
    // One statement per priority, high first, each reading the queue index in its order
    // (status, priority, created_at, id): a claim costs the rows it takes, however long the
    // queue. PostgreSQL: the CTE is evaluated once, and SKIP LOCKED passes over rows other
    // workers are claiming. SQLite: writers take turns.
    let sql = |priority: &str| {
        match backend {
        DbBackend::Postgres => format!(
            "WITH picked AS (\
               SELECT id FROM messages WHERE status = '{from}' AND priority = '{priority}' \
               AND direction = '{outbound}' AND mode IN ({modes}) AND channel IN ({channels}){recipient} \
               AND (retry_at IS NULL OR retry_at <= $3) \
               ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE messages SET status = '{to}', lease_owner = $1, lease_expires_at = $2, updated_at = $3, \
             event_count = messages.event_count + 1 FROM picked WHERE messages.id = picked.id AND messages.status = '{from}' RETURNING messages.*"
        ),
        _ => format!(
            "UPDATE messages SET status = '{to}', lease_owner = ?1, lease_expires_at = ?2, updated_at = ?3, \
             event_count = event_count + 1 WHERE status = '{from}' AND id IN (\
               SELECT id FROM messages WHERE status = '{from}' AND priority = '{priority}' \
               AND direction = '{outbound}' AND mode IN ({modes}) AND channel IN ({channels}){recipient} \
               AND (retry_at IS NULL OR retry_at <= ?3) \
               ORDER BY created_at, id LIMIT ?4) \
             RETURNING *"
        ),
    }
    };
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
            sql(priority.as_str()),
            [owner.into(), until.into(), now.into(), (left as i64).into()],
        );
        claimed.extend(
            message::Model::find_by_statement(statement)
                .all(txn)
                .await?,
        );
    }
    // RETURNING has no order: hand them over high priority first, then oldest.
    claimed.sort_by_key(|m| (m.priority != Priority::High, m.created_at, m.id));
    let (kind, detail) = &claimed_plan.event;
    let events = claimed
        .iter()
        .map(|m| {
            event_row(
                (m.id, m.org_id),
                m.event_count,
                *kind,
                claimed_plan.to,
                detail,
                now,
            )
        })
        .collect();
    insert_events(txn, events).await?;
    Ok(claimed)
}

/// The messages as the domain reads them.
pub(super) fn messages(models: Vec<Option<message::Model>>) -> Result<Vec<Option<Message>>, DbErr> {
    models
        .into_iter()
        .map(|m| m.map(rows::message).transpose())
        .collect()
}

/// The webhook events of messages that entered a status with an event type: each `(message as
/// it now stands, its event's number, the event type)`, inside `txn`.
pub(super) async fn raise_webhooks(
    txn: &DatabaseTransaction,
    hooks: &super::webhooks::Hooks,
    entered: &[(Message, i32, WebhookEventType)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut endpoints = super::webhooks::EnabledEndpoints::default();
    for (message, number, kind) in entered {
        let of = (message.org_id, message.mode);
        let subject = super::webhooks::Subject::Message(message, *number);
        super::webhooks::write_event(txn, hooks, of, *kind, subject, now, &mut endpoints).await?;
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
        note: Set(detail.note.clone()),
        connection: Set(detail.connection.clone()),
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

/// Writes the parts of claimed messages the first time they are claimed (`(id, total,
/// reference)`), inside `txn`; returns every part of each of `ids`, in part order.
pub(super) async fn write_missing_parts(
    txn: &DatabaseTransaction,
    items: &[(Uuid, u8, u8)],
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<Uuid, Vec<Part>>, DbErr> {
    let ids: Vec<Uuid> = items.iter().map(|(id, _, _)| *id).collect();
    let found = parts_of_all(txn, &ids).await?;
    let mut all: std::collections::HashMap<Uuid, Vec<Part>> = found
        .into_iter()
        .map(|(id, rows)| (id, rows.into_iter().map(rows::part).collect()))
        .collect();
    let missing: Vec<message_part::ActiveModel> = items
        .iter()
        .filter(|(id, _, _)| !all.contains_key(id))
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
    for chunk in missing.chunks(200) {
        message_part::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    for (id, total, reference) in items {
        all.entry(*id).or_insert_with(|| {
            (1..=*total)
                .map(|number| Part {
                    number,
                    total: *total,
                    reference: *reference,
                    state: PartState::Pending,
                    carrier_message_id: None,
                    receipt_stat: None,
                })
                .collect()
        });
    }
    Ok(all)
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
