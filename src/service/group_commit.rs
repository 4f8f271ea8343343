//! Group commit: concurrent requests of one kind (sends, carrier receipts) wait in one queue, and
//! one task commits whatever has gathered as a single transaction, then answers each. Under load
//! a batch holds what arrived while the previous one committed; alone, a request is a batch of
//! one and waits for nothing.

use std::{future::Future, sync::Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::{Error, Services};
use crate::store::{
    sends::{QueuedSend, SendOutcome},
    System,
};

type Job<I, O> = (I, oneshot::Sender<Result<O, Error>>);

/// A queue of requests committed in batches, and the task that commits them (started by the
/// first request, and again if the runtime that ran it has stopped).
pub struct BatchQueue<I, O>(Mutex<Option<mpsc::UnboundedSender<Job<I, O>>>>);

impl<I, O> Default for BatchQueue<I, O> {
    fn default() -> Self {
        BatchQueue(Mutex::new(None))
    }
}

impl<I, O> std::fmt::Debug for BatchQueue<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchQueue")
    }
}

impl<I: Send + 'static, O: Send + 'static> BatchQueue<I, O> {
    /// Commits `item` with the items gathered beside it (at most `max` at once, by `commit`,
    /// which answers each in order); returns once its batch has committed.
    pub async fn submit<C, F>(&self, item: I, max: usize, commit: C) -> Result<O, Error>
    where
        C: Fn(Vec<I>) -> F + Send + 'static,
        F: Future<Output = Vec<Result<O, Error>>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut job = (item, reply);
        let mut commit = Some(commit);
        for _ in 0..2 {
            let queue = {
                let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
                match (held.as_ref(), commit.take()) {
                    (Some(queue), _) if !queue.is_closed() => queue.clone(),
                    (_, Some(commit)) => {
                        let (queue, jobs) = mpsc::unbounded_channel();
                        tokio::spawn(commit_batches(jobs, max.max(1), commit));
                        *held = Some(queue.clone());
                        queue
                    }
                    (_, None) => break,
                }
            };
            match queue.send(job) {
                Ok(()) => {
                    return answer.await.map_err(|_| {
                        Error::Internal(anyhow::anyhow!("a batch queue stopped before answering"))
                    })?;
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(Error::Internal(anyhow::anyhow!("a batch queue is closed")))
    }
}

/// Takes every item waiting (up to `max`), commits them together, answers each; repeats.
async fn commit_batches<I, O, C, F>(
    mut jobs: mpsc::UnboundedReceiver<Job<I, O>>,
    max: usize,
    commit: C,
) where
    C: Fn(Vec<I>) -> F,
    F: Future<Output = Vec<Result<O, Error>>>,
{
    let mut batch = Vec::with_capacity(max);
    while jobs.recv_many(&mut batch, max).await > 0 {
        let (items, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let count = items.len();
        let mut answers = commit(items).await.into_iter();
        for reply in replies {
            let answer = answers.next().unwrap_or_else(|| {
                Err(Error::Internal(anyhow::anyhow!(
                    "a batch of {count} had fewer answers"
                )))
            });
            let _ = reply.send(answer);
        }
    }
}

/// Runs `commit` on the whole batch; when it fails for another reason than the database's
/// absence, on each item alone, so that whatever failed fails only its own request.
pub(crate) async fn each_alone_on_failure<I, O, C>(
    what: &'static str,
    items: &[I],
    commit: C,
) -> Vec<Result<O, Error>>
where
    C: for<'a> Fn(&'a [I]) -> BoxFuture<'a, Result<Vec<O>, sea_orm::DbErr>>,
{
    metrics::histogram!("agentmessage_batch_size", "of" => what).record(items.len() as f64);
    match commit(items).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(err) if items.len() == 1 || crate::store::is_unavailable(&err) => {
            tracing::debug!(%err, what, items = items.len(), "a batch failed");
            items.iter().map(|_| Err(copy_of(&err))).collect()
        }
        Err(err) => {
            tracing::warn!(%err, what, items = items.len(), "a batch failed; committing each alone");
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                let answer = commit(std::slice::from_ref(item))
                    .await
                    .map_err(Error::from)
                    .and_then(|mut one| {
                        one.pop().ok_or_else(|| {
                            Error::Internal(anyhow::anyhow!("a batch of one had no outcome"))
                        })
                    });
                answers.push(answer);
            }
            answers
        }
    }
}

/// The error a batch failed with, for each of its requests.
fn copy_of(err: &sea_orm::DbErr) -> Error {
    if crate::store::is_unavailable(err) {
        Error::Unavailable(sea_orm::DbErr::Custom(err.to_string()))
    } else {
        Error::Internal(anyhow::anyhow!("{err}"))
    }
}

impl Services {
    /// Commits `send` with the sends gathered beside it; answers once its batch has committed.
    pub(crate) async fn commit_send(
        &self,
        send: QueuedSend<Error>,
    ) -> Result<SendOutcome<Error>, Error> {
        let system: System = self.system();
        self.send_queue
            .submit(send, self.settings.send_batch_max, move |sends| {
                let system = system.clone();
                async move {
                    each_alone_on_failure("sends", &sends, |some| {
                        let system = system.clone();
                        Box::pin(async move { system.commit_sends(some).await })
                    })
                    .await
                }
            })
            .await
    }
}
