//! The store's one door for writes. SQLite has one writer, and a writer that finds the lock
//! taken polls for it with growing sleeps, which would make waits of tens of milliseconds out of
//! a queue of sub-millisecond transactions; so this process's writes take their turn at an
//! in-process gate, in arrival order, before they reach the database. (Other processes still
//! meet at the database's lock; PostgreSQL needs no gate.)
//!
//! The gate's turn can only be taken here ([`WriteGate`]'s `turn` is private to this module):
//! a write goes through [`begin_write`] (a transaction) or [`writer`] (one statement), and a
//! test in `src/architecture.rs` fails when a store function writes on the bare connection.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The gate (SQLite only), shared by every handle of one store.
#[derive(Clone, Debug, Default)]
pub(super) struct WriteGate(Option<std::sync::Arc<Mutex<()>>>);

impl WriteGate {
    pub(super) fn for_url(url: &str) -> WriteGate {
        WriteGate(url.starts_with("sqlite:").then(Default::default))
    }

    /// Waits for this process's turn to write (SQLite), held until dropped.
    async fn turn(&self) -> Turn {
        Turn(match &self.0 {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        })
    }
}

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
    let turn = gate.turn().await;
    let txn = db
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok((turn, txn))
}

/// The connection with this process's turn to write, for writes of one statement outside a
/// transaction.
pub(super) async fn writer<'a>(db: &'a DatabaseConnection, gate: &WriteGate) -> Writer<'a> {
    Writer {
        db,
        _turn: gate.turn().await,
    }
}

/// A connection holding the turn to write.
#[derive(Debug)]
pub(super) struct Writer<'a> {
    db: &'a DatabaseConnection,
    _turn: Turn,
}

#[async_trait::async_trait]
impl ConnectionTrait for Writer<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.db.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.db.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }
}
