//! SQLite, the embedded default: one writer connection plus a pool of read-only reader
//! connections on the same WAL-mode database file. This is the standard way to use SQLite
//! concurrently: WAL lets readers run while the single writer writes, and one writer
//! connection means writers queue in the pool instead of failing with `SQLITE_BUSY`.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;

use super::{backend_executors, Backend};
use crate::classify::Dialect;
use crate::{RoutingPool, RoutingPoolBuilder};

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    const SYSTEM: &'static str = "sqlite";
    backend_executors!();

    fn server_info(pool: &sqlx::Pool<Self>) -> crate::telemetry::ServerInfo {
        let o = pool.connect_options();
        crate::telemetry::ServerInfo {
            address: o.get_filename().display().to_string(),
            port: None,
            namespace: Some("main".into()),
        }
    }

    fn error_class(err: &dyn sqlx::error::DatabaseError) -> super::ErrorClass {
        // SQLITE_CANTOPEN (14), SQLITE_NOTADB (26), SQLITE_IOERR (10): the file cannot serve.
        // SQLITE_READONLY (8): a reader was asked to write.
        match err.code().as_deref() {
            Some("14" | "26" | "10") => super::ErrorClass::ServerDown,
            Some("8") => super::ErrorClass::ReadOnly,
            _ => super::ErrorClass::Statement,
        }
    }

    fn server_facts<'a>(
        _pool: &'a sqlx::Pool<Self>,
    ) -> futures_core::future::BoxFuture<'a, Result<Option<crate::ServerFacts>, sqlx::Error>> {
        // The readers read the writer's file by design: nothing to check.
        Box::pin(async { Ok(None) })
    }

    fn probe_replica<'a>(
        _conn: &'a mut sqlx::SqliteConnection,
        _heartbeat: Option<&'a str>,
    ) -> futures_core::future::BoxFuture<'a, Result<super::ReplicaProbe, sqlx::Error>> {
        // The readers read the writer's own file: no replication, no lag.
        Box::pin(async {
            Ok(super::ReplicaProbe {
                writable: false,
                receiving: true,
                applying: true,
                lag: Some(Duration::ZERO),
                lag_rounding: Duration::ZERO,
                position: None,
            })
        })
    }

    fn capture_position<'a>(
        _pool: &'a sqlx::Pool<Self>,
        _system: &'a str,
    ) -> futures_core::future::BoxFuture<
        'a,
        Result<Option<crate::consistency::Position>, sqlx::Error>,
    > {
        // Readers read the writer's own file: there is no replication to wait for.
        Box::pin(async { Ok(None) })
    }

    fn wait_for_position<'a>(
        _pool: &'a sqlx::Pool<Self>,
        _system: &'a str,
        _position: &'a crate::consistency::Position,
        _timeout: Duration,
    ) -> futures_core::future::BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async { Ok(true) })
    }

    fn probe_primary<'a>(
        _conn: &'a mut sqlx::SqliteConnection,
        _heartbeat: Option<&'a str>,
    ) -> futures_core::future::BoxFuture<'a, Result<super::PrimaryProbe, sqlx::Error>> {
        Box::pin(async {
            Ok(super::PrimaryProbe {
                writable: true,
                system: None,
                cluster: None,
            })
        })
    }
}

/// The name of the reader "replica" in a SQLite pool.
pub const READER_NAME: &str = "reader";

/// Opens (creating if needed) the SQLite database at `path` in WAL mode and returns a builder
/// for a [`RoutingPool`] with one writer connection as the primary and `readers` read-only
/// connections as the replica named [`READER_NAME`].
///
/// ```no_run
/// # async fn demo() -> rwsplit::Result<()> {
/// let pool = rwsplit::sqlite::open("app.db", 4).await?.build()?;
/// # Ok(()) }
/// ```
pub async fn open(
    path: impl AsRef<Path>,
    readers: u32,
) -> Result<RoutingPoolBuilder<Sqlite>, crate::Error> {
    if readers == 0 {
        return Err(crate::Error::InvalidOption {
            option: "readers",
            why: "a SQLite routing pool needs at least one reader connection",
        });
    }
    let base = SqliteConnectOptions::new()
        .filename(path.as_ref())
        .busy_timeout(Duration::from_secs(5));
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            base.clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        )
        .await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(readers)
        .connect_with(base.read_only(true))
        .await?;
    Ok(RoutingPool::builder(writer).replica(READER_NAME, reader))
}
