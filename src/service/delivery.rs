//! The delivery rules the worker runs: claiming under a lease with the consent re-check,
//! recording the attempt before the carrier is called, recording the carrier's answer, and the
//! sweeps (expired leases, validity, receipts that raced with `sent`).

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{Error, Services};
use crate::{
    domain::{
        lifecycle::{EventKind, MessageErrorCode},
        message::{KeyMode, Message, MessageStatus, Part, PartState},
    },
    service::receipts::SentPart,
    store::delivery::{Change, EventDetail, PartUpdate},
};

/// What the carrier said to the submission of one part.
#[derive(Debug, Clone)]
pub enum PartOutcome {
    /// Accepted, under this carrier id.
    Accepted(String),
    /// Refused for now (throttling, a full queue, a temporary error): it was not sent, and may be
    /// submitted again.
    Deferred { code: String, message: String },
    /// Refused for good: it was not sent.
    Refused { code: String, message: String },
    /// No answer could be read: it may have been sent, and is never submitted again.
    Uncertain(String),
}

/// The answers to one attempt at a message: the parts submitted in it and what became of each.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The carrier the parts went to.
    pub carrier: String,
    /// Every part of the message as it stood before the attempt.
    pub parts: Vec<Part>,
    /// `(part number, outcome)` for each part submitted in this attempt.
    pub outcomes: Vec<(u8, PartOutcome)>,
    /// When deferred parts may be tried again.
    pub retry_at: chrono::DateTime<Utc>,
}

impl Services {
    /// Claims up to `limit` queued messages of the key `modes` whose carrier can take them for
    /// `owner` until `lease` from now, and fails those whose recipient may no longer be messaged;
    /// returns the rest.
    pub async fn claim_messages(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
        modes: &[KeyMode],
    ) -> Result<Vec<Message>, Error> {
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self
            .system()
            .claim_queued(owner, until, limit, modes)
            .await?;
        // The batch's consent checks in one read, the consent rule applied to each; those
        // refused fail together.
        let recipients: Vec<_> = claimed
            .iter()
            .map(|m| (m.org_id, m.mode, m.to.clone()))
            .collect();
        let states = self.system().consent_states(&recipients).await?;
        let mut ready = Vec::with_capacity(claimed.len());
        let mut refused = Vec::new();
        for message in claimed {
            let receivable = states
                .get(&(message.org_id, message.mode, message.to.clone()))
                .is_some_and(|state| state.may_receive());
            if receivable {
                ready.push(message);
            } else {
                let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
                change.lease_owner = Some(owner.to_owned());
                change.error_code = Some(MessageErrorCode::ConsentRevoked);
                change.error_message =
                    Some("the recipient opted out before the message was sent".into());
                change.detail.error_code = change.error_code;
                refused.push((message.id, change));
            }
        }
        if !refused.is_empty() {
            self.system().change_statuses(&refused).await?;
        }
        Ok(ready)
    }

    /// Messages still `sent` through `carrier`, waiting for a final receipt.
    pub async fn sent_messages(&self, carrier: &str) -> Result<Vec<Message>, Error> {
        Ok(self.system().sent_through(carrier).await?)
    }

    /// Records the carrier's answers to `owner`'s attempt at `message` (see [`change_after`]).
    pub async fn record_submission(
        &self,
        message: &Message,
        owner: &str,
        attempt: Attempt,
    ) -> Result<(), Error> {
        self.record_submissions(owner, vec![(message.clone(), attempt)])
            .await
    }

    /// Writes the parts and begins the attempt of a batch of claimed messages in one
    /// transaction: for each `(id, parts, reference)`, every part and the parts to submit now, or
    /// `None` when the lease was lost.
    pub async fn begin_attempts(
        &self,
        owner: &str,
        items: &[(Uuid, u8, u8)],
    ) -> Result<Vec<Option<(Vec<Part>, Vec<Part>)>>, Error> {
        Ok(self.system().begin_attempts(owner, items).await?)
    }

    /// Records the answers to a batch of attempts in one transaction.
    pub async fn record_submissions(
        &self,
        owner: &str,
        attempts: Vec<(Message, Attempt)>,
    ) -> Result<(), Error> {
        let mut changes = Vec::with_capacity(attempts.len());
        let mut accepted = Vec::with_capacity(attempts.len());
        for (message, attempt) in attempts {
            let carrier = attempt.carrier.clone();
            let (change, parts) = change_after(owner, attempt)?;
            changes.push((message.id, change));
            accepted.push((carrier, parts));
        }
        let changed = self.system().change_statuses(&changes).await?;
        // The parts of the messages now `sent`, whose receipts may have come first.
        let mut sent = Vec::new();
        for (((id, _), updated), (carrier, parts)) in changes.iter().zip(changed).zip(accepted) {
            match updated {
                Some(updated) if updated.status == MessageStatus::Sent => {
                    sent.extend(parts.into_iter().map(|(number, carrier_id)| SentPart {
                        message_id: *id,
                        number,
                        carrier: carrier.clone(),
                        carrier_id,
                    }));
                }
                Some(_) => {}
                None => {
                    tracing::warn!(message_id = %id, "the lease was lost before the carrier's answer was recorded");
                }
            }
        }
        self.match_pending_receipts(&sent).await
    }

    /// Expired leases (back to the queue before an attempt, `SUBMISSION_UNCERTAIN` after),
    /// validity expiry (counted from creation) of `queued` and `sent` messages, receipts that
    /// raced with `sent`, and `Idempotency-Key` records past their retention.
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
        for message in system.past_validity(now - validity).await? {
            let mut change = Change::new(message.status, MessageStatus::Undelivered)?;
            change.error_code = Some(MessageErrorCode::Expired);
            change.error_message = Some(if message.status == MessageStatus::Queued {
                "the validity period ran out before the carrier could take the message".into()
            } else {
                "no final delivery receipt arrived within the validity period".into()
            });
            change.detail = EventDetail {
                error_code: change.error_code,
                ..Default::default()
            };
            system.change_status(message.id, change).await?;
        }
        self.match_unmatched_receipts().await?;
        system.purge_idempotency(now, 1000).await?;
        Ok(())
    }
}

/// The status change `owner`'s attempt at a message leads to, and every part the carrier has
/// accepted so far (number and carrier id): `sent` once every part is
/// accepted; `failed` (`CARRIER_REFUSED`) when a part was refused for good; `failed`
/// (`SUBMISSION_UNCERTAIN`) when a part's answer could not be read; otherwise, when a part was
/// deferred, back to the queue until `retry_at` with a `deferred` event, keeping the parts the
/// carrier accepted.
fn change_after(owner: &str, attempt: Attempt) -> Result<(Change, Vec<(u8, String)>), Error> {
    let Attempt {
        carrier,
        parts,
        outcomes,
        retry_at,
    } = attempt;
    let mut updates = Vec::with_capacity(outcomes.len());
    let (mut refused, mut uncertain, mut deferred) = (None, None, None);
    let mut accepted: Vec<(u8, String)> = parts
        .iter()
        .filter(|p| p.state == PartState::Accepted)
        .filter_map(|p| Some((p.number, p.carrier_message_id.clone()?)))
        .collect();
    for (number, outcome) in outcomes {
        let mut update = PartUpdate {
            number,
            state: PartState::Pending,
            carrier: None,
            retry_at: None,
        };
        match outcome {
            PartOutcome::Accepted(id) => {
                update.state = PartState::Accepted;
                update.carrier = Some((carrier.clone(), id.clone()));
                accepted.push((number, id));
            }
            PartOutcome::Deferred { code, message } => {
                update.retry_at = Some(retry_at);
                deferred.get_or_insert((code, message));
            }
            PartOutcome::Refused { code, message } => {
                update.state = PartState::Refused;
                refused.get_or_insert((code, message));
            }
            PartOutcome::Uncertain(text) => {
                update.state = PartState::Uncertain;
                uncertain.get_or_insert(text);
            }
        }
        updates.push(update);
    }
    accepted.sort();
    let mut change = if let Some((code, text)) = refused {
        let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
        change.error_code = Some(MessageErrorCode::CarrierRefused);
        change.error_message = Some(format!("{code}: {text}"));
        change.detail.err = Some(code);
        change
    } else if let Some(text) = uncertain {
        let mut change = Change::new(MessageStatus::Sending, MessageStatus::Failed)?;
        change.error_code = Some(MessageErrorCode::SubmissionUncertain);
        change.error_message = Some(format!("the carrier did not answer: {text}"));
        change
    } else if let Some((code, _)) = deferred {
        let mut change = Change::new(MessageStatus::Sending, MessageStatus::Queued)?;
        change.kind = EventKind::Deferred;
        change.detail.err = Some(code);
        change.retry_at = Some(retry_at);
        change
    } else {
        let first = accepted
            .first()
            .map(|(_, id)| id.clone())
            .unwrap_or_default();
        let mut change = Change::new(MessageStatus::Sending, MessageStatus::Sent)?;
        change.detail.carrier_message_id = Some(first.clone());
        change.carrier = Some((carrier, first));
        change
    };
    change.parts = updates;
    change.lease_owner = Some(owner.to_owned());
    change.detail.error_code = change.error_code;
    Ok((change, accepted))
}
