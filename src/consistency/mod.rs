//! Read-your-writes: [`Session`]s that track the replication position their writes produced
//! and send each later read only to a replica that has applied it, and the portable
//! [`CausalToken`] that carries a session across requests and services.
//!
//! Cost model: a write marks the session; the first read after it captures the primary's
//! position (one round trip, on the primary, only in a session). A read then goes to a replica
//! the monitor already saw at or past that position, or waits on one replica with the server's
//! own primitive (`MASTER_GTID_WAIT`, `WAIT_FOR_EXECUTED_GTID_SET`, or polling
//! `pg_last_wal_replay_lsn()` with exponential backoff), bounded by `causal_wait_timeout`; on
//! timeout it reads from the primary. A replica that lagged more than `causal_wait_timeout` at
//! its last probe is not waited on: when every eligible replica does, the read goes to the
//! primary at once. A session with no writes reads from replicas like the pool does.
//!
//! Layer: scopes (above `call` and `router`; below `executor` and `pool`).

mod ambient;
mod run;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::{Execute, Executor, SqlStr};

pub(crate) use ambient::ambient;
pub use ambient::{with_consistency, with_session};
pub(crate) use run::{session_many, session_optional};

use crate::backend::Backend;
use crate::call::{error_stream, Owned, Step};
use crate::classify::Analysis;
use crate::error::Error;
use crate::options::Consistency;
use crate::position::{cluster_id, CausalToken, Position};
use crate::route::{Target, Verdict};
use crate::router::{Call, Routed, RoutingPool};
use crate::telemetry::{CausalOutcome, FallbackCause};
use crate::topology::LagBound;

#[derive(Debug, Default)]
struct SessionState {
    position: Option<Position>,
    /// Written since the position was last captured.
    dirty: bool,
    /// A transaction was begun, or a connection acquired, in the session: it may commit
    /// writes at any later time, so every read (and the token) captures the position again.
    open: bool,
    last_write: Option<Instant>,
    /// The cluster of a token accepted before this pool knew its own (PostgreSQL, before the
    /// primary told its `system_identifier`): checked before the position is used or passed
    /// on.
    unverified: Option<u64>,
}

/// A causal session: an executor like the pool whose reads never return data older than its
/// own writes. Cheap to clone; clones share the session.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-session-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let pool = rwsplit::sqlite::open(dir.join("s.db"), 2).await?.build()?;
/// sqlx::query("CREATE TABLE carts (id INTEGER PRIMARY KEY, n INTEGER)").execute(&pool).await?;
/// sqlx::query("INSERT INTO carts VALUES (1, 0)").execute(&pool).await?;
///
/// // Request 1: a write through the session, then its token for the client (cookie, header).
/// let session = pool.session();
/// sqlx::query("UPDATE carts SET n = n + 1 WHERE id = 1").execute(&session).await?;
/// let token = session.token().await?.to_string();
///
/// // Request 2, maybe in another process: resume, read; never older than request 1's write.
/// let session = pool.resume(&token)?;
/// let n: i64 = sqlx::query_scalar("SELECT n FROM carts WHERE id = 1").fetch_one(&session).await?;
/// assert_eq!(n, 1);
/// // Code that takes `&pool` gets the same guarantee inside `rwsplit::with_session`.
/// let n: i64 = rwsplit::with_session(session, async {
///     sqlx::query_scalar("SELECT n FROM carts WHERE id = 1").fetch_one(&pool).await
/// })
/// .await?;
/// assert_eq!(n, 1);
/// # pool.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct Session<DB: Backend> {
    pool: RoutingPool<DB>,
    state: Arc<Mutex<SessionState>>,
}

impl<DB: Backend> Clone for Session<DB> {
    fn clone(&self) -> Self {
        Session {
            pool: self.pool.clone(),
            state: self.state.clone(),
        }
    }
}

impl<DB: Backend> std::fmt::Debug for Session<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().ok();
        f.debug_struct("Session")
            .field("position", &state.as_ref().and_then(|s| s.position.clone()))
            .field("dirty", &state.as_ref().map(|s| s.dirty))
            .finish()
    }
}

impl<DB: Backend> RoutingPool<DB> {
    /// A new causal session with no writes yet.
    pub fn session(&self) -> Session<DB> {
        Session {
            pool: self.clone(),
            state: Arc::default(),
        }
    }

    /// Continues a session from a token produced by [`Session::token`] in this or another
    /// process. A malformed token or one from another cluster is an error, never a silent
    /// stale read. A PostgreSQL pool without `cluster_name` knows its cluster once the primary
    /// has told its `system_identifier` (at the monitor's first probe, or the first token it
    /// issues); a token resumed before that is checked when the session first uses its
    /// position, and a foreign one fails that read with [`Error::ForeignToken`].
    pub fn resume(&self, token: &str) -> Result<Session<DB>, Error> {
        let token: CausalToken = token.parse()?;
        self.resume_token(&token)
    }

    /// Like [`RoutingPool::resume`], from a parsed token.
    pub fn resume_token(&self, token: &CausalToken) -> Result<Session<DB>, Error> {
        let unverified = self.accept(token)?;
        let session = self.session();
        if let Ok(mut s) = session.state.lock() {
            s.position = token.position.clone();
            s.unverified = unverified;
        }
        Ok(session)
    }

    /// Checks that a token may be used here: its cluster is this pool's and, with a
    /// `token_key`, its signature is right. `Ok(Some(cluster))` when this pool does not know
    /// its own cluster yet: the caller checks it later ([`Session`]'s `verify`).
    pub(crate) fn accept(&self, token: &CausalToken) -> Result<Option<u64>, Error> {
        if let Some(key) = &self.0.options.token_key {
            token.authenticate(key)?;
        }
        match self.cluster_id() {
            Some(pool) if token.cluster != pool => Err(Error::ForeignToken {
                token: token.cluster,
                pool,
            }),
            Some(_) => Ok(None),
            None => Ok(Some(token.cluster)),
        }
    }

    /// This pool's cluster id, carried in tokens: from `PoolOptions::cluster_name`, else from
    /// the cluster itself (PostgreSQL's `system_identifier`; the database name on MySQL and
    /// MariaDB), never from an address. `None` while a PostgreSQL pool has not heard from its
    /// primary yet (see [`RoutingPool::cluster`]).
    pub fn cluster_id(&self) -> Option<u64> {
        self.0.topology.cluster.get().copied()
    }

    /// This pool's cluster id, asking the primary for its identity if it is not known yet.
    pub async fn cluster(&self) -> Result<u64, Error> {
        if let Some(id) = self.cluster_id() {
            return Ok(id);
        }
        let t = &self.0.topology;
        let identity = self
            .on_primary(|writer| async move {
                let mut conn = writer.acquire().await?;
                DB::cluster_identity(&mut conn).await
            })
            .await?
            .or_else(|| DB::static_cluster_identity(&t.primary().info))
            .unwrap_or_default();
        Ok(*t.cluster.get_or_init(|| cluster_id(&[DB::NAME, &identity])))
    }
}

/// Begins a transaction on `pool`'s primary (what `RoutingPool::begin` does): the ambient
/// session, if any, counts it as open (it may commit writes at any later time).
pub(crate) async fn begin<DB: Backend>(
    pool: &RoutingPool<DB>,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    if let Some(session) = ambient(pool) {
        session.opened();
    }
    pool.on_primary(|writer| writer.begin()).await
}

impl<DB: Backend> Session<DB> {
    /// The pool this session runs on.
    pub fn pool(&self) -> &RoutingPool<DB> {
        &self.pool
    }

    /// The highest position known for this session's writes (without capturing a pending one).
    pub fn position(&self) -> Option<Position> {
        self.state.lock().ok().and_then(|s| s.position.clone())
    }

    /// The session's token, capturing the position of recent writes first.
    pub async fn token(&self) -> Result<CausalToken, Error> {
        self.verify().await?;
        self.settle().await?;
        let token = CausalToken {
            cluster: self.pool.cluster().await?,
            position: self.position(),
            tag: None,
        };
        Ok(match &self.pool.0.options.token_key {
            Some(key) => token.signed(key),
            None => token,
        })
    }

    /// Merges another token of the same cluster into this session (for example one carried by
    /// a request from a service that wrote too).
    pub fn merge(&self, token: &CausalToken) -> Result<(), Error> {
        let unverified = self.pool.accept(token)?;
        if let Ok(mut s) = self.state.lock() {
            match (s.unverified, unverified) {
                // Two clusters, before knowing ours: at least one is foreign.
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::ForeignToken { token: b, pool: a });
                }
                (None, Some(b)) => s.unverified = Some(b),
                _ => {}
            }
            if let Some(p) = &token.position {
                s.position = Some(match &s.position {
                    Some(mine) => mine.merge(p),
                    None => p.clone(),
                });
            }
        }
        Ok(())
    }

    /// Checks the cluster of a token accepted before the pool knew its own (see
    /// [`RoutingPool::resume`]); a foreign one fails every use of the session's position.
    async fn verify(&self) -> Result<(), Error> {
        let pending = self.state.lock().ok().and_then(|s| s.unverified);
        let Some(token) = pending else {
            return Ok(());
        };
        let pool = self.pool.cluster().await?;
        if token != pool {
            return Err(Error::ForeignToken { token, pool });
        }
        if let Ok(mut s) = self.state.lock() {
            s.unverified = None;
        }
        Ok(())
    }

    /// Begins a transaction on the primary (sqlx's type, see [`RoutingPool::begin`]); the
    /// session counts it as a write.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
        self.opened();
        begin(&self.pool).await
    }

    /// Treats the session as if it had just written: its next read (or [`Session::token`])
    /// captures the primary's current position, so reads are never older than anything
    /// committed before this call. For a client whose token was lost, rejected, or issued by
    /// another cluster: one position capture instead of a stale read. `SessionLayer` (feature
    /// `tower`) does this for a request with an unusable token.
    pub fn assume_written(&self) {
        self.wrote();
    }

    fn wrote(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.dirty = true;
            s.last_write = Some(Instant::now());
        }
    }

    /// Captures the primary's position if the session wrote since the last capture.
    async fn settle(&self) -> Result<(), Error> {
        let dirty = self.state.lock().map(|s| s.dirty || s.open).unwrap_or(true);
        if !dirty || self.pool.0.options.causal_window.is_some() {
            return Ok(());
        }
        let pool = &self.pool;
        let captured = pool
            .on_primary(|writer| async move {
                let system = pool.system().await?;
                DB::capture_position(writer, system).await
            })
            .await?;
        if let Ok(mut s) = self.state.lock() {
            s.dirty = false;
            // The primary's position covers everything committed before the capture: the
            // session's earlier position included (and a resumed token's, of the same
            // cluster). Replacing rather than merging keeps tokens from growing (a MySQL GTID
            // set merged as text would grow with every capture).
            if let Some(p) = captured {
                s.position = Some(p);
            }
        }
        Ok(())
    }

    /// Counts a transaction begun, or a connection acquired, on the pool inside
    /// [`with_session`] as a write; also a statement a replica refused as a write after it
    /// ran on the primary.
    pub(crate) fn wrote_elsewhere(&self) {
        self.wrote();
    }

    /// A transaction begun, or a connection acquired, in the session (through the session or
    /// through `&pool` inside [`with_session`]): the session cannot see when it commits, so
    /// from now on each read and each token captures the primary's position first (one round
    /// trip each), and writes committed after a read are still seen by the next one.
    pub(crate) fn opened(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.open = true;
        }
        self.wrote();
    }

    /// Works out the per-call routing of one statement of this session (`base`: a handle's
    /// route hint), with the statement's analysis, which tells after the call whether a
    /// replica refused it as a write (it then ran, and wrote, on the primary).
    pub(crate) async fn plan(
        &self,
        sql: &str,
        base: Call,
    ) -> Result<(Call, Arc<Analysis>), sqlx::Error> {
        let pool = &self.pool;
        // The level that applies without the session (per call, scope, pool): a session never
        // makes it weaker. `Strong` stays on the primary; `BoundedStaleness(d)` keeps its bound
        // on the replicas the causal pick may use.
        let level = base
            .consistency
            .or_else(crate::route::current_consistency)
            .unwrap_or(pool.0.options.consistency);
        let consistency = match level {
            Consistency::Strong | Consistency::BoundedStaleness(_) => level,
            Consistency::Eventual | Consistency::ReadYourWrites => Consistency::ReadYourWrites,
        };
        let call = Call {
            consistency: Some(consistency),
            session: true,
            ..base
        };
        let probe = pool.route(sql, &call, 0);
        // A write, or a "read" a replica refused as a write (it runs on the primary).
        if probe.analysis.verdict != Verdict::Read || probe.analysis.was_refused() {
            self.wrote();
        }
        let analysis = probe.analysis.clone();
        let call = self.causal(call, probe).await?;
        Ok((call, analysis))
    }

    /// The causal part of [`Session::plan`]: a replica at the session's position, or the
    /// primary.
    async fn causal(&self, mut call: Call, probe: Routed<'_, DB>) -> Result<Call, sqlx::Error> {
        let pool = &self.pool;
        if probe.decision.target != Target::Replica {
            return Ok(call);
        }
        if let Some(window) = pool.0.options.causal_window {
            let recent = self
                .state
                .lock()
                .ok()
                .and_then(|s| s.last_write)
                .is_some_and(|t| t.elapsed() < window);
            if recent {
                call.causal_fallback = true;
            }
            return Ok(call);
        }
        self.verify().await.map_err(Error::into_sqlx)?;
        self.settle().await.map_err(Error::into_sqlx)?;
        let Some(position) = self.position() else {
            return Ok(call);
        };
        let t = &pool.0.topology;
        let bound = match call.consistency {
            Some(Consistency::BoundedStaleness(d)) => LagBound::At(d),
            _ => LagBound::Pool,
        };
        if let Some(r) = t.pick_at(bound, &position) {
            call.pin = Some(r.index);
            return Ok(call);
        }
        let timeout = pool.0.options.causal_wait_timeout;
        // Waiting on a replica that lagged more than the budget at its last probe would spend
        // the budget and then read from the primary anyway: go there now.
        let replica = match t.pick_freshest(bound, timeout) {
            Ok(Some(r)) => r,
            Ok(None) => match probe.replica {
                Some(r) => r,
                None => return Ok(call),
            },
            Err(()) => {
                call.causal_fallback = true;
                call.causal_lag = true;
                if let Some(m) = &pool.0.metrics {
                    m.causal(CausalOutcome::SkippedForLag);
                    m.fallback(FallbackCause::CausalLag);
                }
                return Ok(call);
            }
        };
        let applied = replica.applied.read().ok().and_then(|a| a.clone());
        if applied.is_some_and(|a| a.incomparable(&position)) {
            // A PostgreSQL timeline change: the replica's WAL and the session's may be of
            // different histories. Only the primary is sure to have the session's writes.
            call.causal_fallback = true;
            return Ok(call);
        }
        let start = Instant::now();
        let reached =
            DB::wait_for_position(&replica.pool, pool.system_known(), &position, timeout).await;
        let waited = start.elapsed();
        call.causal_wait = Some(waited);
        if let Some(m) = &pool.0.metrics {
            m.causal_wait(waited.as_secs_f64());
        }
        match reached {
            Ok(true) => {
                call.pin = Some(replica.index);
                if let Some(m) = &pool.0.metrics {
                    m.causal(CausalOutcome::Served);
                }
            }
            _ => {
                call.causal_fallback = true;
                if let Some(m) = &pool.0.metrics {
                    m.causal(CausalOutcome::TimedOut);
                    m.fallback(FallbackCause::CausalWaitTimeout);
                }
            }
        }
        Ok(call)
    }
}

impl<'s, DB: Backend> Executor<'s> for &'s Session<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
    where
        's: 'e,
        E: 'q + Execute<'q, DB>,
    {
        match Owned::take(query) {
            Ok(owned) => session_many(self.clone(), &self.pool, Call::default(), owned),
            Err(e) => error_stream(sqlx::Error::Encode(e)),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        's: 'e,
        E: 'q + Execute<'q, DB>,
    {
        match Owned::take(query) {
            Ok(owned) => session_optional(self.clone(), &self.pool, Call::default(), owned),
            Err(e) => Box::pin(std::future::ready(Err(sqlx::Error::Encode(e)))),
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        's: 'e,
    {
        self.pool.prepare_routed(&Call::default(), sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        's: 'e,
    {
        self.pool.describe_on_primary(sql)
    }
}
