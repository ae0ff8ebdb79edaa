//! SQLite, the embedded default (surface layer, beside `pool`): one writer connection plus a
//! pool of read-only reader connections on the same WAL-mode database file. This is the
//! standard way to use SQLite concurrently: WAL lets readers run while the single writer
//! writes, and one writer connection means writers queue in the pool instead of failing with
//! `SQLITE_BUSY`. The backend itself (what a probe or a position means here) is in
//! `backend/sqlite.rs`.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;

use crate::error::Error;
use crate::pool::RoutingPoolBuilder;
use crate::router::RoutingPool;

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
) -> Result<RoutingPoolBuilder<Sqlite>, Error> {
    if readers == 0 {
        return Err(Error::InvalidOption {
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

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    //! The pool's background tasks, observed on the SQLite backend (no servers needed).
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn monitor_tasks_hold_no_strong_reference_and_stop_with_the_last_handle() {
        let dir = std::env::temp_dir().join(format!("rwsplit-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pool = super::open(dir.join("m.db"), 1)
            .await
            .unwrap()
            .options(crate::options::PoolOptions::new().monitor_interval(Duration::from_millis(5)))
            .build()
            .unwrap();
        // Wait for a count, not a time: a loaded machine may take a while to run the first probe.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pool.status().replicas[0].probes == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.status().monitor_tasks, 2);
        assert!(pool.status().replicas[0].probes > 0, "the monitor probes");
        let topology = Arc::downgrade(&pool.0.topology);
        let clone = pool.clone();
        drop(pool);
        assert!(topology.upgrade().is_some(), "a clone keeps the pool alive");
        drop(clone);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while topology.upgrade().is_some() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(topology.upgrade().is_none(), "no task keeps the pool alive");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `close` returns once the monitor's own connections are closed too, as sqlx's
    /// `Pool::close` does for its own: the database's files can be removed at once (a doctest
    /// that did so once failed with "directory not empty": a monitor loop still had its
    /// connection open, and closing the last connection removes SQLite's `-wal` and `-shm`).
    #[tokio::test]
    async fn close_returns_once_the_monitor_has_closed_its_connections() {
        let dir = std::env::temp_dir().join(format!("rwsplit-close-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for round in 0..5 {
            let pool = super::open(dir.join(format!("c{round}.db")), 2)
                .await
                .unwrap()
                .options(
                    crate::options::PoolOptions::new().monitor_interval(Duration::from_millis(1)),
                )
                .build()
                .unwrap();
            sqlx::query("CREATE TABLE t (id INTEGER)")
                .execute(&pool)
                .await
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while pool.status().replicas[0].probes < 3 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            pool.close().await;
            assert_eq!(
                pool.status().monitor_tasks,
                0,
                "round {round}: loops still running"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
