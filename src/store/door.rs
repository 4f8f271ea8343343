//! The store's one door for writes. SQLite has one writer, and a writer that finds the lock
//! taken polls for it with growing sleeps, which would make waits of tens of milliseconds out of
//! a queue of sub-millisecond transactions; so this process's writes take their turn at an
//! in-process gate, in arrival order, before they reach the database. (Other processes still
//! meet at the database's lock; PostgreSQL needs no gate.)
//!
//! A write waits at most the busy timeout in all — its turn at the gate included — and is then
//! refused (503). While another process holds the database's lock, writes that had to queue
//! are refused at once rather than each waiting for the lock again; a write made on a database
//! file that was removed or replaced under the process is refused too.
//!
//! The gate's turn can only be taken here ([`WriteGate`]'s `turn` is private to this module):
//! a write goes through [`begin_write`] (a transaction) or [`writer`] (one statement), and a
//! test in `src/architecture.rs` fails when a store function writes on the bare connection.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The gate (SQLite only), shared by every handle of one store.
#[derive(Clone, Debug, Default)]
pub(super) struct WriteGate(Option<std::sync::Arc<Gate>>);

#[derive(Debug)]
pub(super) struct Gate {
    lock: std::sync::Arc<Mutex<()>>,
    /// How long a write may wait in all: for its turn, then for another process's lock.
    busy_timeout: Duration,
    /// When the last write found the database locked by another process; cleared by the next
    /// that gets it. While set, a write that had to queue for its turn, or that comes within
    /// [`PROBE_EVERY`] of that failure, is refused at once instead of waiting for the lock
    /// again: one write at a time looks whether the lock is gone.
    locked: std::sync::Mutex<Option<Instant>>,
    /// The database file as it was opened; a write finds it still there, or is refused.
    file: Option<(PathBuf, FileId)>,
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Why writes are refused now, if they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another process holds the database's lock.
    Locked,
    /// The database file was removed or replaced under the running process.
    FileGone,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Locked => "locked by another process",
            Refusal::FileGone => "the database file was removed or replaced",
        }
    }
}

/// The error a refused write answers with: the database is unavailable (503).
fn refused(why: &str) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("writes refused: {why}")))
}

impl WriteGate {
    /// The gate of a SQLite database at `file` (its path, when it is a file), whose writes wait
    /// at most `busy_timeout` in all.
    pub(super) fn for_url(url: &str, file: Option<PathBuf>, busy_timeout: Duration) -> WriteGate {
        WriteGate(url.starts_with("sqlite:").then(|| {
            std::sync::Arc::new(Gate {
                lock: Default::default(),
                busy_timeout,
                locked: std::sync::Mutex::new(None),
                file: file.and_then(|path| file_id(&path).map(|id| (path, id))),
            })
        }))
    }

    /// Why writes are refused now, if they are.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        let gate = self.0.as_ref()?;
        if let Some((path, id)) = &gate.file {
            if file_id(path) != Some(*id) {
                return Some(Refusal::FileGone);
            }
        }
        gate.locked_at().map(|_| Refusal::Locked)
    }

    /// Waits for this process's turn to write (SQLite), held until dropped; refused (503) when
    /// the file is gone, when the turn does not come within the busy timeout, or when it came
    /// late while the database is locked by another process.
    async fn turn(&self) -> Result<Turn, DbErr> {
        let Some(gate) = &self.0 else {
            return Ok(Turn(None));
        };
        if let Some(Refusal::FileGone) = self.refusal() {
            return Err(refused(Refusal::FileGone.describe()));
        }
        let started = Instant::now();
        let guard = tokio::time::timeout(gate.busy_timeout, gate.lock.clone().lock_owned())
            .await
            .map_err(|_| refused("no turn to write within the busy timeout"))?;
        if let Some(at) = gate.locked_at() {
            if started.elapsed() > QUEUED || at.elapsed() < PROBE_EVERY {
                return Err(refused(Refusal::Locked.describe()));
            }
        }
        Ok(Turn(Some(guard)))
    }

    /// Notes what a write found: the database locked by another process, or not.
    fn found(&self, result: &Result<impl Sized, DbErr>) {
        if let Some(gate) = &self.0 {
            let locked = matches!(result, Err(e) if super::is_locked(e));
            *gate.locked.lock().unwrap_or_else(|e| e.into_inner()) = locked.then(Instant::now);
        }
    }
}

impl Gate {
    fn locked_at(&self) -> Option<Instant> {
        *self.locked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// While the database is locked by another process, at most one write in this long waits to
/// see whether the lock is gone.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// A write that waited longer than this for its turn was queued behind another.
const QUEUED: Duration = Duration::from_millis(50);

/// This process's turn to write, held until dropped (after the commit).
#[derive(Debug)]
pub(super) struct Turn(#[allow(dead_code)] Option<OwnedMutexGuard<()>>);

/// A write transaction and its turn at the gate. On SQLite it takes the write lock at `BEGIN`,
/// so that a read before the first write cannot leave it on a snapshot another writer has
/// outdated.
pub(super) async fn begin_write(
    db: &DatabaseConnection,
    gate: &WriteGate,
) -> Result<(Turn, DatabaseTransaction), DbErr> {
    let turn = gate.turn().await?;
    let txn = db
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await;
    gate.found(&txn);
    Ok((turn, txn?))
}

/// The connection with this process's turn to write, for writes of one statement outside a
/// transaction.
pub(super) async fn writer<'a>(
    db: &'a DatabaseConnection,
    gate: &'a WriteGate,
) -> Result<Writer<'a>, DbErr> {
    Ok(Writer {
        db,
        gate,
        _turn: gate.turn().await?,
    })
}

/// A connection holding the turn to write.
#[derive(Debug)]
pub(super) struct Writer<'a> {
    db: &'a DatabaseConnection,
    gate: &'a WriteGate,
    _turn: Turn,
}

#[async_trait::async_trait]
impl ConnectionTrait for Writer<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let result = self.db.execute_raw(stmt).await;
        self.gate.found(&result);
        result
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let result = self.db.execute_unprepared(sql).await;
        self.gate.found(&result);
        result
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let result = self.db.query_one_raw(stmt).await;
        self.gate.found(&result);
        result
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let result = self.db.query_all_raw(stmt).await;
        self.gate.found(&result);
        result
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }
}
