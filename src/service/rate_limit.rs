//! Per-organization rate limits on sends and lookups: GCRA via the `governor` crate, one limiter
//! per organization and key mode, with that organization's rate and burst.

use std::num::NonZeroU32;

use dashmap::DashMap;
use governor::{
    clock::{Clock, DefaultClock},
    Quota, RateLimiter,
};
use uuid::Uuid;

use crate::domain::organization::KeyMode;

/// What an answer tells the caller about their organization's allowance (the IETF httpapi
/// draft's `RateLimit-Policy` and `RateLimit` headers): the policy, and after a request that
/// spent a token, what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Tokens per second.
    pub rate_per_second: u32,
    /// The most tokens held at once.
    pub burst: u32,
    /// Tokens left and whole seconds until the allowance is full again, after a spend.
    pub left: Option<(u32, u64)>,
}

impl Allowance {
    /// The policy's window: the seconds an empty allowance takes to fill (at least 1).
    pub fn window_secs(&self) -> u64 {
        u64::from(self.burst.max(1)).div_ceil(u64::from(self.rate_per_second.max(1)))
    }

    /// `RateLimit-Policy`: `"organization";q=<burst>;w=<window>`.
    pub fn policy_header(&self) -> String {
        format!(
            "\"organization\";q={};w={}",
            self.burst.max(1),
            self.window_secs()
        )
    }

    /// `RateLimit`: `"organization";r=<left>;t=<seconds until full>`, after a spend.
    pub fn state_header(&self) -> Option<String> {
        self.left
            .map(|(left, full_in)| format!("\"organization\";r={left};t={full_in}"))
    }

    /// Whole seconds until `left` tokens of `burst` become `burst` again at `rate` a second.
    fn full_in(rate: u32, burst: u32, left: u32) -> u64 {
        let missing = f64::from(burst.max(1).saturating_sub(left));
        (missing / f64::from(rate.max(1))).ceil() as u64
    }
}

tokio::task_local! {
    static ALLOWANCE: std::sync::Arc<std::sync::Mutex<Option<Allowance>>>;
}

/// Runs one request's `fut`, and returns what it noted about the caller's allowance.
pub async fn scope<F: std::future::Future>(fut: F) -> (F::Output, Option<Allowance>) {
    let cell = std::sync::Arc::new(std::sync::Mutex::new(None));
    let output = ALLOWANCE.scope(cell.clone(), fut).await;
    let noted = *cell.lock().unwrap_or_else(|e| e.into_inner());
    (output, noted)
}

fn note(f: impl FnOnce(&mut Option<Allowance>)) {
    let _ = ALLOWANCE.try_with(|cell| f(&mut cell.lock().unwrap_or_else(|e| e.into_inner())));
}

/// Notes the authenticated caller's policy.
pub fn note_policy(rate_per_second: u32, burst: u32) {
    note(|a| {
        *a = Some(Allowance {
            rate_per_second,
            burst,
            left: None,
        })
    });
}

/// Notes the tokens left after a spend (or a refusal, with nothing left).
pub fn note_left(rate_per_second: u32, burst: u32, left: u32) {
    note(|a| {
        *a = Some(Allowance {
            rate_per_second,
            burst,
            left: Some((
                left.min(burst),
                Allowance::full_in(rate_per_second, burst, left),
            )),
        })
    });
}

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::StateInformationMiddleware,
>;

fn limiter(quota: Quota) -> Limiter {
    RateLimiter::direct(quota).with_middleware::<governor::middleware::StateInformationMiddleware>()
}

/// The limiters of every organization that has sent since the process started.
#[derive(Default)]
pub struct RateLimits {
    limiters: DashMap<(Uuid, KeyMode), (u32, u32, Limiter)>,
    /// Tokens this process leased from the shared buckets (PostgreSQL).
    leases: DashMap<(Uuid, KeyMode), std::sync::Arc<tokio::sync::Mutex<Lease>>>,
}

/// Tokens leased from an organization's shared bucket, spent here without a round trip. They
/// lapse after [`LEASE_LIFETIME`], so that an idle process cannot save them up.
#[derive(Debug)]
pub struct Lease {
    tokens: f64,
    leased_at: Option<std::time::Instant>,
    /// What the shared bucket held after the last lease (for the `RateLimit` header).
    shared_left: f64,
}

/// How long leased tokens stay spendable.
pub const LEASE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);

impl Lease {
    /// Spends one leased token, if one is left and fresh.
    pub fn take(&mut self) -> bool {
        let fresh = self
            .leased_at
            .is_some_and(|at| at.elapsed() < LEASE_LIFETIME);
        if fresh && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Replaces what is left with a new lease of `granted` tokens; the shared bucket held
    /// `available` before the lease.
    pub fn fill(&mut self, granted: f64, available: f64) {
        self.tokens = granted;
        self.leased_at = Some(std::time::Instant::now());
        self.shared_left = (available - granted).max(0.0);
    }

    /// About how many tokens are left: those leased here and what the shared bucket held at the
    /// last lease (other processes may have spent some since).
    pub fn about_left(&self) -> u32 {
        (self.tokens.max(0.0) + self.shared_left).floor() as u32
    }
}

/// How many tokens a process leases at once: a twentieth of a second's allowance (so that a
/// process holds little that others could have used), at least one, at most the burst.
pub fn lease_size(rate: f64, burst: f64) -> f64 {
    (rate / 20.0).ceil().clamp(1.0, burst.max(1.0))
}

impl RateLimits {
    /// This process's lease on the organization's shared bucket.
    pub fn leased(&self, org_id: Uuid, mode: KeyMode) -> std::sync::Arc<tokio::sync::Mutex<Lease>> {
        self.leases
            .entry((org_id, mode))
            .or_insert_with(|| {
                std::sync::Arc::new(tokio::sync::Mutex::new(Lease {
                    tokens: 0.0,
                    leased_at: None,
                    shared_left: 0.0,
                }))
            })
            .clone()
    }

    /// Spends one send of the organization's allowance; `Err(seconds)` (at least 1) when the
    /// allowance is used up.
    pub fn check(
        &self,
        org_id: Uuid,
        mode: KeyMode,
        rate_per_second: u32,
        burst: u32,
    ) -> Result<(), u64> {
        let rate = NonZeroU32::new(rate_per_second.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(burst.max(1)).expect("non-zero");
        let entry = self
            .limiters
            .entry((org_id, mode))
            .and_modify(|(r, b, limiter)| {
                if (*r, *b) != (rate.get(), burst.get()) {
                    *r = rate.get();
                    *b = burst.get();
                    *limiter = self::limiter(Quota::per_second(rate).allow_burst(burst));
                }
            })
            .or_insert_with(|| {
                (
                    rate.get(),
                    burst.get(),
                    limiter(Quota::per_second(rate).allow_burst(burst)),
                )
            });
        match entry.2.check() {
            Ok(state) => {
                note_left(rate.get(), burst.get(), state.remaining_burst_capacity());
                Ok(())
            }
            Err(not_until) => {
                note_left(rate.get(), burst.get(), 0);
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_at_least_one_second() {
        let limits = RateLimits::default();
        let org = Uuid::now_v7();
        for _ in 0..3 {
            assert!(limits.check(org, KeyMode::Live, 1, 3).is_ok());
        }
        assert_eq!(limits.check(org, KeyMode::Live, 1, 3), Err(1));
        // Another organization, or the other mode, has its own allowance.
        assert!(limits.check(Uuid::now_v7(), KeyMode::Live, 1, 3).is_ok());
        assert!(limits.check(org, KeyMode::Test, 1, 3).is_ok());
    }
}
