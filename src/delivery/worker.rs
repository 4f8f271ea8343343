//! The delivery worker: claims queued messages under a lease (only of the modes whose carrier can
//! take them now), re-checks consent, records the submission attempt of the parts not yet
//! accepted before calling the carrier, and records the answers. Expired leases go back to the
//! queue only while no attempt was recorded; after one they fail as `SUBMISSION_UNCERTAIN`, so no
//! part is ever submitted twice.

use std::{future::Future, sync::Arc, time::Duration};

use super::{
    carrier::{Carrier, Room, Submission, SubmitError},
    routing::{Claim, Connection, Routing},
};
use crate::{
    domain::message::{Channel, KeyMode, Message, Part},
    service::{
        delivery::{Attempt, PartOutcome},
        Error, Services,
    },
};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub batch_size: u64,
    /// Batches claimed and delivered side by side (one of them also sweeps).
    pub lanes: usize,
    pub lease: Duration,
    /// How long a message may take, from its creation, to be sent and get its final receipt;
    /// past it, it is `undelivered` (`EXPIRED`).
    pub validity: Duration,
    /// How long a message waits before it is submitted again after the carrier deferred a part.
    pub retry_backoff: Duration,
    /// Pause between polls when the queue is empty.
    pub poll: Duration,
    /// Pause between sweeps (expired leases, validity, stray receipts).
    pub sweep_every: Duration,
    /// The webhook dispatcher that runs beside the lanes.
    pub webhooks: super::webhooks::WebhookSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        use crate::defaults::{self, duration};
        WorkerSettings {
            batch_size: defaults::BATCH_SIZE,
            lanes: defaults::LANES,
            lease: duration(defaults::LEASE),
            validity: duration(defaults::VALIDITY),
            retry_backoff: duration(defaults::RETRY_BACKOFF),
            poll: duration(defaults::POLL),
            sweep_every: duration(defaults::SWEEP_EVERY),
            webhooks: Default::default(),
        }
    }
}

/// One worker; several may run against one database.
pub struct Worker {
    services: Services,
    /// The named connections and the routes between them (test mode's to a simulated one).
    routing: Arc<Routing>,
    settings: WorkerSettings,
    owner: String,
    gauges: Gauges,
}

/// `/metrics` of one worker: the messages it holds leased, and those whose attempt is recorded
/// and whose answer is not yet in (what a stop now would leave uncertain). The handles are taken
/// when used, so that they reach the recorder installed at start.
struct Gauges {
    worker: String,
}

/// Takes back what a gauge was raised by, when dropped.
struct Raised(metrics::Gauge, f64);

impl Drop for Raised {
    fn drop(&mut self) {
        self.0.decrement(self.1);
    }
}

impl Gauges {
    fn of(owner: &str) -> Gauges {
        Gauges {
            worker: owner.to_owned(),
        }
    }

    fn raise(gauge: metrics::Gauge, n: usize) -> Raised {
        gauge.increment(n as f64);
        Raised(gauge, n as f64)
    }

    fn leased(&self, n: usize) -> Raised {
        let worker = self.worker.clone();
        Self::raise(
            metrics::gauge!("agentmessage_worker_messages_leased", "worker" => worker),
            n,
        )
    }

    fn in_flight(&self, n: usize) -> Raised {
        let worker = self.worker.clone();
        Self::raise(
            metrics::gauge!("agentmessage_worker_messages_in_flight", "worker" => worker),
            n,
        )
    }
}

impl Worker {
    /// A worker whose every message goes to `carrier`.
    pub fn new(services: Services, carrier: Arc<dyn Carrier>, settings: WorkerSettings) -> Worker {
        Worker::routed(services, Routing::single(carrier), settings)
    }

    /// A worker that routes messages over `routing`'s connections.
    pub fn routed(services: Services, routing: Routing, settings: WorkerSettings) -> Worker {
        let owner = format!("worker-{}", ulid::Ulid::new());
        Worker {
            services,
            routing: Arc::new(routing),
            settings,
            gauges: Gauges::of(&owner),
            owner,
        }
    }

    /// The same worker with `carrier` for test-mode messages (by default the live carrier, which
    /// must then be the simulated one).
    pub fn with_test_carrier(mut self, carrier: Arc<dyn Carrier>) -> Worker {
        self.routing = Arc::new((*self.routing).clone().with_test(carrier));
        self
    }

    /// The same worker with `carrier` for live MMS (by default the live carrier takes both
    /// channels).
    pub fn with_mms_carrier(mut self, carrier: Arc<dyn Carrier>) -> Worker {
        self.routing = Arc::new((*self.routing).clone().with_channel(Channel::Mms, carrier));
        self
    }

    /// Reads the connections' state (for `/healthz`, `/readyz` and `/metrics`).
    pub fn health_probe(&self) -> crate::service::HealthProbe {
        let routing = self.routing.clone();
        Arc::new(move || routing.health())
    }

    /// The connection a message goes to now (test-mode messages never reach a live one); the
    /// test connection when no route takes it (only the step-by-step test helpers ask).
    fn connection_for(&self, message: &Message) -> Arc<Connection> {
        self.routing
            .choose(message.mode, message.channel, message.to.as_str())
            .unwrap_or_else(|| {
                self.routing
                    .choose(KeyMode::Test, message.channel, message.to.as_str())
                    .expect("test mode always has its connection")
            })
    }

    /// Every carrier this worker runs, each once.
    fn distinct_carriers(&self) -> Vec<Arc<dyn Carrier>> {
        self.routing
            .connections()
            .iter()
            .map(|c| c.carrier().clone())
            .collect()
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        for carrier in self.distinct_carriers() {
            match carrier.recover().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    n,
                    carrier = carrier.name(),
                    "picked up what the carrier owed from before the start"
                ),
                Err(err) => {
                    tracing::warn!(%err, carrier = carrier.name(), "the carrier could not recover its pending work")
                }
            }
        }
        // Lanes claim and deliver batches side by side, so that one batch's database writes
        // overlap another's submissions; leases keep them from taking the same message.
        let stopping = std::sync::atomic::AtomicBool::new(false);
        let stop = tokio::sync::Notify::new();
        let watch = async {
            shutdown.await;
            stopping.store(true, std::sync::atomic::Ordering::Release);
            stop.notify_waiters();
        };
        let this = &self;
        let lane = |sweeps: bool| {
            let (stopping, stop) = (&stopping, &stop);
            async move {
                let mut last_sweep = tokio::time::Instant::now() - this.settings.sweep_every;
                loop {
                    if sweeps && last_sweep.elapsed() >= this.settings.sweep_every {
                        if let Err(err) = this.sweep().await {
                            tracing::warn!(%err, "sweep failed");
                        }
                        last_sweep = tokio::time::Instant::now();
                    }
                    // A tick is never cut short: a part attempted must have its answer recorded.
                    let handled = match this.tick().await {
                        Ok(n) => n,
                        Err(err) => {
                            tracing::warn!(%err, "delivery tick failed");
                            0
                        }
                    };
                    let pause = if handled == 0 {
                        this.settings.poll
                    } else {
                        Duration::ZERO
                    };
                    let stopped = stop.notified();
                    if stopping.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    tokio::select! {
                        _ = stopped => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        };
        // Webhook deliveries run beside the lanes and stop with them.
        let dispatcher =
            super::webhooks::Dispatcher::new(self.services.clone(), self.settings.webhooks.clone());
        let dispatch = dispatcher.run(async {
            loop {
                let stopped = stop.notified();
                if stopping.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                stopped.await;
            }
        });
        let lanes =
            futures_util::future::join_all((0..self.settings.lanes.max(1)).map(|n| lane(n == 0)));
        tokio::join!(watch, lanes, dispatch);
        let carriers = self.distinct_carriers();
        futures_util::future::join_all(carriers.iter().map(|c| c.close())).await;
    }

    /// Claims one batch and delivers it; returns how many messages it claimed. A lane first
    /// takes room in its carriers' windows and claims only as many messages as it has room for
    /// (their parts written with the claim); the batch's attempts are recorded in one
    /// transaction, each message's parts submitted in its room, the answers recorded in one
    /// transaction, and only then is the room given back. A worker that stops leaves no more
    /// uncertain than its carriers' windows held, and what it claimed and never attempted goes
    /// back to the queue when the lease runs out.
    pub async fn tick(&self) -> Result<usize, Error> {
        let mut batch = Vec::new();
        // Each connection's claims in turn: room in its windows, within its throughput.
        let mut claims = self.routing.claims();
        while !claims.is_empty() {
            let connection = claims[0].connection.clone();
            let (mine, rest): (Vec<Claim>, Vec<Claim>) = claims
                .into_iter()
                .partition(|c| Arc::ptr_eq(&c.connection, &connection));
            claims = rest;
            let mut rooms = connection
                .carrier()
                .rooms(self.settings.batch_size as usize, self.settings.poll)
                .await;
            if rooms.is_empty() {
                continue;
            }
            let allowed = connection
                .tokens(&self.services, rooms.len(), self.settings.poll)
                .await;
            rooms.truncate(allowed);
            for claim in &mine {
                if rooms.is_empty() {
                    break;
                }
                let claimed = self.claim_for(claim, rooms.len() as u64).await?;
                let taken: Vec<Room> = rooms.drain(..claimed.len().min(rooms.len())).collect();
                batch.extend(
                    claimed
                        .into_iter()
                        .zip(taken)
                        .map(|(m, room)| (m, room, connection.clone())),
                );
            }
        }
        let count = batch.len();
        if batch.is_empty() {
            return Ok(0);
        }
        metrics::counter!("agentmessage_worker_claimed_total").increment(count as u64);
        let _leased = self.gauges.leased(count);
        let timer = std::time::Instant::now();
        // The attempts of the messages that have parts to submit, in one transaction.
        let items: Vec<(uuid::Uuid, Vec<u8>)> = batch
            .iter()
            .map(|((message, parts), _, _)| {
                let pending = crate::domain::message::pending_parts(parts);
                (message.id, pending.iter().map(|p| p.number).collect())
            })
            .filter(|(_, numbers): &(uuid::Uuid, Vec<u8>)| !numbers.is_empty())
            .collect();
        let began: std::collections::HashSet<uuid::Uuid> = if items.is_empty() {
            Default::default()
        } else {
            let began = self.services.begin_attempts(&self.owner, &items).await?;
            items
                .iter()
                .zip(began)
                .filter(|(_, began)| *began)
                .map(|((id, _), _)| *id)
                .collect()
        };
        let _in_flight = self.gauges.in_flight(began.len());
        let deliveries = batch.into_iter().filter_map(|((message, parts), room, connection)| {
            let pending = crate::domain::message::pending_parts(&parts);
            if !pending.is_empty() && !began.contains(&message.id) {
                tracing::warn!(message_id = %message.id, "the lease was lost before the attempt");
                return None;
            }
            Some(self.deliver(message, parts, pending, room, connection))
        });
        let answered: Vec<((Message, Attempt), Room)> =
            futures_util::future::join_all(deliveries).await;
        let (answered, rooms): (Vec<_>, Vec<_>) = answered.into_iter().unzip();
        let submitted_in = timer.elapsed();
        self.services
            .record_submissions(&self.owner, answered)
            .await?;
        // The rooms go back only now that the answers are recorded.
        drop(rooms);
        tracing::debug!(count, ?submitted_in, total = ?timer.elapsed(), "tick");
        Ok(count)
    }

    /// Submits the `pending` parts of one attempted message, one after another in `room`; the
    /// answers, and the room to give back once they are recorded.
    async fn deliver(
        &self,
        message: Message,
        parts: Vec<Part>,
        pending: Vec<Part>,
        room: Room,
        connection: Arc<Connection>,
    ) -> ((Message, Attempt), Room) {
        let carrier = connection.carrier();
        let submission = self.submission(&message);
        let mut room = room;
        let mut results = Vec::with_capacity(pending.len());
        for part in &pending {
            let (result, back) = carrier.submit_in(&submission, part, room).await;
            room = back;
            let outcome = match &result {
                Ok(_) => "accepted",
                Err(SubmitError::Deferred { .. }) => "deferred",
                Err(SubmitError::Refused { .. }) => "refused",
                Err(SubmitError::Uncertain(_)) => "uncertain",
                Err(SubmitError::Media { .. }) => "media refused",
            };
            metrics::counter!(
                "agentmessage_carrier_submits_total",
                "connection" => connection.name().to_owned(),
                "result" => outcome
            )
            .increment(1);
            results.push((part.number, result));
        }
        let attempt = self.attempt_of(connection.name(), parts, results);
        ((message, attempt), room)
    }

    /// Claims up to `limit` messages of `claim` (with their parts, as many as its connection's
    /// carrier makes of each); messages whose recipient opted out meanwhile fail instead.
    async fn claim_for(
        &self,
        claim: &Claim,
        limit: u64,
    ) -> Result<Vec<(Message, Vec<Part>)>, Error> {
        let carrier = claim.connection.carrier();
        let parts_for = |m: &Message| {
            (
                carrier.part_count(&self.submission(m)).max(1),
                reference_of(m),
            )
        };
        let filter = crate::store::QueueFilter {
            modes: &claim.modes,
            channels: &claim.channels,
            prefix: &claim.prefix,
            excluded: &claim.excluded,
        };
        self.services
            .claim_messages(&self.owner, self.settings.lease, limit, filter, &parts_for)
            .await
    }

    /// Claims a batch for the connections that can take messages now, without taking room
    /// (for tests that drive the steps one at a time).
    pub async fn claim_with_parts(&self) -> Result<Vec<(Message, Vec<Part>)>, Error> {
        let mut claimed = Vec::new();
        for claim in self.routing.claims() {
            let left = self
                .settings
                .batch_size
                .saturating_sub(claimed.len() as u64);
            if left == 0 {
                break;
            }
            claimed.extend(self.claim_for(&claim, left).await?);
        }
        Ok(claimed)
    }

    /// Claims a batch as [`Worker::claim_with_parts`] does.
    pub async fn claim(&self) -> Result<Vec<Message>, Error> {
        Ok(self
            .claim_with_parts()
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// Records the attempt of claimed `messages` in one transaction: for each message, every
    /// part and the parts to submit now, or `None` when its lease was lost (the carrier must not
    /// be called).
    pub async fn begin(
        &self,
        messages: &[Message],
    ) -> Result<Vec<Option<(Vec<Part>, Vec<Part>)>>, Error> {
        let mut items = Vec::with_capacity(messages.len());
        let mut all = Vec::with_capacity(messages.len());
        for message in messages {
            let parts = self.services.parts_of(message.id).await?;
            let pending = crate::domain::message::pending_parts(&parts);
            items.push((message.id, pending.iter().map(|p| p.number).collect()));
            all.push((parts, pending));
        }
        let began = self.services.begin_attempts(&self.owner, &items).await?;
        Ok(all
            .into_iter()
            .zip(began)
            .map(|(parts, began)| began.then_some(parts))
            .collect())
    }

    /// Records the carrier's answers to the parts submitted.
    pub async fn record(
        &self,
        message: &Message,
        parts: Vec<Part>,
        results: Vec<(u8, Result<String, SubmitError>)>,
    ) -> Result<(), Error> {
        let attempt = self.attempt_of(self.connection_for(message).name(), parts, results);
        self.services
            .record_submission(message, &self.owner, attempt)
            .await
    }

    /// The carrier's answers as an attempt to record.
    fn attempt_of(
        &self,
        connection: &str,
        parts: Vec<Part>,
        results: Vec<(u8, Result<String, SubmitError>)>,
    ) -> Attempt {
        let outcomes = results
            .into_iter()
            .map(|(number, result)| {
                let outcome = match result {
                    Ok(carrier_id) => PartOutcome::Accepted(carrier_id),
                    Err(SubmitError::Deferred { code, message }) => {
                        PartOutcome::Deferred { code, message }
                    }
                    Err(SubmitError::Refused { code, message }) => {
                        PartOutcome::Refused { code, message }
                    }
                    Err(SubmitError::Uncertain(text)) => PartOutcome::Uncertain(text),
                    Err(SubmitError::Media { code, message }) => {
                        PartOutcome::MediaRefused { code, message }
                    }
                };
                (number, outcome)
            })
            .collect();
        let backoff = chrono::Duration::from_std(self.settings.retry_backoff)
            .unwrap_or(chrono::Duration::MAX);
        Attempt {
            carrier: connection.to_owned(),
            parts,
            outcomes,
            retry_at: chrono::Utc::now() + backoff,
        }
    }

    /// The message as its carrier takes it.
    pub fn submission(&self, message: &Message) -> Submission {
        let validity =
            chrono::Duration::from_std(self.settings.validity).unwrap_or(chrono::Duration::MAX);
        let created = message.created_at.as_datetime();
        let deployment = created
            .checked_add_signed(validity)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        Submission {
            message_id: message.id,
            from: message.from.as_str().to_owned(),
            to: message.to.as_str().to_owned(),
            text: message.text.clone(),
            media_urls: message.media_urls.clone(),
            // Its own validity (a `validity_period`, or counted from `send_at`) when it has one.
            valid_until: message.valid_until.unwrap_or(deployment),
        }
    }

    /// Scheduled messages whose time came, expired leases, validity expiry, and receipts that
    /// raced with `sent`.
    pub async fn sweep(&self) -> Result<(), Error> {
        let released = self.services.release_scheduled().await?;
        if released > 0 {
            tracing::debug!(released, "scheduled messages released");
        }
        self.services.sweep(self.settings.validity).await
    }
}

/// The concatenation reference of a message's parts: one per message, the same on every retry.
fn reference_of(message: &Message) -> u8 {
    message.id.as_bytes()[15]
}
