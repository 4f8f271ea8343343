//! The delivery worker: claims queued messages under a lease (only of the modes whose carrier can
//! take them now), re-checks consent, records the submission attempt of the parts not yet
//! accepted before calling the carrier, and records the answers. Expired leases go back to the
//! queue only while no attempt was recorded; after one they fail as `SUBMISSION_UNCERTAIN`, so no
//! part is ever submitted twice.

use std::{future::Future, sync::Arc, time::Duration};

use super::carrier::{Carrier, Submission, SubmitError};
use crate::{
    domain::{
        message::{KeyMode, Message, Part},
        organization,
    },
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
        WorkerSettings {
            batch_size: 128,
            lanes: 8,
            lease: Duration::from_secs(30),
            validity: Duration::from_secs(48 * 3600),
            retry_backoff: Duration::from_secs(5),
            poll: Duration::from_millis(100),
            sweep_every: Duration::from_millis(500),
            webhooks: Default::default(),
        }
    }
}

/// One worker; several may run against one database.
pub struct Worker {
    services: Services,
    /// The live carrier.
    carrier: Arc<dyn Carrier>,
    /// Test mode's carrier: always a simulated one, never the live carrier.
    test_carrier: Arc<dyn Carrier>,
    settings: WorkerSettings,
    owner: String,
}

impl Worker {
    pub fn new(services: Services, carrier: Arc<dyn Carrier>, settings: WorkerSettings) -> Worker {
        Worker {
            services,
            test_carrier: carrier.clone(),
            carrier,
            settings,
            owner: format!("worker-{}", ulid::Ulid::new()),
        }
    }

    /// The same worker with `carrier` for test-mode messages (by default the live carrier, which
    /// must then be the simulated one).
    pub fn with_test_carrier(mut self, carrier: Arc<dyn Carrier>) -> Worker {
        self.test_carrier = carrier;
        self
    }

    /// Reads the live carrier's state (for `/healthz`).
    pub fn health_probe(&self) -> crate::service::HealthProbe {
        let carrier = self.carrier.clone();
        Arc::new(move || carrier.health())
    }

    /// The carrier a message goes to: test-mode messages never reach the live one.
    fn carrier_for(&self, message: &Message) -> &Arc<dyn Carrier> {
        self.carrier_of(message.mode)
    }

    fn carrier_of(&self, mode: organization::KeyMode) -> &Arc<dyn Carrier> {
        match mode {
            KeyMode::Test => &self.test_carrier,
            KeyMode::Live => &self.carrier,
        }
    }

    /// The modes whose carrier can take submissions now: while the live carrier has no session
    /// bound, live messages wait in the queue (their validity still runs).
    fn ready_modes(&self) -> Vec<KeyMode> {
        KeyMode::ALL
            .iter()
            .copied()
            .filter(|mode| self.carrier_of(*mode).health().ready())
            .collect()
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut carriers = vec![&self.carrier];
        if !Arc::ptr_eq(&self.carrier, &self.test_carrier) {
            carriers.push(&self.test_carrier);
        }
        for carrier in carriers {
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
        self.carrier.close().await;
    }

    /// Claims one batch and delivers it; returns how many messages it claimed. The batch's
    /// parts and attempts are written in one transaction, its parts submitted together (each
    /// carrier keeps to its own window), and the answers recorded in one transaction.
    pub async fn tick(&self) -> Result<usize, Error> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        if claimed.is_empty() {
            return Ok(0);
        }
        metrics::counter!("agentmessage_worker_claimed_total").increment(count as u64);
        let submissions: Vec<Submission> = claimed.iter().map(|m| self.submission(m)).collect();
        let timer = std::time::Instant::now();
        let begun = self.begin(&claimed).await?;
        let begun_in = timer.elapsed();
        let deliveries = claimed.iter().zip(&submissions).zip(begun).filter_map(
            |((message, submission), begun)| {
                let (parts, pending) = begun?;
                Some(async move {
                    let carrier = self.carrier_for(message);
                    let results =
                        futures_util::future::join_all(pending.iter().map(|part| async {
                            let result = carrier.submit(submission, part).await;
                            let outcome = match &result {
                                Ok(_) => "accepted",
                                Err(super::SubmitError::Deferred { .. }) => "deferred",
                                Err(super::SubmitError::Refused { .. }) => "refused",
                                Err(super::SubmitError::Uncertain(_)) => "uncertain",
                            };
                            metrics::counter!(
                                "agentmessage_carrier_submits_total",
                                "carrier" => carrier.name().to_owned(),
                                "result" => outcome
                            )
                            .increment(1);
                            (part.number, result)
                        }))
                        .await;
                    (message.clone(), self.attempt_of(message, parts, results))
                })
            },
        );
        let answered = futures_util::future::join_all(deliveries).await;
        let submitted_in = timer.elapsed();
        self.services
            .record_submissions(&self.owner, answered)
            .await?;
        tracing::debug!(count, ?begun_in, ?submitted_in, total = ?timer.elapsed(), "tick");
        Ok(count)
    }

    /// How many parts the message's carrier makes of it.
    fn part_count(&self, message: &Message, submission: &Submission) -> u8 {
        self.carrier_for(message).part_count(submission).max(1)
    }

    /// Claims a batch; messages whose recipient opted out meanwhile fail instead.
    pub async fn claim(&self) -> Result<Vec<Message>, Error> {
        let modes = self.ready_modes();
        self.services
            .claim_messages(
                &self.owner,
                self.settings.lease,
                self.settings.batch_size,
                &modes,
            )
            .await
    }

    /// Writes the parts of claimed `messages` and records the attempt of those not yet accepted,
    /// in one transaction: for each message, every part and the parts to submit now, or `None`
    /// when its lease was lost (the carrier must not be called).
    pub async fn begin(
        &self,
        messages: &[Message],
    ) -> Result<Vec<Option<(Vec<Part>, Vec<Part>)>>, Error> {
        let items: Vec<_> = messages
            .iter()
            .map(|m| {
                (
                    m.id,
                    self.part_count(m, &self.submission(m)),
                    reference_of(m),
                )
            })
            .collect();
        self.services.begin_attempts(&self.owner, &items).await
    }

    /// Records the carrier's answers to the parts submitted.
    pub async fn record(
        &self,
        message: &Message,
        parts: Vec<Part>,
        results: Vec<(u8, Result<String, SubmitError>)>,
    ) -> Result<(), Error> {
        let attempt = self.attempt_of(message, parts, results);
        self.services
            .record_submission(message, &self.owner, attempt)
            .await
    }

    /// The carrier's answers as an attempt to record.
    fn attempt_of(
        &self,
        message: &Message,
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
                };
                (number, outcome)
            })
            .collect();
        let backoff = chrono::Duration::from_std(self.settings.retry_backoff)
            .unwrap_or(chrono::Duration::MAX);
        Attempt {
            carrier: self.carrier_for(message).name().to_owned(),
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
        Submission {
            message_id: message.id,
            from: message.from.as_str().to_owned(),
            to: message.to.as_str().to_owned(),
            text: message.text.clone(),
            media_urls: message.media_urls.clone(),
            valid_until: created
                .checked_add_signed(validity)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        }
    }

    /// Expired leases, validity expiry, and receipts that raced with `sent`.
    pub async fn sweep(&self) -> Result<(), Error> {
        self.services.sweep(self.settings.validity).await
    }
}

/// The concatenation reference of a message's parts: one per message, the same on every retry.
fn reference_of(message: &Message) -> u8 {
    message.id.as_bytes()[15]
}
