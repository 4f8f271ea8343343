//! The delivery rules the worker runs: claiming under a lease with the consent re-check,
//! recording the attempt before the carrier is called, recording the carrier's answer, and the
//! sweeps (expired leases, validity, receipts that raced with `sent`).

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{Error, Services};
use crate::{
    domain::message::{Message, Part, PartState},
    domain::transition::{plan, Answer, Cause, MessageErrorCode, Write},
    store::transitions::{PartWrite, Step},
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
    /// Its media could not be made an MMS: nothing was submitted.
    MediaRefused {
        code: crate::domain::transition::MessageErrorCode,
        message: String,
    },
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
    /// Takes up to `want` tokens of connection `name`'s throughput shared by every worker
    /// (PostgreSQL): `(granted, available)`; `None` on SQLite, where the one process keeps the
    /// connection's rate itself.
    pub async fn lease_connection_tokens(
        &self,
        name: &str,
        rate: f64,
        burst: f64,
        want: f64,
    ) -> Result<Option<(f64, f64)>, Error> {
        if !self.store.is_postgres() {
            return Ok(None);
        }
        Ok(Some(
            self.system()
                .lease_connection_tokens(name, rate, burst, want)
                .await?,
        ))
    }

    /// Claims up to `limit` queued messages of the key `modes` whose carrier can take them for
    /// `owner` until `lease` from now, with their parts (written the first time, `parts_for`
    /// giving a message's `(total, reference)`), and fails those whose recipient may no longer
    /// be messaged; returns the rest.
    pub async fn claim_messages(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
        filter: crate::store::QueueFilter<'_>,
        parts_for: &(dyn Fn(&Message) -> (u8, u8) + Sync),
    ) -> Result<Vec<(Message, Vec<Part>)>, Error> {
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self
            .system()
            .claim_queued(owner, until, limit, filter, parts_for)
            .await?;
        // The batch's consent checks in one read, the consent rule applied to each; those
        // refused fail together.
        let recipients: Vec<_> = claimed
            .iter()
            .map(|(m, _)| (m.org_id, m.mode, m.to.clone()))
            .collect();
        let states = self.system().consent_states(&recipients).await?;
        let mut ready = Vec::with_capacity(claimed.len());
        let mut refused = Vec::new();
        for (message, parts) in claimed {
            let receivable = states
                .get(&(message.org_id, message.mode, message.to.clone()))
                .is_some_and(|state| state.may_receive());
            if receivable {
                ready.push((message, parts));
            } else {
                let refusal = plan(
                    Some(message.status),
                    Cause::ConsentRefused {
                        owner: owner.to_owned(),
                    },
                )?;
                refused.push(Step::one(message.id, refusal));
            }
        }
        if !refused.is_empty() {
            self.system().apply(&refused).await?;
        }
        Ok(ready)
    }

    /// The parts of message `id`, in order.
    pub async fn parts_of(&self, id: Uuid) -> Result<Vec<Part>, Error> {
        Ok(self.system().parts_of(id).await?)
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

    /// Records the attempts of claimed messages (`(message, part numbers to submit)`) in one
    /// transaction: for each, whether it was recorded (when not, the lease was lost and the
    /// carrier must not be called).
    pub async fn begin_attempts(
        &self,
        owner: &str,
        items: &[(Uuid, Vec<u8>)],
    ) -> Result<Vec<bool>, Error> {
        let items: Vec<(String, Uuid, Vec<u8>)> = items
            .iter()
            .map(|(id, numbers)| (owner.to_owned(), *id, numbers.clone()))
            .collect();
        Ok(self.system().begin_attempts(&items).await?)
    }

    /// Records the answers to a batch of attempts in one transaction.
    pub async fn record_submissions(
        &self,
        owner: &str,
        attempts: Vec<(Message, Attempt)>,
    ) -> Result<(), Error> {
        let mut steps = Vec::with_capacity(attempts.len());
        let mut accepted = Vec::with_capacity(attempts.len());
        for (message, attempt) in attempts {
            let carrier = attempt.carrier.clone();
            let (step, parts) = step_after(&message, owner, attempt)?;
            steps.push(step);
            accepted.push((carrier, parts));
        }
        // The accepted parts of each: receipts that came before the answer was recorded are
        // matched in the same transaction.
        let pairs: Vec<Vec<(String, String)>> = accepted
            .into_iter()
            .map(|(carrier, parts)| {
                parts
                    .into_iter()
                    .map(|(_, carrier_id)| (carrier.clone(), carrier_id))
                    .collect()
            })
            .collect();
        let changed = self.system().record_answers(&steps, &pairs).await?;
        for (Step { id, .. }, updated) in steps.iter().zip(changed) {
            if updated.is_none() {
                tracing::warn!(message_id = %id, "the lease was lost before the carrier's answer was recorded");
            }
        }
        Ok(())
    }

    /// Records on a message being submitted that one of its images was scaled down and
    /// re-encoded to fit the size cap (a `media_converted` event; the status is unchanged).
    pub async fn record_media_conversion(&self, id: Uuid, note: String) -> Result<(), Error> {
        let system = self.system();
        let Some(message) = system.message_by_id(id).await? else {
            return Ok(());
        };
        let cause = Cause::MediaConverted { note };
        system
            .apply(&[Step::one(message.id, plan(Some(message.status), cause)?)])
            .await?;
        Ok(())
    }

    /// Releases the `scheduled` messages whose `send_at` has come: each becomes `queued`, or
    /// `failed` when its recipient may no longer be messaged — opted out meanwhile
    /// (`CONSENT_REVOKED`) or classified a landline by a recent lookup (`LINE_TYPE_BLOCKED`).
    /// Each release is guarded by the message's status, so two workers never release one
    /// message twice. Returns how many it released or failed.
    pub async fn release_scheduled(&self) -> Result<usize, Error> {
        let system = self.system();
        let now = Utc::now();
        let due = system.due_scheduled(now, 500).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let recipients: Vec<_> = due
            .iter()
            .map(|m| (m.org_id, m.mode, m.to.clone()))
            .collect();
        let states = system.consent_states(&recipients).await?;
        let max_age = chrono::Duration::from_std(self.settings.lookup_max_age)
            .unwrap_or(chrono::Duration::MAX);
        let mut steps = Vec::with_capacity(due.len());
        for message in due {
            let receivable = states
                .get(&(message.org_id, message.mode, message.to.clone()))
                .is_some_and(|state| state.may_receive());
            let cause = if !receivable {
                Cause::ReleaseRefused {
                    error_code: MessageErrorCode::ConsentRevoked,
                    text: "the recipient opted out before the message's send_at".into(),
                }
            } else {
                let lookup = self
                    .store
                    .tenant(message.org_id, message.mode)
                    .latest_lookup(&message.to)
                    .await?;
                let landline = lookup.is_some_and(|l| {
                    l.line_type == crate::domain::lookup::LineType::Landline
                        && now.signed_duration_since(l.looked_up_at.as_datetime()) <= max_age
                });
                if landline {
                    Cause::ReleaseRefused {
                        error_code: MessageErrorCode::LineTypeBlocked,
                        text: "a recent lookup classified the recipient as a landline".into(),
                    }
                } else {
                    Cause::Released
                }
            };
            steps.push(Step::one(message.id, plan(Some(message.status), cause)?));
        }
        let applied = system.apply(&steps).await?;
        Ok(applied.iter().filter(|m| m.is_some()).count())
    }

    /// Cancels the caller's `scheduled` message `id`, recording `completion` (an
    /// `Idempotency-Key`'s outcome) with the change: it becomes `canceled` (an event, a
    /// `message.canceled` webhook event) and never reaches a carrier. 404 for a message the
    /// caller cannot see; 409 `MESSAGE_NOT_CANCELABLE` (with its status) for one in any other
    /// status, or released while this ran.
    pub async fn cancel_message(
        &self,
        caller: &super::auth::Caller,
        id: Uuid,
        completion: Option<&crate::domain::idempotency::Completion<Message>>,
    ) -> Result<Message, Error> {
        let message = self.message(caller, id).await?;
        let Ok(planned) = plan(Some(message.status), Cause::Canceled) else {
            return Err(Error::NotCancelable {
                status: message.status,
            });
        };
        let applied = self
            .tenant(caller)
            .apply_completing(Step::one(message.id, planned), completion)
            .await;
        match applied {
            Ok(Some(canceled)) => Ok(canceled),
            Ok(None) => {
                let now = self.message(caller, id).await?;
                Err(Error::NotCancelable { status: now.status })
            }
            Err(sea_orm::DbErr::Custom(text)) if text == crate::store::idempotency::TAKEN_OVER => {
                Err(Error::IdempotencyConflict {
                    retry_after_secs: 1,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Records a read reply for the message `carrier` accepted as `carrier_id` (an event; the
    /// status is unchanged); `false` when no such message is known, or it is in a status a
    /// read reply cannot follow.
    pub async fn record_read_reply(
        &self,
        carrier: &str,
        carrier_id: &str,
        status: String,
        note: Option<String>,
    ) -> Result<bool, Error> {
        let system = self.system();
        let Some(message) = system.message_by_carrier_id(carrier, carrier_id).await? else {
            return Ok(false);
        };
        let Ok(planned) = plan(Some(message.status), Cause::ReadReply { status, note }) else {
            return Ok(false);
        };
        system.apply(&[Step::one(message.id, planned)]).await?;
        Ok(true)
    }

    /// Expired leases (back to the queue before an attempt, `SUBMISSION_UNCERTAIN` after),
    /// validity expiry (counted from creation) of `queued` and `sent` messages, receipts that
    /// raced with `sent`, and `Idempotency-Key` records past their retention.
    pub async fn sweep(&self, validity: Duration) -> Result<(), Error> {
        let system = self.system();
        let now = Utc::now();
        for message in system.expired_leases(now).await? {
            let Some(owner) = message.delivery.lease_owner.clone() else {
                continue;
            };
            let cause = Cause::LeaseExpired {
                owner,
                attempted: message.delivery.attempted_at.is_some(),
            };
            system
                .apply(&[Step::one(message.id, plan(Some(message.status), cause)?)])
                .await?;
        }
        let validity = chrono::Duration::from_std(validity).unwrap_or(chrono::Duration::MAX);
        let expired: Vec<Step> = system
            .past_validity(now - validity, now)
            .await?
            .into_iter()
            .map(|m| {
                Ok(Step::one(
                    m.id,
                    plan(Some(m.status), Cause::ValidityPassed)?,
                ))
            })
            .collect::<Result<_, Error>>()?;
        system.apply(&expired).await?;
        self.match_unmatched_receipts().await?;
        system.purge_idempotency(now, 1000).await?;
        Ok(())
    }
}

/// The step `owner`'s attempt at `message` leads to, and every part the carrier has accepted so
/// far (number and carrier id): `sent` once every part is accepted; `failed`
/// (`CARRIER_REFUSED`) when a part was refused for good, or with its media code when its media
/// could not be made an MMS; `failed` (`SUBMISSION_UNCERTAIN`) when a
/// part's answer could not be read; otherwise, when a part was deferred, back to the queue until
/// `retry_at` with a `deferred` event, keeping the parts the carrier accepted.
fn step_after(
    message: &Message,
    owner: &str,
    attempt: Attempt,
) -> Result<(Step, Vec<(u8, String)>), Error> {
    let Attempt {
        carrier,
        parts,
        outcomes,
        retry_at,
    } = attempt;
    let connection = carrier.clone();
    let mut updates = Vec::with_capacity(outcomes.len());
    let (mut refused, mut uncertain, mut deferred, mut media) = (None, None, None, None);
    let mut accepted: Vec<(u8, String)> = parts
        .iter()
        .filter(|p| p.state == PartState::Accepted)
        .filter_map(|p| Some((p.number, p.carrier_message_id.clone()?)))
        .collect();
    for (number, outcome) in outcomes {
        let mut update = PartWrite {
            number,
            state: Write::Set(PartState::Pending),
            retry_at: Write::Set(None),
            ..Default::default()
        };
        match outcome {
            PartOutcome::Accepted(id) => {
                update.state = Write::Set(PartState::Accepted);
                update.carrier = Write::Set((carrier.clone(), id.clone()));
                accepted.push((number, id));
            }
            PartOutcome::Deferred { code, message } => {
                update.retry_at = Write::Set(Some(retry_at));
                deferred.get_or_insert((code, message));
            }
            PartOutcome::Refused { code, message } => {
                update.state = Write::Set(PartState::Refused);
                refused.get_or_insert((code, message));
            }
            PartOutcome::Uncertain(text) => {
                update.state = Write::Set(PartState::Uncertain);
                uncertain.get_or_insert(text);
            }
            PartOutcome::MediaRefused { code, message } => {
                update.state = Write::Set(PartState::Refused);
                media.get_or_insert((code, message));
            }
        }
        updates.push(update);
    }
    accepted.sort();
    let answer = if let Some((error_code, text)) = media {
        Answer::MediaRefused { error_code, text }
    } else if let Some((code, text)) = refused {
        Answer::Refused { code, text }
    } else if let Some(text) = uncertain {
        Answer::Uncertain { text }
    } else if let Some((code, _)) = deferred {
        Answer::Deferred { code, retry_at }
    } else {
        let first = accepted
            .first()
            .map(|(_, id)| id.clone())
            .unwrap_or_default();
        Answer::Sent {
            carrier,
            carrier_id: first,
        }
    };
    let cause = Cause::Answered {
        owner: owner.to_owned(),
        connection: connection.clone(),
        answer,
    };
    let step = Step {
        id: message.id,
        plans: vec![plan(Some(message.status), cause)?],
        parts: updates,
    };
    Ok((step, accepted))
}
