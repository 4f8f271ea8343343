//! Per-organization rate limits on sends and lookups: GCRA via the `governor` crate, one limiter
//! per organization and key mode, with that organization's rate and burst.

use std::num::NonZeroU32;

use dashmap::DashMap;
use governor::{
    clock::{Clock, DefaultClock},
    DefaultDirectRateLimiter, Quota, RateLimiter,
};
use uuid::Uuid;

use crate::domain::organization::KeyMode;

/// The limiters of every organization that has sent since the process started.
#[derive(Default)]
pub struct RateLimits {
    limiters: DashMap<(Uuid, KeyMode), (u32, u32, DefaultDirectRateLimiter)>,
    /// Tokens this process leased from the shared buckets (PostgreSQL).
    leases: DashMap<(Uuid, KeyMode), std::sync::Arc<tokio::sync::Mutex<Lease>>>,
}

/// Tokens leased from an organization's shared bucket, spent here without a round trip. They
/// lapse after [`LEASE_LIFETIME`], so that an idle process cannot save them up.
#[derive(Debug)]
pub struct Lease {
    tokens: f64,
    leased_at: Option<std::time::Instant>,
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

    /// Replaces what is left with a new lease of `granted` tokens.
    pub fn fill(&mut self, granted: f64) {
        self.tokens = granted;
        self.leased_at = Some(std::time::Instant::now());
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
                    *limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
                }
            })
            .or_insert_with(|| {
                (
                    rate.get(),
                    burst.get(),
                    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                )
            });
        entry.2.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
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
