//! Settings from flags, the environment (`AGENTMESSAGE_*`) and defaults, parsed with clap.

use crate::defaults;
use std::{net::SocketAddr, time::Duration};

use clap::{builder::BoolishValueParser, Args};

use crate::{delivery::WorkerSettings, service::Settings, store::StoreSettings};

/// The database every command uses.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(
        long,
        env = "AGENTMESSAGE_DATABASE_URL",
        default_value = defaults::DATABASE_URL
    )]
    pub database_url: String,

    /// PostgreSQL connections per process.
    #[arg(long, env = "AGENTMESSAGE_DB_MAX_CONNECTIONS", default_value_t = defaults::DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,

    /// How long a request waits for a free database connection before it answers 503.
    #[arg(long, env = "AGENTMESSAGE_DB_ACQUIRE_TIMEOUT", default_value = defaults::DB_ACQUIRE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: Duration,

    /// How long opening a database connection may take.
    #[arg(long, env = "AGENTMESSAGE_DB_CONNECT_TIMEOUT", default_value = defaults::DB_CONNECT_TIMEOUT, value_parser = humantime::parse_duration)]
    pub db_connect_timeout: Duration,

    /// How long SQLite waits on another process's lock before a request answers 503.
    #[arg(long, env = "AGENTMESSAGE_DB_BUSY_TIMEOUT", default_value = defaults::DB_BUSY_TIMEOUT, value_parser = humantime::parse_duration)]
    pub db_busy_timeout: Duration,

    /// How long start-up keeps retrying while the database is locked or unreachable.
    #[arg(long, env = "AGENTMESSAGE_DB_STARTUP_RETRY", default_value = defaults::DB_STARTUP_RETRY, value_parser = humantime::parse_duration)]
    pub db_startup_retry: Duration,
}

impl DatabaseArgs {
    pub fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            connect_timeout: self.db_connect_timeout,
            busy_timeout: self.db_busy_timeout,
            startup_retry: self.db_startup_retry,
        }
    }
}

/// The rules' settings.
#[derive(Args, Debug, Clone)]
pub struct RuleArgs {
    /// How long a number lookup counts as recent for the landline check (`30d`, `12h`, …).
    #[arg(long, env = "AGENTMESSAGE_LOOKUP_MAX_AGE", default_value = defaults::LOOKUP_MAX_AGE, value_parser = humantime::parse_duration)]
    pub lookup_max_age: Duration,

    /// How long a lookup of a number is reused instead of asking the vendor again.
    #[arg(long, env = "AGENTMESSAGE_LOOKUP_REUSE", default_value = defaults::LOOKUP_REUSE, value_parser = humantime::parse_duration)]
    pub lookup_reuse: Duration,

    /// How long the answer recorded for an `Idempotency-Key` is kept (a retry after it runs
    /// afresh).
    #[arg(long, env = "AGENTMESSAGE_IDEMPOTENCY_RETENTION", default_value = defaults::IDEMPOTENCY_RETENTION, value_parser = humantime::parse_duration)]
    pub idempotency_retention: Duration,

    /// How long a carrier receipt that matches no message is kept (its message may become known
    /// later; past this it is deleted).
    #[arg(long, env = "AGENTMESSAGE_UNMATCHED_RECEIPT_RETENTION", default_value = defaults::UNMATCHED_RECEIPT_RETENTION, value_parser = humantime::parse_duration)]
    pub unmatched_receipt_retention: Duration,

    /// The bearer token the carrier sends to `/v1/carrier/receipts` and `/v1/carrier/inbound`
    /// (unset: those endpoints answer 401).
    #[arg(long, env = "AGENTMESSAGE_CARRIER_SECRET", hide_env_values = true)]
    pub carrier_secret: Option<String>,

    /// The most concurrent sends committed together in one transaction (group commit). A send
    /// waits for nothing but the batch committing before it; 1 commits each send alone.
    #[arg(long, env = "AGENTMESSAGE_SEND_BATCH_MAX", default_value_t = crate::service::DEFAULT_SEND_BATCH_MAX, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub send_batch_max: usize,

    /// The most webhook endpoints one organization may hold in each mode (enabled or not); one
    /// more is 409 `LIMIT_REACHED`.
    #[arg(long, env = "AGENTMESSAGE_MAX_WEBHOOK_ENDPOINTS", default_value_t = defaults::MAX_WEBHOOK_ENDPOINTS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_webhook_endpoints: u64,

    /// The most unrevoked API keys one organization may hold in each mode; one more is 409
    /// `LIMIT_REACHED` (the admin command line is not held to it).
    #[arg(long, env = "AGENTMESSAGE_MAX_API_KEYS", default_value_t = defaults::MAX_API_KEYS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_api_keys: u64,

    /// Take plain http media URLs too (by default an MMS's media must be https).
    #[arg(long, env = "AGENTMESSAGE_MMS_ALLOW_HTTP", value_parser = BoolishValueParser::new())]
    pub mms_allow_http: bool,

    /// Fetch media from loopback, private and link-local addresses too (a private deployment,
    /// tests); by default the webhooks' table of refused destinations applies.
    #[arg(long, env = "AGENTMESSAGE_MEDIA_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub media_allow_private: bool,

    /// The most bytes one MMS's media may add up to; past it the message fails
    /// `MEDIA_TOO_LARGE`.
    #[arg(long, env = "AGENTMESSAGE_MMS_MAX_BYTES", default_value_t = defaults::MMS_MAX_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    pub mms_max_bytes: u64,

    /// How long fetching an MMS's media may take, all items together, before the message fails
    /// `MEDIA_UNAVAILABLE`.
    #[arg(long, env = "AGENTMESSAGE_MEDIA_FETCH_TIMEOUT", default_value = defaults::MEDIA_FETCH_TIMEOUT, value_parser = humantime::parse_duration)]
    pub media_fetch_timeout: Duration,

    /// The shortest a send's `send_at` may be ahead of now (422 `details.send_at` otherwise).
    #[arg(long, env = "AGENTMESSAGE_SCHEDULE_MIN_LEAD", default_value = defaults::SCHEDULE_MIN_LEAD, value_parser = humantime::parse_duration)]
    pub schedule_min_lead: Duration,

    /// The longest a send's `send_at` may be ahead of now.
    #[arg(long, env = "AGENTMESSAGE_SCHEDULE_MAX_LEAD", default_value = defaults::SCHEDULE_MAX_LEAD, value_parser = humantime::parse_duration)]
    pub schedule_max_lead: Duration,
}

impl RuleArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            lookup_max_age: self.lookup_max_age,
            lookup_reuse: self.lookup_reuse,
            carrier_secret: self.carrier_secret.clone(),
            idempotency_retention: self.idempotency_retention,
            unmatched_receipt_retention: self.unmatched_receipt_retention,
            send_batch_max: self.send_batch_max,
            limits: crate::service::Limits {
                webhook_endpoints: self.max_webhook_endpoints,
                api_keys: self.max_api_keys,
            },
            media: crate::service::MediaRules {
                allow_http: self.mms_allow_http,
                allow_private: self.media_allow_private,
                max_bytes: self.mms_max_bytes,
                fetch_timeout: self.media_fetch_timeout,
            },
            schedule_min_lead: self.schedule_min_lead,
            schedule_max_lead: self.schedule_max_lead,
            ..Settings::default()
        }
    }
}

/// How the delivery worker runs.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// How long the simulated carrier waits before sending a receipt.
    #[arg(long, env = "AGENTMESSAGE_RECEIPT_DELAY", default_value = defaults::RECEIPT_DELAY, value_parser = humantime::parse_duration)]
    pub receipt_delay: Duration,

    /// How long a message may take, from its creation (or its `send_at`), to be sent and get its
    /// final receipt; past it, it is `undelivered` (EXPIRED). The longest `validity_period` a
    /// send may ask. SMPP submissions carry the time left, MM7 SubmitReqs its end.
    #[arg(long, env = "AGENTMESSAGE_VALIDITY", default_value = defaults::VALIDITY, value_parser = humantime::parse_duration)]
    pub validity: Duration,

    /// How long a message waits before it is submitted again after the carrier deferred a part
    /// (throttling, a full queue, a temporary error).
    #[arg(long, env = "AGENTMESSAGE_RETRY_BACKOFF", default_value = defaults::RETRY_BACKOFF, value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,

    /// How long a worker holds a claimed message before another may take it over.
    #[arg(long, env = "AGENTMESSAGE_LEASE", default_value = defaults::LEASE, value_parser = humantime::parse_duration)]
    pub lease: Duration,

    /// How long an idle worker waits before it looks at the queue again.
    #[arg(long, env = "AGENTMESSAGE_POLL", default_value = defaults::POLL, value_parser = humantime::parse_duration)]
    pub poll: Duration,

    /// How often the worker sweeps (expired leases, validity, receipts that raced with `sent`).
    #[arg(long, env = "AGENTMESSAGE_SWEEP_EVERY", default_value = defaults::SWEEP_EVERY, value_parser = humantime::parse_duration)]
    pub sweep_every: Duration,

    /// How many queued messages a worker claims at once.
    #[arg(long, env = "AGENTMESSAGE_BATCH_SIZE", default_value_t = defaults::BATCH_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,

    /// How many batches a worker claims and delivers side by side.
    #[arg(long, env = "AGENTMESSAGE_LANES", default_value_t = defaults::LANES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub lanes: usize,
}

impl WorkerArgs {
    pub fn settings(&self) -> WorkerSettings {
        WorkerSettings {
            batch_size: self.batch_size,
            lanes: self.lanes,
            lease: self.lease,
            validity: self.validity,
            retry_backoff: self.retry_backoff,
            poll: self.poll,
            sweep_every: self.sweep_every,
            webhooks: Default::default(),
        }
    }
}

/// Webhooks: the key secrets are sealed under, where they may be sent, and the dispatcher.
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// The key webhook signing secrets are stored under: 32 random bytes, base64
    /// (`openssl rand -base64 32`). Several, comma-separated, newest first, while changing keys:
    /// the first seals new secrets, each opens what it sealed. Unset: endpoints cannot be
    /// created (501 `WEBHOOKS_NOT_CONFIGURED`).
    #[arg(long, env = "AGENTMESSAGE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Allow webhook URLs on loopback, private and link-local addresses (a private deployment,
    /// tests). Metadata addresses are link-local, so this allows them too.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub webhook_allow_private: bool,

    /// How long one delivery attempt may take.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_TIMEOUT", default_value = defaults::WEBHOOK_TIMEOUT, value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// The waits after each failed attempt, comma-separated (the Standard Webhooks schedule);
    /// after the last, the delivery is `failed`.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_SCHEDULE", default_value = defaults::WEBHOOK_SCHEDULE, value_parser = parse_schedule)]
    pub webhook_schedule: Schedule,

    /// How long events whose deliveries are finished are kept.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_RETENTION", default_value = defaults::WEBHOOK_RETENTION, value_parser = humantime::parse_duration)]
    pub webhook_retention: Duration,

    /// How long a rotated-out secret keeps signing beside the new one.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_SECRET_OVERLAP", default_value = defaults::WEBHOOK_SECRET_OVERLAP, value_parser = humantime::parse_duration)]
    pub webhook_secret_overlap: Duration,

    /// Most delivery attempts in flight at once, per worker.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_CONCURRENCY", default_value_t = defaults::WEBHOOK_CONCURRENCY, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub webhook_concurrency: u64,

    /// Most delivery attempts in flight to one endpoint, per worker.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_PER_ENDPOINT", default_value_t = defaults::WEBHOOK_PER_ENDPOINT, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub webhook_per_endpoint: u64,

    /// Most webhook attempts in flight for one organization's endpoints (per dispatcher), so
    /// that one organization's slow endpoints cannot take the whole concurrency.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_PER_ORGANIZATION", default_value_t = defaults::WEBHOOK_PER_ORGANIZATION, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub webhook_per_organization: u64,

    /// How long an idle dispatcher waits before it looks for due deliveries again.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_POLL", default_value = defaults::WEBHOOK_POLL, value_parser = humantime::parse_duration)]
    pub webhook_poll: Duration,

    /// The shortest wait a receiver's `Retry-After` can ask for before the next attempt.
    #[arg(long, env = "AGENTMESSAGE_WEBHOOK_RETRY_AFTER_FLOOR", default_value = defaults::WEBHOOK_RETRY_AFTER_FLOOR, value_parser = humantime::parse_duration)]
    pub webhook_retry_after_floor: Duration,
}

/// A retry schedule.
#[derive(Debug, Clone)]
pub struct Schedule(pub Vec<Duration>);

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    text.split(',')
        .map(|d| humantime::parse_duration(d.trim()).map_err(|e| format!("{d:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Schedule)
}

impl WebhookArgs {
    /// The service's webhook rules; an unreadable key is an error at start-up.
    pub fn apply(&self, settings: Settings) -> anyhow::Result<Settings> {
        let sealing = match &self.secret_key {
            None => None,
            Some(text) => Some(std::sync::Arc::new(
                crate::domain::webhooks::SealingKeys::from_setting(text)
                    .map_err(|e| anyhow::anyhow!("AGENTMESSAGE_SECRET_KEY: {e}"))?,
            )),
        };
        Ok(Settings {
            webhooks: crate::service::webhooks::WebhookRules {
                sealing,
                allow_private: self.webhook_allow_private,
                secret_overlap: self.webhook_secret_overlap,
            },
            ..settings
        })
    }

    /// The dispatcher's settings.
    pub fn dispatcher(&self) -> crate::delivery::WebhookSettings {
        crate::delivery::WebhookSettings {
            timeout: self.webhook_timeout,
            schedule: self.webhook_schedule.0.clone(),
            poll: self.webhook_poll,
            retry_after_floor: self.webhook_retry_after_floor,
            concurrency: usize::try_from(self.webhook_concurrency).unwrap_or(usize::MAX),
            per_endpoint: usize::try_from(self.webhook_per_endpoint).unwrap_or(usize::MAX),
            per_organization: usize::try_from(self.webhook_per_organization).unwrap_or(usize::MAX),
            allow_private: self.webhook_allow_private,
            retention: self.webhook_retention,
            ..Default::default()
        }
    }
}

pub use crate::delivery::registry::{CarrierKind, MmsCarrierKind};

/// The carrier of live MMS, when not the SMS carrier, and the MMSC's way back in.
#[derive(Args, Debug, Clone)]
pub struct MmsArgs {
    /// Where live MMS go: `mm7` (an MMS centre) or `simulated`. Unset, the SMS carrier takes
    /// them when it can (the simulated one), and MMS are refused with 422 when it cannot (SMPP).
    #[arg(long, env = "AGENTMESSAGE_MMS_CARRIER", value_enum)]
    pub mms_carrier: Option<MmsCarrierKind>,

    /// The MMSC's MM7 endpoint (`https://…`).
    #[arg(
        long,
        env = "AGENTMESSAGE_MM7_URL",
        required_if_eq("mms_carrier", "mm7")
    )]
    pub mm7_url: Option<String>,

    /// HTTP Basic user name towards the MMSC; the password is read from
    /// `AGENTMESSAGE_MM7_PASSWORD` (never a flag, never logged).
    #[arg(long, env = "AGENTMESSAGE_MM7_USERNAME", default_value = "")]
    pub mm7_username: String,

    /// The VASP id the MMSC knows this service by (`VASPID`).
    #[arg(long, env = "AGENTMESSAGE_MM7_VASP_ID", default_value = "")]
    pub mm7_vasp_id: String,

    /// The service's `VASID`, if the MMSC wants one.
    #[arg(long, env = "AGENTMESSAGE_MM7_VAS_ID", default_value = "")]
    pub mm7_vas_id: String,

    /// The `ServiceCode` written in every SubmitReq (charging), if the MMSC wants one.
    #[arg(long, env = "AGENTMESSAGE_MM7_SERVICE_CODE", default_value = "")]
    pub mm7_service_code: String,

    /// The MM7 version spoken: 5.3.0, 5.5.0, 5.6.0 or 6.8.0 (the schema namespace follows it).
    #[arg(long, env = "AGENTMESSAGE_MM7_VERSION", default_value = defaults::MM7_VERSION)]
    pub mm7_version: String,

    /// A PEM file of the CA certificates that verify the MMSC, instead of the system's roots.
    #[arg(long, env = "AGENTMESSAGE_MM7_TLS_CA")]
    pub mm7_tls_ca: Option<std::path::PathBuf>,

    /// How long a SubmitReq may take, from connecting to its answer; one written and not
    /// answered in time fails as SUBMISSION_UNCERTAIN.
    #[arg(long, env = "AGENTMESSAGE_MM7_TIMEOUT", default_value = defaults::MM7_TIMEOUT, value_parser = humantime::parse_duration)]
    pub mm7_timeout: Duration,

    /// SubmitReqs outstanding at once, per worker process.
    #[arg(long, env = "AGENTMESSAGE_MM7_CONCURRENCY", default_value_t = defaults::MM7_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub mm7_concurrency: u32,

    /// The user name the MMSC sends (HTTP Basic) on `POST /v1/carrier/mm7`; its password is
    /// read from `AGENTMESSAGE_MM7_INBOUND_PASSWORD`. Unset, every request there is refused.
    #[arg(long, env = "AGENTMESSAGE_MM7_INBOUND_USERNAME")]
    pub mm7_inbound_username: Option<String>,
}

/// The password of the environment variable `name`, if set and not empty.
fn secret_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl MmsArgs {
    /// The rules' settings as the MMS carrier shapes them: MMS taken when a carrier carries
    /// them, and the MMSC's credentials for `/v1/carrier/mm7`.
    pub fn apply(&self, settings: Settings) -> anyhow::Result<Settings> {
        let mm7_inbound = match &self.mm7_inbound_username {
            None => None,
            Some(username) => {
                let password =
                    secret_from_env("AGENTMESSAGE_MM7_INBOUND_PASSWORD").ok_or_else(|| {
                        anyhow::anyhow!(
                            "--mm7-inbound-username needs AGENTMESSAGE_MM7_INBOUND_PASSWORD set"
                        )
                    })?;
                Some(crate::service::Mm7Inbound {
                    username: username.clone(),
                    password,
                    version: self.mm7_version.clone(),
                    carrier_name: MmsCarrierKind::Mm7.name().into(),
                })
            }
        };
        Ok(Settings {
            mms_supported: settings.mms_supported
                || self.mms_carrier.is_some_and(|k| k.capabilities().mms),
            mm7_inbound,
            ..settings
        })
    }

    /// The MM7 carrier's settings, when it carries live MMS.
    pub fn mm7(&self) -> Option<crate::delivery::Mm7Settings> {
        (self.mms_carrier == Some(MmsCarrierKind::Mm7)).then(|| self.mm7_base())
    }

    /// The `--mm7-*` settings (a named MM7 connection starts from them).
    pub fn mm7_base(&self) -> crate::delivery::Mm7Settings {
        let mut settings =
            crate::delivery::Mm7Settings::new(self.mm7_url.clone().unwrap_or_default());
        settings.username = self.mm7_username.clone();
        settings.password = secret_from_env("AGENTMESSAGE_MM7_PASSWORD").unwrap_or_default();
        settings.vasp_id = self.mm7_vasp_id.clone();
        settings.vas_id = self.mm7_vas_id.clone();
        settings.service_code = self.mm7_service_code.clone();
        settings.version = self.mm7_version.clone();
        settings.tls_ca = self.mm7_tls_ca.clone();
        settings.timeout = self.mm7_timeout;
        settings.concurrency = self.mm7_concurrency;
        settings
    }
}

/// The live carrier. Test-mode messages always go to the simulated carrier.
#[derive(Args, Debug, Clone)]
pub struct CarrierArgs {
    /// `simulated` (no phone is reached) or `smpp` (an SMSC; MMS is then refused with 422).
    #[arg(
        long,
        env = "AGENTMESSAGE_CARRIER",
        value_enum,
        default_value = defaults::CARRIER
    )]
    pub carrier: CarrierKind,

    /// The SMSC's `HOST:PORT`.
    #[arg(
        long,
        env = "AGENTMESSAGE_SMPP_ADDRESS",
        required_if_eq("carrier", "smpp")
    )]
    pub smpp_address: Option<String>,

    /// The `system_id` to bind with.
    #[arg(long, env = "AGENTMESSAGE_SMPP_SYSTEM_ID", default_value = "")]
    pub smpp_system_id: String,

    /// The bind password (set it in the environment; it is never logged).
    #[arg(
        long,
        env = "AGENTMESSAGE_SMPP_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub smpp_password: String,

    /// The bind's `system_type`.
    #[arg(long, env = "AGENTMESSAGE_SMPP_SYSTEM_TYPE", default_value = "")]
    pub smpp_system_type: String,

    /// Connect to the SMSC over TLS (the system's trusted roots verify it).
    #[arg(long, env = "AGENTMESSAGE_SMPP_TLS", value_parser = BoolishValueParser::new())]
    pub smpp_tls: bool,

    /// With `--smpp-tls`: a PEM file of the CA certificates that verify the SMSC, instead of the
    /// system's trusted roots (for an SMSC with a private CA).
    #[arg(long, env = "AGENTMESSAGE_SMPP_TLS_CA")]
    pub smpp_tls_ca: Option<std::path::PathBuf>,

    /// Sessions each worker process binds.
    #[arg(long, env = "AGENTMESSAGE_SMPP_BINDS", default_value_t = defaults::SMPP_BINDS, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smpp_binds: u32,

    /// Outstanding `submit_sm` per session.
    #[arg(long, env = "AGENTMESSAGE_SMPP_WINDOW", default_value_t = defaults::SMPP_WINDOW, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub smpp_window: u32,

    /// `submit_sm` per second per session (0: no limit).
    #[arg(long, env = "AGENTMESSAGE_SMPP_THROUGHPUT", default_value_t = defaults::SMPP_THROUGHPUT)]
    pub smpp_throughput: u32,

    /// How often an idle session sends enquire_link.
    #[arg(long, env = "AGENTMESSAGE_SMPP_ENQUIRE_LINK", default_value = defaults::SMPP_ENQUIRE_LINK, value_parser = humantime::parse_duration)]
    pub smpp_enquire_link: Duration,

    /// How long a request (bind, submit_sm, enquire_link) waits for its response; a submit_sm
    /// without one fails as SUBMISSION_UNCERTAIN.
    #[arg(long, env = "AGENTMESSAGE_SMPP_RESPONSE_TIMEOUT", default_value = defaults::SMPP_RESPONSE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub smpp_response_timeout: Duration,

    /// The first pause before binding again after a loss; it doubles, with jitter, up to
    /// `--smpp-reconnect-max`.
    #[arg(long, env = "AGENTMESSAGE_SMPP_RECONNECT_MIN", default_value = defaults::SMPP_RECONNECT_MIN, value_parser = humantime::parse_duration)]
    pub smpp_reconnect_min: Duration,

    /// The longest pause between binds.
    #[arg(long, env = "AGENTMESSAGE_SMPP_RECONNECT_MAX", default_value = defaults::SMPP_RECONNECT_MAX, value_parser = humantime::parse_duration)]
    pub smpp_reconnect_max: Duration,

    /// How long a session submits nothing after the SMSC throttled it.
    #[arg(long, env = "AGENTMESSAGE_SMPP_THROTTLE_PAUSE", default_value = defaults::SMPP_THROTTLE_PAUSE, value_parser = humantime::parse_duration)]
    pub smpp_throttle_pause: Duration,

    /// How long the parts of an inbound concatenated message are waited for before each is
    /// stored as it is.
    #[arg(long, env = "AGENTMESSAGE_SMPP_REASSEMBLY_TIMEOUT", default_value = defaults::SMPP_REASSEMBLY_TIMEOUT, value_parser = humantime::parse_duration)]
    pub smpp_reassembly_timeout: Duration,

    /// Most inbound concatenated messages waiting for parts (all sessions of the carrier); a
    /// part of one more is answered with a temporary error, so the SMSC delivers it again.
    #[arg(long, env = "AGENTMESSAGE_SMPP_REASSEMBLY_MAX_SETS", default_value_t = defaults::SMPP_REASSEMBLY_MAX_SETS, value_parser = clap::value_parser!(u64).range(1..))]
    pub smpp_reassembly_max_sets: u64,

    /// Most bytes of text of waiting inbound parts (all sessions of the carrier).
    #[arg(long, env = "AGENTMESSAGE_SMPP_REASSEMBLY_MAX_BYTES", default_value_t = defaults::SMPP_REASSEMBLY_MAX_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    pub smpp_reassembly_max_bytes: u64,

    /// At shutdown, how long a session waits for outstanding responses before it unbinds.
    #[arg(long, env = "AGENTMESSAGE_SMPP_CLOSE_TIMEOUT", default_value = defaults::SMPP_CLOSE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub smpp_close_timeout: Duration,

    /// Type of number of the source address (1: international).
    #[arg(long, env = "AGENTMESSAGE_SMPP_SOURCE_TON", default_value_t = defaults::SMPP_SOURCE_TON)]
    pub smpp_source_ton: u8,

    /// Numbering plan of the source address (1: ISDN/E.164).
    #[arg(long, env = "AGENTMESSAGE_SMPP_SOURCE_NPI", default_value_t = defaults::SMPP_SOURCE_NPI)]
    pub smpp_source_npi: u8,

    /// Type of number of the destination address (1: international).
    #[arg(long, env = "AGENTMESSAGE_SMPP_DEST_TON", default_value_t = defaults::SMPP_DEST_TON)]
    pub smpp_dest_ton: u8,

    /// Numbering plan of the destination address (1: ISDN/E.164).
    #[arg(long, env = "AGENTMESSAGE_SMPP_DEST_NPI", default_value_t = defaults::SMPP_DEST_NPI)]
    pub smpp_dest_npi: u8,

    /// How long a connection of a route may stay unbound before the route passes over it to
    /// its next connection (until it binds again).
    #[arg(long, env = "AGENTMESSAGE_FAILOVER_AFTER", default_value = defaults::FAILOVER_AFTER, value_parser = humantime::parse_duration)]
    pub failover_after: Duration,
}

impl CarrierArgs {
    /// The name receipts and carrier ids are stored under.
    pub fn carrier_name(&self) -> &'static str {
        self.carrier.name()
    }

    /// The rules' settings as this carrier shapes them: its name, and MMS taken only when the
    /// carrier's own capabilities say it carries them.
    pub fn apply(&self, settings: Settings) -> Settings {
        Settings {
            carrier_name: self.carrier_name().into(),
            mms_supported: self.carrier.capabilities().mms,
            ..settings
        }
    }

    /// How the live carrier is set up (`receipt_delay`: the simulated carrier's).
    pub fn setup(&self, receipt_delay: Duration) -> crate::delivery::registry::CarrierSetup {
        use crate::delivery::registry::CarrierSetup;
        match self.smpp() {
            Some(smpp) => CarrierSetup::Smpp(Box::new(smpp)),
            None => CarrierSetup::Simulated { receipt_delay },
        }
    }

    /// The SMPP carrier's settings, when it is the live carrier.
    pub fn smpp(&self) -> Option<crate::delivery::SmppSettings> {
        (self.carrier == CarrierKind::Smpp).then(|| self.smpp_base())
    }

    /// The `--smpp-*` settings (a named SMPP connection starts from them).
    pub fn smpp_base(&self) -> crate::delivery::SmppSettings {
        let mut settings = crate::delivery::SmppSettings::new(
            self.smpp_address.clone().unwrap_or_default(),
            self.smpp_system_id.clone(),
        );
        settings.password = self.smpp_password.clone();
        settings.system_type = self.smpp_system_type.clone();
        settings.tls = self.smpp_tls;
        settings.tls_ca = self.smpp_tls_ca.clone();
        settings.binds = self.smpp_binds;
        settings.window = self.smpp_window;
        settings.throughput = self.smpp_throughput;
        settings.enquire_link = self.smpp_enquire_link;
        settings.response_timeout = self.smpp_response_timeout;
        settings.reconnect_min = self.smpp_reconnect_min;
        settings.reconnect_max = self.smpp_reconnect_max;
        settings.throttle_pause = self.smpp_throttle_pause;
        settings.reassembly_timeout = self.smpp_reassembly_timeout;
        settings.reassembly_max_sets = self.smpp_reassembly_max_sets;
        settings.reassembly_max_bytes = self.smpp_reassembly_max_bytes;
        settings.close_timeout = self.smpp_close_timeout;
        settings.source = crate::delivery::smpp::Addressing {
            ton: self.smpp_source_ton,
            npi: self.smpp_source_npi,
        };
        settings.destination = crate::delivery::smpp::Addressing {
            ton: self.smpp_dest_ton,
            npi: self.smpp_dest_npi,
        };
        settings
    }
}

/// What `serve` and `worker` share: the database, the rules, the worker, the carrier, the
/// webhooks and the operations listener.
#[derive(Args, Debug, Clone)]
pub struct ProcessArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub worker: WorkerArgs,

    #[command(flatten)]
    pub carrier: CarrierArgs,

    #[command(flatten)]
    pub mms: MmsArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    /// Where operators read `/healthz`, `/readyz` and `/metrics` (Prometheus); keep it private.
    #[arg(
        long,
        env = "AGENTMESSAGE_OPS_LISTEN",
        default_value = defaults::OPS_LISTEN
    )]
    pub ops_listen: SocketAddr,

    /// How long a stopping process may take to finish what it holds (requests in flight, the
    /// worker's submissions) before it exits.
    #[arg(long, env = "AGENTMESSAGE_SHUTDOWN_GRACE", default_value = defaults::SHUTDOWN_GRACE, value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// The configuration file (`--config`), whose `[connections]` and `[[routes]]` are read
    /// here.
    #[arg(skip)]
    pub config_file: Option<std::path::PathBuf>,
}

impl ProcessArgs {
    /// The carrier connections and routes: the file's, or the single-carrier settings' one.
    pub fn plan(&self) -> anyhow::Result<crate::connections::Plan> {
        let file = match &self.config_file {
            Some(path) => crate::connections::read(path)?,
            None => Default::default(),
        };
        crate::connections::plan(self, &file)
    }

    /// The rules' settings: the rule flags, shaped by the connections and the webhook settings.
    pub fn settings(&self, plan: &crate::connections::Plan) -> anyhow::Result<Settings> {
        let settings = Settings {
            validity: self.worker.validity,
            ..self.rules.settings()
        };
        let mut settings = self.mms.apply(self.carrier.apply(settings))?;
        settings.carrier_name = plan.carrier_name();
        settings.mms_supported = plan.mms_supported();
        if let (Some(inbound), Some(name)) = (settings.mm7_inbound.as_mut(), plan.mm7_name()) {
            inbound.carrier_name = name;
        }
        self.webhooks.apply(settings)
    }
}

/// How `serve` runs.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "AGENTMESSAGE_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub process: ProcessArgs,

    /// Serve the API only; run `agentmessage worker` elsewhere to deliver messages.
    #[arg(long)]
    pub no_worker: bool,

    /// How long a client may take to send a whole request head (request line and headers).
    #[arg(long, env = "AGENTMESSAGE_HEADER_READ_TIMEOUT", default_value = defaults::HEADER_READ_TIMEOUT, value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a kept-alive connection may sit with no request in flight before it is closed.
    #[arg(long, env = "AGENTMESSAGE_IDLE_TIMEOUT", default_value = defaults::IDLE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// How long a request's body may take to arrive (408 after it).
    #[arg(long, env = "AGENTMESSAGE_BODY_READ_TIMEOUT", default_value = defaults::BODY_READ_TIMEOUT, value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, env = "AGENTMESSAGE_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Most connections one client address holds at once; past it, its new connections are
    /// closed as soon as they are accepted, so one client cannot take every slot.
    #[arg(long, env = "AGENTMESSAGE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_address: u64,

    /// Also set up a demo organization that owns +15551112222, with +15554443333 opted in, and
    /// print a fresh key with every scope and a curl command that sends a message.
    #[arg(long)]
    pub demo: bool,
}

impl ServeArgs {
    pub fn server_settings(&self) -> crate::server::ServerSettings {
        crate::server::ServerSettings {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_address: usize::try_from(self.max_connections_per_address)
                .unwrap_or(usize::MAX),
            shutdown_grace: self.process.shutdown_grace,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        webhooks: super::WebhookArgs,
    }

    /// A boolean setting in the environment takes the usual spellings, not only `true`.
    #[test]
    fn boolean_settings_take_1_yes_and_on() {
        for (value, expected) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("off", false),
        ] {
            // No other test of this crate reads the variable.
            std::env::set_var("AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE", value);
            let probe =
                Probe::try_parse_from(["agentmessage"]).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(probe.webhooks.webhook_allow_private, expected, "{value}");
        }
        std::env::set_var("AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE", "maybe");
        assert!(Probe::try_parse_from(["agentmessage"]).is_err());
        std::env::remove_var("AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE");
        // The flag alone still says yes; nothing says no.
        let flag = Probe::try_parse_from(["agentmessage", "--webhook-allow-private"]).unwrap();
        assert!(flag.webhooks.webhook_allow_private);
        assert!(
            !Probe::try_parse_from(["agentmessage"])
                .unwrap()
                .webhooks
                .webhook_allow_private
        );
    }
}
