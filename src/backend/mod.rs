//! Everything database-specific lives behind [`Backend`]: the SQL dialect, and (in later
//! modules) the lag probe, the role check and the replication-position SQL. Adding a database
//! means one new file here.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::time::Duration;

use futures_core::future::BoxFuture;
use sqlx::{Database, Executor, Pool};

use crate::classify::Dialect;
use crate::consistency::Position;

/// What a probe of a replica found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaProbe {
    /// The server accepts writes (`read_only` off, or not in recovery): the wrong role for a
    /// replica.
    pub writable: bool,
    /// The thread (or WAL receiver) that fetches changes from the primary runs.
    pub receiving: bool,
    /// The thread (or startup process) that applies changes runs.
    pub applying: bool,
    /// Replication lag, if the server reports one.
    pub lag: Option<Duration>,
    /// The position the replica has applied, if the server reports one.
    pub position: Option<Position>,
}

/// How a database error bears on routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The server went away or is shutting down or starting: retry a read elsewhere; on the
    /// primary, it is unavailable.
    ServerGone,
    /// The server cannot be used by this pool (authentication, missing database, cannot open
    /// the file): retry a read elsewhere.
    Unusable,
    /// The statement failed: report it as is.
    Statement,
}

/// What a probe of the primary found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrimaryProbe {
    /// The server accepts writes; a primary that became read-only (after a failover) is
    /// reported and writes fail fast.
    pub writable: bool,
    /// The `db.system.name` the server's version reveals (`mariadb` vs `mysql`), if any.
    pub system: Option<&'static str>,
}

/// A database rwsplit can route for. Implemented for `sqlx::MySql`, `sqlx::Postgres` and
/// `sqlx::Sqlite` behind the crate features of the same names.
///
/// The two executor methods exist so that generic code needs no higher-ranked `where` clause:
/// each implementation hands out its pool or connection, whose `Executor` impl is known for the
/// concrete database.
pub trait Backend: Database<Arguments: Clone> {
    /// The dialect statements are classified in.
    const DIALECT: Dialect;

    /// The OpenTelemetry `db.system.name` until a probe tells better (`mysql` for the MySQL
    /// family until the version says `mariadb`).
    const SYSTEM: &'static str;

    /// Host, port and database of a pool, for spans. Never the credentials.
    fn server_info(pool: &Pool<Self>) -> crate::telemetry::ServerInfo;

    /// The pool as an executor.
    fn pool_executor(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;

    /// A connection as an executor.
    fn conn_executor(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;

    /// Probes a replica's role, replication threads and lag. With a heartbeat table, lag is
    /// measured from its timestamp row instead of the server's own (coarser) estimate.
    fn probe_replica<'a>(
        pool: &'a Pool<Self>,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ReplicaProbe, sqlx::Error>>;

    /// The primary's current replication position: at or past every write committed before
    /// the call. `Ok(None)` means the backend has no replication to wait for (SQLite).
    fn capture_position<'a>(
        pool: &'a Pool<Self>,
        system: &'a str,
    ) -> BoxFuture<'a, Result<Option<Position>, sqlx::Error>>;

    /// Waits until the server behind `pool` has applied `position`, up to `timeout`, with the
    /// server's own primitive. `Ok(false)` on timeout.
    fn wait_for_position<'a>(
        pool: &'a Pool<Self>,
        system: &'a str,
        position: &'a Position,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;

    /// The server's own error code for `db.response.status_code`: the SQLSTATE by default
    /// (PostgreSQL), the error number on MySQL/MariaDB.
    fn error_code(err: &dyn sqlx::error::DatabaseError) -> Option<String> {
        err.code().map(|c| c.into_owned())
    }

    /// How a database error bears on routing (retry a read elsewhere, primary unavailable, or
    /// a plain statement error).
    fn error_class(err: &dyn sqlx::error::DatabaseError) -> ErrorClass;

    /// What the server says about itself for [`crate::RoutingPool::check_config`];
    /// `Ok(None)` when the checks do not apply (SQLite's readers share the writer's file).
    fn server_facts<'a>(
        pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<crate::ServerFacts>, sqlx::Error>>;

    /// Whether user-defined functions may write, by name (`true` = volatile). Names the
    /// server does not know are left out. Backends without trustworthy metadata return
    /// nothing (MySQL's `SQL DATA ACCESS` characteristic is declared, not enforced).
    fn function_volatility<'a>(
        _pool: &'a Pool<Self>,
        _names: &'a [std::sync::Arc<str>],
    ) -> BoxFuture<'a, Result<Vec<(String, bool)>, sqlx::Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Probes the primary's role and, with a heartbeat table, writes the heartbeat row.
    fn probe_primary<'a>(
        pool: &'a Pool<Self>,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PrimaryProbe, sqlx::Error>>;
}

/// Implements the executor plumbing of [`Backend`] for one sqlx database type.
#[allow(unused_macros)] // unused when no backend feature is on
macro_rules! backend_executors {
    () => {
        fn pool_executor(pool: &sqlx::Pool<Self>) -> impl sqlx::Executor<'_, Database = Self> {
            pool
        }

        fn conn_executor(conn: &mut Self::Connection) -> impl sqlx::Executor<'_, Database = Self> {
            conn
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_executors;

/// `Backend::server_info` for servers reached over the network (host, port, database).
#[allow(unused_macros)]
macro_rules! network_server_info {
    () => {
        fn server_info(pool: &sqlx::Pool<Self>) -> crate::telemetry::ServerInfo {
            let o = pool.connect_options();
            crate::telemetry::ServerInfo {
                address: o.get_host().to_string(),
                port: Some(o.get_port()),
                namespace: o.get_database().map(str::to_string),
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use network_server_info;
