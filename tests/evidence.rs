//! Never worse than plain sqlx (issue #14), against real servers: errors are judged by what
//! they prove about the server, so a bad statement, a saturated pool or a blocked runtime opens
//! no breaker; a dead primary ends writes with the typed error at once; read-your-writes is
//! exact from the first call with the monitor off; signed tokens refuse forgeries.
//!
//! Plain functions over a per-backend [`Flavor`] (the SQL that differs); each test heals what
//! it broke, and tests of one backend run one at a time (they share its servers).

mod common;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod cluster {
    use std::time::{Duration, Instant};

    use rwsplit::{Backend, BreakerState, Error, PoolOptions, RoutingPool};
    use sqlx::pool::PoolOptions as SqlxPoolOptions;
    use sqlx::{AssertSqlSafe, Executor};

    use super::common::faults::{Kind, Server};
    use super::common::{eventually, server_url, unique_table};

    /// What differs between the backends.
    pub struct Flavor {
        pub kind: Kind,
        pub primary: &'static str,
        pub replica: &'static str,
        pub replica2: &'static str,
    }

    pub fn sqlx_pool<DB: Backend>(url: &str, size: u32, acquire: Duration) -> sqlx::Pool<DB> {
        SqlxPoolOptions::<DB>::new()
            .max_connections(size)
            .acquire_timeout(acquire)
            .connect_lazy(url)
            .expect("pool options")
    }

    /// Pool options with a fast monitor, so that evidence is acted on within the test (a
    /// refused connection is evidence at once; silence needs three probe timeouts).
    pub fn options() -> PoolOptions {
        PoolOptions::new()
            .monitor_interval(Duration::from_millis(100))
            .probe_timeout(Duration::from_secs(2))
            .breaker_cooldown(Duration::from_millis(200))
    }

    /// A routing pool over the primary and replica 1 (or the primary alone), healthy.
    pub async fn pool<DB: Backend>(
        f: &Flavor,
        options: PoolOptions,
        replica: bool,
        size: u32,
        acquire: Duration,
    ) -> Option<RoutingPool<DB>> {
        let primary = server_url(f.primary)?;
        let mut b = RoutingPool::builder(sqlx_pool(&primary, size, acquire)).options(options);
        if replica {
            b = b.replica(
                "replica1",
                sqlx_pool(&server_url(f.replica)?, size, acquire),
            );
        }
        let pool = b.build().expect("build");
        let monitored = !pool.options().get_monitor_interval().is_zero();
        let ready = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.primary.eligible
                && s.replicas
                    .iter()
                    .all(|r| r.eligible && (!monitored || r.probes > 0))
        })
        .await;
        assert!(ready, "cluster healthy at start: {:?}", pool.status());
        Some(pool)
    }

    /// A table with one row `(1, 0)`, on every replica of `pool`.
    pub async fn table<DB: Backend>(pool: &RoutingPool<DB>) -> String {
        let t = unique_table("ev");
        let ddl = format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
        pool.execute(AssertSqlSafe(ddl)).await.expect("create");
        let insert = format!("INSERT INTO {t} (id, v) VALUES (1, 0)");
        pool.execute(AssertSqlSafe(insert)).await.expect("insert");
        let there = format!("SELECT 1 FROM {t} WHERE id = 1");
        for name in pool.replica_names().map(str::to_string).collect::<Vec<_>>() {
            let replica = pool.replica_pool(&name).unwrap().clone();
            let ok = eventually(Duration::from_secs(20), || async {
                DB::pool_executor(&replica)
                    .fetch_optional(AssertSqlSafe(there.clone()))
                    .await
                    .is_ok_and(|row| row.is_some())
            })
            .await;
            assert!(ok, "{t} reached {name}");
        }
        t
    }

    /// `tasks` tasks, each running `each` statements (reads and writes alternating) on `t`:
    /// the errors.
    pub async fn load<DB: Backend>(
        pool: &RoutingPool<DB>,
        t: &str,
        tasks: usize,
        each: usize,
    ) -> Vec<String> {
        let mut handles = Vec::new();
        for task in 0..tasks {
            let pool = pool.clone();
            let write = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
            let read = format!("SELECT v FROM {t} WHERE id = 1");
            handles.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..each {
                    let r = if (task + i) % 2 == 0 {
                        pool.execute(AssertSqlSafe(write.clone())).await.map(drop)
                    } else {
                        pool.fetch_optional(AssertSqlSafe(read.clone()))
                            .await
                            .map(drop)
                    };
                    if let Err(e) = r {
                        errors.push(e.to_string());
                    }
                }
                errors
            }));
        }
        let mut errors = Vec::new();
        for h in handles {
            errors.extend(h.await.unwrap());
        }
        errors
    }

    /// Every breaker closed and every server eligible.
    pub fn all_closed<DB: Backend>(pool: &RoutingPool<DB>) -> Result<(), String> {
        let s = pool.status();
        let servers = std::iter::once(&s.primary).chain(&s.replicas);
        for server in servers {
            if server.breaker != BreakerState::Closed || !server.eligible {
                return Err(format!("{} is out: {:?}", server.name, s));
            }
        }
        Ok(())
    }

    /// A statement that fails at the statement level, then a 16-task load for the next
    /// second: no other task fails, no breaker opens.
    pub async fn isolated<DB, F>(f: &Flavor, name: &str, bad: F)
    where
        DB: Backend,
        F: AsyncFnOnce(&RoutingPool<DB>, &str) -> Result<(), sqlx::Error>,
    {
        let Some(pool) = pool::<DB>(f, options(), true, 8, Duration::from_secs(5)).await else {
            return;
        };
        let t = table(&pool).await;
        let failed = bad(&pool, &t).await;
        assert!(failed.is_err(), "{name}: the bad statement fails");
        let start = Instant::now();
        let mut errors = Vec::new();
        while start.elapsed() < Duration::from_secs(1) {
            errors.extend(load(&pool, &t, 16, 4).await);
        }
        assert!(
            errors.is_empty(),
            "{name}: {} statements of other tasks failed: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        all_closed(&pool).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    /// After a statement-level failure, rwsplit holds no more connections than plain sqlx:
    /// the statement ran once, on one server, through that server's own sqlx pool (it is not
    /// retried elsewhere, so a connection the statement breaks is broken on one server only),
    /// and no connection of another pool is in use. Whether `close()` then returns is
    /// reported for both (`server`: the pool plain sqlx runs the statement on, the one
    /// rwsplit routes it to). sqlx's own `close()` after a bind-count mismatch on MySQL or a
    /// `COPY FROM STDIN` through the executor on PostgreSQL hangs or not depending on timing
    /// (the same statement on the routing pool's inner sqlx pool, used directly, shows it),
    /// so it is reported, not asserted.
    pub async fn closes_like_sqlx<DB, P, R>(
        f: &Flavor,
        name: &str,
        server: &str,
        plain: P,
        routed: R,
    ) where
        DB: Backend,
        P: AsyncFnOnce(&sqlx::Pool<DB>),
        R: AsyncFnOnce(&RoutingPool<DB>),
    {
        let Some(url) = server_url(server) else {
            return;
        };
        let bound = Duration::from_secs(10);
        let sqlx_pool = sqlx_pool::<DB>(&url, 4, Duration::from_secs(5));
        plain(&sqlx_pool).await;
        let plain_busy = sqlx_pool.size() as usize - sqlx_pool.num_idle();
        let sqlx_closes = tokio::time::timeout(bound, sqlx_pool.close()).await.is_ok();
        let Some(pool) = pool::<DB>(f, options(), true, 4, Duration::from_secs(5)).await else {
            return;
        };
        routed(&pool).await;
        let s = pool.status();
        let busy: Vec<usize> = std::iter::once(&s.primary)
            .chain(&s.replicas)
            .map(|server| server.connections as usize - server.idle_connections)
            .collect();
        assert!(
            busy.iter().filter(|b| **b > 0).count() <= 1 && busy.iter().sum::<usize>() <= 1,
            "{name}: connections in use per server after the failure: {busy:?}"
        );
        all_closed(&pool).unwrap_or_else(|e| panic!("{name}: {e}"));
        let closes = tokio::time::timeout(bound, pool.close()).await.is_ok();
        eprintln!(
            "{name}: plain sqlx: {plain_busy} in use, close returns: {sqlx_closes}; \
             rwsplit: {busy:?} in use, close returns: {closes}"
        );
    }

    /// A primary pool of 2 connections under 50 writers: where sqlx's pool times out, the
    /// caller gets sqlx's own `PoolTimedOut`, never a breaker; afterwards writes work at once.
    pub async fn saturated_primary<DB: Backend>(f: &Flavor) {
        let acquire = Duration::from_millis(300);
        // The table is made through a pool with a patient acquire: on a loaded machine, opening
        // the first connection (a PostgreSQL fork and SCRAM) can take longer than 300 ms.
        let Some(setup) = pool::<DB>(f, options(), true, 2, Duration::from_secs(10)).await else {
            return;
        };
        let t = table(&setup).await;
        setup.close().await;
        let Some(pool) = pool::<DB>(f, options(), true, 2, acquire).await else {
            return;
        };
        let mut handles = Vec::new();
        for _ in 0..50 {
            let pool = pool.clone();
            let write = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
            handles.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..10 {
                    if let Err(e) = pool.execute(AssertSqlSafe(write.clone())).await {
                        errors.push(e);
                    }
                }
                errors
            }));
        }
        let mut errors = Vec::new();
        for h in handles {
            errors.extend(h.await.unwrap());
        }
        for e in &errors {
            assert!(
                matches!(e, sqlx::Error::PoolTimedOut),
                "only sqlx's own timeout, got {e}"
            );
        }
        eprintln!(
            "saturated primary: {} of 500 writes timed out",
            errors.len()
        );
        all_closed(&pool).unwrap();
        pool.execute(AssertSqlSafe(format!("UPDATE {t} SET v = 0 WHERE id = 1")))
            .await
            .expect("a write right after the storm");
    }

    /// The same storm through plain sqlx pools and through rwsplit, side by side: rwsplit's
    /// failures are sqlx's own `PoolTimedOut`, never `PrimaryUnavailable`.
    pub async fn storm_side_by_side<DB: Backend>(f: &Flavor) {
        let acquire = Duration::from_secs(2);
        let Some(pool) = pool::<DB>(f, options(), true, 10, acquire).await else {
            return;
        };
        let t = table(&pool).await;
        let routed = load(&pool, &t, 500, 10).await;
        let plain_primary = sqlx_pool::<DB>(&server_url(f.primary).unwrap(), 10, acquire);
        let mut handles = Vec::new();
        for task in 0..500usize {
            let p = plain_primary.clone();
            let write = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
            let read = format!("SELECT v FROM {t} WHERE id = 1");
            handles.push(tokio::spawn(async move {
                let mut failed = 0;
                for i in 0..10 {
                    let sql = if (task + i) % 2 == 0 { &write } else { &read };
                    let r = DB::pool_executor(&p)
                        .execute(AssertSqlSafe(sql.clone()))
                        .await;
                    if r.is_err() {
                        failed += 1;
                    }
                }
                failed
            }));
        }
        let mut plain = 0;
        for h in handles {
            plain += h.await.unwrap();
        }
        eprintln!(
            "storm of 500 x 10: rwsplit {} failed, plain sqlx (primary only) {plain} failed",
            routed.len()
        );
        for e in &routed {
            assert!(
                e.contains("pool timed out"),
                "only sqlx's own PoolTimedOut in a storm, got {e}"
            );
        }
        all_closed(&pool).unwrap();
    }

    /// A current-thread runtime blocked for 5 s by CPU-bound work (password hashing in the
    /// application that found this): every statement afterwards succeeds; no breaker opened.
    pub fn blocked_runtime<DB: Backend>(f: &Flavor, replica: bool) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Some(pool) = pool::<DB>(f, options(), replica, 4, Duration::from_secs(5)).await
            else {
                return;
            };
            let t = table(&pool).await;
            // Blocks the only worker thread, as a synchronous hash would.
            std::thread::sleep(Duration::from_secs(5));
            for i in 0..20 {
                let write = format!("UPDATE {t} SET v = {i} WHERE id = 1");
                pool.execute(AssertSqlSafe(write))
                    .await
                    .unwrap_or_else(|e| panic!("write {i} after the block: {e}"));
                pool.fetch_optional(AssertSqlSafe(format!("SELECT v FROM {t}")))
                    .await
                    .unwrap_or_else(|e| panic!("read {i} after the block: {e}"));
            }
            all_closed(&pool).unwrap();
        });
    }

    /// SIGKILL of the primary under a write load: every write in flight or started after it
    /// fails within 2 s with `PrimaryUnavailable`; reads go on; the primary comes back.
    pub async fn killed_primary<DB: Backend>(f: &Flavor) {
        // sqlx would wait 30 s for a connection to a dead server. Without `write_hold`, writes
        // fail as soon as the primary is known dead (with it, they would first wait that long
        // for a new writer: tests/switchover.rs).
        let options = options().write_hold(Duration::ZERO);
        let Some(pool) = pool::<DB>(f, options, true, 4, Duration::from_secs(30)).await else {
            return;
        };
        // Restarts the primary when the test ends, also when it fails: the next tests need it.
        struct Restart(Kind);
        impl Drop for Restart {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.restart(Server::Primary);
                }
            }
        }
        let _restart = Restart(f.kind);
        let t = table(&pool).await;
        let killed = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
        let mut writers = Vec::new();
        for _ in 0..16 {
            let pool = pool.clone();
            let killed = killed.clone();
            let write = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
            writers.push(tokio::spawn(async move {
                let mut failures = Vec::new();
                for _ in 0..400 {
                    let start = Instant::now();
                    match pool.execute(AssertSqlSafe(write.clone())).await {
                        Ok(_) => {}
                        Err(e) => {
                            // Measured from the kill (or the call's start, if later).
                            let from = killed.get().map_or(start, |k| (*k).max(start));
                            failures.push((e, from.elapsed()));
                            if failures.len() >= 3 {
                                break;
                            }
                        }
                    }
                    if killed.get().is_none() {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                failures
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        killed.set(Instant::now()).unwrap();
        f.kind.signal(Server::Primary, "KILL");
        let mut failures = Vec::new();
        for w in writers {
            failures.extend(w.await.unwrap());
        }
        assert!(!failures.is_empty(), "writes fail once the primary is dead");
        for (e, after) in &failures {
            assert!(
                matches!(Error::from_sqlx(e), Some(Error::PrimaryUnavailable { .. })),
                "the typed error, got {e}"
            );
            assert!(
                *after < Duration::from_secs(2),
                "failed after {after:?}: {e}"
            );
        }
        let read = pool
            .fetch_optional(AssertSqlSafe(format!("SELECT v FROM {t} WHERE id = 1")))
            .await
            .map(|row| row.is_some());
        assert!(read.is_ok(), "reads go on: {read:?}");
        f.kind.restart(Server::Primary);
        let back = eventually(Duration::from_secs(30), || async {
            pool.status().primary.eligible
        })
        .await;
        assert!(back, "{:?}", pool.status());
        f.kind.heal(2).await;
    }

    /// Read-your-writes with the monitor off, right after `build()`: `cycles` write-then-read
    /// cycles in one session, no error, no stale read.
    pub async fn causal_without_monitor<DB: Backend>(f: &Flavor, cycles: i64) {
        let opts = options().monitor_interval(Duration::ZERO);
        let Some(pool) = pool::<DB>(f, opts, true, 4, Duration::from_secs(5)).await else {
            return;
        };
        let t = table(&pool).await;
        let session = pool.session();
        let mut stale = 0;
        for i in 1..=cycles {
            (&session)
                .execute(AssertSqlSafe(format!(
                    "UPDATE {t} SET v = {i} WHERE id = 1"
                )))
                .await
                .unwrap_or_else(|e| panic!("write {i}: {e}"));
            let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= {i}");
            let row = (&session)
                .fetch_optional(AssertSqlSafe(fresh))
                .await
                .unwrap_or_else(|e| panic!("read {i}: {e}"));
            if row.is_none() {
                stale += 1;
            }
        }
        assert_eq!(stale, 0, "stale reads in a session with the monitor off");
    }

    /// A view over a function that writes: the classifier sees a pure read, the replica
    /// refuses it as a write. The first call is retried on the primary and succeeds (the
    /// refused attempt had no effect), the statement is learned, and later calls go to the
    /// primary directly. No error reaches the caller.
    pub async fn refused_by_replica<DB: Backend>(
        f: &Flavor,
        setup: &[&str],
        view: &str,
        log: &str,
    ) {
        let registry = prometheus::Registry::new();
        let Some(primary) = server_url(f.primary) else {
            return;
        };
        let Some(replica) = server_url(f.replica) else {
            return;
        };
        f.kind.admin(Server::Primary, setup).await;
        let pool = RoutingPool::builder(sqlx_pool::<DB>(&primary, 4, Duration::from_secs(5)))
            .replica("replica1", sqlx_pool(&replica, 4, Duration::from_secs(5)))
            .options(options())
            .metrics(&registry, None)
            .build()
            .unwrap();
        let sql = format!("SELECT n FROM {view}");
        let replicated = eventually(Duration::from_secs(20), || async {
            let replica = pool.replica_pool("replica1").unwrap();
            let r = DB::pool_executor(replica)
                .fetch_optional(AssertSqlSafe(format!("SELECT 1 FROM {log} WHERE 1 = 0")))
                .await;
            // The view is created last: it has replicated when it is listed there.
            let v = DB::pool_executor(replica)
                .fetch_optional(AssertSqlSafe(format!(
                    "SELECT 1 FROM information_schema.views WHERE table_name = '{view}'"
                )))
                .await;
            r.is_ok() && v.is_ok_and(|v| v.is_some()) && pool.status().replicas[0].eligible
        })
        .await;
        assert!(replicated, "fixtures replicated: {:?}", pool.status());
        let d = pool.explain(&sql);
        assert_eq!(
            (d.target, d.reason),
            (rwsplit::Target::Replica, rwsplit::Reason::PureRead),
            "the classifier cannot see the write behind the view"
        );
        for i in 1..=5 {
            let row = pool
                .fetch_optional(AssertSqlSafe(sql.clone()))
                .await
                .unwrap_or_else(|e| panic!("call {i}: the caller sees no error, got {e}"));
            assert!(row.is_some());
        }
        let d = pool.explain(&sql);
        assert_eq!(
            (d.target, d.reason),
            (rwsplit::Target::Primary, rwsplit::Reason::ReplicaRefused),
            "learned"
        );
        // In a session, a refused read that wrote on the primary is the session's write: with
        // the replica 2 s late, the next read of what it wrote is not stale.
        f.kind.delay(Server::Replica(1), 2).await;
        // Restarting replication to set the delay can open the replica's breaker (a probe saw
        // its apply thread stopped): wait until it serves reads again, or the next read would
        // go to the primary without being refused. Three probes made after the restart must
        // have passed: on a loaded machine, one eligible reading can still come from before a
        // probe that sees the apply thread starting.
        let probes = pool.status().replicas[0].probes;
        let back = eventually(Duration::from_secs(30), || async {
            let r = &pool.status().replicas[0];
            r.eligible && r.probes >= probes + 3
        })
        .await;
        assert!(back, "replica back after the delay: {:?}", pool.status());
        let session = pool.session();
        let count = format!("SELECT n FROM {log}");
        let seen = rwsplit::with_session(session, async {
            // Another text: not learned yet, so refused once more inside the session.
            let fresh_text = format!("SELECT n FROM {view} WHERE 1 = 1");
            pool.fetch_optional(AssertSqlSafe(fresh_text))
                .await
                .unwrap();
            pool.fetch_all(AssertSqlSafe(count.clone()))
                .await
                .unwrap()
                .len()
        })
        .await;
        f.kind.delay(Server::Replica(1), 0).await;
        assert_eq!(seen, 6, "the session sees the row its refused read wrote");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        let refused: f64 = text
            .lines()
            .filter(|l| l.starts_with("rwsplit_retries_total") && l.contains("replica_refused"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(
            refused, 2.0,
            "one refusal per statement text, then the primary directly"
        );
        // Each call wrote exactly once, on the primary.
        let rows = pool
            .primary()
            .fetch_all(AssertSqlSafe(format!("SELECT n FROM {log}")))
            .await
            .unwrap()
            .len();
        assert_eq!(rows, 6, "the refused attempts had no effect");
        // Lifting the delay restarts replication on MariaDB (`STOP SLAVE` .. `START SLAVE`): a
        // probe in between finds the apply thread stopped, and the next ones bring it back.
        let closed = eventually(Duration::from_secs(30), || async {
            all_closed(&pool).is_ok()
        })
        .await;
        assert!(closed, "{:?}", all_closed(&pool));
    }

    /// Read-your-writes without rewiring: `cycles` write-then-read cycles through `&pool`
    /// inside `with_session`, then inside a `with_consistency(ReadYourWrites)` scope, with
    /// replica 1 applying 1 s late: no stale read. A per-call `ReadYourWrites` without a
    /// session reads from the primary, and a pool-level one is refused at build.
    pub async fn ambient_sessions<DB: Backend>(f: &Flavor, cycles: i64) {
        let Some(primary) = server_url(f.primary) else {
            return;
        };
        let Some(pool) = pool::<DB>(f, options(), true, 8, Duration::from_secs(5)).await else {
            return;
        };
        // A second, undelayed replica: the session's reads wait briefly for it instead of
        // timing out on the delayed one and going to the primary.
        let second = sqlx_pool::<DB>(&server_url(f.replica2).unwrap(), 8, Duration::from_secs(5));
        let pool = RoutingPool::builder(pool.primary_pool().clone())
            .replica("replica1", pool.replica_pool("replica1").unwrap().clone())
            .replica("replica2", second)
            .options(options())
            .build()
            .unwrap();
        let t = table(&pool).await;
        f.kind.delay(Server::Replica(1), 1).await;
        // Code that takes `&pool`, unchanged: how many of its reads were stale.
        let cycle = async |pool: &RoutingPool<DB>, from: i64| {
            let mut stale = 0;
            for i in from..from + cycles {
                pool.execute(AssertSqlSafe(format!(
                    "UPDATE {t} SET v = {i} WHERE id = 1"
                )))
                .await
                .unwrap_or_else(|e| panic!("write {i}: {e}"));
                let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= {i}");
                let row = pool
                    .fetch_optional(AssertSqlSafe(fresh))
                    .await
                    .unwrap_or_else(|e| panic!("read {i}: {e}"));
                stale += usize::from(row.is_none());
            }
            stale
        };
        let eventual = cycle(&pool, 1).await;
        eprintln!("without a session: {eventual} of {cycles} reads stale");
        assert!(
            eventual > 0,
            "the test can see stale reads without a session"
        );
        let session = pool.session();
        let stale = rwsplit::with_session(session.clone(), cycle(&pool, 1_000_000)).await;
        assert_eq!(stale, 0, "with_session: stale reads through &pool");
        assert!(session.position().is_some(), "the session saw the writes");
        let stale = rwsplit::with_consistency(
            rwsplit::Consistency::ReadYourWrites,
            cycle(&pool, 2_000_000),
        )
        .await;
        assert_eq!(
            stale, 0,
            "a ReadYourWrites scope: stale reads through &pool"
        );
        let d = rwsplit::with_consistency(rwsplit::Consistency::ReadYourWrites, async {
            pool.explain(&format!("SELECT v FROM {t}"))
        })
        .await;
        assert_eq!(
            d.target,
            rwsplit::Target::Replica,
            "a scope's reads use replicas"
        );
        let per_call = pool.with_consistency(rwsplit::Consistency::ReadYourWrites);
        let d = per_call.explain(&format!("SELECT v FROM {t}"));
        assert_eq!(
            (d.target, d.reason),
            (rwsplit::Target::Primary, rwsplit::Reason::Consistency),
            "a per-call ReadYourWrites without a session reads from the primary"
        );
        let d = pool.explain(&format!("SELECT v FROM {t}"));
        assert_eq!(
            d.target,
            rwsplit::Target::Replica,
            "the pool itself stays eventual"
        );
        let refused = RoutingPool::builder(sqlx_pool::<DB>(&primary, 1, Duration::from_secs(5)))
            .options(options().consistency(rwsplit::Consistency::ReadYourWrites))
            .build();
        assert!(
            matches!(
                refused,
                Err(Error::InvalidOption {
                    option: "consistency",
                    ..
                })
            ),
            "pool-level ReadYourWrites is refused at build"
        );
        // Both replicas late: writes through a hint handle or an acquired connection inside
        // the session are its writes too, and a read through a hint handle stays causal.
        f.kind.delay(Server::Replica(2), 1).await;
        let session = pool.session();
        let stale = rwsplit::with_session(session, async {
            let mut stale = 0;
            for i in 3_000_000..3_000_010_i64 {
                let write = format!("UPDATE {t} SET v = {i} WHERE id = 1");
                if i % 2 == 0 {
                    pool.primary().execute(AssertSqlSafe(write)).await.unwrap();
                } else {
                    let mut conn = pool.acquire().await.unwrap();
                    DB::conn_executor(&mut conn)
                        .execute(AssertSqlSafe(write))
                        .await
                        .unwrap();
                }
                let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= {i}");
                let through_pool = pool.fetch_optional(AssertSqlSafe(fresh.clone())).await;
                let through_hint = pool.replica().fetch_optional(AssertSqlSafe(fresh)).await;
                stale += usize::from(through_pool.unwrap().is_none());
                stale += usize::from(through_hint.unwrap().is_none());
            }
            stale
        })
        .await;
        f.kind.delay(Server::Replica(2), 0).await;
        f.kind.delay(Server::Replica(1), 0).await;
        assert_eq!(
            stale, 0,
            "writes through handles and connections in a session"
        );
    }

    /// With a token key: a signed token carries the session to another pool; forged,
    /// truncated, unsigned and foreign tokens are refused.
    pub async fn signed_tokens<DB: Backend>(f: &Flavor) {
        let key = rwsplit::TokenKey::new("a secret of at least 16 bytes").unwrap();
        let keyed = |name: &str| options().token_key(key.clone()).cluster_name(name);
        let Some(a) = pool::<DB>(f, keyed("app"), true, 4, Duration::from_secs(5)).await else {
            return;
        };
        let Some(b) = pool::<DB>(f, keyed("app"), true, 4, Duration::from_secs(5)).await else {
            return;
        };
        let t = table(&a).await;
        for i in 1..=20_i64 {
            let writer = a.session();
            (&writer)
                .execute(AssertSqlSafe(format!(
                    "UPDATE {t} SET v = {i} WHERE id = 1"
                )))
                .await
                .unwrap();
            let token = writer.token().await.unwrap();
            assert!(token.is_signed());
            let reader = b.resume(&token.to_string()).expect("a signed token");
            let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= {i}");
            let row = (&reader)
                .fetch_optional(AssertSqlSafe(fresh))
                .await
                .unwrap();
            assert!(
                row.is_some(),
                "read-your-writes across pools with signed tokens"
            );
        }
        let token = a.session();
        (&token)
            .execute(AssertSqlSafe(format!("UPDATE {t} SET v = 99 WHERE id = 1")))
            .await
            .unwrap();
        let text = token.token().await.unwrap().to_string();
        let refused = |text: &str| matches!(b.resume(text), Err(Error::TokenNotAuthentic(_)));
        // Every single-character change of the payload is refused.
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let bytes = engine.decode(&text).unwrap();
        for i in 1..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 0x01;
            let forged = engine.encode(&forged);
            assert!(
                matches!(
                    b.resume(&forged),
                    Err(Error::TokenNotAuthentic(_) | Error::MalformedToken(_))
                ),
                "byte {i} changed is refused"
            );
        }
        assert!(
            matches!(
                b.resume(&engine.encode(&bytes[..bytes.len() - 1])),
                Err(Error::TokenNotAuthentic(_) | Error::MalformedToken(_))
            ),
            "truncated"
        );
        let unsigned = rwsplit::CausalToken::merge(&text.parse().unwrap(), &text.parse().unwrap())
            .unwrap()
            .to_string();
        assert!(refused(&unsigned), "unsigned");
        let Some(other) = pool::<DB>(f, keyed("other"), true, 4, Duration::from_secs(5)).await
        else {
            return;
        };
        let foreign = other.session().token().await.unwrap().to_string();
        assert!(
            matches!(b.resume(&foreign), Err(Error::ForeignToken { .. })),
            "a token of another cluster, signed with the same key"
        );
        let other_key =
            keyed("app").token_key(rwsplit::TokenKey::new("another secret of 16+ bytes").unwrap());
        let Some(c) = pool::<DB>(f, other_key, true, 4, Duration::from_secs(5)).await else {
            return;
        };
        assert!(
            matches!(c.resume(&text), Err(Error::TokenNotAuthentic(_))),
            "signed with another key"
        );
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use std::time::Duration;

    use rwsplit::RoutingPool;
    use sqlx::{AssertSqlSafe, Executor, MySql};
    use tokio::sync::Mutex;

    use super::cluster::{self, Flavor};
    use super::common::faults::Kind;

    static SERIAL: Mutex<()> = Mutex::const_new(());

    const F: Flavor = Flavor {
        kind: Kind::MariaDb,
        primary: "RWSPLIT_MYSQL_PRIMARY",
        replica: "RWSPLIT_MYSQL_REPLICA_1",
        replica2: "RWSPLIT_MYSQL_REPLICA_2",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_view_over_a_writing_function_is_served_by_the_primary_transparently() {
        let _serial = SERIAL.lock().await;
        let t = super::common::unique_table("evlog");
        let (w, v) = (format!("{t}_w"), format!("{t}_v"));
        let setup = [
            format!("CREATE TABLE {t} (n BIGINT)"),
            format!(
                "CREATE FUNCTION {w}() RETURNS BIGINT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER \
                 BEGIN INSERT INTO {t} VALUES (1); RETURN 1; END"
            ),
            format!("CREATE SQL SECURITY INVOKER VIEW {v} AS SELECT {w}() AS n"),
        ];
        let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
        cluster::refused_by_replica::<MySql>(&F, &setup, &v, &t).await;
    }

    /// The last line of defence needs a replica login that cannot bypass read-only:
    /// `check_config` names the privilege of one that can (the admin's `ALL PRIVILEGES ON
    /// *.*`, which on MariaDB 10.11 includes `READ_ONLY ADMIN`), and is silent for the
    /// application's login (rights on its own database only).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_login_that_bypasses_read_only_is_reported() {
        let _serial = SERIAL.lock().await;
        let Some(primary) = super::common::server_url(F.primary) else {
            return;
        };
        let Some(app) = super::common::server_url(F.replica) else {
            return;
        };
        let admin = std::env::var("RWSPLIT_MYSQL_ADMIN_REPLICA_1").expect("admin url");
        let pool = RoutingPool::builder(cluster::sqlx_pool::<MySql>(
            &primary,
            2,
            Duration::from_secs(5),
        ))
        .replica("app", cluster::sqlx_pool(&app, 2, Duration::from_secs(5)))
        .replica(
            "admin",
            cluster::sqlx_pool(&admin, 2, Duration::from_secs(5)),
        )
        .options(super::common::no_monitor())
        .build()
        .unwrap();
        let issues = pool.check_config().await;
        let bypass: Vec<_> = issues
            .iter()
            .filter_map(|i| match i {
                rwsplit::ConfigIssue::ReplicaLoginBypassesReadOnly { replica, privilege } => {
                    Some((replica.as_str(), *privilege))
                }
                _ => None,
            })
            .collect();
        assert_eq!(bypass, [("admin", "ALL PRIVILEGES")], "{issues:?}");
        let text = issues.iter().map(|i| i.to_string()).collect::<String>();
        assert!(!text.contains("PASSWORD"), "no grant line, no hash: {text}");
        pool.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bind_count_mismatch_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<MySql, _>(&F, "bind mismatch", async |pool, t| {
            let sql = format!("SELECT v FROM {t} WHERE id = ? AND v = ?");
            sqlx::query(AssertSqlSafe(sql))
                .bind(1_i64)
                .fetch_all(pool)
                .await
                .map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_its_own_connection_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<MySql, _>(&F, "KILL CONNECTION_ID()", async |pool, _| {
            pool.execute("KILL CONNECTION_ID()").await.map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversized_statement_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<MySql, _>(&F, "20 MB statement", async |pool, t| {
            let big = "x".repeat(20 << 20);
            let sql = format!("SELECT v FROM {t} WHERE id = 1 AND '{big}' <> ''");
            pool.fetch_optional(AssertSqlSafe(sql)).await.map(drop)
        })
        .await;
        cluster::isolated::<MySql, _>(&F, "20 MB write", async |pool, t| {
            let big = "x".repeat(20 << 20);
            let sql = format!("UPDATE {t} SET v = 1 WHERE '{big}' = ''");
            pool.execute(AssertSqlSafe(sql)).await.map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_returns_wherever_it_does_for_sqlx() {
        let _serial = SERIAL.lock().await;
        let sql = "SELECT CAST(@@server_id AS SIGNED) WHERE 1 = ? AND 2 = ?";
        cluster::closes_like_sqlx::<MySql, _, _>(
            &F,
            "bind mismatch, fetch_optional",
            F.replica,
            async |p| {
                let r = sqlx::query(sql).bind(1_i64).fetch_optional(p).await;
                assert!(r.is_err());
            },
            async |p: &RoutingPool<MySql>| {
                let r = sqlx::query(sql).bind(1_i64).fetch_optional(p).await;
                assert!(r.is_err());
            },
        )
        .await;
        cluster::closes_like_sqlx::<MySql, _, _>(
            &F,
            "bind mismatch, fetch_all",
            F.replica,
            async |p| {
                let r = sqlx::query(sql).bind(1_i64).fetch_all(p).await;
                assert!(r.is_err());
            },
            async |p: &RoutingPool<MySql>| {
                let r = sqlx::query(sql).bind(1_i64).fetch_all(p).await;
                assert!(r.is_err());
            },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saturated_primary_is_not_an_outage() {
        let _serial = SERIAL.lock().await;
        cluster::saturated_primary::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_storm_fails_only_as_sqlx_does() {
        let _serial = SERIAL.lock().await;
        cluster::storm_side_by_side::<MySql>(&F).await;
    }

    #[test]
    fn a_blocked_runtime_is_not_an_outage() {
        let _serial = SERIAL.blocking_lock();
        cluster::blocked_runtime::<MySql>(&F, false);
        cluster::blocked_runtime::<MySql>(&F, true);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_primary_fails_writes_within_two_seconds_with_the_typed_error() {
        let _serial = SERIAL.lock().await;
        cluster::killed_primary::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_your_writes_is_exact_from_the_first_call_without_a_monitor() {
        let _serial = SERIAL.lock().await;
        cluster::causal_without_monitor::<MySql>(&F, 1000).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signed_tokens_refuse_forgeries() {
        let _serial = SERIAL.lock().await;
        cluster::signed_tokens::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_your_writes_through_the_pool_in_a_session_or_scope() {
        let _serial = SERIAL.lock().await;
        cluster::ambient_sessions::<MySql>(&F, 1000).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::{AssertSqlSafe, Executor, Postgres};
    use tokio::sync::Mutex;

    use super::cluster::{self, Flavor};
    use super::common::faults::Kind;

    static SERIAL: Mutex<()> = Mutex::const_new(());

    const F: Flavor = Flavor {
        kind: Kind::Postgres,
        primary: "RWSPLIT_PG_PRIMARY",
        replica: "RWSPLIT_PG_STANDBY_1",
        replica2: "RWSPLIT_PG_STANDBY_2",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_view_over_a_writing_function_is_served_by_the_primary_transparently() {
        let _serial = SERIAL.lock().await;
        let t = super::common::unique_table("evlog");
        let (w, v) = (format!("{t}_w"), format!("{t}_v"));
        let setup = [
            format!("CREATE TABLE {t} (n BIGINT)"),
            format!(
                "CREATE FUNCTION {w}() RETURNS BIGINT LANGUAGE sql VOLATILE \
                 AS 'INSERT INTO {t} VALUES (1) RETURNING n'"
            ),
            format!("CREATE VIEW {v} AS SELECT {w}() AS n"),
            format!("GRANT ALL ON {t}, {v} TO rwsplit"),
        ];
        let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
        cluster::refused_by_replica::<Postgres>(&F, &setup, &v, &t).await;
    }

    /// Found by the independent attack: an application's lock on the heartbeat table made the
    /// monitor's heartbeat write wait, its probes went silent and the primary's breaker opened.
    /// The beat is best effort now: a lock held for longer than three probe timeouts fails no
    /// write and opens no breaker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_on_the_heartbeat_table_is_not_an_outage() {
        let _serial = SERIAL.lock().await;
        use std::time::Duration;
        let hb = super::common::unique_table("evhb");
        let opts = cluster::options()
            .heartbeat_table(hb.clone())
            .probe_timeout(Duration::from_millis(300));
        let Some(pool) = cluster::pool::<Postgres>(&F, opts, true, 4, Duration::from_secs(5)).await
        else {
            return;
        };
        let t = cluster::table(&pool).await;
        let exists = super::common::eventually(Duration::from_secs(20), || async {
            pool.primary()
                .fetch_optional(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {hb}")))
                .await
                .is_ok()
        })
        .await;
        assert!(exists, "the monitor created the heartbeat table");
        let mut locker = pool.begin().await.unwrap();
        locker
            .execute(sqlx::AssertSqlSafe(format!(
                "LOCK TABLE {hb} IN ACCESS EXCLUSIVE MODE"
            )))
            .await
            .unwrap();
        let start = std::time::Instant::now();
        let mut failed = Vec::new();
        while start.elapsed() < Duration::from_secs(3) {
            let write = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
            if let Err(e) = pool.execute(sqlx::AssertSqlSafe(write)).await {
                failed.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = pool.status();
        locker.rollback().await.unwrap();
        assert!(
            failed.is_empty(),
            "{} writes failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        assert_eq!(
            status.primary.breaker,
            rwsplit::BreakerState::Closed,
            "{status:?}"
        );
    }

    /// Found by the independent attack: a function that writes only on a late row makes the
    /// standby refuse the read after rows were streamed. That call's error cannot be undone,
    /// but the statement is learned: the next call goes to the primary and succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusal_after_rows_were_streamed_is_learned() {
        let _serial = SERIAL.lock().await;
        use std::time::Duration;
        let t = super::common::unique_table("evlate");
        let (w, v) = (format!("{t}_w"), format!("{t}_v"));
        let setup = [
            format!("CREATE TABLE {t} (n BIGINT)"),
            format!(
                "CREATE FUNCTION {w}(g int) RETURNS int LANGUAGE plpgsql VOLATILE AS \
                 $$BEGIN IF g = 900 THEN INSERT INTO {t} VALUES (g); END IF; RETURN g; END$$"
            ),
            format!(
                "CREATE VIEW {v} AS SELECT g, {w}(g) AS n, repeat('x', 200) AS pad \
                 FROM generate_series(1, 1000) AS g"
            ),
            format!("GRANT ALL ON {t}, {v} TO rwsplit"),
        ];
        let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
        F.kind
            .admin(super::common::faults::Server::Primary, &setup)
            .await;
        let Some(pool) =
            cluster::pool::<Postgres>(&F, cluster::options(), true, 4, Duration::from_secs(5))
                .await
        else {
            return;
        };
        let sql = format!("SELECT g, n, pad FROM {v} ORDER BY g");
        let replicated = super::common::eventually(Duration::from_secs(20), || async {
            let replica = pool.replica_pool("replica1").unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM {v} WHERE false"
            )))
            .execute(replica)
            .await
            .is_ok()
        })
        .await;
        assert!(replicated);
        assert_eq!(pool.explain(&sql).target, rwsplit::Target::Replica);
        // The first call may fail after rows arrived (the refusal came mid-stream) or succeed
        // (the standby's executor refused before sending a row): either way it is learned.
        let first = pool.fetch_all(sqlx::AssertSqlSafe(sql.clone())).await;
        let d = pool.explain(&sql);
        assert_eq!(
            (d.target, d.reason),
            (rwsplit::Target::Primary, rwsplit::Reason::ReplicaRefused),
            "learned (first call: {:?})",
            first.as_ref().map(Vec::len)
        );
        let rows = pool
            .fetch_all(sqlx::AssertSqlSafe(sql))
            .await
            .expect("the next call runs on the primary");
        assert_eq!(rows.len(), 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bind_count_mismatch_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<Postgres, _>(&F, "bind mismatch", async |pool, t| {
            let sql = format!("SELECT v FROM {t} WHERE id = $1 AND v = $2");
            sqlx::query(AssertSqlSafe(sql))
                .bind(1_i64)
                .fetch_all(pool)
                .await
                .map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copy_through_the_executor_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<Postgres, _>(&F, "COPY TO STDOUT", async |pool, t| {
            let sql = format!("COPY {t} TO STDOUT");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .map(drop)
        })
        .await;
        cluster::isolated::<Postgres, _>(&F, "COPY FROM STDIN", async |pool, t| {
            let sql = format!("COPY {t} FROM STDIN");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(pool)
                .await
                .map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminating_its_own_backend_opens_no_breaker() {
        let _serial = SERIAL.lock().await;
        cluster::isolated::<Postgres, _>(&F, "pg_terminate_backend", async |pool, _| {
            pool.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .await
                .map(drop)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_returns_wherever_it_does_for_sqlx() {
        let _serial = SERIAL.lock().await;
        let Some(primary) = super::common::server_url(F.primary) else {
            return;
        };
        let admin = cluster::sqlx_pool::<Postgres>(&primary, 1, std::time::Duration::from_secs(5));
        admin
            .execute("CREATE TABLE IF NOT EXISTS ev_copy (id int)")
            .await
            .unwrap();
        admin.close().await;
        // `COPY ... TO STDOUT` is routed to a replica, `COPY ... FROM STDIN` to the primary.
        for (sql, server) in [
            ("COPY (SELECT 1) TO STDOUT", F.replica),
            ("COPY ev_copy FROM STDIN", F.primary),
        ] {
            cluster::closes_like_sqlx::<Postgres, _, _>(
                &F,
                sql,
                server,
                async |p| {
                    let r = sqlx::raw_sql(sql).execute(p).await;
                    assert!(r.is_err());
                },
                async |p: &rwsplit::RoutingPool<Postgres>| {
                    let r = sqlx::raw_sql(sql).execute(p).await;
                    assert!(r.is_err());
                },
            )
            .await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saturated_primary_is_not_an_outage() {
        let _serial = SERIAL.lock().await;
        cluster::saturated_primary::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_storm_fails_only_as_sqlx_does() {
        let _serial = SERIAL.lock().await;
        cluster::storm_side_by_side::<Postgres>(&F).await;
    }

    #[test]
    fn a_blocked_runtime_is_not_an_outage() {
        let _serial = SERIAL.blocking_lock();
        cluster::blocked_runtime::<Postgres>(&F, false);
        cluster::blocked_runtime::<Postgres>(&F, true);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_primary_fails_writes_within_two_seconds_with_the_typed_error() {
        let _serial = SERIAL.lock().await;
        cluster::killed_primary::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signed_tokens_refuse_forgeries() {
        let _serial = SERIAL.lock().await;
        cluster::signed_tokens::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_your_writes_through_the_pool_in_a_session_or_scope() {
        let _serial = SERIAL.lock().await;
        cluster::ambient_sessions::<Postgres>(&F, 1000).await;
    }
}
