//! Number lookups through a [`LookupProvider`]; the default is the simulated provider, whose
//! answers follow the fictional test-number table. A lookup spends a rate-limit token like a
//! send; a recent enough lookup of the number is reused instead of asking the vendor again, and
//! parallel lookups of one number make one vendor call.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::{auth::Caller, Error, Services};
use crate::domain::{
    idempotency::Completion,
    lookup::{LineType, Lookup},
    organization::KeyMode,
    test_numbers, PhoneNumber,
};

/// A line-type lookup vendor.
#[async_trait]
pub trait LookupProvider: Send + Sync {
    async fn line_type(&self, number: &PhoneNumber) -> anyhow::Result<LineType>;
}

/// Answers from the test-number table without any network, counting the calls it gets.
#[derive(Default)]
pub struct SimulatedLookups {
    calls: AtomicUsize,
}

impl SimulatedLookups {
    /// How many lookups it answered.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl LookupProvider for SimulatedLookups {
    async fn line_type(&self, number: &PhoneNumber) -> anyhow::Result<LineType> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(test_numbers::behaviour(number).line_type)
    }
}

/// Which lookups wait for each other.
pub type InFlightKey = (Uuid, KeyMode, String);

/// A lookup's result, and whether it was reused rather than asked of the vendor.
pub struct LookupResult {
    pub lookup: Lookup,
    pub cached: bool,
}

impl Services {
    /// Looks `number` up for the caller: one rate-limit token; a lookup younger than the reuse
    /// age is returned as it is (`cached`), else the vendor is asked and the result stored.
    pub async fn look_up(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<LookupResult, Error> {
        self.look_up_completing(caller, number, None).await
    }

    /// [`Services::look_up`], recording `completion` (an `Idempotency-Key`'s outcome): with the
    /// new lookup in its transaction, or alone when a recent lookup is returned again.
    pub async fn look_up_completing(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
        completion: Option<&Completion<LookupResult>>,
    ) -> Result<LookupResult, Error> {
        self.spend_token(caller).await?;
        let tenant = self.tenant(caller);
        let gate = self
            .lookups_in_flight
            .entry((caller.org_id, caller.mode, number.as_str().to_owned()))
            .or_default()
            .clone();
        let result = {
            let _turn = gate.lock().await;
            let reuse = chrono::Duration::from_std(self.settings.lookup_reuse)
                .unwrap_or(chrono::Duration::MAX);
            match tenant.latest_lookup(number).await? {
                Some(lookup)
                    if Utc::now().signed_duration_since(lookup.looked_up_at.as_datetime())
                        < reuse =>
                {
                    let result = LookupResult {
                        lookup,
                        cached: true,
                    };
                    if let Some(completion) = completion {
                        let body = (completion.render)(&result);
                        tenant
                            .complete_idempotent_alone(&completion.hold, completion.status, &body)
                            .await?;
                    }
                    result
                }
                _ => {
                    let line_type = self
                        .lookups
                        .line_type(number)
                        .await
                        .map_err(Error::Internal)?;
                    // The new lookup renders as a fresh one.
                    let fresh = completion.map(|c| {
                        let render = c.render.clone();
                        Completion {
                            hold: c.hold.clone(),
                            status: c.status,
                            render: Arc::new(move |lookup: &Lookup| {
                                render(&LookupResult {
                                    lookup: lookup.clone(),
                                    cached: false,
                                })
                            })
                                as Arc<dyn Fn(&Lookup) -> String + Send + Sync>,
                        }
                    });
                    LookupResult {
                        lookup: tenant
                            .insert_lookup_completing(number, line_type, fresh.as_ref())
                            .await?,
                        cached: false,
                    }
                }
            }
        };
        // The last one out removes the gate.
        self.lookups_in_flight.remove_if(
            &(caller.org_id, caller.mode, number.as_str().to_owned()),
            |_, g| Arc::strong_count(g) <= 2,
        );
        drop(gate);
        Ok(result)
    }

    /// The caller's newest lookup of `number`; 404 when there is none.
    pub async fn latest_lookup(
        &self,
        caller: &Caller,
        number: &PhoneNumber,
    ) -> Result<Lookup, Error> {
        self.tenant(caller)
            .latest_lookup(number)
            .await?
            .ok_or(Error::NotFound)
    }
}
