//! Use cases and their rules. No HTTP types here: the API layer maps [`Error`] to responses.
//!
//! Services take and return domain types; the store and its rows stay behind them (the store
//! handle is private, so the API, the worker and the command line all come through here).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sea_orm::DbErr;

use crate::{
    domain::{consent::ConsentRefusal, PhoneNumber, Scope},
    store::{Store, System, Tenant},
};

pub mod api_keys;
pub mod auth;
pub mod consents;
pub mod delivery;
mod group_commit;
pub mod idempotency;
pub mod inbound;
pub mod lookups;
pub mod messages;
pub mod numbers;
pub mod organizations;
pub mod rate_limit;
pub mod receipts;
pub mod webhooks;

/// Seconds a client is asked to wait when the database is unreachable.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// Field name → what is wrong with it, for every failing field at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: &str) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Records a problem with `field`; the first one recorded for a field is kept.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// `Ok(value)` when nothing failed.
    pub fn into_result<T>(self, value: T) -> Result<T, Error> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(Error::Validation(self))
        }
    }
}

/// Everything a use case can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication failed: {0:?}")]
    Unauthorized(AuthFailure),
    #[error("missing scope {required_scope}")]
    Forbidden {
        required_scope: Scope,
        /// Every scope missing, in catalogue order, when an operation needs several (making
        /// or revoking a key needs every scope of that key); empty otherwise.
        missing_scopes: Vec<Scope>,
    },
    #[error("not found")]
    NotFound,
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    #[error("recipient is a landline")]
    LineTypeBlocked,
    #[error("consent required")]
    ConsentRequired {
        /// The recipient.
        to: PhoneNumber,
        /// Why they may not be messaged.
        refusal: ConsentRefusal,
    },
    #[error("consent locked by the recipient's keyword opt-out")]
    ConsentLocked,
    /// The same `Idempotency-Key` and request are still running elsewhere.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyConflict { retry_after_secs: u64 },
    /// The `Idempotency-Key` was used with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// No operator key to seal webhook secrets under.
    #[error("webhooks are not configured (no AGENTMESSAGE_SECRET_KEY)")]
    WebhooksNotConfigured,
    /// The organization already holds `limit` of what it asked to add (per mode).
    #[error("limit of {limit} reached")]
    LimitReached { limit: u64 },
    /// Only a `scheduled` message can be canceled; `status` is the message's.
    #[error("a {} message cannot be canceled", status.as_str())]
    NotCancelable {
        status: crate::domain::message::MessageStatus,
    },
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    NoCredentials,
    /// An `Authorization` header of another scheme (`Basic`, as some messaging APIs use).
    NotBearer(String),
    /// A bearer token that is no key, or a key that was revoked.
    KeyNotWorking,
}

impl AuthFailure {
    /// What the client is told, and how to fix it.
    pub fn describe(&self) -> String {
        match self {
            AuthFailure::NoCredentials => {
                "no credentials were sent: send your API key as `Authorization: Bearer am_live_…`"
                    .into()
            }
            AuthFailure::NotBearer(scheme) => format!(
                "the Authorization header uses the {scheme} scheme: send your API key as a bearer token, `Authorization: Bearer am_live_…`"
            ),
            AuthFailure::KeyNotWorking => {
                "the key does not exist or no longer works (revoked): check it, or make a new one"
                    .into()
            }
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if crate::store::is_unavailable(&err) {
            Error::Unavailable(err)
        } else {
            Error::Internal(err.into())
        }
    }
}

impl From<crate::domain::transition::Refusal> for Error {
    fn from(err: crate::domain::transition::Refusal) -> Self {
        Error::Internal(err.into())
    }
}

/// The most sends committed in one transaction unless configured.
pub const DEFAULT_SEND_BATCH_MAX: usize = 256;

/// Tunable rules.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lookup counts as recent for the landline check.
    pub lookup_max_age: Duration,
    /// The carrier this deployment submits to; receipts and inbound messages are its.
    pub carrier_name: String,
    /// The bearer token the carrier authenticates with on `/v1/carrier/*`; none disables them.
    pub carrier_secret: Option<String>,
    /// Whether the live carrier carries MMS (SMPP does not); test mode mirrors it.
    pub mms_supported: bool,
    /// How long an `Idempotency-Key`'s outcome is kept.
    pub idempotency_retention: Duration,
    /// How long a request may hold its key without an outcome before a retry takes it over.
    pub idempotency_takeover: Duration,
    /// How long a lookup is reused instead of asking the vendor again.
    pub lookup_reuse: Duration,
    /// How long a request's body may take to arrive.
    pub body_read_timeout: Duration,
    /// Webhook endpoints' rules.
    pub webhooks: webhooks::WebhookRules,
    /// The most sends committed in one transaction (group commit).
    pub send_batch_max: usize,
    /// How long a receipt that matches no message is kept.
    pub unmatched_receipt_retention: Duration,
    /// How long after its arrival an unmatched receipt is looked at again by the sweep (a
    /// receipt that raced the `sent` of its message); after that it is matched only when its
    /// carrier id is stored.
    pub receipt_recheck: Duration,
    /// What one organization may hold, per mode.
    pub limits: Limits,
    /// MMS media: where they may be fetched from, how large, how long.
    pub media: MediaRules,
    /// How the MMSC reaches `POST /v1/carrier/mm7`; none refuses every request there with 401.
    pub mm7_inbound: Option<Mm7Inbound>,
    /// The shortest and longest a `send_at` may be ahead of now.
    pub schedule_min_lead: Duration,
    pub schedule_max_lead: Duration,
    /// How long a message may take, from its creation (or `send_at`), to be sent and get its
    /// final receipt: the longest `validity_period` a send may ask for.
    pub validity: Duration,
}

/// The MMSC's credentials towards `POST /v1/carrier/mm7`, and how the answers are written.
#[derive(Clone)]
pub struct Mm7Inbound {
    /// HTTP Basic user name and password the MMSC sends.
    pub username: String,
    pub password: String,
    /// The MM7 version answers carry when a request names none.
    pub version: String,
    /// The carrier name MM7 submissions, receipts and inbound MMS are stored under.
    pub carrier_name: String,
}

impl std::fmt::Debug for Mm7Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mm7Inbound")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("version", &self.version)
            .field("carrier_name", &self.carrier_name)
            .finish()
    }
}

/// The rules an MMS's media are held to: at send time (https, no refused destination) and when
/// the worker fetches them before submission (answered within the timeout, an allowed type, the
/// total within the cap).
#[derive(Debug, Clone, Copy)]
pub struct MediaRules {
    /// Plain http media URLs are taken too.
    pub allow_http: bool,
    /// Media on loopback, private and link-local addresses are fetched too (tests, a private
    /// deployment).
    pub allow_private: bool,
    /// The most bytes one MMS's media may add up to.
    pub max_bytes: u64,
    /// How long fetching one message's media may take, all items together.
    pub fetch_timeout: Duration,
}

impl Default for MediaRules {
    fn default() -> Self {
        MediaRules {
            allow_http: false,
            allow_private: false,
            max_bytes: crate::defaults::MMS_MAX_BYTES,
            fetch_timeout: crate::defaults::duration(crate::defaults::MEDIA_FETCH_TIMEOUT),
        }
    }
}

/// What one organization may hold in each mode; adding past a limit is 409 `LIMIT_REACHED`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Webhook endpoints, enabled or not.
    pub webhook_endpoints: u64,
    /// API keys not revoked.
    pub api_keys: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            webhook_endpoints: crate::defaults::MAX_WEBHOOK_ENDPOINTS,
            api_keys: crate::defaults::MAX_API_KEYS,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        use crate::{
            defaults::{self, duration},
            delivery::registry::CarrierKind,
        };
        let carrier = CarrierKind::Simulated;
        Settings {
            lookup_max_age: duration(defaults::LOOKUP_MAX_AGE),
            carrier_name: carrier.name().into(),
            carrier_secret: None,
            mms_supported: carrier.capabilities().mms,
            idempotency_retention: duration(defaults::IDEMPOTENCY_RETENTION),
            idempotency_takeover: crate::domain::idempotency::TAKEOVER_AFTER,
            lookup_reuse: duration(defaults::LOOKUP_REUSE),
            body_read_timeout: duration(defaults::BODY_READ_TIMEOUT),
            webhooks: webhooks::WebhookRules::default(),
            send_batch_max: DEFAULT_SEND_BATCH_MAX,
            unmatched_receipt_retention: duration(defaults::UNMATCHED_RECEIPT_RETENTION),
            receipt_recheck: Duration::from_secs(60),
            limits: Limits::default(),
            media: MediaRules::default(),
            mm7_inbound: None,
            schedule_min_lead: duration(defaults::SCHEDULE_MIN_LEAD),
            schedule_max_lead: duration(defaults::SCHEDULE_MAX_LEAD),
            validity: duration(defaults::VALIDITY),
        }
    }
}

/// What every use case needs; cheap to clone.
#[derive(Clone)]
pub struct Services {
    store: Store,
    pub settings: Arc<Settings>,
    pub lookups: Arc<dyn lookups::LookupProvider>,
    pub rate_limits: Arc<rate_limit::RateLimits>,
    pub key_usage: Arc<auth::KeyUsage>,
    /// The keys this process has authenticated (see [`auth::KeyCache`]).
    pub key_cache: Arc<auth::KeyCache>,
    /// One lookup at a time per (organization, mode, number), so that parallel requests for
    /// one number make one vendor call.
    lookups_in_flight: Arc<dashmap::DashMap<lookups::InFlightKey, Arc<tokio::sync::Mutex<()>>>>,
    /// How the live carrier of this process's worker stands, once one runs here.
    carrier_health: Arc<std::sync::RwLock<Option<HealthProbe>>>,
    /// Sends waiting for their group commit.
    send_queue: Arc<
        group_commit::BatchQueue<
            crate::store::sends::QueuedSend<Error>,
            crate::store::sends::SendOutcome<Error>,
        >,
    >,
    /// Carrier receipts waiting for their group commit.
    receipt_queue: Arc<
        group_commit::BatchQueue<crate::store::receipts::IncomingReceipt, receipts::ReceiptOutcome>,
    >,
    /// The newest unmatched receipt the sweep no longer looks at again (see
    /// [`Settings::receipt_recheck`]).
    receipts_checked: Arc<std::sync::atomic::AtomicI64>,
}

/// Reads the state of the worker's carrier connections.
pub type HealthProbe = Arc<dyn Fn() -> crate::domain::submission::DeliveryHealth + Send + Sync>;

impl Services {
    pub fn new(store: Store, settings: Settings) -> Self {
        Services {
            store,
            settings: Arc::new(settings),
            lookups: Arc::new(lookups::SimulatedLookups::default()),
            rate_limits: Arc::new(rate_limit::RateLimits::default()),
            key_usage: Arc::new(auth::KeyUsage::default()),
            key_cache: Arc::new(auth::KeyCache::default()),
            lookups_in_flight: Arc::default(),
            carrier_health: Arc::default(),
            send_queue: Arc::default(),
            receipt_queue: Arc::default(),
            receipts_checked: Arc::default(),
        }
    }

    /// Installs the renderer of webhook events' `data` (the API's form of each resource).
    pub fn install_renderer(&self, render: Arc<dyn crate::domain::webhooks::RenderResource>) {
        self.store.install_renderer(render);
    }

    /// Makes `/healthz` report the live carrier of the worker running in this process.
    pub fn report_carrier(&self, probe: HealthProbe) {
        *self
            .carrier_health
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(probe);
    }

    /// The state of the worker's carrier connections, when a worker runs in this process.
    pub fn carrier_health(&self) -> Option<crate::domain::submission::DeliveryHealth> {
        let probe = self
            .carrier_health
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        probe.map(|probe| probe())
    }

    /// The same services with another lookup vendor.
    pub fn with_lookups(mut self, provider: Arc<dyn lookups::LookupProvider>) -> Self {
        self.lookups = provider;
        self
    }

    /// Spends one of the caller's organization's rate-limit tokens (sends and lookups share
    /// them); 429 when they are used up. On PostgreSQL the allowance is shared by every API
    /// process (tokens leased a few at a time from the organization's bucket); on SQLite, one
    /// process, it is kept in memory.
    async fn spend_token(&self, caller: &auth::Caller) -> Result<(), Error> {
        if !self.store.is_postgres() {
            return self
                .rate_limits
                .check(
                    caller.org_id,
                    caller.mode,
                    caller.rate_per_second,
                    caller.burst,
                )
                .map_err(|retry_after_secs| Error::RateLimited { retry_after_secs });
        }
        let slot = self.rate_limits.leased(caller.org_id, caller.mode);
        let mut local = slot.lock().await;
        if local.take() {
            rate_limit::note_left(caller.rate_per_second, caller.burst, local.about_left());
            return Ok(());
        }
        let rate = f64::from(caller.rate_per_second.max(1));
        let burst = f64::from(caller.burst.max(1));
        let want = rate_limit::lease_size(rate, burst);
        let (granted, available) = self
            .system()
            .lease_rate_tokens(caller.org_id, caller.mode, rate, burst, want)
            .await?;
        local.fill(granted, available);
        let taken = local.take();
        rate_limit::note_left(caller.rate_per_second, caller.burst, local.about_left());
        if taken {
            Ok(())
        } else {
            let retry_after_secs = ((1.0 - available.max(0.0)) / rate).ceil().max(1.0) as u64;
            Err(Error::RateLimited { retry_after_secs })
        }
    }

    /// The store handle for the caller's organization and key mode.
    fn tenant(&self, caller: &auth::Caller) -> Tenant {
        self.store.tenant(caller.org_id, caller.mode)
    }

    /// The store handle for system work.
    fn system(&self) -> System {
        self.store.system()
    }

    /// Whether the database answers (`/readyz`-style checks and the command line).
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.store.ping().await?)
    }

    /// Why writes are refused now, if they are: the SQLite file is locked by another process, or
    /// was removed or replaced.
    pub fn write_refusal(&self) -> Option<crate::store::Refusal> {
        self.store.refusal()
    }

    /// Whether the database file was removed or replaced under the process (SQLite).
    pub fn database_gone(&self) -> bool {
        self.store.refusal() == Some(crate::store::Refusal::FileGone)
    }

    /// Whether every migration this build knows is applied.
    pub async fn migrated(&self) -> Result<bool, Error> {
        Ok(self.store.migrated().await?)
    }

    /// Queued outbound messages and the oldest one's wait.
    pub async fn queue_stats(&self) -> Result<(u64, Duration), Error> {
        Ok(self.system().queue_stats().await?)
    }

    /// The database pool's connections: open, and idle among them.
    pub fn pool_use(&self) -> (u32, u32) {
        self.store.pool_use()
    }
}
