//! API keys: minting, authenticating, and the caller they identify.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use rand::{distr::Alphanumeric, Rng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{AuthFailure, Error, Services};
use crate::domain::{organization::KeyMode, Scope, ScopeSet, Timestamp};

/// Every live key starts with this.
pub const LIVE_PREFIX: &str = "am_live_";
/// Every test-mode key starts with this.
pub const TEST_PREFIX: &str = "am_test_";
/// Random base62 characters after the prefix.
const SECRET_CHARS: usize = 32;
/// Characters of the key kept for display (`am_live_AbCd`).
const DISPLAY_CHARS: usize = LIVE_PREFIX.len() + 4;
/// `last_used_at` is written at most this often per key.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// Who is calling: the organization and scopes of an authenticated key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: Uuid,
    /// The key's mode: the caller sees and changes only this mode's data.
    pub mode: KeyMode,
    pub key_id: Uuid,
    pub scopes: ScopeSet,
    pub rate_per_second: u32,
    pub burst: u32,
}

impl Caller {
    /// Requires every scope of `scopes`: 403 naming the first one missing in catalogue order,
    /// and all of them.
    pub fn require_all(&self, scopes: &ScopeSet) -> Result<(), Error> {
        let missing: Vec<Scope> = Scope::ALL
            .into_iter()
            .filter(|s| scopes.contains(*s) && !self.scopes.contains(*s))
            .collect();
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(Error::Forbidden {
                required_scope: *first,
                missing_scopes: missing,
            }),
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                required_scope: scope,
                missing_scopes: Vec::new(),
            })
        }
    }
}

/// A freshly minted key: the secret exists only here and in the one response that shows it.
pub struct MintedKey {
    pub secret: String,
    pub digest: String,
    pub display_prefix: String,
}

/// A new key of `mode`: `am_live_…` or `am_test_…`.
pub fn mint_key(mode: KeyMode) -> MintedKey {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_CHARS)
        .map(char::from)
        .collect();
    let prefix = match mode {
        KeyMode::Live => LIVE_PREFIX,
        KeyMode::Test => TEST_PREFIX,
    };
    let secret = format!("{prefix}{random}");
    MintedKey {
        digest: digest(&secret),
        display_prefix: secret[..DISPLAY_CHARS].to_owned(),
        secret,
    }
}

/// Hex SHA-256 of the whole key: what the database stores.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `token` has the shape of a key, so that malformed ones never reach the database.
fn well_formed(token: &str) -> bool {
    let rest = token
        .strip_prefix(LIVE_PREFIX)
        .or_else(|| token.strip_prefix(TEST_PREFIX));
    rest.is_some_and(|r| r.len() == SECRET_CHARS && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// When each key's `last_used_at` was last written by this process.
#[derive(Default)]
pub struct KeyUsage {
    written: DashMap<Uuid, Instant>,
}

/// The keys this process has authenticated, by digest, so that a request with a known key makes
/// no query for it. Any revocation raises a revision in the database; the cache is dropped when
/// the revision it was filled under is no longer the current one, which is read at most once per
/// check interval — so a key revoked anywhere is refused here within that interval (at once
/// when revoked through this process).
pub struct KeyCache {
    callers: DashMap<String, Caller>,
    state: std::sync::Mutex<CacheState>,
    /// How often the revision is read.
    pub check_every: std::time::Duration,
}

struct CacheState {
    revision: Option<i64>,
    checked_at: Option<Instant>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            callers: DashMap::new(),
            state: std::sync::Mutex::new(CacheState {
                revision: None,
                checked_at: None,
            }),
            check_every: std::time::Duration::from_millis(250),
        }
    }
}

impl KeyCache {
    /// Forgets every key (a revocation through this process).
    pub fn clear(&self) {
        self.callers.clear();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.checked_at = None;
    }

    /// Whether the revision is due to be read again.
    fn due(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .checked_at
            .is_none_or(|at| at.elapsed() >= self.check_every)
    }

    /// Notes the revision just read; drops the cache when it moved.
    fn saw(&self, revision: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.revision != Some(revision) {
            self.callers.clear();
            state.revision = Some(revision);
        }
        state.checked_at = Some(Instant::now());
    }
}

impl Services {
    /// The caller a bearer token identifies: 401 for a malformed, unknown or revoked key. The
    /// caller's rate-limit policy is noted for the answer's `RateLimit-Policy` header.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, Error> {
        let caller = self.identify(token).await?;
        super::rate_limit::note_policy(caller.rate_per_second, caller.burst);
        Ok(caller)
    }

    async fn identify(&self, token: &str) -> Result<Caller, Error> {
        if !well_formed(token) {
            return Err(Error::Unauthorized(AuthFailure::KeyNotWorking));
        }
        let cache = &self.key_cache;
        if cache.due() {
            let revision = self.system().key_revision().await?;
            cache.saw(revision);
        }
        let digest = digest(token);
        if let Some(caller) = cache.callers.get(&digest).map(|c| c.clone()) {
            self.note_key_used(caller.key_id);
            return Ok(caller);
        }
        let (key, org) = self
            .system()
            .api_key_by_digest(&digest)
            .await?
            .ok_or(Error::Unauthorized(AuthFailure::KeyNotWorking))?;
        if key.revoked_at.is_some() {
            return Err(Error::Unauthorized(AuthFailure::KeyNotWorking));
        }
        self.note_key_used(key.id);
        let caller = Caller {
            org_id: org.id,
            mode: key.mode,
            key_id: key.id,
            scopes: key.scopes,
            rate_per_second: org.rate_per_second,
            burst: org.burst,
        };
        cache.callers.insert(digest, caller.clone());
        Ok(caller)
    }

    /// Updates `last_used_at` off the request path, at most once a minute per key.
    fn note_key_used(&self, key_id: Uuid) {
        let now = Instant::now();
        let due = match self.key_usage.written.get(&key_id) {
            Some(at) => now.duration_since(*at) >= TOUCH_INTERVAL,
            None => true,
        };
        if due {
            self.key_usage.written.insert(key_id, now);
            let system = self.system();
            tokio::spawn(async move {
                if let Err(err) = system.touch_api_key(key_id, Timestamp::now()).await {
                    tracing::warn!(%key_id, %err, "could not record key use");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_shape() {
        let key = mint_key(KeyMode::Live);
        assert!(key.secret.starts_with("am_live_"));
        let test = mint_key(KeyMode::Test);
        assert!(test.secret.starts_with("am_test_") && well_formed(&test.secret));
        assert!(test.display_prefix.starts_with("am_test_"));
        assert_eq!(key.secret.len(), 8 + 32);
        assert!(well_formed(&key.secret));
        assert_eq!(key.digest, digest(&key.secret));
        assert_eq!(key.digest.len(), 64);
        assert!(key.secret.starts_with(&key.display_prefix));
        assert_ne!(mint_key(KeyMode::Live).secret, key.secret);
    }

    #[test]
    fn malformed_tokens_are_refused_before_the_database() {
        for token in [
            "",
            "am_live_",
            "am_live_short",
            "sk_live_0123456789abcdef0123456789abcdef",
            "am_live_0123456789abcdef0123456789abcde!",
        ] {
            assert!(!well_formed(token), "{token}");
        }
    }
}
