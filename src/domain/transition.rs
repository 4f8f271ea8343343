//! The transition pipeline's first half: from a message's current status and a cause, the plan of
//! a change — from and to status, every column it touches, the event it appends and the webhook
//! event it raises — or the reason it is refused. Pure: the store's one writer
//! (`store::transitions`) applies plans and nothing else changes a message's status.
//!
//! The causes, and where each may act (DESIGN.md's table; `tests` writes it out):
//!
//! | cause | from | to |
//! |---|---|---|
//! | accepted (a send) | (new) | `queued` |
//! | scheduled (a send with `send_at`) | (new) | `scheduled` |
//! | released (its `send_at` came) | `scheduled` | `queued` |
//! | release refused (opted out, or a landline by a recent lookup, meanwhile) | `scheduled` | `failed` `CONSENT_REVOKED` / `LINE_TYPE_BLOCKED` |
//! | canceled | `scheduled` | `canceled` |
//! | received (inbound) | (new) | `received` |
//! | claimed by a worker | `queued` (a deferred one once its `retry_at` is due) | `sending` |
//! | attempt begun | `sending` | `sending` (`attempted_at` set) |
//! | carrier accepted every part | `sending` | `sent` |
//! | carrier refused a part | `sending` | `failed` `CARRIER_REFUSED` |
//! | carrier gave no readable answer | `sending` | `failed` `SUBMISSION_UNCERTAIN` |
//! | media refused before submission | `sending` | `failed` `MEDIA_UNAVAILABLE` / `MEDIA_TYPE_UNSUPPORTED` / `MEDIA_TOO_LARGE` |
//! | carrier deferred a part | `sending` | `queued` until `retry_at` |
//! | media converted to fit | `sending` | unchanged (an event only) |
//! | consent refused at claim | `sending` | `failed` `CONSENT_REVOKED` |
//! | lease expired, not attempted | `sending` | `queued` |
//! | lease expired, attempted | `sending` | `failed` `SUBMISSION_UNCERTAIN` |
//! | validity passed | `queued`, `sent` | `undelivered` `EXPIRED` |
//! | receipt, final for the message | `sent` | `delivered` / `undelivered` `UNDELIVERED` |
//! | receipt, anything else | any existing status | unchanged (an event only) |

use chrono::{DateTime, Utc};

pub use entity::values::{EventKind, MessageErrorCode, WebhookEventType};

use super::{
    lifecycle::{can_transition, status_after_part_receipts},
    message::MessageStatus,
    webhooks::event_for_status,
};

/// What an event carries besides its kind and status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDetail {
    pub carrier_message_id: Option<String>,
    pub stat: Option<String>,
    pub err: Option<String>,
    pub done_date: Option<String>,
    pub error_code: Option<MessageErrorCode>,
    /// What the server did to the message (a media conversion).
    pub note: Option<String>,
    /// The carrier connection the event came through: the one that answered a submission, or
    /// the one a receipt arrived on.
    pub connection: Option<String>,
}

/// What the carrier's answers to one attempt add up to (every part submitted in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every part is accepted; the message is known by its first part's id.
    Sent { carrier: String, carrier_id: String },
    /// A part was refused for good.
    Refused { code: String, text: String },
    /// The message's media could not be made an MMS (fetched, of an allowed type, within the
    /// size cap): nothing was submitted.
    MediaRefused {
        error_code: MessageErrorCode,
        text: String,
    },
    /// A part's answer could not be read: it may have been sent.
    Uncertain { text: String },
    /// A part was refused for now: the message waits in the queue until `retry_at`.
    Deferred {
        code: String,
        retry_at: DateTime<Utc>,
    },
}

/// Why a message changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An organization's send was accepted.
    Accepted,
    /// An organization's send was accepted for later (its `send_at`).
    Scheduled,
    /// A scheduled message's time came and its recipient may still be messaged.
    Released,
    /// A scheduled message's time came and its recipient may no longer be messaged.
    ReleaseRefused {
        error_code: MessageErrorCode,
        text: String,
    },
    /// The organization canceled a scheduled message.
    Canceled,
    /// An inbound message arrived.
    Received,
    /// A worker claimed the message under a lease.
    Claimed { owner: String, until: DateTime<Utc> },
    /// The worker is about to write the submission to the carrier.
    AttemptBegun { owner: String, now: DateTime<Utc> },
    /// The carrier answered the attempt.
    Answered {
        owner: String,
        /// The connection the parts were submitted through.
        connection: String,
        answer: Answer,
    },
    /// An MMS image was scaled down and re-encoded to fit the size cap, before submission.
    MediaConverted { note: String },
    /// The recipient's phone reported the MMS read or deleted (an MM7 read reply): `status` as
    /// the MMSC wrote it, `note` its text.
    ReadReply {
        status: String,
        note: Option<String>,
    },
    /// The recipient may no longer be messaged, found when the message was claimed.
    ConsentRefused { owner: String },
    /// The lease of `owner` ran out with the message still `sending`.
    LeaseExpired { owner: String, attempted: bool },
    /// The message's validity ran out.
    ValidityPassed,
    /// A delivery receipt: `finals` is every part's final receipt (in part order) with this one
    /// counted.
    Receipt {
        detail: EventDetail,
        finals: Vec<Option<String>>,
    },
}

impl Cause {
    /// The cause's name, for refusals and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Cause::Accepted => "accepted",
            Cause::Scheduled => "scheduled",
            Cause::Released => "released",
            Cause::ReleaseRefused { .. } => "release refused",
            Cause::Canceled => "canceled",
            Cause::Received => "received",
            Cause::Claimed { .. } => "claimed",
            Cause::AttemptBegun { .. } => "attempt begun",
            Cause::Answered { answer, .. } => match answer {
                Answer::Sent { .. } => "carrier accepted",
                Answer::Refused { .. } => "carrier refused",
                Answer::MediaRefused { .. } => "media refused",
                Answer::Uncertain { .. } => "carrier gave no answer",
                Answer::Deferred { .. } => "carrier deferred",
            },
            Cause::MediaConverted { .. } => "media converted",
            Cause::ReadReply { .. } => "read reply",
            Cause::ConsentRefused { .. } => "consent refused at claim",
            Cause::LeaseExpired {
                attempted: false, ..
            } => "lease expired before the attempt",
            Cause::LeaseExpired {
                attempted: true, ..
            } => "lease expired after the attempt",
            Cause::ValidityPassed => "validity passed",
            Cause::Receipt { .. } => "receipt",
        }
    }
}

/// A column's new value, or the value it has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Write<T> {
    #[default]
    Keep,
    Set(T),
}

impl<T> Write<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Write::Keep => None,
            Write::Set(v) => Some(v),
        }
    }
}

/// Every column a change writes besides `status`, `updated_at` and the event counter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    /// `(lease_owner, lease_expires_at)`: taken by a claim, cleared on leaving `sending`.
    pub lease: Write<Option<(String, DateTime<Utc>)>>,
    /// Set when the attempt begins; cleared on a return to the queue.
    pub attempted_at: Write<Option<DateTime<Utc>>>,
    /// When a message back in the queue may be claimed again.
    pub retry_at: Write<Option<DateTime<Utc>>>,
    /// `(error_code, error_message)`.
    pub error: Write<(MessageErrorCode, String)>,
    /// `(carrier, carrier_message_id)`, with `sent_at` = the time of the change.
    pub carrier: Write<(String, String)>,
}

/// What the row must still hold for the change to be made (besides its status being `from`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guard {
    /// The lease is this worker's.
    pub lease_owner: Option<String>,
    /// No attempt was recorded yet, and the lease runs past this time.
    pub unattempted_with_lease_at: Option<DateTime<Utc>>,
}

/// A planned change of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The status it is made from; `None` for a message being created.
    pub from: Option<MessageStatus>,
    /// The status after it (equal to `from` for an event that changes no status).
    pub to: MessageStatus,
    pub guard: Guard,
    pub effects: Effects,
    /// The event appended to the message's history (its status is `to`).
    pub event: (EventKind, EventDetail),
    /// The webhook event raised, when the status changes to one that has an event type.
    pub webhook: Option<WebhookEventType>,
}

impl Plan {
    /// Whether the status changes.
    pub fn changes_status(&self) -> bool {
        self.from != Some(self.to)
    }
}

/// A change the pipeline does not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a message {from} cannot be changed by {cause}")]
pub struct Refusal {
    /// The status it was in (`new` for a message not created yet).
    pub from: String,
    pub cause: &'static str,
}

/// The plan of `cause` acting on a message in `current` (`None`: not created yet), or why not.
pub fn plan(current: Option<MessageStatus>, cause: Cause) -> Result<Plan, Refusal> {
    use MessageStatus::*;
    let refuse = |cause: &Cause| Refusal {
        from: current.map_or_else(|| "new".to_owned(), |s| s.as_str().to_owned()),
        cause: cause.name(),
    };
    // The status the cause leads to, before its columns.
    let to = match (current, &cause) {
        (None, Cause::Accepted) => Queued,
        (None, Cause::Scheduled) => Scheduled,
        (None, Cause::Received) => Received,
        (None, _) | (Some(_), Cause::Accepted | Cause::Scheduled | Cause::Received) => {
            return Err(refuse(&cause))
        }
        (Some(Scheduled), Cause::Released) => Queued,
        (Some(Scheduled), Cause::ReleaseRefused { .. }) => Failed,
        (Some(Scheduled), Cause::Canceled) => Canceled,
        (Some(Queued), Cause::Claimed { .. }) => Sending,
        (Some(Sending), Cause::AttemptBegun { .. }) => Sending,
        (Some(Sending), Cause::Answered { answer, .. }) => match answer {
            Answer::Sent { .. } => Sent,
            Answer::Refused { .. } | Answer::MediaRefused { .. } | Answer::Uncertain { .. } => {
                Failed
            }
            Answer::Deferred { .. } => Queued,
        },
        (Some(Sending), Cause::MediaConverted { .. }) => Sending,
        // A read reply may overtake its delivery report; it changes no status.
        (Some(s @ (Sent | Delivered | Undelivered)), Cause::ReadReply { .. }) => s,
        (Some(Sending), Cause::ConsentRefused { .. }) => Failed,
        (Some(Sending), Cause::LeaseExpired { attempted, .. }) => {
            if *attempted {
                Failed
            } else {
                Queued
            }
        }
        (Some(Queued | Sent), Cause::ValidityPassed) => Undelivered,
        (Some(from), Cause::Receipt { finals, .. }) => {
            let finals: Vec<Option<&str>> = finals.iter().map(Option::as_deref).collect();
            status_after_part_receipts(from, &finals)
        }
        (Some(_), _) => return Err(refuse(&cause)),
    };
    if let Some(from) = current {
        // The machine's own pairs: a plan never leaves them (an event-only plan stays put).
        if from != to && !can_transition(from, to) {
            return Err(refuse(&cause));
        }
    }
    let mut effects = Effects::default();
    let mut guard = Guard::default();
    let mut kind = EventKind::Transition;
    let mut detail = EventDetail::default();
    let error = |code: MessageErrorCode, text: String| Write::Set((code, text));
    match cause {
        Cause::Accepted
        | Cause::Scheduled
        | Cause::Received
        | Cause::Released
        | Cause::Canceled => {}
        Cause::ReleaseRefused { error_code, text } => {
            effects.error = error(error_code, text);
        }
        Cause::Claimed { owner, until } => {
            effects.lease = Write::Set(Some((owner, until)));
        }
        Cause::AttemptBegun { owner, now } => {
            kind = EventKind::SubmissionAttempt;
            effects.attempted_at = Write::Set(Some(now));
            guard.lease_owner = Some(owner);
            guard.unattempted_with_lease_at = Some(now);
        }
        Cause::Answered {
            owner,
            connection,
            answer,
        } => {
            guard.lease_owner = Some(owner);
            detail.connection = Some(connection);
            match answer {
                Answer::Sent {
                    carrier,
                    carrier_id,
                } => {
                    detail.carrier_message_id = Some(carrier_id.clone());
                    effects.carrier = Write::Set((carrier, carrier_id));
                }
                Answer::Refused { code, text } => {
                    effects.error =
                        error(MessageErrorCode::CarrierRefused, format!("{code}: {text}"));
                    detail.err = Some(code);
                }
                Answer::MediaRefused { error_code, text } => {
                    effects.error = error(error_code, text);
                }
                Answer::Uncertain { text } => {
                    effects.error = error(
                        MessageErrorCode::SubmissionUncertain,
                        format!("the carrier did not answer: {text}"),
                    );
                }
                Answer::Deferred { code, retry_at } => {
                    kind = EventKind::Deferred;
                    detail.err = Some(code);
                    effects.retry_at = Write::Set(Some(retry_at));
                }
            }
        }
        Cause::MediaConverted { note } => {
            kind = EventKind::MediaConverted;
            detail.note = Some(note);
        }
        Cause::ReadReply { status, note } => {
            kind = EventKind::ReadReply;
            detail.stat = Some(status);
            detail.note = note;
        }
        Cause::ConsentRefused { owner } => {
            guard.lease_owner = Some(owner);
            effects.error = error(
                MessageErrorCode::ConsentRevoked,
                "the recipient opted out before the message was sent".into(),
            );
        }
        Cause::LeaseExpired { owner, attempted } => {
            guard.lease_owner = Some(owner);
            if attempted {
                effects.error = error(
                    MessageErrorCode::SubmissionUncertain,
                    "the worker stopped after attempting the submission; it is not submitted again"
                        .into(),
                );
            } else {
                effects.retry_at = Write::Set(None);
            }
        }
        Cause::ValidityPassed => {
            let text = if current == Some(Queued) {
                "the validity period ran out before the carrier could take the message"
            } else {
                "no final delivery receipt arrived within the validity period"
            };
            effects.error = error(MessageErrorCode::Expired, text.into());
        }
        Cause::Receipt {
            detail: receipt, ..
        } => {
            kind = EventKind::Receipt;
            if to == Undelivered && current != Some(Undelivered) {
                effects.error = error(
                    MessageErrorCode::Undelivered,
                    format!(
                        "the carrier reported {} (err {})",
                        receipt.stat.as_deref().unwrap_or_default(),
                        receipt.err.as_deref().unwrap_or("none")
                    ),
                );
            }
            detail = receipt;
        }
    }
    let moves = current != Some(to);
    if moves && current == Some(Sending) {
        // Leaving `sending`: the lease goes with it.
        effects.lease = Write::Set(None);
    }
    if moves && to == Queued && current.is_some() {
        // Back to the queue: a later claim attempts it afresh (only its unaccepted parts).
        effects.attempted_at = Write::Set(None);
        if effects.retry_at == Write::Keep {
            effects.retry_at = Write::Set(None);
        }
    }
    if let Write::Set((code, _)) = &effects.error {
        detail.error_code = Some(*code);
    }
    Ok(Plan {
        from: current,
        to,
        guard,
        effects,
        event: (kind, detail),
        webhook: if moves { event_for_status(to) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use MessageStatus::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time")
    }

    fn receipt(stat: &str) -> Cause {
        Cause::Receipt {
            detail: EventDetail {
                carrier_message_id: Some("c-1".into()),
                stat: Some(stat.into()),
                err: Some("000".into()),
                ..Default::default()
            },
            finals: vec![Some(stat.into()).filter(|_| stat != "ENROUTE")],
        }
    }

    /// One of every cause, in the order of the table below.
    fn causes() -> Vec<Cause> {
        let owner = || "w".to_owned();
        vec![
            Cause::Accepted,
            Cause::Received,
            Cause::Scheduled,
            Cause::Claimed {
                owner: owner(),
                until: at(),
            },
            Cause::AttemptBegun {
                owner: owner(),
                now: at(),
            },
            Cause::Answered {
                owner: owner(),
                connection: "smpp".into(),
                answer: Answer::Sent {
                    carrier: "smpp".into(),
                    carrier_id: "c-1".into(),
                },
            },
            Cause::Answered {
                owner: owner(),
                connection: "smpp".into(),
                answer: Answer::Refused {
                    code: "ESME_RINVDSTADR".into(),
                    text: "refused".into(),
                },
            },
            Cause::Answered {
                owner: owner(),
                connection: "smpp".into(),
                answer: Answer::MediaRefused {
                    error_code: MessageErrorCode::MediaTooLarge,
                    text: "too large".into(),
                },
            },
            Cause::Answered {
                owner: owner(),
                connection: "smpp".into(),
                answer: Answer::Uncertain {
                    text: "timeout".into(),
                },
            },
            Cause::Answered {
                owner: owner(),
                connection: "smpp".into(),
                answer: Answer::Deferred {
                    code: "ESME_RTHROTTLED".into(),
                    retry_at: at(),
                },
            },
            Cause::MediaConverted {
                note:
                    "media item 1: image/png of 90000 bytes re-encoded as image/jpeg of 30000 bytes"
                        .into(),
            },
            Cause::ReadReply {
                status: "Read".into(),
                note: Some("read".into()),
            },
            Cause::ConsentRefused { owner: owner() },
            Cause::LeaseExpired {
                owner: owner(),
                attempted: false,
            },
            Cause::LeaseExpired {
                owner: owner(),
                attempted: true,
            },
            Cause::ValidityPassed,
            receipt("DELIVRD"),
            receipt("UNDELIV"),
            receipt("ENROUTE"),
            Cause::Released,
            Cause::ReleaseRefused {
                error_code: MessageErrorCode::ConsentRevoked,
                text: "opted out".into(),
            },
            Cause::Canceled,
        ]
    }

    /// DESIGN.md's status table written out: for each current status (rows: new, scheduled,
    /// queued, sending, sent, delivered, undelivered, failed, received, canceled) and each cause
    /// (columns, in the order of [`causes`]), the status after it, `-` for a refusal and `=` for
    /// an event that changes nothing. Abbreviations: sc scheduled, q queued, s sending, st sent,
    /// d delivered, u undelivered, f failed, r received, c canceled.
    const TABLE: [(&str, [&str; 22]); 10] = [
        //           acc   rcv  sched claim attempt sent  refused media uncert defer conv read consent lease lease! valid  DELIV UNDEL ENROUTE rel relref cancel
        (
            "new",
            [
                "q", "r", "sc", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "-", "-", "-", "-", "-", "-",
            ],
        ),
        (
            "scheduled",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "=", "=", "=", "q", "f", "c",
            ],
        ),
        (
            "queued",
            [
                "-", "-", "-", "s", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "u",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "sending",
            [
                "-", "-", "-", "-", "=", "st", "f", "f", "f", "q", "=", "-", "f", "q", "f", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "sent",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "=", "-", "-", "-", "u",
                "d", "u", "=", "-", "-", "-",
            ],
        ),
        (
            "delivered",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "=", "-", "-", "-", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "undelivered",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "=", "-", "-", "-", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "failed",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "received",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
        (
            "canceled",
            [
                "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "=", "=", "=", "-", "-", "-",
            ],
        ),
    ];

    fn status_of(name: &str) -> Option<MessageStatus> {
        match name {
            "new" => None,
            other => Some(
                *MessageStatus::ALL
                    .iter()
                    .find(|s| s.as_str() == other)
                    .expect("a status"),
            ),
        }
    }

    fn short(status: MessageStatus) -> &'static str {
        match status {
            Scheduled => "sc",
            Queued => "q",
            Sending => "s",
            Sent => "st",
            Delivered => "d",
            Undelivered => "u",
            Failed => "f",
            Received => "r",
            Canceled => "c",
        }
    }

    #[test]
    fn every_status_and_every_cause_answers_as_the_table_says() {
        assert_eq!(
            TABLE.len(),
            MessageStatus::ALL.len() + 1,
            "a row per status"
        );
        for (row, expected) in TABLE {
            let current = status_of(row);
            for (cause, want) in causes().into_iter().zip(expected) {
                let name = cause.name();
                let got = match plan(current, cause) {
                    Err(_) => "-",
                    Ok(p) if !p.changes_status() => "=",
                    Ok(p) => short(p.to),
                };
                assert_eq!(got, want, "{row} × {name}");
            }
        }
    }

    #[test]
    fn leaving_sending_clears_the_lease_and_a_return_to_the_queue_clears_the_attempt() {
        for cause in causes() {
            let name = cause.name();
            let Ok(p) = plan(Some(Sending), cause) else {
                continue;
            };
            if p.to != Sending {
                assert_eq!(p.effects.lease, Write::Set(None), "{name}");
                assert!(
                    p.guard.lease_owner.is_some(),
                    "{name}: only the lease holder"
                );
            }
            if p.to == Queued {
                assert_eq!(p.effects.attempted_at, Write::Set(None), "{name}");
                assert!(matches!(p.effects.retry_at, Write::Set(_)), "{name}");
            }
        }
    }

    #[test]
    fn every_failure_and_undelivery_says_why_in_its_column_and_its_event() {
        for row in ["queued", "sending", "sent"] {
            for cause in causes() {
                let name = cause.name();
                let Ok(p) = plan(status_of(row), cause) else {
                    continue;
                };
                if p.changes_status() && matches!(p.to, Failed | Undelivered) {
                    let Write::Set((code, text)) = &p.effects.error else {
                        panic!("{row} × {name}: no error");
                    };
                    assert!(!text.is_empty());
                    assert_eq!(p.event.1.error_code, Some(*code), "{row} × {name}");
                } else {
                    assert_eq!(p.effects.error, Write::Keep, "{row} × {name}");
                }
            }
        }
    }

    #[test]
    fn webhooks_follow_the_status_entered() {
        for (row, _) in TABLE {
            for cause in causes() {
                let Ok(p) = plan(status_of(row), cause) else {
                    continue;
                };
                let want = if p.changes_status() {
                    event_for_status(p.to)
                } else {
                    None
                };
                assert_eq!(p.webhook, want);
            }
        }
    }

    #[test]
    fn a_claim_takes_the_lease_and_an_attempt_is_guarded_by_it() {
        let claim = plan(
            Some(Queued),
            Cause::Claimed {
                owner: "w".into(),
                until: at(),
            },
        )
        .unwrap();
        assert_eq!(claim.effects.lease, Write::Set(Some(("w".into(), at()))));
        let attempt = plan(
            Some(Sending),
            Cause::AttemptBegun {
                owner: "w".into(),
                now: at(),
            },
        )
        .unwrap();
        assert_eq!(attempt.event.0, EventKind::SubmissionAttempt);
        assert_eq!(attempt.effects.attempted_at, Write::Set(Some(at())));
        assert_eq!(attempt.guard.lease_owner.as_deref(), Some("w"));
        assert_eq!(attempt.guard.unattempted_with_lease_at, Some(at()));
        assert_eq!(attempt.webhook, None);
    }

    proptest! {
        /// Whatever causes arrive in whatever order, a plan only makes the machine's pairs and
        /// never leaves a terminal status.
        #[test]
        fn no_sequence_of_causes_leaves_the_machine(picks in proptest::collection::vec(0usize..15, 0..30)) {
            let all = causes();
            let mut status: Option<MessageStatus> = None;
            for pick in picks {
                if let Ok(p) = plan(status, all[pick].clone()) {
                    if let Some(from) = status {
                        prop_assert!(from == p.to || can_transition(from, p.to));
                        prop_assert!(!super::super::lifecycle::is_terminal(from) || from == p.to);
                    }
                    status = Some(p.to);
                }
            }
        }
    }
}
