//! What a carrier adapter implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::message::Part;

/// A message as handed to a carrier.
#[derive(Debug, Clone)]
pub struct Submission {
    pub message_id: Uuid,
    pub from: String,
    pub to: String,
    pub text: String,
    pub media_urls: Vec<String>,
    /// When the message's validity runs out (counted from its creation): a carrier must not
    /// deliver it later.
    pub valid_until: DateTime<Utc>,
}

/// Why a part's submission did not give a carrier message id.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The carrier refused the part for now (throttling, a full queue, a temporary error, or no
    /// session to submit on): it was not sent, and may be submitted again later.
    #[error("deferred ({code}): {message}")]
    Deferred { code: String, message: String },
    /// The carrier answered and refused the part for good: it was not sent.
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
    /// No answer could be read (timeout, connection lost while outstanding): the part may have
    /// been sent, and is never submitted again.
    #[error("no answer: {0}")]
    Uncertain(String),
}

pub use crate::domain::submission::CarrierHealth;

/// A carrier that takes submissions and later sends delivery receipts (through
/// `Services::record_receipt`: over `POST /v1/carrier/receipts` or the carrier's own session).
#[async_trait]
pub trait Carrier: Send + Sync {
    /// The name receipts and carrier ids are stored under.
    fn name(&self) -> &str;

    /// How many parts (submissions) the message takes; one unless the carrier splits texts.
    fn part_count(&self, _submission: &Submission) -> u8 {
        1
    }

    /// Whether it can carry MMS (media URLs).
    fn supports_mms(&self) -> bool {
        true
    }

    /// Its sessions now.
    fn health(&self) -> CarrierHealth;

    /// Submits one part of a message (`part.number` of `part.total`); `Ok` holds the carrier's id
    /// for that part. Several parts and messages may be submitted at once: the carrier keeps to
    /// its own window.
    async fn submit(&self, submission: &Submission, part: &Part) -> Result<String, SubmitError>;

    /// Picks up what a previous process left owed when a worker starts (the simulated carrier
    /// re-schedules the receipts of messages still `sent`). Nothing by default.
    async fn recover(&self) -> anyhow::Result<usize> {
        Ok(0)
    }

    /// Stops taking submissions, waits (bounded) for the answers outstanding, and closes its
    /// sessions. Nothing by default.
    async fn close(&self) {}
}
