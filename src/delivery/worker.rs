//! The delivery worker: claims queued messages under a lease, re-checks consent, records the
//! submission attempt before calling the carrier, and records the answer. Expired leases go back
//! to the queue only while no attempt was recorded; after one they fail as
//! `SUBMISSION_UNCERTAIN`, so no message is ever submitted twice.

use std::{future::Future, sync::Arc, time::Duration};

use super::carrier::{Carrier, Submission, SubmitError};
use crate::{
    domain::message::Message,
    service::{delivery::SubmissionOutcome, Error, Services},
};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub batch_size: u64,
    pub lease: Duration,
    /// How long a sent message waits for a final receipt before it is `undelivered`.
    pub validity: Duration,
    /// Pause between polls when the queue is empty.
    pub poll: Duration,
    /// Pause between sweeps (expired leases, validity, stray receipts).
    pub sweep_every: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch_size: 32,
            lease: Duration::from_secs(30),
            validity: Duration::from_secs(48 * 3600),
            poll: Duration::from_millis(100),
            sweep_every: Duration::from_millis(500),
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

    /// The carrier a message goes to: test-mode messages never reach the live one.
    fn carrier_for(&self, message: &Message) -> &Arc<dyn Carrier> {
        match message.mode {
            crate::domain::organization::KeyMode::Test => &self.test_carrier,
            crate::domain::organization::KeyMode::Live => &self.carrier,
        }
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        match self.carrier.recover().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "picked up what the carrier owed from before the start"),
            Err(err) => tracing::warn!(%err, "the carrier could not recover its pending work"),
        }
        let mut last_sweep = tokio::time::Instant::now() - self.settings.sweep_every;
        loop {
            if last_sweep.elapsed() >= self.settings.sweep_every {
                if let Err(err) = self.sweep().await {
                    tracing::warn!(%err, "sweep failed");
                }
                last_sweep = tokio::time::Instant::now();
            }
            let handled = match self.tick().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(%err, "delivery tick failed");
                    0
                }
            };
            if handled == 0 {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        }
    }

    /// Claims one batch and delivers it; returns how many messages it claimed.
    pub async fn tick(&self) -> Result<usize, Error> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        let deliveries = claimed.into_iter().map(|m| async move {
            if let Err(err) = self.deliver(m).await {
                tracing::warn!(%err, "delivery failed");
            }
        });
        futures_util::future::join_all(deliveries).await;
        Ok(count)
    }

    /// Claims a batch; messages whose recipient opted out meanwhile fail instead.
    pub async fn claim(&self) -> Result<Vec<Message>, Error> {
        self.services
            .claim_messages(&self.owner, self.settings.lease, self.settings.batch_size)
            .await
    }

    /// Attempt, submit, record: the whole hand-over of one claimed message.
    pub async fn deliver(&self, message: Message) -> Result<(), Error> {
        if !self.attempt(&message).await? {
            return Ok(());
        }
        let result = self
            .carrier_for(&message)
            .submit(&submission(&message))
            .await;
        self.record(&message, result).await
    }

    /// Records the attempt; `false` when the lease was lost (the carrier must not be called).
    pub async fn attempt(&self, message: &Message) -> Result<bool, Error> {
        self.services.record_attempt(message.id, &self.owner).await
    }

    /// Records the carrier's answer.
    pub async fn record(
        &self,
        message: &Message,
        result: Result<String, SubmitError>,
    ) -> Result<(), Error> {
        let outcome = match result {
            Ok(carrier_id) => SubmissionOutcome::Accepted {
                carrier: self.carrier_for(message).name().to_owned(),
                carrier_id,
            },
            Err(SubmitError::Refused { code, message }) => {
                SubmissionOutcome::Refused { code, message }
            }
            Err(SubmitError::Uncertain(text)) => SubmissionOutcome::Uncertain(text),
        };
        self.services
            .record_submission(message, &self.owner, outcome)
            .await
    }

    /// Expired leases, validity expiry, and receipts that raced with `sent`.
    pub async fn sweep(&self) -> Result<(), Error> {
        self.services.sweep(self.settings.validity).await
    }
}

fn submission(message: &Message) -> Submission {
    Submission {
        message_id: message.id,
        from: message.from.as_str().to_owned(),
        to: message.to.as_str().to_owned(),
        text: message.text.clone(),
        media_urls: message.media_urls.clone(),
    }
}
