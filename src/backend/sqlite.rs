//! SQLite's [`Backend`]: the writer is the "primary", the read-only reader connections on the
//! same WAL-mode file are the "replica" (no replication, no lag, no positions). Opening such a
//! pool is `crate::sqlite::open`, on the surface layer.

use std::time::Duration;

use sqlx::Sqlite;

use super::{backend_executors, Backend, Sealed, Waited};
use crate::classify::Dialect;

impl Sealed for Sqlite {}

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    const SYSTEM: &'static str = "sqlite";
    backend_executors!();

    fn server_info(pool: &sqlx::Pool<Self>) -> super::ServerInfo {
        let o = pool.connect_options();
        super::ServerInfo {
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
    ) -> futures_core::future::BoxFuture<'a, Result<Option<super::ServerFacts>, sqlx::Error>> {
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
    ) -> futures_core::future::BoxFuture<'a, Result<Option<crate::position::Position>, sqlx::Error>>
    {
        // Readers read the writer's own file: there is no replication to wait for.
        Box::pin(async { Ok(None) })
    }

    fn position_on<'a>(
        _conn: &'a mut sqlx::SqliteConnection,
        _system: &'a str,
    ) -> futures_core::future::BoxFuture<'a, Result<Option<crate::position::Position>, sqlx::Error>>
    {
        Box::pin(async { Ok(None) })
    }

    fn wait_on<'a>(
        _conn: &'a mut sqlx::SqliteConnection,
        _system: &'a str,
        _position: &'a crate::position::Position,
        _timeout: Duration,
    ) -> futures_core::future::BoxFuture<'a, Result<Waited, sqlx::Error>> {
        Box::pin(async { Ok(Waited::Reached) })
    }

    fn wait_for_position<'a>(
        _pool: &'a sqlx::Pool<Self>,
        _system: &'a str,
        _position: &'a crate::position::Position,
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
