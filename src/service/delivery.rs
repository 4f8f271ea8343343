//! The delivery rules the worker runs: claiming under a lease with the consent re-check,
//! recording the attempt before the carrier is called, recording the carrier's answer, and the
//! sweeps (expired leases, validity, receipts that raced with `sent`).

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{Error, Services};
use crate::{
    domain::{
        lifecycle::MessageErrorCode,
        message::{Message, MessageStatus},
    },
    store::delivery::{Change, EventDetail},
};

/// What the carrier said to a submission.
#[derive(Debug, Clone)]
pub enum SubmissionOutcome {
    /// Accepted, under this carrier id.
    Accepted { carrier: String, carrier_id: String },
    /// Refused: it was not sent.
    Refused { code: String, message: String },
    /// No answer could be read: it may have been sent, and is never submitted again.
    Uncertain(String),
}

impl Services {
    /// Claims up to `limit` queued messages for `owner` until `lease` from now, and fails those
    /// whose recipient may no longer be messaged; returns the rest.
    pub async fn claim_messages(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<Message>, Error> {
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self.system().claim_queued(owner, until, limit).await?;
        let mut ready = Vec::with_capacity(claimed.len());
        for message in claimed {
            let tenant = self.store.tenant(message.org_id, message.mode);
            if self.may_message(&tenant, &message.to).await? {
                ready.push(message);
            } else {
                let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
                change.lease_owner = Some(owner.to_owned());
                change.error_code = Some(MessageErrorCode::ConsentRevoked);
                change.error_message =
                    Some("the recipient opted out before the message was sent".into());
                change.detail.error_code = change.error_code;
                self.system().change_status(message.id, change).await?;
            }
        }
        Ok(ready)
    }

    /// Messages still `sent` through `carrier`, waiting for a final receipt.
    pub async fn sent_messages(&self, carrier: &str) -> Result<Vec<Message>, Error> {
        Ok(self.system().sent_through(carrier).await?)
    }

    /// Records that `owner` is about to submit message `id`; `false` when its lease was lost or
    /// an attempt was already recorded — then the carrier must not be called.
    pub async fn record_attempt(&self, id: Uuid, owner: &str) -> Result<bool, Error> {
        Ok(self.system().record_attempt(id, owner).await?)
    }

    /// Records the carrier's answer to `owner`'s submission of `message`.
    pub async fn record_submission(
        &self,
        message: &Message,
        owner: &str,
        outcome: SubmissionOutcome,
    ) -> Result<(), Error> {
        let mut change = match outcome {
            SubmissionOutcome::Accepted {
                carrier,
                carrier_id,
            } => {
                let mut change = Change::new(MessageStatus::Sending, MessageStatus::Sent)?;
                change.detail.carrier_message_id = Some(carrier_id.clone());
                change.carrier = Some((carrier, carrier_id));
                change
            }
            SubmissionOutcome::Refused { code, message } => {
                let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
                change.error_code = Some(MessageErrorCode::CarrierRefused);
                change.error_message = Some(format!("{code}: {message}"));
                change.detail.err = Some(code);
                change
            }
            SubmissionOutcome::Uncertain(text) => {
                let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
                change.error_code = Some(MessageErrorCode::SubmissionUncertain);
                change.error_message = Some(format!("the carrier did not answer: {text}"));
                change
            }
        };
        change.lease_owner = Some(owner.to_owned());
        change.detail.error_code = change.error_code;
        match self.system().change_status(message.id, change).await? {
            Some(updated) if updated.status == MessageStatus::Sent => {
                self.match_pending_receipts(&updated).await
            }
            Some(_) => Ok(()),
            None => {
                tracing::warn!(message_id = %message.id, "the lease was lost before the carrier's answer was recorded");
                Ok(())
            }
        }
    }

    /// Expired leases (back to the queue before an attempt, `SUBMISSION_UNCERTAIN` after),
    /// validity expiry of `sent` messages, and receipts that raced with `sent`.
    pub async fn sweep(&self, validity: Duration) -> Result<(), Error> {
        let system = self.system();
        let now = Utc::now();
        for message in system.expired_leases(now).await? {
            let uncertain = message.delivery.attempted_at.is_some();
            let to = if uncertain {
                MessageStatus::Failed
            } else {
                MessageStatus::Queued
            };
            let mut change = Change::new(MessageStatus::Sending, to)?;
            change.lease_owner = message.delivery.lease_owner.clone();
            if uncertain {
                change.error_code = Some(MessageErrorCode::SubmissionUncertain);
                change.error_message = Some(
                    "the worker stopped after attempting the submission; it is not submitted again"
                        .into(),
                );
                change.detail.error_code = change.error_code;
            }
            system.change_status(message.id, change).await?;
        }
        let validity = chrono::Duration::from_std(validity).unwrap_or(chrono::Duration::MAX);
        for message in system.sent_before(now - validity).await? {
            let mut change = Change::new(MessageStatus::Sent, MessageStatus::Undelivered)?;
            change.error_code = Some(MessageErrorCode::Expired);
            change.error_message =
                Some("no final delivery receipt arrived within the validity period".into());
            change.detail = EventDetail {
                error_code: change.error_code,
                ..Default::default()
            };
            system.change_status(message.id, change).await?;
        }
        self.match_unmatched_receipts().await?;
        Ok(())
    }
}
