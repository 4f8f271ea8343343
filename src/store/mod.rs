//! The only place that talks to the database (sea-orm), and the only one that sees its rows.
//!
//! Queries hang off two handles. A [`Tenant`] carries an organization and a key mode, and every
//! query on it is scoped to both: no function on it can forget the tenant. A [`System`] is for
//! work no tenant asked for — the delivery worker, carrier callbacks, the admin command line.
//! Both hand back domain types ([`rows`] converts), never `entity` rows.

use std::{path::PathBuf, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement, TransactionTrait,
};

pub mod api_keys;
pub mod connections;
pub mod consents;
pub mod delivery;
mod door;
pub mod idempotency;
pub mod inbound_parts;
pub mod lookups;
pub mod messages;
pub mod numbers;
pub mod organizations;
pub mod receipts;
mod rows;
pub mod sends;
pub mod transitions;
pub mod webhooks;

use uuid::Uuid;

use crate::domain::organization::KeyMode;

/// A handle on the database; cheap to clone. It opens [`Tenant`] and [`System`] handles.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    settings: StoreSettings,
    hooks: webhooks::Hooks,
    gate: WriteGate,
}

/// How the store waits on the database: every wait is a setting.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// Connections in the pool (PostgreSQL; SQLite uses 8).
    pub max_connections: u32,
    /// How long a query waits for a free connection before the client gets 503.
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long SQLite waits on another process's lock before the client gets 503.
    pub busy_timeout: Duration,
    /// How long connecting and migrating keep retrying while the database is locked or
    /// unreachable (several processes starting together).
    pub startup_retry: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        use crate::defaults::{self, duration};
        StoreSettings {
            max_connections: defaults::DB_MAX_CONNECTIONS,
            acquire_timeout: duration(defaults::DB_ACQUIRE_TIMEOUT),
            connect_timeout: duration(defaults::DB_CONNECT_TIMEOUT),
            busy_timeout: duration(defaults::DB_BUSY_TIMEOUT),
            startup_retry: duration(defaults::DB_STARTUP_RETRY),
        }
    }
}

/// Retries `attempt` while it fails for want of the database (locked, unreachable), for up to
/// `budget`, with a growing pause.
async fn retry_unavailable<T, F, Fut>(budget: Duration, mut attempt: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(err) if is_unavailable(&err) && started.elapsed() < budget => {
                tracing::warn!(%err, "the database is busy or unreachable; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Queries on one organization's data in one key mode.
#[derive(Clone, Debug)]
pub struct Tenant {
    db: DatabaseConnection,
    org_id: Uuid,
    mode: KeyMode,
    hooks: webhooks::Hooks,
    gate: WriteGate,
}

impl Tenant {
    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn mode(&self) -> KeyMode {
        self.mode
    }
}

/// Queries for work no tenant asked for: the worker, carrier callbacks, administration.
#[derive(Clone, Debug)]
pub struct System {
    db: DatabaseConnection,
    hooks: webhooks::Hooks,
    gate: WriteGate,
}

pub use door::Refusal;
use door::{begin_write, writer, WriteGate};

/// Makes the write transactions that name `key` take turns until `txn` ends, so that a read and
/// the write it decides cannot interleave with another's: on PostgreSQL a transaction-scoped
/// advisory lock on the key; on SQLite nothing (write transactions already take turns).
async fn one_at_a_time(txn: &sea_orm::DatabaseTransaction, key: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A tenant already holds `.0` of what it asked to add one more of (its limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLimit(pub u64);

/// The database URL schemes this server speaks.
const SCHEMES: [&str; 3] = ["sqlite", "postgres", "postgresql"];

/// Refuses at once a URL of a database this server does not speak.
fn supported_scheme(url: &str) -> Result<(), DbErr> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if SCHEMES.contains(&s.as_str()) => Ok(()),
        _ => Err(DbErr::Custom(format!(
            "unsupported database URL {}: use sqlite://FILE (the default) or postgres://USER:PASSWORD@HOST[:PORT]/DATABASE",
            redacted_url(url)
        ))),
    }
}

/// `url` as it may be shown: its password replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not a URL: shown only up to where a password could begin.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                format!(
                    "{scheme}://***@{}",
                    rest.rsplit_once('@').map_or("", |(_, h)| h)
                )
            }
            _ => url.to_owned(),
        },
    }
}

/// `text` with `url` and its password (as written and decoded) replaced wherever they appear.
fn scrub(text: &str, url: &str) -> String {
    let mut text = text.replace(url, &redacted_url(url));
    if let Some(password) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        let decoded = url::form_urlencoded::parse(format!("p={password}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // A password of a few characters would blank out ordinary words; the URL forms above
        // cover it.
        for secret in [password, decoded] {
            if secret.chars().count() >= 4 {
                text = text.replace(&secret, "***");
            }
        }
    }
    text
}

/// The error with `url`'s password scrubbed from its text, as unavailable as it was.
fn scrubbed(err: DbErr, url: &str) -> DbErr {
    match err {
        DbErr::Conn(inner) => DbErr::Conn(RuntimeErr::Internal(scrub(&inner.to_string(), url))),
        DbErr::ConnectionAcquire(inner) => {
            DbErr::Conn(RuntimeErr::Internal(scrub(&inner.to_string(), url)))
        }
        other => DbErr::Custom(scrub(&other.to_string(), url)),
    }
}

/// What an error says, without the kind sea-orm puts before it.
fn error_text(err: &DbErr) -> String {
    match err {
        DbErr::Conn(inner) => inner.to_string(),
        DbErr::Custom(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A failed connection with its cause: the pool only says it timed out, so one connection is
/// opened directly to learn why (refused, authentication failed, unknown database, …).
async fn with_cause(err: DbErr, url: &str, timeout: Duration) -> DbErr {
    use sea_orm::sqlx::Connection;
    if !url.starts_with("postgres") {
        return DbErr::Custom(error_text(&err));
    }
    let probe = tokio::time::timeout(timeout, sea_orm::sqlx::PgConnection::connect(url)).await;
    let cause = match probe {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            return DbErr::Custom(error_text(&err));
        }
        Ok(Err(cause)) => cause.to_string(),
        Err(_) => format!(
            "no connection within {}",
            humantime::format_duration(timeout)
        ),
    };
    DbErr::Custom(scrub(
        &format!("{}; the cause: {cause}", error_text(&err)),
        url,
    ))
}

/// Whether an error means the database could not be reached (as opposed to a query that failed).
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::Tls(_)
                | sea_orm::sqlx::Error::WorkerCrashed => true,
                // SQLite's busy and locked: another process holds the database, for now.
                sea_orm::sqlx::Error::Database(_) => is_locked(err),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether an error is SQLite's busy or locked: another process holds the database.
pub(crate) fn is_locked(err: &DbErr) -> bool {
    match err {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sea_orm::sqlx::Error::Database(db)
                    if db
                        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                        .is_some() =>
                {
                    let primary = db
                        .code()
                        .and_then(|c| c.parse::<i32>().ok())
                        .map(|c| c & 0xff);
                    matches!(primary, Some(5 | 6)) || db.message().contains("database is locked")
                }
                _ => false,
            }
        }
        DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            matches!(&**e, sea_orm::sqlx::Error::Database(db) if db.message().contains("database is locked"))
        }
        _ => false,
    }
}

/// Whether an error is a unique-constraint violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

impl Store {
    /// Connects to `url`: `sqlite://path` (created if missing; WAL, `synchronous=NORMAL`, a busy
    /// timeout and foreign keys on) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, DbErr> {
        Store::connect_with(url, StoreSettings::default()).await
    }

    /// [`Store::connect`] with its waits set.
    pub async fn connect_with(url: &str, settings: StoreSettings) -> Result<Store, DbErr> {
        supported_scheme(url)?;
        if let Some(path) = sqlite_file(url) {
            create_private(&path).map_err(|e| {
                DbErr::Conn(RuntimeErr::Internal(format!(
                    "creating {}: {e}",
                    path.display()
                )))
            })?;
        }
        let options = Self::options(url, &settings, 8);
        let connect = || async {
            Database::connect(options.clone())
                .await
                .map_err(|err| scrubbed(err, url))
        };
        let db = match retry_unavailable(settings.startup_retry, connect).await {
            Ok(db) => db,
            Err(err) => return Err(with_cause(err, url, settings.connect_timeout).await),
        };
        let busy_timeout = settings.busy_timeout;
        Ok(Store {
            db,
            url: url.to_owned(),
            settings,
            hooks: webhooks::Hooks::default(),
            gate: WriteGate::for_url(url, sqlite_file(url), busy_timeout),
        })
    }

    /// How every connection is opened; SQLite pools hold at most `sqlite_connections`.
    fn options(url: &str, settings: &StoreSettings, sqlite_connections: u32) -> ConnectOptions {
        let mut options = ConnectOptions::new(url.to_owned());
        let busy = settings.busy_timeout;
        options
            .sqlx_logging(false)
            .connect_timeout(settings.connect_timeout)
            .acquire_timeout(settings.acquire_timeout)
            .map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy)
                    .foreign_keys(true)
                    // Memory per connection: 1 MiB of page cache, and 48 prepared statements
                    // (batches of different sizes are different statements; a larger cache
                    // held them all, about 30 MiB of the peak under load, for no measurable
                    // speed).
                    .pragma("cache_size", "-1024")
                    .statement_cache_capacity(48)
            })
            // A plan for each execution of a prepared statement, never one generic plan kept
            // from the first executions: the queue and the parts table grow from empty, and a
            // plan made for a small table (a sequential scan) would stay as they grow.
            .map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", "force_custom_plan")]));
        if url.starts_with("sqlite:") {
            options
                .max_connections(sqlite_connections)
                .min_connections(1);
        } else {
            options.max_connections(settings.max_connections);
        }
        options
    }

    /// Installs the renderer of webhook event payloads (the resources' API form) for every
    /// handle of this store.
    pub fn install_renderer(
        &self,
        render: std::sync::Arc<dyn crate::domain::webhooks::RenderResource>,
    ) {
        self.hooks.install(render);
    }

    /// Completes when this process commits a webhook event.
    pub async fn webhook_event_committed(&self) {
        self.hooks.event_committed().await;
    }

    /// The raw connection, for tests that seed or damage rows directly.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The handle for one organization's data in one key mode.
    pub fn tenant(&self, org_id: Uuid, mode: KeyMode) -> Tenant {
        Tenant {
            db: self.db.clone(),
            org_id,
            mode,
            hooks: self.hooks.clone(),
            gate: self.gate.clone(),
        }
    }

    /// The handle for system work.
    pub fn system(&self) -> System {
        System {
            db: self.db.clone(),
            hooks: self.hooks.clone(),
            gate: self.gate.clone(),
        }
    }

    /// Applies pending migrations, once even when several processes start together: PostgreSQL
    /// serializes them with an advisory lock, SQLite with a lock on a file beside the database.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                // Advisory locks belong to a session: take, migrate and release on one connection.
                let conn = self.db.begin().await?;
                let key = Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(7823001)",
                );
                conn.execute_raw(key).await?;
                Migrator::up(&conn, None).await?;
                conn.commit().await
            }
            _ => {
                let _guard = match self.sqlite_lock_path().await {
                    Some(path) => Some(lock_file(path).await?),
                    None => None,
                };
                if self.sqlite_lock_path().await.is_none() {
                    // In memory: the pool's connection is the database.
                    return Migrator::up(&self.db, None).await;
                }
                // Every schema change on one connection: SQLite connections keep the schema they
                // read until they notice a change, and a pool spreads statements over several.
                let options = Self::options(&self.url, &self.settings, 1);
                retry_unavailable(self.settings.startup_retry, || async {
                    let single = Database::connect(options.clone()).await?;
                    let applied = Migrator::up(&single, None).await;
                    single.close().await?;
                    applied
                })
                .await
            }
        }
    }

    /// The lock file beside an on-disk SQLite database (none for an in-memory one).
    async fn sqlite_lock_path(&self) -> Option<PathBuf> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA database_list",
            ))
            .await
            .ok()??;
        let file: String = row.try_get("", "file").ok()?;
        (!file.is_empty()).then(|| PathBuf::from(format!("{file}.migrate-lock")))
    }

    /// Whether this is a PostgreSQL database (several processes may share it).
    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Why writes are refused now, if they are (SQLite: the file locked by another process,
    /// or removed or replaced).
    pub fn refusal(&self) -> Option<Refusal> {
        self.gate.refusal()
    }

    /// Whether every migration this build knows is applied (read only).
    pub async fn migrated(&self) -> Result<bool, DbErr> {
        Ok(Migrator::get_pending_migrations_read_only(&self.db)
            .await?
            .is_empty())
    }

    /// The connection pool's connections: open, and idle among them.
    pub fn pool_use(&self) -> (u32, u32) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (
                    pool.size(),
                    u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                )
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                )
            }
        }
    }
}

/// The file behind a `sqlite:` URL, if it names one (not an in-memory database).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// Creates an empty database file readable and writable by its owner only (SQLite gives its
/// journal files the same mode); an existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Holds an exclusive lock on `path` until dropped.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, DbErr> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| DbErr::Custom(format!("migration lock task: {e}")))?
    .map_err(|e| DbErr::Custom(format!("migration lock: {e}")))
}

/// Which queued messages a claim takes: those of these key modes and channels whose recipient
/// starts with `prefix` and with none of `excluded` (the prefixes of more specific routes).
#[derive(Debug, Clone, Copy)]
pub struct QueueFilter<'a> {
    pub modes: &'a [crate::domain::organization::KeyMode],
    pub channels: &'a [crate::domain::message::Channel],
    /// `+` and digits only; empty for every recipient.
    pub prefix: &'a str,
    pub excluded: &'a [String],
}

impl QueueFilter<'_> {
    /// The SQL condition on the recipient (`to_number`), or an error when a prefix holds
    /// anything but `+` and digits (routes are checked when the configuration is read; this
    /// keeps any other text out of the statement).
    pub(crate) fn recipient_condition(&self) -> Result<String, DbErr> {
        let checked = |p: &str| -> Result<(), DbErr> {
            if p.chars().all(|c| c == '+' || c.is_ascii_digit()) {
                Ok(())
            } else {
                Err(DbErr::Custom(format!(
                    "a route prefix is not a number: {p:?}"
                )))
            }
        };
        let mut condition = String::new();
        if !self.prefix.is_empty() {
            checked(self.prefix)?;
            condition.push_str(&format!(" AND to_number LIKE '{}%'", self.prefix));
        }
        for other in self.excluded {
            checked(other)?;
            condition.push_str(&format!(" AND to_number NOT LIKE '{other}%'"));
        }
        Ok(condition)
    }
}
