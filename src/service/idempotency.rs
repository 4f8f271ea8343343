//! `Idempotency-Key` for creating operations: what a key says about a new request, and the
//! recording of outcomes decided without a resource.

use super::{auth::Caller, Error, Services};
use crate::{
    domain::idempotency::{Begun, Hold, Recorded, SEALED_PREFIX},
    store::idempotency::Attempt,
};

/// A request sent with a key.
#[derive(Debug, Clone)]
pub struct Keyed<'a> {
    pub operation: &'a str,
    pub key: &'a str,
    /// [`crate::domain::idempotency::fingerprint`] of the body as received.
    pub fingerprint: &'a str,
    pub request_id: &'a str,
}

impl Services {
    /// What the caller's key says about this request: run it, replay the recorded answer, wait
    /// (the same request runs) or refuse (another body under the key). Spends no rate-limit
    /// token.
    pub async fn begin_idempotent(
        &self,
        caller: &Caller,
        keyed: &Keyed<'_>,
    ) -> Result<Begun, Error> {
        let attempt = Attempt {
            operation: keyed.operation,
            key: keyed.key,
            fingerprint: keyed.fingerprint,
            request_id: keyed.request_id,
        };
        let begun = self
            .tenant(caller)
            .begin_idempotent(
                &attempt,
                self.settings.idempotency_retention,
                self.settings.idempotency_takeover,
            )
            .await?;
        match begun {
            Begun::Replay(recorded) => Ok(Begun::Replay(self.unsealed(recorded)?)),
            other => Ok(other),
        }
    }

    /// A recorded answer as it was sent: one kept sealed (it holds a secret) is opened.
    fn unsealed(&self, recorded: Recorded) -> Result<Recorded, Error> {
        let Some(sealed) = recorded.body.strip_prefix(SEALED_PREFIX) else {
            return Ok(recorded);
        };
        let keys = self
            .settings
            .webhooks
            .sealing
            .as_deref()
            .ok_or(Error::WebhooksNotConfigured)?;
        let body = keys
            .open(sealed)
            .map_err(|e| Error::Internal(anyhow::anyhow!("a recorded answer: {e}")))?;
        Ok(Recorded { body, ..recorded })
    }

    /// Records an answer the operation's rules gave without making a resource (422, 453).
    pub async fn complete_idempotent(
        &self,
        caller: &Caller,
        hold: &Hold,
        status: u16,
        body: &str,
    ) -> Result<(), Error> {
        Ok(self
            .tenant(caller)
            .complete_idempotent_alone(hold, status, body)
            .await?)
    }

    /// Forgets the key of a request whose answer is not recorded (429, 5xx).
    pub async fn release_idempotent(&self, caller: &Caller, hold: &Hold) -> Result<(), Error> {
        Ok(self.tenant(caller).release_idempotent(hold).await?)
    }
}
