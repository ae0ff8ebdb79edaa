//! Everything database-specific lives behind [`Backend`]: the SQL dialect, and (in later
//! modules) the lag probe, the role check and the replication-position SQL. Adding a database
//! means one new file here.
//!
//! Layer: knowledge (above the plain types and `classify`'s `Dialect`; every database-specific
//! statement of the crate is in this module's files, `drift`'s included).

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod checksum;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::time::Duration;

use futures_core::future::BoxFuture;
use sqlx::{Database, Executor, Pool};

use crate::classify::Dialect;
use crate::position::Position;

/// Where a server is, for `server.address`, `server.port` and `db.namespace`. Never holds
/// credentials.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Host name or address (a file path for SQLite).
    pub address: String,
    /// TCP port, if any.
    pub port: Option<u16>,
    /// Database name.
    pub namespace: Option<String>,
}

/// What a server says about itself, for the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerFacts {
    /// Distinguishes servers: two pools with the same identity reach the same server.
    pub identity: String,
    /// The server accepts writes.
    pub writable: bool,
    /// The server's connection limit.
    pub max_connections: Option<u32>,
    /// A privilege of this login that lets it write although the server is read-only
    /// (MariaDB `READ_ONLY ADMIN`, `SUPER` or `ALL PRIVILEGES ON *.*`; MySQL `SUPER` or
    /// `CONNECTION_ADMIN` with `super_read_only` off), if any.
    pub bypasses_read_only: Option<&'static str>,
}

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
    /// Replication lag when the probe ran, if the server reports one: an upper bound on how
    /// far the replica's data is behind the primary's, up to `lag_rounding`. Zero when the
    /// replica has applied everything it received (the time a commit takes to reach it, under
    /// a millisecond on a LAN, is not counted: a heartbeat table counts it).
    pub lag: Option<Duration>,
    /// How far the true lag may exceed `lag` because the server rounds it: 1 s for the
    /// whole-second `Seconds_Behind_Master` of MySQL/MariaDB (a reported N means up to N + 1
    /// s), zero for PostgreSQL's timestamps and for a heartbeat.
    pub lag_rounding: Duration,
    /// The position the replica has applied, if the server reports one.
    pub position: Option<Position>,
}

/// What a failed call proves about its server, which decides whether a breaker opens, a read
/// moves elsewhere, or the error simply goes back to the caller. See [`judge`] for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Evidence that the server cannot serve this pool now: it refused the connection or the
    /// login, does not have the database, or says it is shutting down or starting up. Opens
    /// the server's breaker; a read moves to another server.
    ServerDown,
    /// The connection broke while the statement ran (reset, end of stream, killed). The
    /// server may be gone, or the statement itself (`KILL CONNECTION_ID()`,
    /// `pg_terminate_backend(pg_backend_pid())`, an oversized packet) or an administrator
    /// ended it: proves nothing until a probe on a fresh connection says which.
    ConnectionLost,
    /// The server refused the statement because it is read-only (a replica, or a primary
    /// demoted by a switchover); the statement had no effect.
    ReadOnly,
    /// The application's own pool could not hand out a connection in time (sqlx's
    /// `PoolTimedOut`): saturation, not an outage. Goes back to the caller exactly as sqlx
    /// returns it.
    Pool,
    /// The server's sqlx pool is closed (sqlx's `PoolClosed`): that pool cannot serve, whatever
    /// the server's health. A read moves to another server (the replica's breaker opens); on
    /// the primary it goes back to the caller as sqlx returns it.
    Closed,
    /// The statement failed and the server is fine (syntax, constraint, bad bind count,
    /// unsupported command, decode error, ...). Goes back to the caller; touches no breaker.
    Statement,
}

/// Judges an error by what it proves (the classification table, per backend):
///
/// | error | class |
/// |---|---|
/// | `Io`: connection refused, no such socket, address or network unreachable | `ServerDown` |
/// | `Io`: anything else (reset, aborted, broken pipe, end of stream, timed out) | `ConnectionLost` |
/// | `Tls` (the handshake failed) | `ServerDown` |
/// | `WorkerCrashed` (SQLite's connection thread) | `ConnectionLost` |
/// | `PoolTimedOut` | `Pool` |
/// | `PoolClosed` | `Closed` |
/// | `Protocol`, `Encode`, `Decode`, `RowNotFound`, `Column*`, `Type*`, ... | `Statement` |
/// | `Database`: by the backend's [`Backend::error_class`] | (MySQL/MariaDB, PostgreSQL, SQLite tables there) |
pub fn judge<DB: Backend>(err: &sqlx::Error) -> ErrorClass {
    use std::io::ErrorKind;
    match err {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::NotFound
            | ErrorKind::AddrNotAvailable
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable => ErrorClass::ServerDown,
            _ => ErrorClass::ConnectionLost,
        },
        sqlx::Error::Tls(_) => ErrorClass::ServerDown,
        sqlx::Error::WorkerCrashed => ErrorClass::ConnectionLost,
        sqlx::Error::PoolTimedOut => ErrorClass::Pool,
        sqlx::Error::PoolClosed => ErrorClass::Closed,
        sqlx::Error::Database(db) => DB::error_class(db.as_ref()),
        _ => ErrorClass::Statement,
    }
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
    /// The cluster's own identity, for backends that learn it from the server (see
    /// [`Backend::cluster_identity`]).
    pub cluster: Option<String>,
}

/// How a wait for a replication position ended ([`Backend::wait_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waited {
    /// The server has applied the position.
    Reached,
    /// The timeout passed first.
    TimedOut,
    /// The server cannot wait for it (MySQL/MariaDB: the wait function returned NULL, GTIDs
    /// off; PostgreSQL: not a standby), and why.
    Unable(&'static str),
}

/// What [`Backend::unsafe_objects`] returns: the unsafe relations' canonical names, the
/// built-in function names that an unsafe user function shares, and the unsafe types'
/// canonical names.
pub(crate) type UnsafeObjects = (Vec<String>, Vec<String>, Vec<String>);

mod sealed {
    /// Implemented by this crate's backends only: [`super::Backend`] is public (it bounds the
    /// public types) but sealed, so its methods can change without breaking anyone.
    pub trait Sealed {}
}
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub(crate) use checksum::{Checksums, Plan, Side};
#[allow(unused_imports)] // unused when no backend feature is on
pub(crate) use sealed::Sealed;

/// A database rwsplit can route for. Implemented for `sqlx::MySql`, `sqlx::Postgres` and
/// `sqlx::Sqlite` behind the crate features of the same names.
///
/// The two executor methods exist so that generic code needs no higher-ranked `where` clause:
/// each implementation hands out its pool or connection, whose `Executor` impl is known for the
/// concrete database.
///
/// Sealed: implemented by this crate only (every database-specific statement lives in this
/// module, one file per database).
pub trait Backend: sealed::Sealed + Database<Arguments: Clone> {
    /// The dialect statements are classified in.
    const DIALECT: Dialect;

    /// The OpenTelemetry `db.system.name` until a probe tells better (`mysql` for the MySQL
    /// family until the version says `mariadb`).
    const SYSTEM: &'static str;

    /// Host, port and database of a pool, for spans. Never the credentials.
    fn server_info(pool: &Pool<Self>) -> ServerInfo;

    /// The pool as an executor.
    fn pool_executor(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;

    /// A connection as an executor.
    fn conn_executor(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;

    /// Probes a replica's role, replication threads and lag, on the monitor's own connection. With a heartbeat table, lag is
    /// measured from its timestamp row instead of the server's own (coarser) estimate.
    fn probe_replica<'a>(
        conn: &'a mut Self::Connection,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ReplicaProbe, sqlx::Error>>;

    /// The primary's current replication position, read on `conn`: at or past every write
    /// committed before the call. `Ok(None)` means there is nothing to wait for (SQLite, or a
    /// server that has no GTID yet). Used by sessions and by the drift check.
    fn position_on<'a>(
        conn: &'a mut Self::Connection,
        system: &'a str,
    ) -> BoxFuture<'a, Result<Option<Position>, sqlx::Error>>;

    /// Waits on `conn` until its server has applied `position`, up to `timeout`, with the
    /// server's own primitive. Used by sessions and by the drift check.
    fn wait_on<'a>(
        conn: &'a mut Self::Connection,
        system: &'a str,
        position: &'a Position,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Waited, sqlx::Error>>;

    /// [`Backend::position_on`] on a connection of `pool` (the primary's).
    fn capture_position<'a>(
        pool: &'a Pool<Self>,
        system: &'a str,
    ) -> BoxFuture<'a, Result<Option<Position>, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            Self::position_on(&mut conn, system).await
        })
    }

    /// [`Backend::wait_on`] on a connection of `pool`: `Ok(false)` when the position was not
    /// reached in time (or cannot be waited for there).
    fn wait_for_position<'a>(
        pool: &'a Pool<Self>,
        system: &'a str,
        position: &'a Position,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let waited = Self::wait_on(&mut conn, system, position, timeout).await?;
            Ok(waited == Waited::Reached)
        })
    }

    /// The server's own error code for `db.response.status_code`: the SQLSTATE by default
    /// (PostgreSQL), the error number on MySQL/MariaDB.
    fn error_code(err: &dyn sqlx::error::DatabaseError) -> Option<String> {
        err.code().map(|c| c.into_owned())
    }

    /// What a database error proves about its server (`ErrorClass`: the server is down, the
    /// connection was lost, it refused a write as read-only, or the statement failed); the
    /// README's failure table lists the codes of each backend.
    fn error_class(err: &dyn sqlx::error::DatabaseError) -> ErrorClass;

    /// What the server says about itself for [`crate::RoutingPool::check_config`];
    /// `Ok(None)` when the checks do not apply (SQLite's readers share the writer's file).
    fn server_facts<'a>(
        pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<ServerFacts>, sqlx::Error>>;

    /// Whether the functions and operators the classifier did not know may write or keep
    /// state, by the canonical names it reports (`f`, `schema.f`, `"Quoted".f`,
    /// `operator(##>)`, `operator(schema.##>)`; see the README, "Asking the catalog"): `true`
    /// = unsafe. A bare name is answered for every schema the server would resolve it in (on
    /// PostgreSQL any schema: unsafe if any overload anywhere is), a qualified one for its
    /// schema only, never by its bare name. Names the server does not know are left out (the
    /// caller treats them as unsafe). Backends without a catalog return nothing.
    fn function_volatility<'a>(
        _pool: &'a Pool<Self>,
        _names: &'a [std::sync::Arc<str>],
    ) -> BoxFuture<'a, Result<Vec<(String, bool)>, sqlx::Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// What in the whole database runs a function that may write or keep state (volatile or
    /// not deterministic, or one of `side_effect` by name or by one of `prefixes`), as two
    /// lists of canonical names:
    /// - the relations whose reading runs one: views over one, views over those, and on
    ///   PostgreSQL tables whose row-security policies call one or whose row type such a
    ///   function takes as its one argument (`t.f` calls `f(t)`); each as `schema.name` and
    ///   bare `name`;
    /// - the built-in function names that such a user function shares (PostgreSQL: an
    ///   overload of `lower`, or a `lower` in a schema that `search_path` may put before
    ///   `pg_catalog`), so a call by the bare name may be the user's;
    /// - the types (PostgreSQL) whose conversion runs one: domains whose CHECK constraints
    ///   call one or cast to such a type, types with a user-defined cast from or to them or a
    ///   user input function that is one, domains, composites, ranges and arrays over those;
    ///   each as `schema.name` and bare `name`.
    ///
    /// Backends without a catalog return nothing.
    fn unsafe_objects<'a>(
        _pool: &'a Pool<Self>,
        _side_effect: &'a [String],
        _prefixes: &'a [String],
    ) -> BoxFuture<'a, Result<UnsafeObjects, sqlx::Error>> {
        Box::pin(async { Ok((Vec::new(), Vec::new(), Vec::new())) })
    }

    /// The `db.system.name` the server's version reveals, when it refines [`Backend::SYSTEM`]
    /// (`mariadb` vs `mysql`): asked before the first position capture when no probe has
    /// told yet, so read-your-writes is exact from the first call with the monitor on or off.
    fn detect_system<'a>(
        _pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<&'static str>, sqlx::Error>> {
        Box::pin(async { Ok(None) })
    }

    /// The identity of the cluster a pool serves, known without asking a server, from which
    /// the default cluster id in causal tokens is derived (`PoolOptions::cluster_name`
    /// replaces it). Never an address: a token must survive the primary moving. `None` when
    /// the server is asked instead ([`Backend::cluster_identity`]). Default: the database
    /// name (MySQL and MariaDB have no identity of the replication set that survives a
    /// switchover: `server_uuid` and `server_id` belong to one server, GTID domain ids are
    /// configuration).
    fn static_cluster_identity(info: &ServerInfo) -> Option<String> {
        Some(info.namespace.clone().unwrap_or_default())
    }

    /// Asks the primary for the identity of its cluster, when
    /// [`Backend::static_cluster_identity`] has none (PostgreSQL's `system_identifier`, shared
    /// by the primary and every standby, kept across switchovers and failovers).
    fn cluster_identity<'a>(
        _conn: &'a mut Self::Connection,
    ) -> BoxFuture<'a, Result<Option<String>, sqlx::Error>> {
        Box::pin(async { Ok(None) })
    }

    /// Probes the primary's role (on the monitor's own connection) and, with a heartbeat table, writes the heartbeat row.
    fn probe_primary<'a>(
        conn: &'a mut Self::Connection,
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
        fn server_info(pool: &sqlx::Pool<Self>) -> crate::backend::ServerInfo {
            let o = pool.connect_options();
            crate::backend::ServerInfo {
                address: o.get_host().to_string(),
                port: Some(o.get_port()),
                namespace: o.get_database().map(str::to_string),
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use network_server_info;

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::io::{Error as IoError, ErrorKind};

    use super::{judge, ErrorClass};

    fn io(kind: ErrorKind) -> sqlx::Error {
        sqlx::Error::Io(IoError::from(kind))
    }

    /// The rows of [`judge`]'s table that do not depend on the backend.
    #[test]
    fn sqlx_errors_are_judged_by_what_they_prove() {
        let rows = [
            (io(ErrorKind::ConnectionRefused), ErrorClass::ServerDown),
            (io(ErrorKind::NotFound), ErrorClass::ServerDown),
            (io(ErrorKind::AddrNotAvailable), ErrorClass::ServerDown),
            (io(ErrorKind::HostUnreachable), ErrorClass::ServerDown),
            (io(ErrorKind::NetworkUnreachable), ErrorClass::ServerDown),
            (io(ErrorKind::ConnectionReset), ErrorClass::ConnectionLost),
            (io(ErrorKind::ConnectionAborted), ErrorClass::ConnectionLost),
            (io(ErrorKind::BrokenPipe), ErrorClass::ConnectionLost),
            (io(ErrorKind::UnexpectedEof), ErrorClass::ConnectionLost),
            (io(ErrorKind::TimedOut), ErrorClass::ConnectionLost),
            (sqlx::Error::Tls("handshake".into()), ErrorClass::ServerDown),
            (sqlx::Error::WorkerCrashed, ErrorClass::ConnectionLost),
            (sqlx::Error::PoolTimedOut, ErrorClass::Pool),
            (sqlx::Error::PoolClosed, ErrorClass::Closed),
            (
                sqlx::Error::Protocol("bind count".into()),
                ErrorClass::Statement,
            ),
            (sqlx::Error::RowNotFound, ErrorClass::Statement),
            (
                sqlx::Error::ColumnNotFound("v".into()),
                ErrorClass::Statement,
            ),
            (sqlx::Error::Decode("bad".into()), ErrorClass::Statement),
            (sqlx::Error::Encode("bad".into()), ErrorClass::Statement),
        ];
        for (error, class) in rows {
            assert_eq!(judge::<sqlx::Sqlite>(&error), class, "{error:?}");
        }
    }
}
