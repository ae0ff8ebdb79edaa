//! The surface layer: [`RoutingPoolBuilder`], and the public methods of [`RoutingPool`] (its
//! handles, transactions, connections, status and the runtime switches operators use during
//! incidents) as short bodies over the router layer's shared state (`crate::router`). The
//! top of the crate: nothing below names this module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::Pool;

use crate::backend::{Backend, ErrorClass};
use crate::classify::{Classifier, ClassifierOptions};
use crate::consistency::ambient;
use crate::error::Error;
use crate::executor::Hinted;
use crate::options::{Consistency, PoolOptions};
use crate::position::cluster_id;
use crate::route::{Decision, Route};
use crate::router::{Call, Inner, RoutingPool};
use crate::status::{Role, ServerStatus, Status};
use crate::telemetry::Metrics;
use crate::topology::{monitor, Balance, LagBound, Server, Topology};
use crate::transaction::Transaction;
use crate::volatility::FunctionCatalog;

impl<DB: Backend> std::fmt::Debug for RoutingPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingPool")
            .field("backend", &DB::NAME)
            .field("status", &self.status())
            .field("balance", &self.0.topology.balance)
            .field("classifier", &self.0.classifier)
            .finish()
    }
}

/// Builds a [`RoutingPool`] from the application's existing sqlx pools.
pub struct RoutingPoolBuilder<DB: Backend> {
    primary: Pool<DB>,
    replicas: Vec<(String, Pool<DB>, u32)>,
    balance: Balance,
    classifier: ClassifierOptions,
    options: PoolOptions,
    #[cfg(feature = "metrics")]
    metrics: Option<(prometheus::Registry, Option<String>)>,
}

impl<DB: Backend> std::fmt::Debug for RoutingPoolBuilder<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingPoolBuilder")
            .field(
                "replicas",
                &self.replicas.iter().map(|r| &r.0).collect::<Vec<_>>(),
            )
            .field("balance", &self.balance)
            .field("classifier", &self.classifier)
            .field("options", &self.options)
            .finish()
    }
}

impl<DB: Backend> RoutingPoolBuilder<DB> {
    /// Adds a replica with weight 1.
    pub fn replica(self, name: impl Into<String>, pool: Pool<DB>) -> Self {
        self.weighted_replica(name, pool, 1)
    }

    /// Adds a replica with a weight, used by [`Balance::Weighted`] and as the tie-breaker of
    /// [`Balance::LeastOutstanding`].
    pub fn weighted_replica(
        mut self,
        name: impl Into<String>,
        pool: Pool<DB>,
        weight: u32,
    ) -> Self {
        self.replicas.push((name.into(), pool, weight));
        self
    }

    /// The balancing policy. Default: [`Balance::LeastOutstanding`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Adjusts the classifier's options (side-effect and pure function lists, unknown-function
    /// policy, cache size, limits), starting from the defaults for the backend's dialect, which
    /// the backend fixes:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let primary = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let pool = rwsplit::RoutingPool::builder(primary)
    ///     .classifier(|c| c.side_effect_function("audit_log"))
    ///     .build()?;
    /// assert_eq!(pool.explain("SELECT audit_log(1)").target, rwsplit::Target::Primary);
    /// # Ok(())
    /// # }
    /// ```
    pub fn classifier(
        mut self,
        adjust: impl FnOnce(ClassifierOptions) -> ClassifierOptions,
    ) -> Self {
        self.classifier = adjust(self.classifier);
        self
    }

    /// Registers the pool's Prometheus metrics on `registry`. `pool_label`, when given, is
    /// added to every metric as the constant label `pool`, so several pools can share one
    /// registry.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, registry: &prometheus::Registry, pool_label: Option<&str>) -> Self {
        self.metrics = Some((registry.clone(), pool_label.map(str::to_string)));
        self
    }

    /// Health, lag, timeout, fallback and consistency options.
    pub fn options(mut self, options: PoolOptions) -> Self {
        self.options = options;
        self
    }

    /// Validates the configuration and builds the pool. With the monitor on (the default),
    /// this starts the monitor's threads (one per server, each with its own small Tokio
    /// runtime and its own connection), so it works inside or outside a runtime.
    pub fn build(self) -> Result<RoutingPool<DB>, Error> {
        self.options.validate()?;
        if self.classifier.dialect() != DB::DIALECT {
            return Err(Error::InvalidOption {
                option: "classifier",
                why: "the classifier's dialect differs from the backend's",
            });
        }
        let monitored = !self.options.monitor_interval.is_zero();
        let primary_info = DB::server_info(&self.primary);
        let mut servers = Vec::with_capacity(self.replicas.len() + 1);
        servers.push(Server::new(
            "primary".into(),
            self.primary,
            1,
            0,
            primary_info,
            self.options.replica_timeout,
        ));
        for (name, pool, weight) in self.replicas {
            if name.is_empty() || name.len() > 64 || name == "primary" {
                return Err(Error::InvalidReplicaName(name));
            }
            if weight == 0 {
                return Err(Error::ZeroWeight(name));
            }
            if servers.iter().any(|r: &Server<DB>| *r.name == *name) {
                return Err(Error::DuplicateReplica(name));
            }
            let info = DB::server_info(&pool);
            let index = servers.len();
            servers.push(Server::new(
                name.into(),
                pool,
                weight,
                index,
                info,
                self.options.replica_timeout,
            ));
        }
        let topology = Arc::new(Topology::new(
            servers,
            self.balance,
            self.options.breaker_cooldown,
            monitored,
        ));
        let classifier = self.classifier.build();
        #[cfg(not(feature = "metrics"))]
        let metrics: Option<Metrics> = None;
        #[cfg(feature = "metrics")]
        let metrics = match &self.metrics {
            None => None,
            Some((registry, label)) => {
                let mut servers = vec![("primary", "")];
                servers.extend(topology.replicas().iter().map(|r| ("replica", &*r.name)));
                Some(Metrics::register(
                    registry,
                    label.as_deref(),
                    DB::SYSTEM,
                    &servers,
                    Arc::downgrade(&topology),
                    classifier.clone(),
                )?)
            }
        };
        let monitor = if monitored {
            Some(monitor::spawn(&topology, &self.options).map_err(Error::Monitor)?)
        } else {
            None
        };
        // Never from an address: a token must survive the primary moving.
        let cluster = match &self.options.cluster_name {
            Some(name) => Some(cluster_id(&[name])),
            None => DB::static_cluster_identity(&topology.primary().info)
                .map(|identity| cluster_id(&[DB::NAME, &identity])),
        };
        if let Some(cluster) = cluster {
            let _ = topology.cluster.set(cluster);
        }
        Ok(RoutingPool(Arc::new(Inner {
            topology,
            metrics,
            classifier,
            force_primary: AtomicBool::new(false),
            options: self.options,
            functions: FunctionCatalog::default(),
            monitor,
        })))
    }
}

impl<DB: Backend> RoutingPool<DB> {
    /// Starts building a pool around the primary's sqlx pool.
    pub fn builder(primary: Pool<DB>) -> RoutingPoolBuilder<DB> {
        RoutingPoolBuilder {
            primary,
            replicas: Vec::new(),
            balance: Balance::default(),
            classifier: ClassifierOptions::new(DB::DIALECT),
            options: PoolOptions::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// An executor that sends every statement to the primary (a per-call hint).
    pub fn primary(&self) -> Hinted<'_, DB> {
        Hinted::new(self, Some(Route::Primary), None)
    }

    /// An executor that sends reads to a replica even when the classifier would not (reads
    /// calling unknown functions); writes still go to the primary.
    pub fn replica(&self) -> Hinted<'_, DB> {
        Hinted::new(self, Some(Route::Replica), None)
    }

    /// An executor whose reads ask for `consistency` (beats a scope and the pool default).
    pub fn with_consistency(&self, consistency: Consistency) -> Hinted<'_, DB> {
        Hinted::new(self, None, Some(consistency))
    }

    /// An executor whose reads accept a replica at most `max` behind (bounded staleness).
    pub fn max_staleness(&self, max: std::time::Duration) -> Hinted<'_, DB> {
        self.with_consistency(Consistency::BoundedStaleness(max))
    }

    /// Begins a transaction on the primary: sqlx's own [`sqlx::Transaction`], so every sqlx
    /// idiom works unchanged (`&mut *tx` is `&mut DB::Connection`, `&mut tx` is
    /// [`sqlx::Acquire`] for savepoints with `tx.begin()`, functions typed
    /// `sqlx::Transaction<'_, DB>` take it). Statements on it are not routed: they run on its
    /// one primary connection. They show in telemetry as sqlx's own per-statement events
    /// (target `sqlx::query`: statement, rows, elapsed) under the caller's span; for one
    /// rwsplit span per statement under a transaction span, use [`RoutingPool::begin_traced`].
    /// Refused at once while the primary's breaker is open, and ended with
    /// [`Error::PrimaryUnavailable`] if it opens while waiting for a connection.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-tx-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = rwsplit::sqlite::open(dir.join("tx.db"), 1).await?.build()?;
    /// sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)").execute(&pool).await?;
    ///
    /// async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, id: i64) -> sqlx::Result<()> {
    ///     sqlx::query("INSERT INTO t (id) VALUES (?)").bind(id).execute(&mut **tx).await?;
    ///     Ok(())
    /// }
    ///
    /// let mut tx = pool.begin().await?;
    /// insert(&mut tx, 1).await?;
    /// let mut savepoint = sqlx::Acquire::begin(&mut tx).await?;
    /// insert(&mut savepoint, 2).await?;
    /// savepoint.rollback().await?;
    /// tx.commit().await?;
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await?;
    /// assert_eq!(n, 1);
    /// # pool.close().await;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
        crate::consistency::begin(self).await
    }

    /// Begins a transaction on the primary whose statements are rwsplit spans under one
    /// transaction span (`&mut *tx` is rwsplit's executor, [`crate::InTransaction`]).
    /// Converts to sqlx's type with [`crate::Transaction::into_sqlx`].
    pub async fn begin_traced(&self) -> Result<Transaction<DB>, sqlx::Error> {
        let tx = self.begin().await?;
        Ok(Transaction::new(tx, self.clone()))
    }

    /// A connection to the primary from its pool, as [`sqlx::Pool::acquire`] gives. Statements
    /// on it are not routed: it is the primary's connection (for migrations, `LOCK TABLES`,
    /// session settings, or any code generic over [`sqlx::Acquire`]). Refused at once while
    /// the primary's breaker is open.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
        if let Some(session) = ambient(self) {
            // Whatever runs on the connection may write: the session's reads wait for it.
            session.opened();
        }
        self.on_primary(|writer| writer.acquire()).await
    }

    /// Does `error` say that the servers changed under the call, rather than that the statement
    /// was wrong? True when the writer went down or was demoted by a switchover (a transaction
    /// cut by one ends with such an error: the server's read-only refusal, its shutdown, or the
    /// lost connection), a connection was refused or lost, no writer appeared within
    /// `write_hold` ([`Error::PrimaryUnavailable`]), or two servers accept writes
    /// ([`Error::SplitBrain`]). Begin the transaction again (or resend an idempotent write):
    /// rwsplit sends it to the writer of the moment. A write that ended with such an error
    /// outside a transaction may have been applied if the server went away after receiving it.
    /// sqlx's own `PoolTimedOut` (a saturated pool) is not included, as with plain sqlx.
    pub fn is_retriable(&self, error: &sqlx::Error) -> bool {
        matches!(
            crate::backend::judge::<DB>(error),
            ErrorClass::ServerDown | ErrorClass::ConnectionLost | ErrorClass::ReadOnly
        )
    }

    /// The decision the pool would make for `sql` now, in the current task scope.
    pub fn explain(&self, sql: &str) -> Decision {
        let call = Call {
            session: ambient(self).is_some(),
            ..Call::default()
        };
        self.route(sql, &call, 0).decision
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.0.classifier
    }

    /// The options the pool was built with.
    pub fn options(&self) -> &PoolOptions {
        &self.0.options
    }

    /// The `db.system.name` of the servers (`mariadb` once the primary's version says so).
    pub fn system_name(&self) -> &'static str {
        self.system_known()
    }

    /// The configured primary's sqlx pool (after a switchover it may no longer be the
    /// writer: see [`Status::writer`]).
    pub fn primary_pool(&self) -> &Pool<DB> {
        &self.0.topology.primary().pool
    }

    /// A replica's sqlx pool, by name.
    pub fn replica_pool(&self, name: &str) -> Option<&Pool<DB>> {
        self.0.topology.get(name).map(|r| &r.pool)
    }

    /// The replica names, in configuration order.
    pub fn replica_names(&self) -> impl Iterator<Item = &str> {
        self.0.topology.replicas().iter().map(|r| &*r.name)
    }

    /// The degrade switch: while on, every read goes to the primary.
    pub fn force_primary(&self, on: bool) {
        self.0.force_primary.store(on, Ordering::Relaxed);
    }

    /// Takes a replica out of rotation (`false`) or puts it back (`true`).
    pub fn set_in_rotation(&self, name: &str, in_rotation: bool) -> Result<(), Error> {
        let replica = self
            .0
            .topology
            .get(name)
            .ok_or_else(|| Error::UnknownReplica(name.to_string()))?;
        replica.in_rotation.store(in_rotation, Ordering::Relaxed);
        Ok(())
    }

    /// A snapshot of every server: live role, health, lag, in-flight requests, breaker, last
    /// error, and which server takes writes.
    pub fn status(&self) -> Status {
        let t = &*self.0.topology;
        let writer = t.writer.current();
        let server = |s: &Server<DB>| {
            let is_writer = s.index == writer;
            let health = &s.health;
            ServerStatus {
                name: s.name.to_string(),
                role: if is_writer {
                    Role::Primary
                } else {
                    Role::Replica
                },
                healthy: health.probe_ok(),
                eligible: if is_writer {
                    t.writer_ready()
                } else {
                    t.eligible(s, LagBound::Pool)
                },
                in_rotation: s.in_rotation.load(Ordering::Relaxed),
                lag: (!is_writer).then(|| health.lag()).flatten(),
                in_flight: s.in_flight.load(Ordering::Relaxed),
                breaker: health.breaker(t.cooldown, t.monitored),
                last_error: health.last_error(),
                probes: health.probes(),
                connections: s.pool.size(),
                idle_connections: s.pool.num_idle(),
            }
        };
        let monitor_tasks = self.0.monitor.as_ref().map_or(0, monitor::Monitor::running);
        Status {
            primary: server(t.primary()),
            replicas: t.replicas().iter().map(server).collect(),
            writer: t.writer().map(|w| w.name.to_string()),
            split_brain: t.split_brain(),
            held_writes: t.writer.held.load(Ordering::Relaxed),
            writer_changes: t.writer.changes.load(Ordering::Relaxed),
            force_primary: self.0.force_primary.load(Ordering::Relaxed),
            monitor_tasks,
        }
    }

    /// Closes every pool and stops the monitor. Like sqlx's `Pool::close`, it returns once the
    /// application's pools' connections are closed; it also waits for the monitor's loops to
    /// finish the probe each is in and close their own connections, up to twice
    /// `probe_timeout` (a loop stuck on a server that does not answer is left to end alone).
    pub async fn close(&self) {
        if let Some(monitor) = &self.0.monitor {
            monitor.stop();
        }
        for server in &self.0.topology.servers {
            server.pool.close().await;
        }
        if let Some(monitor) = &self.0.monitor {
            if tokio::runtime::Handle::try_current().is_ok() {
                let limit = self
                    .0
                    .options
                    .probe_timeout
                    .saturating_mul(2)
                    .saturating_add(std::time::Duration::from_millis(100));
                monitor.ended(limit).await;
            }
        }
    }

    /// Looks up, now, the volatility of the unknown functions `sql` calls (with
    /// `PoolOptions::function_volatility`), so that its next routing uses the answer. Useful to
    /// warm the pool with hot statements at start-up.
    pub async fn learn_functions(&self, sql: &str) -> Result<(), Error> {
        let analysis = self.0.classifier.analyze(sql);
        // Asks even when a background lookup is under way: the caller wants the answer now.
        let missing = self.0.functions.unknown(&analysis.verdict);
        if missing.is_empty() {
            return Ok(());
        }
        let writer = &self.0.topology.writer_or_primary().pool;
        match DB::function_volatility(writer, &missing).await {
            Ok(answers) => {
                self.0.functions.learn(&missing, answers);
                Ok(())
            }
            Err(e) => {
                self.0.functions.release(&missing);
                Err(e.into())
            }
        }
    }
}

/// `&RoutingPool` is [`sqlx::Acquire`] like `&sqlx::Pool`: a primary connection, or a
/// transaction on the primary, so `sqlx::migrate!().run(&pool)` and code generic over
/// `Acquire` take a routing pool unchanged.
impl<'a, DB: Backend> sqlx::Acquire<'a> for &'a RoutingPool<DB> {
    type Database = DB;
    type Connection = sqlx::pool::PoolConnection<DB>;

    fn acquire(self) -> futures_core::future::BoxFuture<'a, Result<Self::Connection, sqlx::Error>> {
        Box::pin(RoutingPool::acquire(self))
    }

    fn begin(
        self,
    ) -> futures_core::future::BoxFuture<'a, Result<sqlx::Transaction<'a, DB>, sqlx::Error>> {
        Box::pin(async move { RoutingPool::begin(self).await })
    }
}
