//! Replica health, lag-aware routing, failover and read-your-writes against real servers, one
//! suite for MariaDB and PostgreSQL: replicas are killed (SIGKILL), hung (SIGSTOP), delayed
//! (`MASTER_DELAY` / `recovery_min_apply_delay`) and cut off (`STOP SLAVE` /
//! `pg_wal_replay_pause()`), and the primary is killed, while reads and writes go through the
//! pool. Outcomes are asserted by counts and by the server that answered.
//!
//! The tests change shared servers, so within a backend they run one at a time (a lock) and
//! each heals the cluster when it ends.

mod common;

#[allow(unused_macros)] // used only with the mysql or postgres feature
macro_rules! cluster_suite {
    (
        mod $module:ident;
        db = $db:ty;
        kind = $kind:expr;
        primary = $primary:literal;
        replicas = [$r1:literal, $r2:literal];
        identity = $identity:literal;
        param = $param:literal;
    ) => {
        mod $module {
            use std::collections::{BTreeMap, HashMap};
            use std::time::{Duration, Instant};

            use rwsplit::{
                Balance, BreakerState, Consistency, Error, PoolOptions, Reason, RoutingPool, Target,
            };
            use sqlx::pool::PoolOptions as SqlxPoolOptions;
            use sqlx::{AssertSqlSafe, Executor};
            use tokio::sync::Mutex;

            use super::common::faults::{Kind, Server};
            use super::common::{self, eventually, server_url};

            type Db = $db;
            const KIND: Kind = $kind;
            const WHO: &str = $identity;
            static SERIAL: Mutex<()> = Mutex::const_new(());

            struct Cluster {
                pool: RoutingPool<Db>,
                names: HashMap<i64, &'static str>,
            }

            fn options() -> PoolOptions {
                PoolOptions::new()
                    .monitor_interval(Duration::from_millis(100))
                    .probe_timeout(Duration::from_millis(500))
                    .replica_timeout(Duration::from_millis(800))
                    .breaker_cooldown(Duration::from_millis(200))
            }

            fn sqlx_pool(url: &str, acquire_timeout: Duration) -> sqlx::Pool<Db> {
                SqlxPoolOptions::<Db>::new()
                    .max_connections(16)
                    .acquire_timeout(acquire_timeout)
                    .connect_lazy(url)
                    .expect("pool options")
            }

            /// The sqlx pools wait up to 10 s for a connection: a loaded machine can take well
            /// over a second to open one (PostgreSQL forks a backend and runs SCRAM), and a read
            /// must not fail for that. A hung server cannot hold a read that long: the replica
            /// watchdog (`replica_timeout`) ends it.
            async fn cluster_of(options: PoolOptions, replicas: &[u8]) -> Option<Cluster> {
                cluster_with(options, replicas, Duration::from_secs(10)).await
            }

            /// A cluster whose sqlx pools wait `acquire_timeout` for a connection.
            async fn cluster_with(
                options: PoolOptions,
                replicas: &[u8],
                acquire_timeout: Duration,
            ) -> Option<Cluster> {
                let mut names = HashMap::new();
                let primary_url = server_url($primary)?;
                // Whatever an earlier test left broken (even one that panicked) is healed first.
                KIND.heal(2).await;
                let primary = sqlx_pool(&primary_url, acquire_timeout);
                let id: i64 = sqlx::query_scalar(WHO)
                    .fetch_one(&primary)
                    .await
                    .expect("primary");
                names.insert(id, "primary");
                let mut builder = RoutingPool::builder(primary)
                    .balance(Balance::RoundRobin)
                    .options(options);
                for n in replicas {
                    let (var, name) = match n {
                        1 => ($r1, "replica1"),
                        _ => ($r2, "replica2"),
                    };
                    let pool = sqlx_pool(&server_url(var)?, acquire_timeout);
                    let id: i64 = sqlx::query_scalar(WHO)
                        .fetch_one(&pool)
                        .await
                        .expect("replica");
                    names.insert(id, name);
                    builder = builder.replica(name, pool);
                }
                let pool = builder.build().expect("build");
                let ready = eventually(Duration::from_secs(30), || async {
                    let s = pool.status();
                    s.primary.eligible && s.replicas.iter().all(|r| r.eligible && r.probes > 0)
                })
                .await;
                assert!(
                    ready,
                    "cluster not healthy at test start: {:?}",
                    pool.status()
                );
                Some(Cluster { pool, names })
            }

            async fn cluster(options: PoolOptions) -> Option<Cluster> {
                cluster_of(options, &[1, 2]).await
            }

            impl Cluster {
                fn name(&self, id: i64) -> &'static str {
                    self.names.get(&id).copied().unwrap_or("unknown")
                }

                async fn who<'e, E: Executor<'e, Database = Db>>(&self, e: E) -> &'static str {
                    let id: i64 = sqlx::query_scalar(WHO)
                        .fetch_one(e)
                        .await
                        .expect("identity");
                    self.name(id)
                }

                /// `reads` reads from each of `tasks` tasks: answers per server, and errors.
                async fn read_load(
                    &self,
                    tasks: usize,
                    reads: usize,
                ) -> (BTreeMap<&'static str, usize>, Vec<String>) {
                    let mut handles = Vec::new();
                    for _ in 0..tasks {
                        let pool = self.pool.clone();
                        handles.push(tokio::spawn(async move {
                            let mut seen = Vec::new();
                            for _ in 0..reads {
                                let r = sqlx::query_scalar::<_, i64>(WHO).fetch_one(&pool).await;
                                seen.push(r.map_err(|e| e.to_string()));
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            seen
                        }));
                    }
                    let (mut by_server, mut errors) = (BTreeMap::new(), Vec::new());
                    for h in handles {
                        for r in h.await.unwrap() {
                            match r {
                                Ok(id) => *by_server.entry(self.name(id)).or_insert(0) += 1,
                                Err(e) => errors.push(e),
                            }
                        }
                    }
                    (by_server, errors)
                }

                async fn eligible(&self, index: usize, want: bool) -> bool {
                    eventually(Duration::from_secs(30), || async {
                        self.pool.status().replicas[index].eligible == want
                    })
                    .await
                }

                /// A fresh table with one row, replicated to every replica.
                async fn table(&self) -> String {
                    let t = common::unique_table("fo");
                    let ddl =
                        format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
                    self.pool.execute(AssertSqlSafe(ddl)).await.expect("create");
                    let insert = format!("INSERT INTO {t} (id, v) VALUES (1, 0)");
                    self.pool
                        .execute(AssertSqlSafe(insert))
                        .await
                        .expect("insert");
                    let names: Vec<String> =
                        self.pool.replica_names().map(str::to_string).collect();
                    for name in names {
                        let replica = self.pool.replica_pool(&name).unwrap().clone();
                        let sql = format!("SELECT count(*) FROM {t}");
                        let ok = eventually(Duration::from_secs(20), || async {
                            sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.clone()))
                                .fetch_one(&replica)
                                .await
                                .is_ok_and(|n| n == 1)
                        })
                        .await;
                        assert!(ok, "{t} reached {name}");
                    }
                    t
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn killed_replica_fails_no_read_and_rejoins_after_restart() {
                let _serial = SERIAL.lock().await;
                let Some(c) = cluster(options()).await else {
                    return;
                };
                let load = {
                    let c = Cluster {
                        pool: c.pool.clone(),
                        names: c.names.clone(),
                    };
                    tokio::spawn(async move { c.read_load(8, 60).await })
                };
                tokio::time::sleep(Duration::from_millis(150)).await;
                KIND.signal(Server::Replica(1), "KILL");
                let (by_server, errors) = load.await.unwrap();
                assert!(
                    errors.is_empty(),
                    "{} failed reads: {:?}",
                    errors.len(),
                    &errors[..errors.len().min(5)]
                );
                assert_eq!(by_server.values().sum::<usize>(), 480);
                assert!(
                    by_server.get("replica2").copied().unwrap_or(0) > 0,
                    "{by_server:?}"
                );
                assert!(
                    c.eligible(0, false).await,
                    "killed replica1 is out: {:?}",
                    c.pool.status()
                );

                KIND.restart(Server::Replica(1));
                assert!(
                    c.eligible(0, true).await,
                    "replica1 rejoins: {:?}",
                    c.pool.status()
                );
                let mut seen = BTreeMap::new();
                for _ in 0..20 {
                    *seen.entry(c.who(&c.pool).await).or_insert(0) += 1;
                }
                assert!(
                    seen.contains_key("replica1"),
                    "replica1 serves reads again: {seen:?}"
                );
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry() {
                let _serial = SERIAL.lock().await;
                let opts = options();
                let Some(c) = cluster(opts.clone()).await else {
                    return;
                };
                for _ in 0..4 {
                    c.who(&c.pool).await;
                }
                KIND.signal(Server::Replica(1), "STOP");
                let mut slowest = Duration::ZERO;
                let mut answered = BTreeMap::new();
                for _ in 0..30 {
                    let start = Instant::now();
                    // A read the watchdog fails to end would hang until SIGCONT: cap it so the
                    // test fails instead.
                    let id: Result<i64, _> = tokio::time::timeout(
                        Duration::from_secs(60),
                        sqlx::query_scalar(WHO).fetch_one(&c.pool),
                    )
                    .await
                    .expect("a read on a hung replica ends");
                    slowest = slowest.max(start.elapsed());
                    *answered
                        .entry(c.name(id.expect("a read survives a hung replica")))
                        .or_insert(0) += 1;
                }
                KIND.signal(Server::Replica(1), "CONT");
                // One timeout on the hung replica, then the retry elsewhere. The margin is for a
                // loaded machine (the retry's own answer can take a while there); a read that
                // is not abandoned at all hangs until SIGCONT and hits the cap above.
                let bound = opts.get_replica_timeout() * 2 + Duration::from_secs(5);
                assert!(slowest < bound, "slowest read {slowest:?}, bound {bound:?}");
                assert!(
                    !answered.contains_key("replica1"),
                    "the hung replica answered: {answered:?}"
                );
                assert!(
                    c.eligible(0, true).await,
                    "replica1 rejoins after SIGCONT: {:?}",
                    c.pool.status()
                );
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hung_replica_times_out_on_both_call_paths_and_the_read_is_retried() {
                let _serial = SERIAL.lock().await;
                // The monitor must not notice the hang first: its probes get 10 s here, so the
                // reads below can only end through the replica watchdog.
                let opts = options().probe_timeout(Duration::from_secs(10));
                // Nor sqlx's pool: a new connection to a hung server hangs in its handshake,
                // so acquiring may wait 10 s too.
                let acquire = Duration::from_secs(10);
                let Some(a) = cluster_with(opts.clone(), &[1], acquire).await else {
                    return;
                };
                let Some(b) = cluster_with(opts.clone(), &[1], acquire).await else {
                    return;
                };
                KIND.signal(Server::Replica(1), "STOP");
                // `fetch_all` takes the stream path, `fetch_one` the future path.
                let (all, one) = tokio::join!(
                    async {
                        let start = Instant::now();
                        let rows: Result<Vec<i64>, _> =
                            sqlx::query_scalar(WHO).fetch_all(&a.pool).await;
                        (rows.map(|r| r[0]), start.elapsed())
                    },
                    async {
                        let start = Instant::now();
                        let row: Result<i64, _> = sqlx::query_scalar(WHO).fetch_one(&b.pool).await;
                        (row, start.elapsed())
                    },
                );
                KIND.signal(Server::Replica(1), "CONT");
                // The bound, one watchdog tick (an eighth of it), and a margin for a loaded
                // machine. A read the watchdog never ends hangs until SIGCONT: the lower bound
                // and the primary's answer above are the real checks, this one only catches a
                // read that waited the 10 s probe or acquire timeout instead.
                let bound = opts.get_replica_timeout() * 9 / 8 + Duration::from_secs(5);
                for (what, (id, elapsed), c) in [("fetch_all", all, &a), ("fetch_one", one, &b)] {
                    let id = id.unwrap_or_else(|e| panic!("{what}: the read failed: {e}"));
                    assert_eq!(c.name(id), "primary", "{what}: retried on the primary");
                    assert!(
                        elapsed >= opts.get_replica_timeout(),
                        "{what}: answered after {elapsed:?}, before the replica could time out"
                    );
                    assert!(elapsed < bound, "{what}: {elapsed:?}, bound {bound:?}");
                    let replica = &c.pool.status().replicas[0];
                    assert!(
                        replica
                            .last_error
                            .as_deref()
                            .is_some_and(|e| e.contains("gave no answer within")),
                        "{what}: the timeout is the replica's last error: {replica:?}"
                    );
                }
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up() {
                let _serial = SERIAL.lock().await;
                let opts = options()
                    .max_replica_lag(Duration::from_secs(1))
                    .heartbeat_table("rwsplit_heartbeat");
                let Some(c) = cluster(opts).await else { return };
                KIND.delay(Server::Replica(1), 3).await;
                let lagging = eventually(Duration::from_secs(20), || async {
                    c.pool.status().replicas[0]
                        .lag
                        .is_some_and(|l| l > Duration::from_secs(1))
                })
                .await;
                assert!(lagging, "replica1 lag is measured: {:?}", c.pool.status());
                let (by_server, errors) = c.read_load(4, 25).await;
                assert!(errors.is_empty(), "{errors:?}");
                assert!(
                    !by_server.contains_key("replica1"),
                    "no read from the delayed replica: {by_server:?}"
                );
                assert!(by_server.contains_key("replica2"), "{by_server:?}");
                // A per-call bound looser than the delay accepts it; a tighter one does not.
                let loose = c.who(c.pool.max_staleness(Duration::from_secs(30))).await;
                assert!(loose.starts_with("replica"), "{loose}");
                // With only the delayed replica in rotation: a bound above its 3 s delay
                // accepts it, a bound below it sends the read to the primary. (A 1 ms bound
                // could be met by the undelayed replica right after a heartbeat: racy.)
                c.pool.set_in_rotation("replica2", false).unwrap();
                let within = |bound| {
                    rwsplit::with_consistency(Consistency::BoundedStaleness(bound), async {
                        c.pool.explain(WHO)
                    })
                };
                let d = within(Duration::from_secs(1)).await;
                assert_eq!(
                    (d.target, d.reason.clone()),
                    (Target::Primary, Reason::NoEligibleReplica),
                    "{d:?}"
                );
                let d = within(Duration::from_secs(60)).await;
                assert_eq!(d.target, Target::Replica, "{d:?}");
                c.pool.set_in_rotation("replica2", true).unwrap();

                KIND.delay(Server::Replica(1), 0).await;
                assert!(
                    c.eligible(0, true).await,
                    "replica1 returns once caught up: {:?}",
                    c.pool.status()
                );
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broken_replication_makes_a_replica_ineligible() {
                let _serial = SERIAL.lock().await;
                let Some(c) = cluster(options()).await else {
                    return;
                };
                KIND.stop_replication(Server::Replica(2)).await;
                assert!(c.eligible(1, false).await, "{:?}", c.pool.status());
                let why = c.pool.status().replicas[1]
                    .last_error
                    .clone()
                    .unwrap_or_default();
                assert!(why.contains("replication broken"), "{why}");
                let (by_server, errors) = c.read_load(2, 20).await;
                assert!(errors.is_empty());
                assert!(!by_server.contains_key("replica2"), "{by_server:?}");
                KIND.start_replication(Server::Replica(2)).await;
                assert!(c.eligible(1, true).await, "{:?}", c.pool.status());
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dead_primary_fails_writes_fast_and_reads_continue_on_replicas() {
                let _serial = SERIAL.lock().await;
                // Without write_hold, writes fail at once while no writer is usable (with it,
                // they would wait that long for a new writer first: tests/switchover.rs).
                let Some(c) = cluster(options().write_hold(Duration::ZERO)).await else {
                    return;
                };
                let t = c.table().await;
                KIND.signal(Server::Primary, "KILL");
                let insert = format!("INSERT INTO {t} (id, v) VALUES (2, 2)");
                // PostgreSQL backends of an already open connection can outlive a killed
                // postmaster for a moment; the first write that fails must be the dedicated error.
                let mut first_error = None;
                for _ in 0..100 {
                    match c
                        .pool
                        .execute(AssertSqlSafe(insert.replace("(2, 2)", "(3, 3)")))
                        .await
                    {
                        Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        Err(e) => {
                            first_error = Some(e);
                            break;
                        }
                    }
                }
                let err = first_error.expect("writes fail once the primary is dead");
                assert!(
                    matches!(
                        Error::from_sqlx(&err),
                        Some(Error::PrimaryUnavailable { .. })
                    ),
                    "dedicated error, got {err}"
                );
                // The breaker is open now: the next write fails without touching the network.
                assert_eq!(
                    c.pool.status().primary.breaker,
                    BreakerState::Open,
                    "{:?}",
                    c.pool.status()
                );
                let start = Instant::now();
                let err = c
                    .pool
                    .execute(AssertSqlSafe(insert.clone()))
                    .await
                    .unwrap_err();
                assert!(matches!(
                    Error::from_sqlx(&err),
                    Some(Error::PrimaryUnavailable { .. })
                ));
                // No I/O happens on this path; the bound is generous for a loaded machine and
                // still far below the pool's acquire timeout plus a connect attempt.
                assert!(
                    start.elapsed() < Duration::from_secs(1),
                    "fail fast: {:?}",
                    start.elapsed()
                );
                assert!(c.pool.begin().await.is_err());
                let (by_server, errors) = c.read_load(4, 20).await;
                assert!(
                    errors.is_empty(),
                    "reads fail with the primary down: {errors:?}"
                );
                assert!(!by_server.contains_key("primary"));
                assert_eq!(by_server.values().sum::<usize>(), 80);

                KIND.restart(Server::Primary);
                let back = eventually(Duration::from_secs(30), || async {
                    c.pool.status().primary.eligible
                })
                .await;
                assert!(back, "{:?}", c.pool.status());
                c.pool
                    .execute(AssertSqlSafe(insert))
                    .await
                    .expect("writes work again");
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn degrade_switch_and_rotation_control() {
                let _serial = SERIAL.lock().await;
                let Some(c) = cluster(options()).await else {
                    return;
                };
                c.pool.force_primary(true);
                for _ in 0..10 {
                    assert_eq!(c.who(&c.pool).await, "primary", "forced to the primary");
                }
                assert_eq!(c.pool.explain(WHO).reason, Reason::ForcedToPrimary);
                c.pool.force_primary(false);
                for _ in 0..10 {
                    assert_ne!(c.who(&c.pool).await, "primary");
                }
                c.pool.set_in_rotation("replica2", false).unwrap();
                for _ in 0..10 {
                    assert_eq!(c.who(&c.pool).await, "replica1");
                }
                c.pool.set_in_rotation("replica2", true).unwrap();
                assert!(matches!(
                    c.pool.set_in_rotation("nope", false),
                    Err(Error::UnknownReplica(_))
                ));
                assert_eq!(c.pool.status().monitor_tasks, 3);
            }

            /// Writes `i`, reads it back at once; counts reads older than the write.
            async fn stale_reads<'e, E>(t: &str, cycles: i64, exec: impl Fn() -> E) -> usize
            where
                E: Executor<'e, Database = Db>,
            {
                let update = format!("UPDATE {t} SET v = {} WHERE id = 1", $param);
                let select = format!("SELECT v FROM {t} WHERE id = 1");
                let mut stale = 0;
                for i in 1..=cycles {
                    sqlx::query(AssertSqlSafe(update.clone()))
                        .bind(i)
                        .execute(exec())
                        .await
                        .expect("write");
                    let v: i64 = sqlx::query_scalar(AssertSqlSafe(select.clone()))
                        .fetch_one(exec())
                        .await
                        .expect("read");
                    if v < i {
                        stale += 1;
                    }
                }
                stale
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn read_your_writes_sees_no_stale_read_where_eventual_does() {
                let _serial = SERIAL.lock().await;
                let Some(c) = cluster(options()).await else {
                    return;
                };
                let t = c.table().await;
                KIND.delay(Server::Replica(1), 1).await;
                let eventual = stale_reads(&t, 100, || &c.pool).await;
                assert!(
                    eventual > 0,
                    "the test can see stale reads: {eventual} of 100 with Eventual"
                );
                let session = c.pool.session();
                let offset = 1000_i64;
                let update = format!("UPDATE {t} SET v = {} WHERE id = 1", $param);
                sqlx::query(AssertSqlSafe(update))
                    .bind(offset)
                    .execute(&session)
                    .await
                    .unwrap();
                let causal = stale_reads(&t, 1000, || &session).await;
                assert_eq!(causal, 0, "read-your-writes returned stale data");
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_token_continues_the_session_in_another_pool() {
                let _serial = SERIAL.lock().await;
                let Some(a) = cluster(options()).await else {
                    return;
                };
                let Some(b) = cluster(options()).await else {
                    return;
                };
                let t = a.table().await;
                KIND.delay(Server::Replica(1), 1).await;
                KIND.delay(Server::Replica(2), 1).await;
                let update = format!("UPDATE {t} SET v = {} WHERE id = 1", $param);
                let select = format!("SELECT v FROM {t} WHERE id = 1");
                for i in 1..=20_i64 {
                    let writer = a.pool.session();
                    sqlx::query(AssertSqlSafe(update.clone()))
                        .bind(i)
                        .execute(&writer)
                        .await
                        .unwrap();
                    let token = writer.token().await.unwrap().to_string();
                    let reader = b.pool.resume(&token).expect("same cluster");
                    let v: i64 = sqlx::query_scalar(AssertSqlSafe(select.clone()))
                        .fetch_one(&reader)
                        .await
                        .unwrap();
                    assert_eq!(v, i, "the other service reads its caller's write");
                }
                KIND.heal(2).await;
            }

            #[cfg(feature = "metrics")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected() {
                let _serial = SERIAL.lock().await;
                let opts = options().causal_wait_timeout(Duration::from_millis(30));
                let Some(c) = cluster_of(opts, &[1]).await else {
                    return;
                };
                let registry = prometheus::Registry::new();
                let primary = c.pool.primary_pool().clone();
                let replica = c.pool.replica_pool("replica1").unwrap().clone();
                let metered = RoutingPool::builder(primary)
                    .replica("replica1", replica)
                    .metrics(&registry, None)
                    .options(options().causal_wait_timeout(Duration::from_millis(30)))
                    .build()
                    .unwrap();
                let t = c.table().await;
                KIND.delay(Server::Replica(1), 2).await;
                // The metered pool is new: wait for its monitor to find the replica eligible (a
                // read before that falls back for want of an eligible replica, not for the wait).
                let ready = eventually(Duration::from_secs(30), || async {
                    let r = &metered.status().replicas[0];
                    r.eligible && r.probes > 0
                })
                .await;
                assert!(ready, "metered pool ready: {:?}", metered.status());
                let session = metered.session();
                let update = format!("UPDATE {t} SET v = 77 WHERE id = 1");
                session.execute(AssertSqlSafe(update)).await.unwrap();
                let v: i64 =
                    sqlx::query_scalar(AssertSqlSafe(format!("SELECT v FROM {t} WHERE id = 1")))
                        .fetch_one(&session)
                        .await
                        .unwrap();
                assert_eq!(v, 77);
                let fallbacks = registry
                    .gather()
                    .into_iter()
                    .find(|f| f.name() == "rwsplit_fallbacks_total")
                    .map(|f| {
                        f.get_metric()
                            .iter()
                            .filter(|m| {
                                // Waited out the budget, or skipped the wait because the
                                // monitor had already seen the replica lag past it: which
                                // depends on whether a probe ran since the delay began.
                                m.get_label().iter().any(|l| {
                                    l.value() == "causal_wait_timeout" || l.value() == "causal_lag"
                                })
                            })
                            .map(|m| m.get_counter().get_value())
                            .sum::<f64>()
                    })
                    .unwrap_or(0.0);
                assert!(fallbacks >= 1.0, "the causal fallback is recorded");
                assert!(matches!(
                    c.pool.resume("not a token"),
                    Err(Error::MalformedToken(_))
                ));
                let other = RoutingPool::builder(c.pool.primary_pool().clone())
                    .options(options().cluster_name("another"))
                    .build()
                    .unwrap();
                let foreign = other.session().token().await.unwrap().to_string();
                assert!(matches!(
                    c.pool.resume(&foreign),
                    Err(Error::ForeignToken { .. })
                ));
                KIND.heal(2).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn time_window_mode_reads_from_the_primary_right_after_a_write() {
                let _serial = SERIAL.lock().await;
                let opts = options().causal_window(Duration::from_millis(300));
                let Some(c) = cluster(opts).await else { return };
                let t = c.table().await;
                let session = c.pool.session();
                assert_ne!(c.who(&session).await, "primary", "no write yet");
                session
                    .execute(AssertSqlSafe(format!("UPDATE {t} SET v = 9 WHERE id = 1")))
                    .await
                    .unwrap();
                assert_eq!(c.who(&session).await, "primary", "inside the window");
                tokio::time::sleep(Duration::from_millis(400)).await;
                assert_ne!(c.who(&session).await, "primary", "after the window");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn causal_reads_without_recent_writes_use_replicas() {
                let _serial = SERIAL.lock().await;
                let Some(c) = cluster(options()).await else {
                    return;
                };
                let session = c.pool.session();
                for _ in 0..10 {
                    assert_ne!(
                        c.who(&session).await,
                        "primary",
                        "no write yet: replicas serve"
                    );
                }
                let t = c.table().await;
                session
                    .execute(AssertSqlSafe(format!("UPDATE {t} SET v = 5 WHERE id = 1")))
                    .await
                    .unwrap();
                // Once replicas have applied the write, causal reads go back to them.
                let mut on_replicas = 0;
                for _ in 0..20 {
                    if c.who(&session).await != "primary" {
                        on_replicas += 1;
                    }
                }
                assert!(
                    on_replicas >= 15,
                    "causal reads after a write: {on_replicas} of 20 on replicas"
                );
            }
        }
    };
}

#[cfg(feature = "mysql")]
cluster_suite! {
    mod mariadb;
    db = sqlx::MySql;
    kind = Kind::MariaDb;
    primary = "RWSPLIT_MYSQL_PRIMARY";
    replicas = ["RWSPLIT_MYSQL_REPLICA_1", "RWSPLIT_MYSQL_REPLICA_2"];
    identity = "SELECT CAST(@@server_id AS SIGNED)";
    param = "?";
}

#[cfg(feature = "postgres")]
cluster_suite! {
    mod postgres;
    db = sqlx::Postgres;
    kind = Kind::Postgres;
    primary = "RWSPLIT_PG_PRIMARY";
    replicas = ["RWSPLIT_PG_STANDBY_1", "RWSPLIT_PG_STANDBY_2"];
    identity = "SELECT inet_server_port()::int8";
    param = "$1";
}
