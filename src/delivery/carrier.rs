//! What a carrier adapter implements.

use async_trait::async_trait;
use uuid::Uuid;

/// A message as handed to a carrier.
#[derive(Debug, Clone)]
pub struct Submission {
    pub message_id: Uuid,
    pub from: String,
    pub to: String,
    pub text: String,
    pub media_urls: Vec<String>,
}

/// Why a submission did not give a carrier message id.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The carrier answered and refused the message: it was not sent.
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
    /// No answer could be read (timeout, broken connection): the message may have been sent.
    #[error("no answer: {0}")]
    Uncertain(String),
}

/// A carrier that takes submissions and later sends delivery receipts (through
/// `Services::record_receipt`, over `POST /v1/carrier/receipts` for a real one).
#[async_trait]
pub trait Carrier: Send + Sync {
    /// The name receipts and carrier ids are stored under.
    fn name(&self) -> &str;

    /// Submits one message; `Ok` holds the carrier's message id.
    async fn submit(&self, submission: &Submission) -> Result<String, SubmitError>;

    /// Picks up what a previous process left owed when a worker starts (the simulated carrier
    /// re-schedules the receipts of messages still `sent`). Nothing by default.
    async fn recover(&self) -> anyhow::Result<usize> {
        Ok(0)
    }
}
