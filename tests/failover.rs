//! Replica health, lag-aware routing, failover and read-your-writes against real servers, one
//! suite for MariaDB and PostgreSQL: replicas are killed (SIGKILL), hung (SIGSTOP), delayed
//! (`MASTER_DELAY` / `recovery_min_apply_delay`) and cut off (`STOP SLAVE` /
//! `pg_wal_replay_pause()`), and the primary is killed, while reads and writes go through the
//! pool. Outcomes are asserted by counts and by the server that answered.
//!
//! Plain functions over a per-backend [`Flavor`](cluster::Flavor) (environment variables and
//! the SQL that differs). The tests change shared servers, so within a backend they run one at
//! a time (a lock), and each fault test holds a [`Heal`](common::faults::Heal) guard that
//! heals the cluster when it ends, also when an assertion fails.

mod common;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod cluster {
    use std::collections::{BTreeMap, HashMap};
    use std::time::{Duration, Instant};

    use rwsplit::{
        Backend, Balance, BreakerState, Consistency, Error, PoolOptions, Reason, RoutingPool,
        Target,
    };
    use sqlx::pool::PoolOptions as SqlxPoolOptions;
    use sqlx::{AssertSqlSafe, Executor};

    use super::common::cluster::{identity, replica_pools, replicated};
    use super::common::faults::{Heal, Kind, Server};
    use super::common::{eventually, server_url, unique_table};

    /// What differs between the backends.
    pub struct Flavor {
        pub kind: Kind,
        pub primary: &'static str,
        pub replicas: [&'static str; 2],
        /// A query of one BIGINT that names the server answering it.
        pub identity: &'static str,
        /// The first bind parameter's placeholder.
        pub param: &'static str,
    }

    impl Flavor {
        /// `UPDATE t SET v = <the bound value> WHERE id = 1`.
        fn update(&self, t: &str) -> String {
            format!("UPDATE {t} SET v = {} WHERE id = 1", self.param)
        }
    }

    pub struct Cluster<DB: Backend> {
        pool: RoutingPool<DB>,
        names: HashMap<i64, &'static str>,
        who: &'static str,
    }

    // Derived `Clone` would ask for `DB: Clone`.
    impl<DB: Backend> Clone for Cluster<DB> {
        fn clone(&self) -> Self {
            Self {
                pool: self.pool.clone(),
                names: self.names.clone(),
                who: self.who,
            }
        }
    }

    fn options() -> PoolOptions {
        PoolOptions::new()
            .monitor_interval(Duration::from_millis(100))
            // A probe gets a second: three silent probes in a row are evidence of a hung
            // server, and on a loaded machine half a second can pass without one.
            .probe_timeout(Duration::from_secs(1))
            .replica_timeout(Duration::from_millis(800))
            .breaker_cooldown(Duration::from_millis(200))
    }

    fn sqlx_pool<DB: Backend>(url: &str, acquire_timeout: Duration) -> sqlx::Pool<DB> {
        SqlxPoolOptions::<DB>::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect_lazy(url)
            .expect("pool options")
    }

    /// The sqlx pools wait up to 10 s for a connection: a loaded machine can take well over a
    /// second to open one (PostgreSQL forks a backend and runs SCRAM), and a read must not fail
    /// for that. A hung server cannot hold a read that long: the replica watchdog
    /// (`replica_timeout`) ends it.
    async fn cluster_of<DB>(
        f: &Flavor,
        options: PoolOptions,
        replicas: &[u8],
    ) -> Option<Cluster<DB>>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        cluster_with(f, options, replicas, Duration::from_secs(10)).await
    }

    /// A cluster whose sqlx pools wait `acquire_timeout` for a connection.
    async fn cluster_with<DB>(
        f: &Flavor,
        options: PoolOptions,
        replicas: &[u8],
        acquire_timeout: Duration,
    ) -> Option<Cluster<DB>>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let mut names = HashMap::new();
        let primary_url = server_url(f.primary)?;
        // Whatever an earlier test left broken (even one that panicked) is healed first.
        f.kind.heal(2).await;
        let primary = sqlx_pool::<DB>(&primary_url, acquire_timeout);
        names.insert(
            identity(f.identity, DB::pool_executor(&primary)).await,
            "primary",
        );
        let mut builder = RoutingPool::builder(primary)
            .balance(Balance::RoundRobin)
            .options(options);
        for n in replicas {
            let (var, name) = match n {
                1 => (f.replicas[0], "replica1"),
                _ => (f.replicas[1], "replica2"),
            };
            let pool = sqlx_pool::<DB>(&server_url(var)?, acquire_timeout);
            names.insert(identity(f.identity, DB::pool_executor(&pool)).await, name);
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
        Some(Cluster {
            pool,
            names,
            who: f.identity,
        })
    }

    async fn cluster<DB>(f: &Flavor, options: PoolOptions) -> Option<Cluster<DB>>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        cluster_of(f, options, &[1, 2]).await
    }

    impl<DB> Cluster<DB>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        fn name(&self, id: i64) -> &'static str {
            self.names.get(&id).copied().unwrap_or("unknown")
        }

        async fn who<'e, E: Executor<'e, Database = DB>>(&self, e: E) -> &'static str {
            self.name(identity(self.who, e).await)
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
                let who = self.who;
                handles.push(tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..reads {
                        let r = sqlx::query_scalar::<_, i64>(who).fetch_one(&pool).await;
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
            let t = unique_table("fo");
            let ddl = format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
            self.pool.execute(AssertSqlSafe(ddl)).await.expect("create");
            let insert = format!("INSERT INTO {t} (id, v) VALUES (1, 0)");
            self.pool
                .execute(AssertSqlSafe(insert))
                .await
                .expect("insert");
            replicated(&replica_pools(&self.pool), &t, 1).await;
            t
        }
    }

    pub async fn killed_replica_fails_no_read_and_rejoins_after_restart<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f, options()).await else {
            return;
        };
        let _heal = Heal::new(f.kind, 2);
        let load = {
            let c = c.clone();
            tokio::spawn(async move { c.read_load(8, 60).await })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        f.kind.signal(Server::Replica(1), "KILL");
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

        f.kind.restart(Server::Replica(1));
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
    }

    /// The primary and replica 1 in a routing pool whose replica pool has `max` connections
    /// (`acquire_timeout` 20 s), healthy, and the replica's identity.
    async fn small_cluster<DB>(
        f: &Flavor,
        options: PoolOptions,
        max: u32,
    ) -> Option<(RoutingPool<DB>, sqlx::Pool<DB>, i64)>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let primary_url = server_url(f.primary)?;
        let replica_url = server_url(f.replicas[0])?;
        f.kind.heal(2).await;
        let replica = SqlxPoolOptions::<DB>::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(20))
            .connect_lazy(&replica_url)
            .expect("pool options");
        let replica_id = identity(f.identity, DB::pool_executor(&replica)).await;
        let monitored = !options.get_monitor_interval().is_zero();
        let pool = RoutingPool::builder(sqlx_pool::<DB>(&primary_url, Duration::from_secs(10)))
            .options(options)
            .replica("replica1", replica.clone())
            .build()
            .expect("build");
        let ready = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.replicas[0].eligible && (!monitored || s.replicas[0].probes > 0)
        })
        .await;
        assert!(ready, "replica eligible: {:?}", pool.status());
        Some((pool, replica, replica_id))
    }

    /// A read routed while the replica's pool had an idle connection, which then waits in
    /// sqlx's queue past `replica_timeout` because another read took that connection first, is
    /// queueing, not facing a hung server (the replica answered that other read meanwhile): its
    /// bound is renewed and the replica answers it; the replica's breaker stays closed. It used
    /// to be abandoned at the bound, open the breaker of a healthy replica and move to the
    /// primary. The other read gives the connection back between the first expiry (4 to 4.5 s
    /// after the queued read starts) and the renewed one (8 s at the earliest).
    pub async fn a_read_queueing_in_a_full_replica_pool_is_not_a_hung_replica<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        use futures_util::StreamExt;
        use sqlx::Row;

        let bound = Duration::from_secs(4);
        // One connection: whoever holds it makes every other acquire queue.
        let Some((pool, replica, replica_id)) =
            small_cluster::<DB>(f, options().replica_timeout(bound), 1).await
        else {
            return;
        };
        let idle = eventually(Duration::from_secs(10), || async {
            replica.num_idle() == 1
        })
        .await;
        assert!(idle, "the replica's connection is idle");
        // Routed now, with the connection idle: not queued. Polled only below.
        let read = (&pool).fetch_optional(f.identity);
        // Another read takes the connection, has its first answer and keeps the connection.
        let mut stream = (&pool).fetch(f.identity);
        let first = stream
            .next()
            .await
            .expect("a row")
            .expect("the stream's read");
        assert_eq!(
            first.get::<i64, _>(0),
            replica_id,
            "the stream ran on the replica"
        );
        assert_eq!(
            replica.num_idle(),
            0,
            "the stream holds the only connection"
        );
        let (row, ()) = tokio::join!(read, async move {
            tokio::time::sleep(bound + bound / 4).await;
            drop(stream);
        });
        let row = row
            .unwrap_or_else(|e| panic!("the queued read failed: {e}; {:?}", pool.status()))
            .expect("a row");
        assert_eq!(
            row.get::<i64, _>(0),
            replica_id,
            "answered by the replica after queueing, not moved: {:?}",
            pool.status()
        );
        let status = pool.status();
        assert_eq!(
            status.replicas[0].breaker,
            BreakerState::Closed,
            "a replica that answered is not tripped by a queued read: {status:?}"
        );
        pool.close().await;
    }

    /// A read whose bound was renewed because it waited in a full pool while the replica
    /// answered others gets no second renewal once the replica hangs: without the monitor (no
    /// breaker to end it), it is abandoned after two bounds and answered by the primary, not
    /// held until the pool's `acquire_timeout` (20 s) by answers from before the hang.
    pub async fn a_renewed_read_is_abandoned_once_the_replica_answers_nobody<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        use futures_util::StreamExt;
        use sqlx::Row;

        let bound = Duration::from_secs(1);
        let opts = options()
            .replica_timeout(bound)
            .monitor_interval(Duration::ZERO);
        let Some((pool, replica, replica_id)) = small_cluster::<DB>(f, opts, 2).await else {
            return;
        };
        let _heal = Heal::new(f.kind, 2);
        // Two connections, both idle.
        let mut s1 = (&pool).fetch(f.identity);
        let mut s2 = (&pool).fetch(f.identity);
        assert_eq!(
            s1.next()
                .await
                .expect("a row")
                .expect("s1")
                .get::<i64, _>(0),
            replica_id
        );
        let room = eventually(Duration::from_secs(10), || async {
            replica.num_idle() > 0 || replica.size() < 2
        })
        .await;
        assert!(room, "a connection idle or room for one");
        // Routed with a connection idle or room for one (not queued); the second stream then
        // takes it and answers: the replica answered during the read's first bound.
        let read = (&pool).fetch_optional(f.identity);
        assert_eq!(
            s2.next()
                .await
                .expect("a row")
                .expect("s2")
                .get::<i64, _>(0),
            replica_id
        );
        let start = Instant::now();
        let (row, ()) = tokio::join!(read, async {
            // The read is queueing; the replica hangs; the read then gets the first stream's
            // connection and waits on the hung server.
            tokio::time::sleep(bound / 4).await;
            f.kind.signal(Server::Replica(1), "STOP");
            drop(s1);
        });
        let took = start.elapsed();
        let row = row
            .unwrap_or_else(|e| panic!("the read failed after {took:?}: {e}; {:?}", pool.status()))
            .expect("a row");
        assert_ne!(
            row.get::<i64, _>(0),
            replica_id,
            "the hung replica answered"
        );
        // Two bounds (each up to an eighth longer) and the retry; the margin is for a loaded
        // machine. Renewed on answers from before the hang, it would wait 20 s.
        let limit = bound * 3 + Duration::from_secs(5);
        assert!(took < limit, "the read took {took:?}, limit {limit:?}");
        drop(s2);
        f.kind.signal(Server::Replica(1), "CONT");
        pool.close().await;
    }

    /// Reads keep a two-connection replica pool full when the replica hangs (SIGSTOP), with and
    /// without the monitor: a read in flight then gets at most one renewal of its bound (for the
    /// answers the replica gave before it hung), never more: no read takes longer than two
    /// bounds plus the retry, none fails, and the hung replica answers none after the hang.
    pub async fn hung_replica_with_a_full_pool_holds_no_read_beyond_two_bounds<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let bound = Duration::from_millis(500);
        for monitor in [true, false] {
            let opts = options().replica_timeout(bound);
            let opts = if monitor {
                opts
            } else {
                opts.monitor_interval(Duration::ZERO)
            };
            let Some((pool, _replica, replica_id)) = small_cluster::<DB>(f, opts, 2).await else {
                return;
            };
            let _heal = Heal::new(f.kind, 2);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stopped_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let pool = pool.clone();
                let stop = stop.clone();
                let stopped_at = stopped_at.clone();
                let sql = f.identity;
                tasks.push(tokio::spawn(async move {
                    let mut slowest = Duration::ZERO;
                    let mut replica_after_hang = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let start = Instant::now();
                        let id: i64 = tokio::time::timeout(
                            Duration::from_secs(60),
                            sqlx::query_scalar(sql).fetch_one(&pool),
                        )
                        .await
                        .expect("a read ends")
                        .unwrap_or_else(|e| {
                            panic!(
                                "monitor {monitor}: a read failed after {:?}: {e}",
                                start.elapsed()
                            )
                        });
                        slowest = slowest.max(start.elapsed());
                        let hung_since = *stopped_at.lock().unwrap();
                        if id == replica_id && hung_since.is_some_and(|t| t < start) {
                            replica_after_hang += 1;
                        }
                    }
                    (slowest, replica_after_hang)
                }));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            f.kind.signal(Server::Replica(1), "STOP");
            *stopped_at.lock().unwrap() = Some(Instant::now());
            tokio::time::sleep(Duration::from_secs(6)).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut slowest = Duration::ZERO;
            let mut replica_after_hang = 0;
            for t in tasks {
                let (s, r) = t.await.expect("reader");
                slowest = slowest.max(s);
                replica_after_hang += r;
            }
            f.kind.signal(Server::Replica(1), "CONT");
            // Two bounds (each up to an eighth longer), then the retry on the primary; the
            // margin is for a loaded machine. Renewing until sqlx's acquire_timeout (20 s)
            // would exceed it.
            let limit = bound * 3 + Duration::from_secs(5);
            assert!(
                slowest < limit,
                "monitor {monitor}: slowest read {slowest:?}, limit {limit:?}: {:?}",
                pool.status()
            );
            assert_eq!(
                replica_after_hang, 0,
                "monitor {monitor}: the hung replica answered"
            );
            pool.close().await;
        }
    }

    pub async fn hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let opts = options();
        let Some(c) = cluster::<DB>(f, opts.clone()).await else {
            return;
        };
        for _ in 0..4 {
            c.who(&c.pool).await;
        }
        let _heal = Heal::new(f.kind, 2);
        f.kind.signal(Server::Replica(1), "STOP");
        let mut slowest = Duration::ZERO;
        let mut answered = BTreeMap::new();
        for i in 0..30 {
            let start = Instant::now();
            // A read the watchdog fails to end would hang until SIGCONT: cap it so the test
            // fails instead.
            let id: Result<i64, _> = tokio::time::timeout(
                Duration::from_secs(60),
                sqlx::query_scalar(f.identity).fetch_one(&c.pool),
            )
            .await
            .expect("a read on a hung replica ends");
            let took = start.elapsed();
            slowest = slowest.max(took);
            let id = id.unwrap_or_else(|e| {
                panic!(
                    "read {i} failed after {took:?} on a hung replica: {e:?}; answered so far \
                     {answered:?}; {:?}",
                    c.pool.status()
                )
            });
            *answered.entry(c.name(id)).or_insert(0) += 1;
        }
        f.kind.signal(Server::Replica(1), "CONT");
        // One timeout on the hung replica, then the retry elsewhere. The margin is for a loaded
        // machine (the retry's own answer can take a while there); a read that is not
        // abandoned at all hangs until SIGCONT and hits the cap above.
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
    }

    pub async fn hung_replica_times_out_on_both_call_paths_and_the_read_is_retried<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        // The monitor must not notice the hang first: its probes get 10 s here, so the reads
        // below can only end through the replica watchdog.
        let opts = options().probe_timeout(Duration::from_secs(10));
        // Nor sqlx's pool: a new connection to a hung server hangs in its handshake, so
        // acquiring may wait 10 s too.
        let acquire = Duration::from_secs(10);
        let Some(a) = cluster_with::<DB>(f, opts.clone(), &[1], acquire).await else {
            return;
        };
        let Some(b) = cluster_with::<DB>(f, opts.clone(), &[1], acquire).await else {
            return;
        };
        // Building `b` healed the cluster, which restarts replication on MariaDB (`delay 0`):
        // `a`'s monitor may have seen replica1 not applying meanwhile. Both must see it
        // eligible on probes made since, or a read goes to the primary without trying it.
        for c in [&a, &b] {
            let since = c.pool.status().replicas[0].probes;
            let fresh = eventually(Duration::from_secs(30), || async {
                let r = &c.pool.status().replicas[0];
                r.eligible && r.probes >= since + 2
            })
            .await;
            assert!(
                fresh,
                "replica1 eligible before the hang: {:?}",
                c.pool.status()
            );
        }
        let _heal = Heal::new(f.kind, 2);
        f.kind.signal(Server::Replica(1), "STOP");
        // `fetch_all` takes the stream path, `fetch_one` the future path.
        let (all, one) = tokio::join!(
            async {
                let start = Instant::now();
                let rows: Result<Vec<i64>, _> =
                    sqlx::query_scalar(f.identity).fetch_all(&a.pool).await;
                (rows.map(|r| r[0]), start.elapsed())
            },
            async {
                let start = Instant::now();
                let row: Result<i64, _> = sqlx::query_scalar(f.identity).fetch_one(&b.pool).await;
                (row, start.elapsed())
            },
        );
        f.kind.signal(Server::Replica(1), "CONT");
        // The bound, one watchdog tick (an eighth of it), and a margin for a loaded machine. A
        // read the watchdog never ends hangs until SIGCONT: the lower bound and the primary's
        // answer above are the real checks, this one only catches a read that waited the 10 s
        // probe or acquire timeout instead.
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
    }

    pub async fn delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up<DB>(
        f: &Flavor,
    ) where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let opts = options()
            .max_replica_lag(Duration::from_secs(1))
            .heartbeat_table("rwsplit_heartbeat");
        let Some(c) = cluster::<DB>(f, opts).await else {
            return;
        };
        let _heal = Heal::new(f.kind, 2);
        f.kind.delay(Server::Replica(1), 3).await;
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
        // With only the delayed replica in rotation: a bound above its 3 s delay accepts it, a
        // bound below it sends the read to the primary. (A 1 ms bound could be met by the
        // undelayed replica right after a heartbeat: racy.)
        c.pool.set_in_rotation("replica2", false).unwrap();
        let within = |bound| {
            rwsplit::with_consistency(Consistency::BoundedStaleness(bound), async {
                c.pool.explain(f.identity)
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

        f.kind.delay(Server::Replica(1), 0).await;
        assert!(
            c.eligible(0, true).await,
            "replica1 returns once caught up: {:?}",
            c.pool.status()
        );
    }

    pub async fn broken_replication_makes_a_replica_ineligible<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f, options()).await else {
            return;
        };
        let _heal = Heal::new(f.kind, 2);
        f.kind.stop_replication(Server::Replica(2)).await;
        assert!(c.eligible(1, false).await, "{:?}", c.pool.status());
        // On a loaded machine a probe can also go unanswered for a moment: wait for the
        // verdict the probes settle on.
        let broken = eventually(Duration::from_secs(30), || async {
            c.pool.status().replicas[1]
                .last_error
                .as_deref()
                .is_some_and(|why| why.contains("replication broken"))
        })
        .await;
        assert!(broken, "{:?}", c.pool.status());
        let (by_server, errors) = c.read_load(2, 20).await;
        assert!(errors.is_empty());
        assert!(!by_server.contains_key("replica2"), "{by_server:?}");
        f.kind.start_replication(Server::Replica(2)).await;
        assert!(c.eligible(1, true).await, "{:?}", c.pool.status());
    }

    pub async fn dead_primary_fails_writes_fast_and_reads_continue_on_replicas<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        // Without write_hold, writes fail at once while no writer is usable (with it, they
        // would wait that long for a new writer first: tests/switchover.rs). Replicas get the
        // default-like patience of 5 s per read: this test is about the dead primary, and under
        // four CPU burners an 800 ms replica_timeout took both replicas out at once, so a read
        // fell back to the dead primary (seen once in a .ci/run beside burners).
        let options = options()
            .write_hold(Duration::ZERO)
            .replica_timeout(Duration::from_secs(5));
        let Some(c) = cluster::<DB>(f, options).await else {
            return;
        };
        let t = c.table().await;
        let _heal = Heal::new(f.kind, 2);
        f.kind.signal(Server::Primary, "KILL");
        let insert = format!("INSERT INTO {t} (id, v) VALUES (2, 2)");
        // PostgreSQL backends of an already open connection can outlive a killed postmaster
        // for a moment; the first write that fails must be the dedicated error.
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
            .map(drop)
            .unwrap_err();
        assert!(matches!(
            Error::from_sqlx(&err),
            Some(Error::PrimaryUnavailable { .. })
        ));
        // No I/O happens on this path; the bound is generous for a loaded machine and still far
        // below the pool's acquire timeout plus a connect attempt.
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

        f.kind.restart(Server::Primary);
        let back = eventually(Duration::from_secs(30), || async {
            c.pool.status().primary.eligible
        })
        .await;
        assert!(back, "{:?}", c.pool.status());
        c.pool
            .execute(AssertSqlSafe(insert))
            .await
            .expect("writes work again");
    }

    pub async fn degrade_switch_and_rotation_control<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f, options()).await else {
            return;
        };
        c.pool.force_primary(true);
        for _ in 0..10 {
            assert_eq!(c.who(&c.pool).await, "primary", "forced to the primary");
        }
        assert_eq!(c.pool.explain(f.identity).reason, Reason::ForcedToPrimary);
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
    async fn stale_reads<'e, DB, E>(f: &Flavor, t: &str, cycles: i64, exec: impl Fn() -> E) -> usize
    where
        DB: Backend,
        E: Executor<'e, Database = DB>,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let update = f.update(t);
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

    pub async fn read_your_writes_sees_no_stale_read_where_eventual_does<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f, options()).await else {
            return;
        };
        let t = c.table().await;
        let _heal = Heal::new(f.kind, 2);
        f.kind.delay(Server::Replica(1), 1).await;
        let eventual = stale_reads(f, &t, 100, || &c.pool).await;
        assert!(
            eventual > 0,
            "the test can see stale reads: {eventual} of 100 with Eventual"
        );
        let session = c.pool.session();
        let offset = 1000_i64;
        sqlx::query(AssertSqlSafe(f.update(&t)))
            .bind(offset)
            .execute(&session)
            .await
            .unwrap();
        let causal = stale_reads(f, &t, 1000, || &session).await;
        assert_eq!(causal, 0, "read-your-writes returned stale data");
    }

    pub async fn a_token_continues_the_session_in_another_pool<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(a) = cluster::<DB>(f, options()).await else {
            return;
        };
        let Some(b) = cluster::<DB>(f, options()).await else {
            return;
        };
        let t = a.table().await;
        let _heal = Heal::new(f.kind, 2);
        f.kind.delay(Server::Replica(1), 1).await;
        f.kind.delay(Server::Replica(2), 1).await;
        let update = f.update(&t);
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
    }

    #[cfg(feature = "metrics")]
    pub async fn causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected<DB>(
        f: &Flavor,
    ) where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let opts = options().causal_wait_timeout(Duration::from_millis(30));
        let Some(c) = cluster_of::<DB>(f, opts, &[1]).await else {
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
        let _heal = Heal::new(f.kind, 2);
        f.kind.delay(Server::Replica(1), 2).await;
        // The metered pool is new: wait for its monitor to find the replica eligible (a read
        // before that falls back for want of an eligible replica, not for the wait).
        let ready = eventually(Duration::from_secs(30), || async {
            let r = &metered.status().replicas[0];
            r.eligible && r.probes > 0
        })
        .await;
        assert!(ready, "metered pool ready: {:?}", metered.status());
        let session = metered.session();
        let update = format!("UPDATE {t} SET v = 77 WHERE id = 1");
        session.execute(AssertSqlSafe(update)).await.unwrap();
        let v: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT v FROM {t} WHERE id = 1")))
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
                        // Waited out the budget, or skipped the wait because the monitor had
                        // already seen the replica lag past it: which depends on whether a
                        // probe ran since the delay began.
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
    }

    pub async fn time_window_mode_reads_from_the_primary_right_after_a_write<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let opts = options().causal_window(Duration::from_millis(300));
        let Some(c) = cluster::<DB>(f, opts).await else {
            return;
        };
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

    pub async fn causal_reads_without_recent_writes_use_replicas<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f, options()).await else {
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
        replicas: ["RWSPLIT_MYSQL_REPLICA_1", "RWSPLIT_MYSQL_REPLICA_2"],
        identity: "SELECT CAST(@@server_id AS SIGNED)",
        param: "?",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_replica_fails_no_read_and_rejoins_after_restart() {
        let _serial = SERIAL.lock().await;
        cluster::killed_replica_fails_no_read_and_rejoins_after_restart::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry::<MySql>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_times_out_on_both_call_paths_and_the_read_is_retried() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_times_out_on_both_call_paths_and_the_read_is_retried::<MySql>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_queueing_in_a_full_replica_pool_is_not_a_hung_replica() {
        let _serial = SERIAL.lock().await;
        cluster::a_read_queueing_in_a_full_replica_pool_is_not_a_hung_replica::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_renewed_read_is_abandoned_once_the_replica_answers_nobody() {
        let _serial = SERIAL.lock().await;
        cluster::a_renewed_read_is_abandoned_once_the_replica_answers_nobody::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_with_a_full_pool_holds_no_read_beyond_two_bounds() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_with_a_full_pool_holds_no_read_beyond_two_bounds::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up() {
        let _serial = SERIAL.lock().await;
        cluster::delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broken_replication_makes_a_replica_ineligible() {
        let _serial = SERIAL.lock().await;
        cluster::broken_replication_makes_a_replica_ineligible::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_primary_fails_writes_fast_and_reads_continue_on_replicas() {
        let _serial = SERIAL.lock().await;
        cluster::dead_primary_fails_writes_fast_and_reads_continue_on_replicas::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn degrade_switch_and_rotation_control() {
        let _serial = SERIAL.lock().await;
        cluster::degrade_switch_and_rotation_control::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_your_writes_sees_no_stale_read_where_eventual_does() {
        let _serial = SERIAL.lock().await;
        cluster::read_your_writes_sees_no_stale_read_where_eventual_does::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_continues_the_session_in_another_pool() {
        let _serial = SERIAL.lock().await;
        cluster::a_token_continues_the_session_in_another_pool::<MySql>(&F).await;
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected() {
        let _serial = SERIAL.lock().await;
        cluster::causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_window_mode_reads_from_the_primary_right_after_a_write() {
        let _serial = SERIAL.lock().await;
        cluster::time_window_mode_reads_from_the_primary_right_after_a_write::<MySql>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_reads_without_recent_writes_use_replicas() {
        let _serial = SERIAL.lock().await;
        cluster::causal_reads_without_recent_writes_use_replicas::<MySql>(&F).await;
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
        replicas: ["RWSPLIT_PG_STANDBY_1", "RWSPLIT_PG_STANDBY_2"],
        identity: "SELECT inet_server_port()::int8",
        param: "$1",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_replica_fails_no_read_and_rejoins_after_restart() {
        let _serial = SERIAL.lock().await;
        cluster::killed_replica_fails_no_read_and_rejoins_after_restart::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry::<Postgres>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_times_out_on_both_call_paths_and_the_read_is_retried() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_times_out_on_both_call_paths_and_the_read_is_retried::<Postgres>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_queueing_in_a_full_replica_pool_is_not_a_hung_replica() {
        let _serial = SERIAL.lock().await;
        cluster::a_read_queueing_in_a_full_replica_pool_is_not_a_hung_replica::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_renewed_read_is_abandoned_once_the_replica_answers_nobody() {
        let _serial = SERIAL.lock().await;
        cluster::a_renewed_read_is_abandoned_once_the_replica_answers_nobody::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_replica_with_a_full_pool_holds_no_read_beyond_two_bounds() {
        let _serial = SERIAL.lock().await;
        cluster::hung_replica_with_a_full_pool_holds_no_read_beyond_two_bounds::<Postgres>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up() {
        let _serial = SERIAL.lock().await;
        cluster::delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up::<
            Postgres,
        >(&F)
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broken_replication_makes_a_replica_ineligible() {
        let _serial = SERIAL.lock().await;
        cluster::broken_replication_makes_a_replica_ineligible::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_primary_fails_writes_fast_and_reads_continue_on_replicas() {
        let _serial = SERIAL.lock().await;
        cluster::dead_primary_fails_writes_fast_and_reads_continue_on_replicas::<Postgres>(&F)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn degrade_switch_and_rotation_control() {
        let _serial = SERIAL.lock().await;
        cluster::degrade_switch_and_rotation_control::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_your_writes_sees_no_stale_read_where_eventual_does() {
        let _serial = SERIAL.lock().await;
        cluster::read_your_writes_sees_no_stale_read_where_eventual_does::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_continues_the_session_in_another_pool() {
        let _serial = SERIAL.lock().await;
        cluster::a_token_continues_the_session_in_another_pool::<Postgres>(&F).await;
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected() {
        let _serial = SERIAL.lock().await;
        cluster::causal_wait_timeout_falls_back_to_the_primary_and_bad_tokens_are_rejected::<
            Postgres,
        >(&F)
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_window_mode_reads_from_the_primary_right_after_a_write() {
        let _serial = SERIAL.lock().await;
        cluster::time_window_mode_reads_from_the_primary_right_after_a_write::<Postgres>(&F).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn causal_reads_without_recent_writes_use_replicas() {
        let _serial = SERIAL.lock().await;
        cluster::causal_reads_without_recent_writes_use_replicas::<Postgres>(&F).await;
    }
}
