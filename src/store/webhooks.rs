//! Webhook endpoints (per organization and key mode), the events written inside the transaction
//! of the change that causes them, and their deliveries.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use entity::{
    webhook_delivery as delivery, webhook_endpoint as endpoint, webhook_event as event,
    webhook_rotated_secret as rotated,
};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{System, Tenant};
use crate::domain::{
    consent::ConsentState,
    idempotency::Completion,
    message::Message,
    organization::KeyMode,
    webhooks::{
        payload, AttemptResult, CreatedEndpoint, DeliveryState, EndpointChanges, Outcome,
        RenderResource, WebhookDelivery, WebhookEndpoint, WebhookEventType,
    },
    Timestamp,
};

/// The renderer of event payloads, installed once by the process's composition (the API layer
/// owns the resources' JSON form); shared by every handle of a store.
#[derive(Clone, Default)]
pub struct Hooks(Arc<HooksInner>);

#[derive(Default)]
struct HooksInner {
    render: OnceLock<Arc<dyn RenderResource>>,
    /// Set when an event was written, until the writer's commit wakes the dispatcher.
    written: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("installed", &self.0.render.get().is_some())
            .finish()
    }
}

impl Hooks {
    pub fn install(&self, render: Arc<dyn RenderResource>) {
        // The first installation stands; every one is the same renderer.
        let _ = self.0.render.set(render);
    }

    /// Called after a transaction commits: wakes this process's dispatcher when an event was
    /// written (another transaction's event, not yet committed, only costs it an early look).
    pub fn committed(&self) {
        if self
            .0
            .written
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.0.wake.notify_waiters();
        }
    }

    /// Completes when this process commits an event (the dispatcher's wake-up).
    pub async fn event_committed(&self) {
        self.0.wake.notified().await;
    }

    fn render(&self) -> Result<&Arc<dyn RenderResource>, DbErr> {
        self.0
            .render
            .get()
            .ok_or_else(|| DbErr::Custom("no webhook renderer is installed in this process".into()))
    }
}

/// The enabled endpoints of each organization and mode, read once per transaction (a worker's
/// batch changes many messages of one organization).
#[derive(Default)]
pub(super) struct EnabledEndpoints(std::collections::HashMap<(Uuid, KeyMode), Vec<(Uuid, String)>>);

/// What an event is about.
pub(super) enum Subject<'a> {
    /// A message event with its number in the message's history.
    Message(&'a Message, i32),
    /// A consent change: `latest` is the record just made.
    Consent(&'a ConsentState),
}

/// Writes the event `kind` about `subject` inside `db` (the transaction of the change), with one
/// delivery per enabled endpoint of the organization and mode subscribed to it. Nothing is
/// written when no endpoint subscribes.
/// Delivery rows per insert: 15 columns each, far below SQLite's 32,766 and PostgreSQL's 65,535
/// bind variables.
const DELIVERY_ROWS_PER_STATEMENT: usize = 200;

pub(super) async fn write_event(
    db: &impl ConnectionTrait,
    hooks: &Hooks,
    (org_id, mode): (Uuid, KeyMode),
    kind: WebhookEventType,
    subject: Subject<'_>,
    now: DateTime<Utc>,
    endpoints: &mut EnabledEndpoints,
) -> Result<(), DbErr> {
    let enabled = match endpoints.0.get(&(org_id, mode)) {
        Some(found) => found.clone(),
        None => {
            let found: Vec<(Uuid, String)> = endpoint::Entity::find()
                .select_only()
                .column(endpoint::Column::Id)
                .column(endpoint::Column::Events)
                .filter(endpoint::Column::OrgId.eq(org_id))
                .filter(endpoint::Column::Mode.eq(mode))
                .filter(endpoint::Column::Enabled.eq(true))
                .into_tuple()
                .all(db)
                .await?;
            endpoints.0.insert((org_id, mode), found.clone());
            found
        }
    };
    let subscribed: Vec<Uuid> = enabled
        .into_iter()
        .filter(|(_, events)| events.split(' ').any(|e| e == kind.as_str()))
        .map(|(id, _)| id)
        .collect();
    if subscribed.is_empty() {
        return Ok(());
    }
    let render = hooks.render()?;
    hooks
        .0
        .written
        .store(true, std::sync::atomic::Ordering::Release);
    let (data, key, position, sequence) = match subject {
        Subject::Message(m, number) => (
            render.message(m),
            m.id.to_string(),
            i64::from(number),
            Some(i64::from(number)),
        ),
        Subject::Consent(state) => {
            let Some(c) = &state.latest else {
                return Ok(());
            };
            (
                render.consent(state),
                c.phone_number.as_str().to_owned(),
                c.recorded_at.as_datetime().timestamp_micros(),
                None,
            )
        }
    };
    let id = Uuid::now_v7();
    let body = payload(id, kind, Timestamp::from_datetime(now), data, sequence);
    event::Entity::insert(event::ActiveModel {
        id: Set(id),
        org_id: Set(org_id),
        mode: Set(mode),
        event_type: Set(kind),
        subject: Set(key.clone()),
        position: Set(position),
        payload: Set(body),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let rows = subscribed
        .into_iter()
        .map(|endpoint_id| new_delivery(id, endpoint_id, (org_id, mode), &key, position, now));
    // Whatever the number of endpoints, each statement stays under both databases' bind limits.
    let rows: Vec<delivery::ActiveModel> = rows.collect();
    for chunk in rows.chunks(DELIVERY_ROWS_PER_STATEMENT) {
        delivery::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// A delivery of event `event_id` to `endpoint_id`, pending and due `now`.
fn new_delivery(
    event_id: Uuid,
    endpoint_id: Uuid,
    (org_id, mode): (Uuid, KeyMode),
    subject: &str,
    position: i64,
    now: DateTime<Utc>,
) -> delivery::ActiveModel {
    delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        endpoint_id: Set(endpoint_id),
        org_id: Set(org_id),
        mode: Set(mode),
        subject: Set(subject.to_owned()),
        position: Set(position),
        state: Set(DeliveryState::Pending),
        attempts: Set(0),
        schedule_base: Set(0),
        next_attempt_at: Set(Some(now)),
        lease_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        delivered_at: Set(None),
    }
}

fn endpoint_of(row: endpoint::Model) -> Result<WebhookEndpoint, DbErr> {
    let events = row
        .events
        .split(' ')
        .filter(|e| !e.is_empty())
        .map(|e| {
            WebhookEventType::parse(e).ok_or_else(|| {
                DbErr::Custom(format!(
                    "unreadable event type {e:?} of endpoint {}",
                    row.id
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WebhookEndpoint {
        id: row.id,
        url: row.url,
        description: row.description,
        events,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        mode: row.mode,
        created_at: row.created_at.into(),
        updated_at: row.updated_at.into(),
    })
}

/// A new signing secret for an endpoint.
pub struct Rotation {
    /// The new secret, and the same sealed under the operator's key.
    pub secret: String,
    pub sealed: String,
    /// Until when the secret it replaces keeps signing.
    pub until: DateTime<Utc>,
    /// How many secrets rotated away may sign at once; one more rotation is refused.
    pub most_signing: u64,
}

/// The stored form of a subscription: names separated by single spaces.
fn events_stored(events: &[WebhookEventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn delivery_of(row: delivery::Model, kind: WebhookEventType) -> WebhookDelivery {
    WebhookDelivery {
        id: row.id,
        event_id: row.event_id,
        event_type: kind,
        endpoint_id: row.endpoint_id,
        state: row.state,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_status_code: row.last_status_code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.last_error,
        next_attempt_at: row.next_attempt_at.map(Into::into),
        created_at: row.created_at.into(),
        delivered_at: row.delivered_at.map(Into::into),
    }
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEventType>,
    /// The signing secret, sealed.
    pub secret: String,
}

impl Tenant {
    fn endpoints(&self) -> sea_orm::Select<endpoint::Entity> {
        endpoint::Entity::find()
            .filter(endpoint::Column::OrgId.eq(self.org_id))
            .filter(endpoint::Column::Mode.eq(self.mode))
    }

    /// Stores a new endpoint; `completion` (an `Idempotency-Key`'s outcome, rendered with the
    /// plaintext `secret` shown this once) in the same transaction.
    pub async fn insert_webhook_endpoint(
        &self,
        new: NewEndpoint,
        secret: String,
        limit: u64,
        completion: Option<&Completion<CreatedEndpoint>>,
    ) -> Result<Result<CreatedEndpoint, super::AtLimit>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let row = endpoint::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(self.org_id),
            mode: Set(self.mode),
            url: Set(new.url),
            description: Set(new.description),
            events: Set(events_stored(&new.events)),
            enabled: Set(true),
            disabled_reason: Set(None),
            secret: Set(new.secret),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        super::one_at_a_time(
            &txn,
            &format!("webhook-endpoints/{}/{}", self.org_id, self.mode),
        )
        .await?;
        if self.endpoints().count(&txn).await? >= limit {
            return Ok(Err(super::AtLimit(limit)));
        }
        let endpoint = endpoint_of(
            endpoint::Entity::insert(row)
                .exec_with_returning(&txn)
                .await?,
        )?;
        let created = CreatedEndpoint { endpoint, secret };
        if let Some(completion) = completion {
            let body = (completion.render)(&created);
            self.complete_idempotent(&txn, &completion.hold, completion.status, &body)
                .await?;
        }
        txn.commit().await?;
        Ok(Ok(created))
    }

    /// Every endpoint, newest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, DbErr> {
        self.endpoints()
            .order_by_desc(endpoint::Column::CreatedAt)
            .order_by_desc(endpoint::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(endpoint_of)
            .collect()
    }

    pub async fn webhook_endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, DbErr> {
        self.endpoints()
            .filter(endpoint::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .map(endpoint_of)
            .transpose()
    }

    /// Applies `changes`; enabling an endpoint clears the reason the server disabled it.
    pub async fn update_webhook_endpoint(
        &self,
        id: Uuid,
        changes: EndpointChanges,
    ) -> Result<Option<WebhookEndpoint>, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let now = Timestamp::now().as_datetime();
        let mut update = endpoint::Entity::update_many()
            .col_expr(endpoint::Column::UpdatedAt, Expr::value(now))
            .filter(endpoint::Column::Id.eq(id))
            .filter(endpoint::Column::OrgId.eq(self.org_id))
            .filter(endpoint::Column::Mode.eq(self.mode));
        if let Some(url) = changes.url {
            update = update.col_expr(endpoint::Column::Url, Expr::value(url));
        }
        if let Some(description) = changes.description {
            update = update.col_expr(endpoint::Column::Description, Expr::value(description));
        }
        if let Some(events) = changes.events {
            update = update.col_expr(
                endpoint::Column::Events,
                Expr::value(events_stored(&events)),
            );
        }
        if let Some(enabled) = changes.enabled {
            update = update.col_expr(endpoint::Column::Enabled, Expr::value(enabled));
            if enabled {
                update = update.col_expr(
                    endpoint::Column::DisabledReason,
                    Expr::value(Option::<String>::None),
                );
            }
        }
        update.exec(&w).await?;
        self.webhook_endpoint(id).await
    }

    /// Deletes an endpoint with its deliveries; the endpoint as it was.
    pub async fn delete_webhook_endpoint(
        &self,
        id: Uuid,
    ) -> Result<Option<WebhookEndpoint>, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        // One statement (its deliveries go with it, by the foreign key's cascade): a transaction
        // that read first and wrote second could fail on SQLite against a concurrent writer.
        let deleted = endpoint::Entity::delete_many()
            .filter(endpoint::Column::Id.eq(id))
            .filter(endpoint::Column::OrgId.eq(self.org_id))
            .filter(endpoint::Column::Mode.eq(self.mode))
            .exec_with_returning(&w)
            .await?;
        deleted.into_iter().next().map(endpoint_of).transpose()
    }

    /// Makes `sealed` the signing secret of endpoint `id`; the one it replaces keeps signing
    /// until `until`, as every secret rotated away before it does until its own time, while
    /// fewer than `most_signing` are. `None` when there is no such endpoint; `completion` (an
    /// `Idempotency-Key`'s outcome, rendered with the plaintext `secret`) in the same
    /// transaction.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        rotation: Rotation,
        completion: Option<&Completion<CreatedEndpoint>>,
    ) -> Result<Option<Result<CreatedEndpoint, super::AtLimit>>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        super::one_at_a_time(&txn, &format!("webhook-secrets/{id}")).await?;
        let Some(current) = self
            .endpoints()
            .filter(endpoint::Column::Id.eq(id))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        rotated::Entity::delete_many()
            .filter(rotated::Column::EndpointId.eq(id))
            .filter(rotated::Column::SignsUntil.lte(now))
            .exec(&txn)
            .await?;
        let signing = rotated::Entity::find()
            .filter(rotated::Column::EndpointId.eq(id))
            .count(&txn)
            .await?;
        if signing >= rotation.most_signing {
            return Ok(Some(Err(super::AtLimit(rotation.most_signing))));
        }
        rotated::Entity::insert(rotated::ActiveModel {
            id: Set(Uuid::now_v7()),
            endpoint_id: Set(id),
            secret: Set(current.secret),
            signs_until: Set(rotation.until),
            rotated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let row = endpoint::Entity::update(endpoint::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            secret: Set(rotation.sealed),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        let rotated = CreatedEndpoint {
            endpoint: endpoint_of(row)?,
            secret: rotation.secret,
        };
        if let Some(completion) = completion {
            let body = (completion.render)(&rotated);
            self.complete_idempotent(&txn, &completion.hold, completion.status, &body)
                .await?;
        }
        txn.commit().await?;
        Ok(Some(Ok(rotated)))
    }

    /// A `webhook.test` event for endpoint `id` alone, with its delivery (pending, due now);
    /// `None` when there is no such endpoint. `data` is the event's `data`.
    pub async fn send_test_event(
        &self,
        id: Uuid,
        data: serde_json::Value,
    ) -> Result<Option<WebhookDelivery>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        if self
            .endpoints()
            .filter(endpoint::Column::Id.eq(id))
            .one(&txn)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let event_id = Uuid::now_v7();
        let kind = WebhookEventType::WebhookTest;
        // Each test event is its own subject: it waits behind no other delivery.
        let subject = format!("test/{event_id}");
        let position = now.timestamp_micros();
        event::Entity::insert(event::ActiveModel {
            id: Set(event_id),
            org_id: Set(self.org_id),
            mode: Set(self.mode),
            event_type: Set(kind),
            subject: Set(subject.clone()),
            position: Set(position),
            payload: Set(payload(
                event_id,
                kind,
                Timestamp::from_datetime(now),
                data,
                None,
            )),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let row = new_delivery(
            event_id,
            id,
            (self.org_id, self.mode),
            &subject,
            position,
            now,
        );
        let delivery_id = delivery::Entity::insert(row)
            .exec(&txn)
            .await?
            .last_insert_id;
        let row = delivery::Entity::find_by_id(delivery_id).one(&txn).await?;
        let made = with_types(&txn, row.into_iter().collect()).await?.pop();
        self.hooks
            .0
            .written
            .store(true, std::sync::atomic::Ordering::Release);
        txn.commit().await?;
        self.hooks.committed();
        Ok(made)
    }

    /// Deliveries to endpoint `id`, newest first, up to `limit`, those older than `before` when
    /// given (a cursor).
    pub async fn webhook_deliveries(
        &self,
        id: Uuid,
        limit: u64,
        before: Option<Uuid>,
    ) -> Result<Vec<WebhookDelivery>, DbErr> {
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::EndpointId.eq(id))
            .filter(delivery::Column::OrgId.eq(self.org_id))
            .filter(delivery::Column::Mode.eq(self.mode));
        if let Some(before) = before {
            query = query.filter(delivery::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(delivery::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        with_types(&self.db, rows).await
    }

    /// Makes a delivery due now with a fresh retry schedule (whatever its state).
    pub async fn retry_webhook_delivery(
        &self,
        endpoint_id: Uuid,
        id: Uuid,
    ) -> Result<Option<WebhookDelivery>, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        let now = Timestamp::now().as_datetime();
        delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(DeliveryState::Pending))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                delivery::Column::ScheduleBase,
                Expr::col(delivery::Column::Attempts),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(id))
            .filter(delivery::Column::EndpointId.eq(endpoint_id))
            .filter(delivery::Column::OrgId.eq(self.org_id))
            .filter(delivery::Column::Mode.eq(self.mode))
            .exec(&w)
            .await?;
        let row = delivery::Entity::find_by_id(id)
            .filter(delivery::Column::EndpointId.eq(endpoint_id))
            .filter(delivery::Column::OrgId.eq(self.org_id))
            .filter(delivery::Column::Mode.eq(self.mode))
            .one(&w)
            .await?;
        Ok(with_types(&w, row.into_iter().collect()).await?.pop())
    }

    /// The `consent.updated` event of a consent record, in the transaction that stores it
    /// (`state.latest` is that record).
    pub(super) async fn write_consent_event(
        &self,
        db: &impl ConnectionTrait,
        state: &ConsentState,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbErr> {
        write_event(
            db,
            &self.hooks,
            (self.org_id, self.mode),
            WebhookEventType::ConsentUpdated,
            Subject::Consent(state),
            at,
            &mut EnabledEndpoints::default(),
        )
        .await
    }
}

/// The deliveries with their events' types.
async fn with_types(
    db: &impl ConnectionTrait,
    rows: Vec<delivery::Model>,
) -> Result<Vec<WebhookDelivery>, DbErr> {
    let ids: Vec<Uuid> = rows.iter().map(|d| d.event_id).collect();
    let types: std::collections::HashMap<Uuid, WebhookEventType> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::EventType)
        .filter(event::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, WebhookEventType)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    // A delivery whose event is gone was purged (past its retention) between the two reads:
    // it is left out, as a read a moment later would.
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let kind = *types.get(&row.event_id)?;
            Some(delivery_of(row, kind))
        })
        .collect())
}

/// A delivery leased for an attempt, sealed secrets and all.
#[derive(Debug, Clone)]
pub struct Leased {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    /// Sealed: the current secret, then those rotated away that still sign, newest first.
    pub secrets: Vec<String>,
    pub event_id: Uuid,
    pub payload: String,
    pub attempts: u32,
    pub schedule_base: u32,
}

#[derive(Debug, FromQueryResult)]
struct Candidate {
    id: Uuid,
    endpoint_id: Uuid,
    org_id: Uuid,
}

/// What a dispatcher already has in flight: the endpoints and the organizations at their share
/// are left out of a claim before it takes its limit, so that they cannot fill it.
#[derive(Debug, Default)]
pub struct AtShare {
    pub endpoints: Vec<Uuid>,
    pub organizations: Vec<Uuid>,
}

impl System {
    /// Up to `limit` deliveries due at `now`, at most `per_endpoint` per enabled endpoint, each
    /// endpoint's oldest due first: pending, not leased, and with no earlier pending delivery of
    /// the same subject to the same endpoint (order within a subject). Endpoints and
    /// organizations at their share (`full`) are left out before the limit applies. One
    /// statement; each endpoint's part is an index range that stops at `per_endpoint` rows,
    /// whatever the backlog. Returns (delivery, endpoint, organization).
    pub async fn due_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        per_endpoint: u64,
        limit: u64,
        full: &AtShare,
    ) -> Result<Vec<(Uuid, Uuid, Uuid)>, DbErr> {
        let backend = self.db.get_database_backend();
        let placeholder = |n: usize| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => format!("?{n}"),
        };
        let (a, b, c) = (placeholder(1), placeholder(2), placeholder(3));
        let mut values: Vec<sea_orm::Value> = vec![
            now.into(),
            (per_endpoint as i64).into(),
            (limit as i64).into(),
        ];
        let mut left_out = String::new();
        for (column, ids) in [("e.id", &full.endpoints), ("e.org_id", &full.organizations)] {
            if ids.is_empty() {
                continue;
            }
            let first = values.len() + 1;
            let list: Vec<String> = (first..first + ids.len()).map(placeholder).collect();
            values.extend(ids.iter().map(|id| sea_orm::Value::from(*id)));
            left_out.push_str(&format!(" AND {column} NOT IN ({})", list.join(", ")));
        }
        let pending = DeliveryState::Pending.as_str();
        // One endpoint's due deliveries, in order, up to its share.
        let per_endpoint_due = format!(
            "SELECT p.id, p.endpoint_id, p.org_id FROM webhook_deliveries p \
             WHERE p.endpoint_id = e.id AND p.state = '{pending}' AND p.next_attempt_at <= {a} \
             AND (p.lease_until IS NULL OR p.lease_until < {a}) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries q \
               WHERE q.endpoint_id = p.endpoint_id AND q.subject = p.subject \
               AND q.state = '{pending}' AND q.position < p.position) \
             ORDER BY p.next_attempt_at LIMIT {b}"
        );
        // PostgreSQL runs the per-endpoint part once per endpoint as a lateral join; SQLite has
        // no LATERAL, but runs a correlated `IN` once per endpoint and looks the rows up by key.
        let sql = match backend {
            DbBackend::Postgres => format!(
                "SELECT d.id, d.endpoint_id, d.org_id FROM webhook_endpoints e \
                 CROSS JOIN LATERAL ({per_endpoint_due}) d WHERE e.enabled{left_out} LIMIT {c}"
            ),
            _ => format!(
                "SELECT d.id, d.endpoint_id, d.org_id FROM webhook_endpoints e \
                 JOIN webhook_deliveries d ON d.id IN (\
                   SELECT id FROM ({per_endpoint_due})) \
                 WHERE e.enabled{left_out} LIMIT {c}"
            ),
        };
        let statement = Statement::from_sql_and_values(backend, sql, values);
        Ok(Candidate::find_by_statement(statement)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c.endpoint_id, c.org_id))
            .collect())
    }

    /// Leases `ids` until `until` (those still pending and unleased at `now`) and returns what
    /// their attempts need.
    pub async fn lease_webhook_deliveries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Leased>, DbErr> {
        let w = super::writer(&self.db, &self.gate).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement: the rows still pending and unleased are leased and returned.
        let leased = delivery::Entity::update_many()
            .col_expr(delivery::Column::LeaseUntil, Expr::value(until))
            .filter(delivery::Column::Id.is_in(ids.iter().copied()))
            .filter(delivery::Column::State.eq(DeliveryState::Pending))
            .filter(
                sea_orm::Condition::any()
                    .add(delivery::Column::LeaseUntil.is_null())
                    .add(delivery::Column::LeaseUntil.lt(now)),
            )
            .exec_with_returning(&w)
            .await?;
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        let events: std::collections::HashMap<Uuid, String> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .column(event::Column::Payload)
            .filter(event::Column::Id.is_in(leased.iter().map(|d| d.event_id)))
            .into_tuple::<(Uuid, String)>()
            .all(&w)
            .await?
            .into_iter()
            .collect();
        let endpoints: std::collections::HashMap<Uuid, endpoint::Model> = endpoint::Entity::find()
            .filter(endpoint::Column::Id.is_in(leased.iter().map(|d| d.endpoint_id)))
            .all(&w)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        // Secrets rotated away that still sign, newest first.
        let mut signing: std::collections::HashMap<Uuid, Vec<String>> = Default::default();
        for row in rotated::Entity::find()
            .filter(rotated::Column::EndpointId.is_in(endpoints.keys().copied()))
            .filter(rotated::Column::SignsUntil.gt(now))
            .order_by_desc(rotated::Column::RotatedAt)
            .all(&w)
            .await?
        {
            signing.entry(row.endpoint_id).or_default().push(row.secret);
        }
        Ok(leased
            .into_iter()
            .filter_map(|d| {
                let endpoint = endpoints.get(&d.endpoint_id)?;
                let payload = events.get(&d.event_id)?.clone();
                let mut secrets = vec![endpoint.secret.clone()];
                secrets.extend(signing.get(&d.endpoint_id).into_iter().flatten().cloned());
                Some(Leased {
                    id: d.id,
                    endpoint_id: d.endpoint_id,
                    org_id: d.org_id,
                    url: endpoint.url.clone(),
                    secrets,
                    event_id: d.event_id,
                    payload,
                    attempts: u32::try_from(d.attempts).unwrap_or(0),
                    schedule_base: u32::try_from(d.schedule_base).unwrap_or(0),
                })
            })
            .collect())
    }

    /// Records attempts' outcomes, all in one transaction: delivered, due again, or failed;
    /// a 410 also disables its endpoint.
    pub async fn record_webhook_outcomes(&self, outcomes: &[Outcome]) -> Result<(), DbErr> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now().as_datetime();
        // Outcomes that write the same values go in one statement (a batch of 2xx is one).
        type Written = (
            DeliveryState,
            Option<u16>,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let mut groups: Vec<(Written, Vec<Uuid>)> = Vec::new();
        let mut gone: Vec<Uuid> = Vec::new();
        for outcome in outcomes {
            let written: Written = match &outcome.result {
                AttemptResult::Delivered { status } => {
                    (DeliveryState::Delivered, Some(*status), None, None)
                }
                AttemptResult::Gone => {
                    gone.push(outcome.endpoint_id);
                    (
                        DeliveryState::Failed,
                        Some(410),
                        Some("the endpoint answered 410 Gone and was disabled".to_owned()),
                        None,
                    )
                }
                AttemptResult::Refused { status, error, .. } => match outcome.retry_at {
                    Some(at) => (DeliveryState::Pending, *status, error.clone(), Some(at)),
                    None => (DeliveryState::Failed, *status, error.clone(), None),
                },
            };
            match groups.iter_mut().find(|(w, _)| *w == written) {
                Some((_, ids)) => ids.push(outcome.id),
                None => groups.push((written, vec![outcome.id])),
            }
        }
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        for ((state, status, error, next), ids) in groups {
            let mut update = delivery::Entity::update_many()
                .col_expr(
                    delivery::Column::Attempts,
                    Expr::col(delivery::Column::Attempts).add(1),
                )
                .col_expr(
                    delivery::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
                .col_expr(delivery::Column::State, Expr::value(state))
                .col_expr(
                    delivery::Column::LastStatusCode,
                    Expr::value(status.map(i32::from)),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error))
                .col_expr(delivery::Column::NextAttemptAt, Expr::value(next))
                .filter(delivery::Column::Id.is_in(ids))
                .filter(delivery::Column::State.eq(DeliveryState::Pending));
            if state == DeliveryState::Delivered {
                update = update.col_expr(delivery::Column::DeliveredAt, Expr::value(now));
            }
            update.exec(&txn).await?;
        }
        if !gone.is_empty() {
            endpoint::Entity::update_many()
                .col_expr(endpoint::Column::Enabled, Expr::value(false))
                .col_expr(
                    endpoint::Column::DisabledReason,
                    Expr::value("the endpoint answered 410 Gone"),
                )
                .col_expr(endpoint::Column::UpdatedAt, Expr::value(now))
                .filter(endpoint::Column::Id.is_in(gone))
                .exec(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// Deletes up to `limit` events written before `before` whose deliveries are all finished
    /// (their deliveries go with them).
    pub async fn purge_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<u64, DbErr> {
        let old: Vec<Uuid> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::CreatedAt.lt(before))
            .filter(
                event::Column::Id.not_in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(delivery::Column::EventId)
                        .from(delivery::Entity)
                        .and_where(delivery::Column::State.eq(DeliveryState::Pending))
                        .to_owned(),
                ),
            )
            .order_by_asc(event::Column::CreatedAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        delivery::Entity::delete_many()
            .filter(delivery::Column::EventId.is_in(old.iter().copied()))
            .exec(&txn)
            .await?;
        let deleted = event::Entity::delete_many()
            .filter(event::Column::Id.is_in(old))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }
}
