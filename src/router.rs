//! The router layer: the pool's shared state ([`RoutingPool`], a thin `Arc` handle over
//! [`Inner`]) and the routing of one statement ([`RoutingPool::route`]), which gathers the
//! inputs of [`crate::plan::plan`] (the classifier's verdict with the learned function
//! volatility, the call and the task scopes, the topology) and applies no rule of its own.
//! Also the primary's guard ([`RoutingPool::on_primary`]) that every layer above uses to reach
//! the primary.
//!
//! Layer: above `topology`, `classify`, `backend`, `volatility` and `telemetry`; below the
//! call engine (`call`), the scopes (`consistency`, `transaction`) and the surface (`pool`,
//! `executor`), which add their methods to [`RoutingPool`] in their own files. Nothing here
//! names a module above it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Executor, Pool};

use crate::backend::{judge, Backend, ErrorClass};
use crate::classify::{Analysis, Classifier};
use crate::error::Error;
use crate::options::{Consistency, PoolOptions};
use crate::plan::{self, View};
use crate::route::UnknownFunctionPolicy;
use crate::route::{self, current_consistency, current_scope, Decision, Route};
use crate::telemetry::Metrics;
use crate::topology::{monitor, LagBound, Server, Topology};
use crate::volatility::FunctionCatalog;

/// One pool over a primary and its read replicas. Implements [`sqlx::Executor`] for
/// `&RoutingPool`, so `sqlx::query(..).fetch_all(&pool)` routes each statement: provable pure
/// reads to a replica, everything else to the primary. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-pool-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use rwsplit::{Reason, RoutingPool, Target};
/// use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
///
/// // The sqlx pools the application already has: here a SQLite writer and a read-only reader
/// // on one file (`rwsplit::sqlite::open` does this in one call). With MySQL or PostgreSQL,
/// // the primary's pool and one pool per replica.
/// let file = SqliteConnectOptions::new().filename(dir.join("app.db")).create_if_missing(true);
/// let primary = SqlitePoolOptions::new().max_connections(1).connect_with(file.clone()).await?;
/// sqlx::query("PRAGMA journal_mode = WAL").execute(&primary).await?;
/// let reader = SqlitePoolOptions::new().connect_with(file.read_only(true)).await?;
/// let pool = RoutingPool::builder(primary).replica("reader", reader).build()?;
///
/// sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)").execute(&pool).await?; // primary
/// sqlx::query("INSERT INTO users (name) VALUES ('ada')").execute(&pool).await?;                // primary
/// let name: String = sqlx::query_scalar("SELECT name FROM users").fetch_one(&pool).await?;   // replica
/// assert_eq!(name, "ada");
/// // Why a statement goes where it goes, without running it:
/// let decision = pool.explain("SELECT name FROM users");
/// assert_eq!((decision.target, decision.reason), (Target::Replica, Reason::PureRead));
/// assert_eq!(pool.explain("SELECT name FROM users FOR UPDATE").target, Target::Primary);
/// # pool.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct RoutingPool<DB: Backend>(pub(crate) Arc<Inner<DB>>);

/// The state every handle of one pool shares.
pub(crate) struct Inner<DB: Backend> {
    pub topology: Arc<Topology<DB>>,
    pub metrics: Option<Metrics>,
    pub classifier: Classifier,
    pub force_primary: AtomicBool,
    pub options: PoolOptions,
    pub functions: FunctionCatalog,
    /// The health monitor's thread (none when `monitor_interval` is zero); its loops stop when
    /// this drops.
    pub monitor: Option<monitor::Monitor>,
}

impl<DB: Backend> Clone for RoutingPool<DB> {
    fn clone(&self) -> Self {
        RoutingPool(self.0.clone())
    }
}

/// The per-call part of routing: a handle's hint and consistency, and what a causal session
/// decided (a replica known to be at the session's position, or a fallback to the primary).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Call {
    pub route: Option<Route>,
    pub consistency: Option<Consistency>,
    /// Index (as in `Replica::index`) of the replica a causal read must use.
    pub pin: Option<usize>,
    /// The causal wait timed out (or the time window is open): read from the primary.
    pub causal_fallback: bool,
    /// The causal read went to the primary without waiting: every eligible replica lagged
    /// more than `causal_wait_timeout`.
    pub causal_lag: bool,
    /// How long the causal wait took.
    pub causal_wait: Option<std::time::Duration>,
    /// A replica refused this statement as a write: run it on the primary.
    pub refused: bool,
    /// A causal session planned this call (its `ReadYourWrites` is served by the session's
    /// position; without a session, such a read goes to the primary).
    pub session: bool,
}

/// Where one call goes: the decision, the pool to run on, and the replica if any.
pub(crate) struct Routed<'a, DB: Backend> {
    pub decision: Decision,
    pub pool: &'a Pool<DB>,
    /// The server the call runs on: the replica, or the writer (the configured primary while
    /// none is known; the call engine then holds the call until one is).
    pub server: &'a Server<DB>,
    pub replica: Option<&'a Server<DB>>,
    pub analysis: Arc<Analysis>,
    pub consistency: Consistency,
    /// When it was routed (the clock read for the replicas' staleness; a call's duration
    /// metric counts from there).
    pub at: Instant,
}

impl<DB: Backend> RoutingPool<DB> {
    /// Runs `work` on the writer's pool: waits for a usable writer first ([`Self::writer`]),
    /// ends with [`Error::PrimaryUnavailable`] when the writer's breaker opens on evidence
    /// while it waits (instead of sqlx's acquire timeout), and a failure that proves the writer
    /// down opens its breaker.
    pub(crate) async fn on_primary<'a, T, F>(
        &'a self,
        work: impl FnOnce(&'a Pool<DB>) -> F,
    ) -> Result<T, sqlx::Error>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let writer = self.writer(None).await?;
        let down = || self.0.topology.breaker_open(writer);
        let mut watch = writer.writes.watch();
        let mut work = std::pin::pin!(work(&writer.pool));
        let done = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(r) = work.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(r));
            }
            if watch.pending(cx) || down() {
                return std::task::Poll::Ready(None);
            }
            std::task::Poll::Pending
        })
        .await;
        match done {
            Some(result) => result.map_err(|e| self.writer_result_of(writer, e)),
            None => Err(self.primary_unavailable()),
        }
    }

    /// The writer, when one is usable now; else waits for one up to `write_hold` (from
    /// `since`, when the call already waited), in the bounded queue of held writes. Fails with
    /// [`Error::SplitBrain`] at once when two servers are confirmed writable, and with
    /// [`Error::PrimaryUnavailable`] when no writer appears in time, the queue is full, or no
    /// monitor runs to find one.
    pub(crate) async fn writer(&self, since: Option<Instant>) -> Result<&Server<DB>, sqlx::Error> {
        let t = &*self.0.topology;
        if let Some(w) = t.usable_writer() {
            return Ok(w);
        }
        let options = &self.0.options;
        if !t.monitored || options.write_hold.is_zero() {
            return Err(self.no_writer());
        }
        let deadline = since.unwrap_or_else(Instant::now) + options.write_hold;
        let _held =
            Held::enter(&t.writer.held, options.max_held_writes).ok_or_else(|| self.no_writer())?;
        loop {
            let changed = t.writer.changed();
            if let Some(w) = t.usable_writer() {
                return Ok(w);
            }
            let now = Instant::now();
            if !t.writer.split().is_empty() {
                return Err(self.no_writer());
            }
            if now >= deadline {
                return Err(self.hold_expired(options.write_hold));
            }
            // A change of writer wakes this at once; a writer whose breaker closes again (it
            // came back) is seen at the next look.
            let _ = tokio::time::timeout((deadline - now).min(HOLD_LOOK), changed).await;
        }
    }

    /// Why a write cannot go anywhere now: a split brain, or no usable writer.
    pub(crate) fn no_writer(&self) -> sqlx::Error {
        let servers = self.0.topology.split_brain();
        if servers.is_empty() {
            self.primary_unavailable()
        } else {
            Error::SplitBrain { servers }.into_sqlx()
        }
    }

    /// The server family, asked of the primary the first time it is needed when no probe has
    /// told yet (MySQL vs MariaDB decides which GTID variables exist).
    pub(crate) async fn system(&self) -> Result<&'static str, sqlx::Error> {
        let known = &self.0.topology.system;
        if let Some(system) = known.get() {
            return Ok(system);
        }
        match DB::detect_system(&self.0.topology.writer_or_primary().pool).await? {
            Some(system) => Ok(known.get_or_init(|| system)),
            None => Ok(DB::SYSTEM),
        }
    }

    /// The `db.system.name` known now (`mariadb` once the primary's version says so); what
    /// `RoutingPool::system_name` returns.
    pub(crate) fn system_known(&self) -> &'static str {
        self.0.topology.system.get().copied().unwrap_or(DB::SYSTEM)
    }

    /// Maps a failure to reach the writer to [`Error::PrimaryUnavailable`] (opening its
    /// breaker); other errors pass through.
    pub(crate) fn writer_result_of(&self, writer: &Server<DB>, e: sqlx::Error) -> sqlx::Error {
        if judge::<DB>(&e) == ErrorClass::ServerDown {
            writer.trip(&e);
            self.primary_unavailable()
        } else {
            e
        }
    }

    /// [`Error::PrimaryUnavailable`] for the situation now: the writer's own last error, or,
    /// with no writer, what each server said last.
    pub(crate) fn primary_unavailable(&self) -> sqlx::Error {
        let t = &self.0.topology;
        let last_error = match t.writer() {
            Some(writer) => format!(
                "the writer `{}` cannot be reached: {}",
                writer.name,
                writer
                    .health
                    .last_error()
                    .as_deref()
                    .unwrap_or("no details")
            ),
            None => format!("no server accepts writes ({})", t.roles()),
        };
        Error::PrimaryUnavailable { last_error }.into_sqlx()
    }

    /// [`Error::PrimaryUnavailable`] for a write that waited `write_hold` for a writer in vain.
    fn hold_expired(&self, waited: Duration) -> sqlx::Error {
        let t = &self.0.topology;
        let last_error = format!(
            "no server became writable within write_hold ({waited:?}): {}",
            t.roles()
        );
        Error::PrimaryUnavailable { last_error }.into_sqlx()
    }

    /// `Executor::prepare_with` of the pool's executors: prepares where the statement would
    /// be routed.
    pub(crate) fn prepare_routed<'e>(
        &'e self,
        call: &Call,
        sql: sqlx::SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> futures_core::future::BoxFuture<'e, Result<DB::Statement, sqlx::Error>> {
        let routed = self.route(sql.as_str(), call, 0);
        DB::pool_executor(routed.pool).prepare_with(sql, parameters)
    }

    /// `Executor::describe` of the pool's executors: on the primary.
    pub(crate) fn describe_on_primary<'e>(
        &'e self,
        sql: sqlx::SqlStr,
    ) -> futures_core::future::BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>> {
        DB::pool_executor(&self.0.topology.writer_or_primary().pool).describe(sql)
    }

    /// Starts a background lookup of unknown functions, and a new snapshot of unsafe relations
    /// when a read names one and the snapshot is missing or old (needs a Tokio runtime; none,
    /// none).
    fn learn_functions_later(&self, sql: &str, analysis: &crate::classify::Analysis) {
        let verdict = &analysis.verdict;
        if let route::Verdict::Primary(route::Reason::Write(
            "CREATE" | "ALTER" | "DROP" | "OTHER",
        )) = verdict
        {
            self.0.functions.schema_changed(sql);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let now = std::time::Instant::now();
        if self.0.functions.claim_relations(analysis, now) {
            let pool = Arc::downgrade(&self.0);
            runtime.spawn(async move {
                let Some(inner) = pool.upgrade() else { return };
                let (names, prefixes) = inner.classifier.side_effect_names();
                let pool = &inner.topology.writer_or_primary().pool;
                match DB::unsafe_objects(pool, &names, &prefixes).await {
                    Ok((relations, shadowed, types)) => inner
                        .functions
                        .learn_relations(relations, shadowed, types, now),
                    Err(_) => inner.functions.relations_failed(now),
                }
            });
        }
        let missing = self.0.functions.claim_missing(verdict, now);
        if missing.is_empty() {
            return;
        }
        let pool = Arc::downgrade(&self.0);
        runtime.spawn(async move {
            let Some(inner) = pool.upgrade() else { return };
            let pool = &inner.topology.writer_or_primary().pool;
            match DB::function_volatility(pool, &missing).await {
                Ok(answers) => inner.functions.learn(&missing, answers),
                Err(_) => inner.functions.lookup_failed(&missing, now),
            }
        });
    }

    /// Routes one statement: decision plus the pool to run it on. `tried` holds the replicas
    /// the call already tried (bits by index), which are skipped.
    #[inline]
    pub(crate) fn route(&self, sql: &str, call: &Call, tried: u64) -> Routed<'_, DB> {
        let inner = &*self.0;
        let t = &*inner.topology;
        let analysis = inner.classifier.analyze(sql);
        let consistency = call
            .consistency
            .or_else(current_consistency)
            .unwrap_or(inner.options.consistency);
        let learned = if inner.options.function_volatility {
            self.learn_functions_later(sql, &analysis);
            inner.functions.resolve(&analysis)
        } else {
            None
        };
        // Read once, after the classification (which may parse): the replicas' staleness is
        // judged at this instant, and the call's duration metric counts from it.
        let now = Instant::now();
        let statement = plan::Statement {
            verdict: learned.as_ref().unwrap_or(&analysis.verdict),
            comment_hint: analysis.hint,
            refused_before: analysis.was_refused(),
        };
        let ask = plan::Ask {
            call_hint: call.route,
            scope_hint: current_scope(),
            consistency,
            session: call.session,
            refused: call.refused,
            causal_fallback: call.causal_fallback,
            pin: call.pin,
        };
        let plan::Plan { decision, replica } =
            plan::plan(&statement, &ask, &Now { inner, tried, now });
        let server = replica.unwrap_or_else(|| t.writer_or_primary());
        Routed {
            decision,
            pool: &server.pool,
            server,
            replica,
            analysis,
            consistency,
            at: now,
        }
    }
}

/// The pool as [`plan::plan`] sees it for one attempt of a call (`tried`: the replicas the call
/// already tried, by bit).
struct Now<'a, DB: Backend> {
    inner: &'a Inner<DB>,
    tried: u64,
    now: Instant,
}

impl<'a, DB: Backend> View for Now<'a, DB> {
    type Replica = &'a Server<DB>;

    fn has_replicas(&self) -> bool {
        !self.inner.topology.replicas().is_empty()
    }

    fn unknown_functions(&self) -> UnknownFunctionPolicy {
        self.inner.classifier.unknown_functions()
    }

    fn force_primary(&self) -> bool {
        self.inner.force_primary.load(Ordering::Relaxed)
    }

    fn pinned(&self, index: usize) -> Option<&'a Server<DB>> {
        let servers = &self.inner.topology.servers;
        let writer = self.inner.topology.writer.current();
        servers
            .get(index)
            .filter(|r| index != writer && !r.tried_in(self.tried))
    }

    fn pick(&self, bound: LagBound) -> Option<&'a Server<DB>> {
        self.inner.topology.pick(bound, self.tried, self.now)
    }
}

/// How often a held write looks for a writer that came back without a change of writer (its
/// breaker closing again).
const HOLD_LOOK: Duration = Duration::from_millis(50);

/// A write held for a writer, counted in the pool's queue until it drops.
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    /// Enters the queue, unless `max` writes are held already.
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        let before = count.fetch_add(1, Ordering::AcqRel);
        let held = Held(count);
        (before < max).then_some(held)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
