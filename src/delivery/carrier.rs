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
    /// The message's media could not be made an MMS (not fetched, a type not allowed, over the
    /// size cap): nothing was written to the carrier.
    #[error("media refused ({code}): {message}")]
    Media {
        code: crate::domain::transition::MessageErrorCode,
        message: String,
    },
}

pub use crate::domain::submission::CarrierHealth;

/// What a kind of carrier can carry, known without starting one: an API process that runs no
/// worker decides with it whether a send can be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// MMS (media URLs). A send with media to a deployment whose carrier cannot carry them is
    /// refused with 422.
    pub mms: bool,
}

/// Room to write one submission to the carrier now (a place in a session's window), held until
/// it is used or dropped. A carrier without a window gives empty room.
pub struct Room(Option<Box<dyn std::any::Any + Send + Sync>>);

impl Room {
    /// Room that holds nothing: the carrier takes what it is given.
    pub fn any() -> Room {
        Room(None)
    }

    /// Room holding `held` (the carrier's own token: a window permit, the session to use).
    pub fn holding<T: Send + Sync + 'static>(held: T) -> Room {
        Room(Some(Box::new(held)))
    }

    /// The carrier's own token, if this room holds one of type `T`.
    pub fn take<T: 'static>(self) -> Option<T> {
        self.0?.downcast::<T>().ok().map(|b| *b)
    }
}

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

    /// What it carries: its kind's [`Capabilities`], the same as
    /// [`super::registry::capabilities`] says before it starts.
    fn capabilities(&self) -> Capabilities;

    /// Its sessions now.
    fn health(&self) -> CarrierHealth;

    /// Room for up to `most` submissions to be written now (places in its sessions' windows,
    /// past any throttling pause and within the submit rate), waiting at most `wait` for the
    /// first and taking the others only if they are free at once; none when no room came. The
    /// worker claims only as many messages as it has room for, records a message's attempt once
    /// it holds room and gives the room back once the answer is recorded: what a stopped worker
    /// leaves uncertain is no more than its windows held. By default there is no window.
    async fn rooms(&self, most: usize, _wait: std::time::Duration) -> Vec<Room> {
        (0..most).map(|_| Room::any()).collect()
    }

    /// Submits one part of a message (`part.number` of `part.total`) in `room` (from
    /// [`Carrier::room`], or [`Room::any`] to wait for room itself); `Ok` holds the carrier's id
    /// for that part. The room it used comes back with the answer: the worker holds it until the
    /// answer is recorded, so that the window bounds what is attempted and not yet recorded.
    /// Several parts and messages may be submitted at once: the carrier keeps to its own window.
    async fn submit_in(
        &self,
        submission: &Submission,
        part: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room);

    /// [`Carrier::submit_in`] with room the carrier waits for itself, given back at once.
    async fn submit(&self, submission: &Submission, part: &Part) -> Result<String, SubmitError> {
        self.submit_in(submission, part, Room::any()).await.0
    }

    /// Picks up what a previous process left owed when a worker starts (the simulated carrier
    /// re-schedules the receipts of messages still `sent`). Nothing by default.
    async fn recover(&self) -> anyhow::Result<usize> {
        Ok(0)
    }

    /// Stops taking submissions, waits (bounded) for the answers outstanding, and closes its
    /// sessions. Nothing by default.
    async fn close(&self) {}
}
