//! Group commit of sends: concurrent sends wait in one queue, and one task commits whatever has
//! gathered as a single transaction ([`crate::store::System::commit_sends`]), then answers each.
//! Under load a batch holds the sends that arrived while the previous one committed; alone, a
//! send is a batch of one and waits for nothing.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use super::{Error, Services};
use crate::store::{
    sends::{QueuedSend, SendOutcome},
    System,
};

struct Job {
    send: QueuedSend<Error>,
    reply: oneshot::Sender<Result<SendOutcome<Error>, Error>>,
}

/// The queue of this process's sends, and the task that commits them (started by the first
/// send, and again if the runtime that ran it has stopped).
#[derive(Default)]
pub struct SendQueue(Mutex<Option<mpsc::UnboundedSender<Job>>>);

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendQueue")
    }
}

impl Services {
    /// Commits `send` with the sends gathered beside it; answers once its batch has committed.
    pub(crate) async fn commit_send(
        &self,
        send: QueuedSend<Error>,
    ) -> Result<SendOutcome<Error>, Error> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job { send, reply };
        for _ in 0..2 {
            let queue = {
                let mut held = self.send_queue.0.lock().unwrap_or_else(|e| e.into_inner());
                match held.as_ref() {
                    Some(queue) if !queue.is_closed() => queue.clone(),
                    _ => {
                        let (queue, jobs) = mpsc::unbounded_channel();
                        let max = self.settings.send_batch_max.max(1);
                        tokio::spawn(commit_batches(self.system(), jobs, max));
                        *held = Some(queue.clone());
                        queue
                    }
                }
            };
            match queue.send(job) {
                Ok(()) => {
                    return answer.await.map_err(|_| {
                        Error::Internal(anyhow::anyhow!("the send queue stopped before answering"))
                    })?;
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(Error::Internal(anyhow::anyhow!("the send queue is closed")))
    }
}

/// Takes every send waiting (up to `max`), commits them together, answers each; repeats.
async fn commit_batches(system: System, mut jobs: mpsc::UnboundedReceiver<Job>, max: usize) {
    let mut batch = Vec::with_capacity(max);
    while jobs.recv_many(&mut batch, max).await > 0 {
        metrics::histogram!("agentmessage_send_batch_size").record(batch.len() as f64);
        let (sends, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|job| (job.send, job.reply)).unzip();
        match system.commit_sends(&sends).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) if sends.len() == 1 || crate::store::is_unavailable(&err) => {
                tracing::debug!(%err, sends = sends.len(), "a batch of sends failed");
                for reply in replies {
                    let _ = reply.send(Err(copy_of(&err)));
                }
            }
            Err(err) => {
                // Not the database's absence: commit each send alone, so that whatever failed
                // fails only its own request.
                tracing::warn!(%err, sends = sends.len(), "a batch of sends failed; committing each alone");
                for (send, reply) in sends.iter().zip(replies) {
                    let outcome = system
                        .commit_sends(std::slice::from_ref(send))
                        .await
                        .map_err(Error::from)
                        .and_then(|mut one| {
                            one.pop().ok_or_else(|| {
                                Error::Internal(anyhow::anyhow!("a batch of one had no outcome"))
                            })
                        });
                    let _ = reply.send(outcome);
                }
            }
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
