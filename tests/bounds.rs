//! Staleness bounds that hold and causal waits that know the lag (issue #15, items 4 and 5),
//! against real servers: a replica's apply delay switches from 0 to 5 s while a writer commits
//! numbered rows on the primary and reads go through the pool with `max_replica_lag` and a
//! per-call `max_staleness`, with and without a heartbeat table; a session's reads skip a
//! replica that lags beyond `causal_wait_timeout`.
//!
//! Staleness is checked as an invariant on every read, never as a count of work done in a
//! time: the writer records when each row was acknowledged; a read that started at `t0` under
//! a bound `d` must see every row acknowledged before `t0 - d`. The first row it does not see
//! gives the staleness it witnessed: `t0` minus that row's acknowledgement (zero if none was
//! acknowledged before `t0`). The acknowledgement comes after the commit, so this never
//! overstates staleness.
//!
//! Plain functions over a per-backend [`Flavor`]; each test heals what it broke, and tests of
//! one backend run one at a time (they share its servers).

mod common;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod cluster {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use rwsplit::{Backend, PoolOptions, RoutingPool};
    use sqlx::pool::PoolOptions as SqlxPoolOptions;
    use sqlx::{AssertSqlSafe, Executor};

    use super::common::faults::{Kind, Server};
    use super::common::{eventually, server_url, unique_table};

    /// What differs between the backends.
    pub struct Flavor {
        pub kind: Kind,
        pub primary: &'static str,
        pub replica: &'static str,
        /// An expression naming the server that answers, as a BIGINT.
        pub identity: &'static str,
    }

    pub fn sqlx_pool<DB: Backend>(url: &str) -> sqlx::Pool<DB> {
        SqlxPoolOptions::<DB>::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy(url)
            .expect("pool options")
    }

    /// A fast monitor, so lag is measured every 100 ms.
    pub fn options() -> PoolOptions {
        PoolOptions::new()
            .monitor_interval(Duration::from_millis(100))
            .probe_timeout(Duration::from_secs(2))
            .breaker_cooldown(Duration::from_millis(200))
    }

    /// A healthy pool over the primary and replica 1, with its replica's own sqlx pool.
    pub async fn pool<DB: Backend>(
        f: &Flavor,
        options: PoolOptions,
        registry: Option<&prometheus::Registry>,
    ) -> Option<(RoutingPool<DB>, sqlx::Pool<DB>)> {
        let primary = sqlx_pool::<DB>(&server_url(f.primary)?);
        let replica = sqlx_pool::<DB>(&server_url(f.replica)?);
        f.kind.delay(Server::Replica(1), 0).await;
        let mut b = RoutingPool::builder(primary)
            .replica("replica1", replica.clone())
            .options(options);
        if let Some(registry) = registry {
            b = b.metrics(registry, None);
        }
        let pool = b.build().expect("build");
        let ready = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.primary.eligible && s.replicas.iter().all(|r| r.eligible && r.probes > 0)
        })
        .await;
        assert!(ready, "cluster healthy at start: {:?}", pool.status());
        Some((pool, replica))
    }

    /// Waits until `sql` returns a row on `replica` (a table created on the primary arrived).
    pub async fn arrived<DB: Backend>(replica: &sqlx::Pool<DB>, sql: String) {
        let ok = eventually(Duration::from_secs(30), || async {
            DB::pool_executor(replica)
                .fetch_optional(AssertSqlSafe(sql.clone()))
                .await
                .is_ok_and(|row| row.is_some())
        })
        .await;
        assert!(ok, "replicated: {sql}");
    }

    /// Rows `0..` of a table, each acknowledged at `acks[seq]`, written every 10 ms until
    /// stopped (or 3,000 rows).
    pub struct Writer {
        pub acks: Arc<Mutex<Vec<Instant>>>,
        stop: Arc<AtomicBool>,
        task: tokio::task::JoinHandle<Result<(), String>>,
    }

    impl Writer {
        pub fn start<DB: Backend>(pool: &RoutingPool<DB>, table: &str) -> Writer {
            let acks = Arc::new(Mutex::new(vec![Instant::now()]));
            let stop = Arc::new(AtomicBool::new(false));
            let (pool, table) = (pool.clone(), table.to_string());
            let (a, s) = (acks.clone(), stop.clone());
            let task = tokio::spawn(async move {
                for seq in 1..3_000_i64 {
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    let insert = format!("INSERT INTO {table} (seq) VALUES ({seq})");
                    pool.execute(AssertSqlSafe(insert))
                        .await
                        .map_err(|e| format!("write {seq}: {e}"))?;
                    a.lock().unwrap().push(Instant::now());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(())
            });
            Writer { acks, stop, task }
        }

        /// The staleness a read that started at `t0` and saw rows up to `seen` witnessed.
        pub fn witnessed(&self, t0: Instant, seen: i64) -> Duration {
            let acks = self.acks.lock().unwrap();
            usize::try_from(seen + 1)
                .ok()
                .and_then(|missed| acks.get(missed))
                .map_or(Duration::ZERO, |acked| t0.saturating_duration_since(*acked))
        }

        pub async fn stop(self) {
            self.stop.store(true, Ordering::Relaxed);
            self.task.await.unwrap().unwrap();
        }
    }

    /// What the reads under one bound saw.
    #[derive(Debug, Default)]
    pub struct Seen {
        pub reads: usize,
        pub from_replica: usize,
        pub max_witnessed: Duration,
        pub max_witnessed_on_replica: Duration,
    }

    /// A replica whose apply delay switches from 0 to 5 s while rows are written: of `reads`
    /// reads through the pool (`max_replica_lag` = 2 s) and through `max_staleness(1 s)`,
    /// alternating, none returns data older than its bound. With `heartbeat`, the monitor
    /// measures lag from a heartbeat table; without, from the server's own report.
    pub async fn bounds_hold<DB>(f: &Flavor, heartbeat: bool, reads: usize)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let pool_bound = Duration::from_secs(2);
        let call_bound = Duration::from_secs(1);
        let beat = heartbeat.then(|| unique_table("hb"));
        let opts = options().max_replica_lag(pool_bound);
        let opts = match &beat {
            Some(table) => opts.heartbeat_table(table.clone()),
            None => opts,
        };
        let Some((pool, replica)) = pool::<DB>(f, opts, None).await else {
            return;
        };
        let replica_id: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT {}", f.identity)))
            .fetch_one(DB::pool_executor(&replica))
            .await
            .expect("replica identity");
        let t = unique_table("bound");
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (seq BIGINT PRIMARY KEY)"
        )))
        .await
        .expect("create");
        pool.execute(AssertSqlSafe(format!("INSERT INTO {t} (seq) VALUES (0)")))
            .await
            .expect("row 0");
        arrived(&replica, format!("SELECT 1 FROM {t} WHERE seq = 0")).await;
        if let Some(beat) = &beat {
            arrived(&replica, format!("SELECT 1 FROM {beat} WHERE id = 1")).await;
        }
        let writer = Writer::start(&pool, &t);
        let read = format!("SELECT MAX(seq), {} FROM {t}", f.identity);
        let mut seen = [Seen::default(), Seen::default()];
        let mut violations = Vec::new();
        for i in 0..reads {
            if i == reads / 10 {
                f.kind.delay(Server::Replica(1), 5).await;
            }
            let per_call = i % 2 == 1;
            let (bound, s) = if per_call {
                (call_bound, &mut seen[1])
            } else {
                (pool_bound, &mut seen[0])
            };
            let t0 = Instant::now();
            let query = sqlx::query_as::<DB, (i64, i64)>(AssertSqlSafe(read.clone()));
            let (max, server) = if per_call {
                query.fetch_one(pool.max_staleness(call_bound)).await
            } else {
                query.fetch_one(&pool).await
            }
            .unwrap_or_else(|e| panic!("read {i}: {e}"));
            let witnessed = writer.witnessed(t0, max);
            s.reads += 1;
            s.max_witnessed = s.max_witnessed.max(witnessed);
            if server == replica_id {
                s.from_replica += 1;
                s.max_witnessed_on_replica = s.max_witnessed_on_replica.max(witnessed);
            }
            if witnessed > bound {
                violations.push(format!(
                    "read {i} (bound {bound:?}, server {server}) saw rows up to {max}: \
                     {witnessed:?} old; status {:?}",
                    pool.status().replicas[0]
                ));
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        // The test can see staleness: read directly, the delayed replica is behind the bound.
        let direct = std::cell::Cell::new(Duration::ZERO);
        let behind = eventually(Duration::from_secs(30), || async {
            let t0 = Instant::now();
            let sql = format!("SELECT MAX(seq) FROM {t}");
            let max: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(DB::pool_executor(&replica))
                .await
                .expect("direct read");
            direct.set(writer.witnessed(t0, max.unwrap_or(0)));
            direct.get() > pool_bound
        })
        .await;
        let direct = direct.get();
        writer.stop().await;
        f.kind.delay(Server::Replica(1), 0).await;
        eprintln!(
            "{:?} heartbeat={heartbeat}: max_replica_lag {pool_bound:?}: {:?}; \
             max_staleness {call_bound:?}: {:?}; a direct read of the replica: {direct:?} old",
            f.kind, seen[0], seen[1]
        );
        pool.close().await;
        let cleanup = sqlx_pool::<DB>(&server_url(f.primary).unwrap());
        for table in std::iter::once(&t).chain(&beat) {
            DB::pool_executor(&cleanup)
                .execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .await
                .expect("drop");
        }
        assert!(
            violations.is_empty(),
            "{} reads older than their bound: {violations:#?}",
            violations.len()
        );
        assert!(
            behind,
            "the replica fell behind the bound (direct read {direct:?} old)"
        );
    }

    enum MetricKind {
        Counter,
        Histogram,
    }

    fn family_kind(name: &str) -> MetricKind {
        if name.ends_with("_seconds") {
            MetricKind::Histogram
        } else {
            MetricKind::Counter
        }
    }

    /// The value of the samples of `name` whose labels include `labels`, summed.
    pub fn metric(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| match family_kind(name) {
                MetricKind::Counter => m.get_counter().get_value(),
                MetricKind::Histogram => m.get_histogram().get_sample_count() as f64,
            })
            .sum()
    }

    /// A replica applying 8 s late, measured by a heartbeat, and a 3 s causal wait budget: each
    /// of `cycles` write-then-read cycles in a session reads its write from the primary without
    /// waiting (counted as skipped for lag; no wait, no timeout). Once the replica is caught up,
    /// no read is skipped.
    pub async fn causal_skips_a_lagging_replica<DB: Backend>(f: &Flavor, cycles: usize) {
        let registry = prometheus::Registry::new();
        let budget = Duration::from_secs(3);
        let beat = unique_table("hb");
        let opts = options()
            .causal_wait_timeout(budget)
            .heartbeat_table(beat.clone());
        let Some((pool, replica)) = pool::<DB>(f, opts, Some(&registry)).await else {
            return;
        };
        let t = unique_table("causal");
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");
        pool.execute(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, v) VALUES (1, 0)"
        )))
        .await
        .expect("row");
        arrived(&replica, format!("SELECT 1 FROM {t} WHERE id = 1")).await;
        arrived(&replica, format!("SELECT 1 FROM {beat} WHERE id = 1")).await;
        f.kind.delay(Server::Replica(1), 8).await;
        let lagging = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            let r = &s.replicas[0];
            r.eligible
                && r.lag
                    .is_some_and(|l| l > budget + Duration::from_millis(500))
        })
        .await;
        assert!(
            lagging,
            "the replica lags beyond the budget: {:?}",
            pool.status()
        );
        let session = pool.session();
        let cycle = async |from: usize| {
            let mut stale = 0;
            let mut slowest = Duration::ZERO;
            for i in from..from + cycles {
                (&session)
                    .execute(AssertSqlSafe(format!(
                        "UPDATE {t} SET v = {i} WHERE id = 1"
                    )))
                    .await
                    .unwrap_or_else(|e| panic!("write {i}: {e}"));
                let start = Instant::now();
                let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= {i}");
                let row = (&session)
                    .fetch_optional(AssertSqlSafe(fresh))
                    .await
                    .unwrap_or_else(|e| panic!("read {i}: {e}"));
                slowest = slowest.max(start.elapsed());
                stale += usize::from(row.is_none());
            }
            (stale, slowest)
        };
        let (stale, slowest) = cycle(1).await;
        let outcome = |o: &str| metric(&registry, "rwsplit_causal_waits_total", &[("outcome", o)]);
        let skipped = outcome("skipped_for_lag");
        let waited = metric(&registry, "rwsplit_causal_wait_seconds", &[]);
        let timed_out = outcome("timed_out");
        let lag_fallbacks = metric(
            &registry,
            "rwsplit_fallbacks_total",
            &[("cause", "causal_lag")],
        );
        eprintln!(
            "{:?}: lagging replica ({:?}): {skipped} of {cycles} reads skipped for lag, {waited} waits, {timed_out} timeouts, slowest read {slowest:?} (budget {budget:?})",
            f.kind,
            pool.status().replicas[0].lag
        );
        // Caught up again: reads wait on the replica (or find it there), never skip.
        f.kind.delay(Server::Replica(1), 0).await;
        let caught_up = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            let r = &s.replicas[0];
            r.eligible && r.lag.is_some_and(|l| l < Duration::from_millis(500))
        })
        .await;
        let (stale_after, _) = cycle(1_000).await;
        let skipped_after = outcome("skipped_for_lag") - skipped;
        let served = outcome("served_after_wait");
        eprintln!(
            "{:?}: caught up: {skipped_after} skipped, {served} served after a wait, {} timeouts",
            f.kind,
            outcome("timed_out")
        );
        pool.close().await;
        let cleanup = sqlx_pool::<DB>(&server_url(f.primary).unwrap());
        for table in [&t, &beat] {
            DB::pool_executor(&cleanup)
                .execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .await
                .expect("drop");
        }
        assert_eq!((stale, stale_after), (0, 0), "stale reads in a session");
        assert_eq!(
            skipped, cycles as f64,
            "every read after a write skipped the wait"
        );
        assert_eq!(lag_fallbacks, cycles as f64, "counted as fallbacks for lag");
        assert_eq!((waited, timed_out), (0.0, 0.0), "no wait, no timeout");
        assert!(caught_up, "the replica caught up: {:?}", pool.status());
        assert_eq!(skipped_after, 0.0, "a caught-up replica is waited on");
    }

    /// Tokens survive an address change: pools that reach the same cluster through different
    /// addresses (`127.0.0.1` and `localhost`), with the monitor on or off, accept each
    /// other's tokens and honour them; a pool of another cluster refuses them with the typed
    /// error, also when it learns its own cluster only after accepting one.
    pub async fn tokens_survive_an_address_change<DB: Backend>(f: &Flavor) {
        let Some(url) = server_url(f.primary) else {
            return;
        };
        let moved = url.replace("127.0.0.1", "localhost");
        assert_ne!(url, moved, "the primary's URL names 127.0.0.1: {url}");
        let Some((a, _)) = pool::<DB>(f, options(), None).await else {
            return;
        };
        let build = |options: PoolOptions| {
            RoutingPool::builder(sqlx_pool::<DB>(&moved))
                .options(options)
                .build()
                .expect("build")
        };
        let b = build(options());
        let c = build(options().monitor_interval(Duration::ZERO));
        let d = build(options().cluster_name("another cluster"));
        let t = unique_table("token");
        a.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");
        a.execute(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, v) VALUES (1, 0)"
        )))
        .await
        .expect("row");
        let writer = a.session();
        (&writer)
            .execute(AssertSqlSafe(format!("UPDATE {t} SET v = 1 WHERE id = 1")))
            .await
            .expect("write");
        let token = writer.token().await.expect("token").to_string();
        let fresh = format!("SELECT v FROM {t} WHERE id = 1 AND v >= 1");
        for (name, pool) in [("localhost, monitored", &b), ("localhost, no monitor", &c)] {
            let reader = pool
                .resume(&token)
                .unwrap_or_else(|e| panic!("{name}: same cluster, another address: {e}"));
            let row = (&reader)
                .fetch_optional(AssertSqlSafe(fresh.clone()))
                .await
                .unwrap_or_else(|e| panic!("{name}: read: {e}"));
            assert!(row.is_some(), "{name}: the token's write is seen");
            let again = reader.token().await.expect("token").to_string();
            assert_eq!(
                a.resume(&again).map(drop).map_err(|e| e.to_string()),
                Ok(()),
                "{name}: its token goes back"
            );
            assert_eq!(pool.cluster().await.unwrap(), a.cluster().await.unwrap());
        }
        // Another cluster: refused with the typed error.
        assert!(matches!(
            d.resume(&token),
            Err(rwsplit::Error::ForeignToken { .. })
        ));
        let foreign = d.session().token().await.expect("token").to_string();
        for pool in [&a, &b, &c] {
            assert!(matches!(
                pool.resume(&foreign),
                Err(rwsplit::Error::ForeignToken { .. })
            ));
        }
        // A pool that has not learned its cluster yet (PostgreSQL, monitor off, no call to the
        // primary so far) takes a token provisionally and refuses a foreign one before its
        // position is used or passed on.
        let e = build(options().monitor_interval(Duration::ZERO));
        let known = e.cluster_id().is_some();
        eprintln!(
            "{:?}: cluster id {:?}; a new pool without a monitor knows its own: {known}",
            f.kind,
            a.cluster_id()
        );
        match e.resume(&foreign) {
            Err(err) => assert!(
                known && matches!(err, rwsplit::Error::ForeignToken { .. }),
                "{err}"
            ),
            Ok(session) => {
                assert!(!known, "a pool that knows its cluster refuses at once");
                let err = (&session)
                    .fetch_optional(AssertSqlSafe(fresh.clone()))
                    .await
                    .map(drop);
                let later = session.token().await;
                assert!(
                    matches!(later, Err(rwsplit::Error::ForeignToken { .. })),
                    "refused later: {later:?} (read: {err:?})"
                );
            }
        }
        for pool in [&a, &b, &c, &d, &e] {
            pool.close().await;
        }
        let cleanup = sqlx_pool::<DB>(&url);
        DB::pool_executor(&cleanup)
            .execute(AssertSqlSafe(format!("DROP TABLE {t}")))
            .await
            .expect("drop");
    }

    /// PostgreSQL: a token's position carries its timeline; a token of the old format (an LSN
    /// without a timeline) cannot be compared with a standby's position, so with the standby
    /// 2 s late its reads come from the primary at once (no wait) and see the token's write.
    pub async fn positions_without_a_timeline_read_from_the_primary<DB: Backend>(f: &Flavor) {
        use base64::Engine;

        let registry = prometheus::Registry::new();
        let Some((pool, _)) = pool::<DB>(f, options(), Some(&registry)).await else {
            return;
        };
        let t = unique_table("tli");
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");
        pool.execute(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, v) VALUES (1, 0)"
        )))
        .await
        .expect("row");
        f.kind.delay(Server::Replica(1), 2).await;
        let mut stale = 0;
        for i in 1..=5_i64 {
            let writer = pool.session();
            (&writer)
                .execute(AssertSqlSafe(format!(
                    "UPDATE {t} SET v = {i} WHERE id = 1"
                )))
                .await
                .expect("write");
            let token = writer.token().await.expect("token");
            let Some(rwsplit::Position::PgLsn { timeline, lsn }) = token.position().cloned() else {
                panic!(
                    "a PostgreSQL position has a timeline: {:?}",
                    token.position()
                );
            };
            assert!(timeline >= 1);
            // Version 1, the cluster, kind 3 (an LSN alone).
            let mut old = vec![1u8];
            old.extend_from_slice(&token.cluster().to_be_bytes());
            old.push(3);
            old.extend_from_slice(&lsn.to_be_bytes());
            let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(old);
            let reader = pool
                .resume(&old)
                .expect("an old-format token of this cluster");
            let row = (&reader)
                .fetch_optional(AssertSqlSafe(format!(
                    "SELECT v FROM {t} WHERE id = 1 AND v >= {i}"
                )))
                .await
                .expect("read");
            stale += usize::from(row.is_none());
        }
        f.kind.delay(Server::Replica(1), 0).await;
        pool.close().await;
        let cleanup = sqlx_pool::<DB>(&server_url(f.primary).unwrap());
        DB::pool_executor(&cleanup)
            .execute(AssertSqlSafe(format!("DROP TABLE {t}")))
            .await
            .expect("drop");
        let waits = metric(&registry, "rwsplit_causal_wait_seconds", &[]);
        assert_eq!(stale, 0, "stale reads with positions of no timeline");
        assert_eq!(
            waits, 0.0,
            "no wait on a standby whose position cannot be compared"
        );
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use sqlx::MySql;
    use tokio::sync::Mutex;

    use super::cluster::{self, Flavor};
    use super::common::faults::Kind;

    static SERIAL: Mutex<()> = Mutex::const_new(());

    const F: Flavor = Flavor {
        kind: Kind::MariaDb,
        primary: "RWSPLIT_MYSQL_PRIMARY",
        replica: "RWSPLIT_MYSQL_REPLICA_1",
        identity: "CAST(@@server_id AS SIGNED)",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_read_is_older_than_its_bound_without_a_heartbeat() {
        let _serial = SERIAL.lock().await;
        cluster::bounds_hold::<MySql>(&F, false, 200).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_read_is_older_than_its_bound_with_a_heartbeat() {
        let _serial = SERIAL.lock().await;
        cluster::bounds_hold::<MySql>(&F, true, 200).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_reads_skip_a_replica_lagging_beyond_the_wait_budget() {
        let _serial = SERIAL.lock().await;
        cluster::causal_skips_a_lagging_replica::<MySql>(&F, 5).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_survive_an_address_change() {
        let _serial = SERIAL.lock().await;
        cluster::tokens_survive_an_address_change::<MySql>(&F).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::Postgres;
    use tokio::sync::Mutex;

    use super::cluster::{self, Flavor};
    use super::common::faults::Kind;

    static SERIAL: Mutex<()> = Mutex::const_new(());

    const F: Flavor = Flavor {
        kind: Kind::Postgres,
        primary: "RWSPLIT_PG_PRIMARY",
        replica: "RWSPLIT_PG_STANDBY_1",
        identity: "inet_server_port()::int8",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_read_is_older_than_its_bound_without_a_heartbeat() {
        let _serial = SERIAL.lock().await;
        cluster::bounds_hold::<Postgres>(&F, false, 200).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_read_is_older_than_its_bound_with_a_heartbeat() {
        let _serial = SERIAL.lock().await;
        cluster::bounds_hold::<Postgres>(&F, true, 200).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_reads_skip_a_replica_lagging_beyond_the_wait_budget() {
        let _serial = SERIAL.lock().await;
        cluster::causal_skips_a_lagging_replica::<Postgres>(&F, 5).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_survive_an_address_change() {
        let _serial = SERIAL.lock().await;
        cluster::tokens_survive_an_address_change::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn positions_without_a_timeline_read_from_the_primary() {
        let _serial = SERIAL.lock().await;
        cluster::positions_without_a_timeline_read_from_the_primary::<Postgres>(&F).await;
    }
}
