//! The delivery worker: claims queued messages under a lease, re-checks consent, records the
//! submission attempt before calling the carrier, and records the answer. Expired leases go back
//! to the queue only while no attempt was recorded; after one they fail as
//! `SUBMISSION_UNCERTAIN`, so no message is ever submitted twice.

use std::{future::Future, sync::Arc, time::Duration};

use chrono::Utc;
use entity::message;

use super::carrier::{Carrier, Submission, SubmitError};
use crate::{
    domain::{
        consent::ConsentStatus, lifecycle::MessageErrorCode, message::MessageStatus, PhoneNumber,
    },
    service::{Error, Services},
    store::delivery::{Change, EventDetail},
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
    carrier: Arc<dyn Carrier>,
    settings: WorkerSettings,
    owner: String,
}

impl Worker {
    pub fn new(services: Services, carrier: Arc<dyn Carrier>, settings: WorkerSettings) -> Worker {
        Worker {
            services,
            carrier,
            settings,
            owner: format!("worker-{}", ulid::Ulid::new()),
        }
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
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

    /// Claims a batch and fails those whose recipient opted out meanwhile; returns the rest.
    pub async fn claim(&self) -> Result<Vec<message::Model>, Error> {
        let until = Utc::now()
            + chrono::Duration::from_std(self.settings.lease)
                .unwrap_or(chrono::Duration::seconds(30));
        let claimed = self
            .services
            .store
            .claim_queued(&self.owner, until, self.settings.batch_size)
            .await?;
        let mut ready = Vec::with_capacity(claimed.len());
        for message in claimed {
            let to = PhoneNumber::parse(&message.to_number);
            let consent = match &to {
                Some(to) => {
                    self.services
                        .store
                        .latest_consent(message.org_id, to)
                        .await?
                }
                None => None,
            };
            if consent.and_then(|c| ConsentStatus::parse(&c.status)) == Some(ConsentStatus::OptedIn)
            {
                ready.push(message);
            } else {
                let mut change = self.change(MessageStatus::Sending, MessageStatus::Failed)?;
                change.error_code = Some(MessageErrorCode::ConsentRevoked.as_str().into());
                change.error_message =
                    Some("the recipient opted out before the message was sent".into());
                change.detail.error_code = change.error_code.clone();
                self.services
                    .store
                    .change_status(message.id, change)
                    .await?;
            }
        }
        Ok(ready)
    }

    /// Attempt, submit, record: the whole hand-over of one claimed message.
    pub async fn deliver(&self, message: message::Model) -> Result<(), Error> {
        if !self.attempt(&message).await? {
            return Ok(());
        }
        let result = self.carrier.submit(&submission(&message)).await;
        self.record(&message, result).await
    }

    /// Records the attempt; `false` when the lease was lost (the carrier must not be called).
    pub async fn attempt(&self, message: &message::Model) -> Result<bool, Error> {
        Ok(self
            .services
            .store
            .record_attempt(message.id, &self.owner)
            .await?)
    }

    /// Records the carrier's answer.
    pub async fn record(
        &self,
        message: &message::Model,
        result: Result<String, SubmitError>,
    ) -> Result<(), Error> {
        let change = match result {
            Ok(carrier_id) => {
                let mut change = self.change(MessageStatus::Sending, MessageStatus::Sent)?;
                change.carrier = Some((self.carrier.name().to_owned(), carrier_id.clone()));
                change.detail.carrier_message_id = Some(carrier_id);
                change
            }
            Err(SubmitError::Refused {
                code,
                message: text,
            }) => {
                let mut change = self.change(MessageStatus::Sending, MessageStatus::Failed)?;
                change.error_code = Some(MessageErrorCode::CarrierRefused.as_str().into());
                change.error_message = Some(format!("{code}: {text}"));
                change.detail.error_code = change.error_code.clone();
                change.detail.err = Some(code);
                change
            }
            Err(SubmitError::Uncertain(text)) => {
                let mut change = self.change(MessageStatus::Sending, MessageStatus::Failed)?;
                change.error_code = Some(MessageErrorCode::SubmissionUncertain.as_str().into());
                change.error_message = Some(format!("the carrier did not answer: {text}"));
                change.detail.error_code = change.error_code.clone();
                change
            }
        };
        match self
            .services
            .store
            .change_status(message.id, change)
            .await?
        {
            Some(updated) if updated.status == MessageStatus::Sent.as_str() => {
                self.services.match_pending_receipts(&updated).await
            }
            Some(_) => Ok(()),
            None => {
                tracing::warn!(message_id = %message.id, "the lease was lost before the carrier's answer was recorded");
                Ok(())
            }
        }
    }

    /// Expired leases (back to the queue before an attempt, `SUBMISSION_UNCERTAIN` after),
    /// validity expiry, and receipts that raced with `sent`.
    pub async fn sweep(&self) -> Result<(), Error> {
        let now = Utc::now();
        for message in self.services.store.expired_leases(now).await? {
            let to = if message.attempted_at.is_some() {
                MessageStatus::Failed
            } else {
                MessageStatus::Queued
            };
            let mut change = Change::new(MessageStatus::Sending, to)?;
            change.lease_owner = message.lease_owner.clone();
            if to == MessageStatus::Failed {
                change.error_code = Some(MessageErrorCode::SubmissionUncertain.as_str().into());
                change.error_message = Some(
                    "the worker stopped after attempting the submission; it is not submitted again"
                        .into(),
                );
                change.detail.error_code = change.error_code.clone();
            }
            self.services
                .store
                .change_status(message.id, change)
                .await?;
        }
        let validity =
            chrono::Duration::from_std(self.settings.validity).unwrap_or(chrono::Duration::MAX);
        for message in self.services.store.sent_before(now - validity).await? {
            let mut change = Change::new(MessageStatus::Sent, MessageStatus::Undelivered)?;
            change.error_code = Some(MessageErrorCode::Expired.as_str().into());
            change.error_message =
                Some("no final delivery receipt arrived within the validity period".into());
            change.detail = EventDetail {
                error_code: change.error_code.clone(),
                ..Default::default()
            };
            self.services
                .store
                .change_status(message.id, change)
                .await?;
        }
        self.services.match_unmatched_receipts().await?;
        Ok(())
    }

    fn change(&self, from: MessageStatus, to: MessageStatus) -> Result<Change, Error> {
        let mut change = Change::new(from, to)?;
        change.lease_owner = Some(self.owner.clone());
        Ok(change)
    }
}

fn submission(message: &message::Model) -> Submission {
    Submission {
        message_id: message.id,
        from: message.from_number.clone(),
        to: message.to_number.clone(),
        text: message.body.clone(),
        media_urls: message
            .media_urls
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default(),
    }
}
