//! Following the writer on real servers (issue #15): a planned switchover and an unplanned
//! failover under a 32-task mixed load, and a split brain, each on a cluster of its own
//! (primary plus two replicas) started by the project's scripts in a state dir of its own, so
//! the shared servers of the other suites are never touched. The drills are the scripts' own
//! `switchover`, `failover` and `promote` commands, as in the README's "Failover drills".
//!
//! Timing is measured and printed (the time writes were unavailable), never asserted: the
//! bounds asserted are outcomes (no acknowledged write lost, no write run on a demoted server,
//! no failed read, typed errors only).

mod common;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod drill {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rwsplit::{Backend, Error, PoolOptions, Role, RoutingPool};
    use sqlx::{AssertSqlSafe, Executor, Row};

    use super::common::eventually;

    /// Which scripts, and how their servers are named.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(dead_code)] // with one backend feature, the other variant is never built
    pub enum Kind {
        MariaDb,
        Postgres,
    }

    impl Kind {
        fn script(self) -> &'static str {
            match self {
                Kind::MariaDb => "mariadb.sh",
                Kind::Postgres => "postgres.sh",
            }
        }

        /// The script's name for replica `n` (the pool names it `replica{n}` for both).
        fn replica(self, n: u8) -> String {
            match self {
                Kind::MariaDb => format!("replica{n}"),
                Kind::Postgres => format!("standby{n}"),
            }
        }

        fn var(self, server: &str, admin: bool) -> String {
            let (prefix, name) = match (self, server) {
                (Kind::MariaDb, "primary") => ("RWSPLIT_MYSQL", "PRIMARY".to_string()),
                (Kind::Postgres, "primary") => ("RWSPLIT_PG", "PRIMARY".to_string()),
                (Kind::MariaDb, r) => ("RWSPLIT_MYSQL", format!("REPLICA_{}", &r[7..])),
                (Kind::Postgres, r) => ("RWSPLIT_PG", format!("STANDBY_{}", &r[7..])),
            };
            let admin = if admin { "ADMIN_" } else { "" };
            format!("{prefix}_{admin}{name}")
        }

        /// The port the answering server listens on.
        fn who(self) -> &'static str {
            match self {
                Kind::MariaDb => "SELECT CAST(@@port AS SIGNED)",
                Kind::Postgres => "SELECT inet_server_port()::int8",
            }
        }
    }

    /// A cluster of its own, stopped (by the script, which signals only its own PIDs) when
    /// dropped, also when the test panics.
    pub struct Cluster {
        kind: Kind,
        script: PathBuf,
        state: PathBuf,
        env: HashMap<String, String>,
    }

    impl Cluster {
        /// Starts primary + 2 replicas. `None` (a skip) only outside CI when the servers'
        /// binaries are missing; under `CI=true` a failure to start fails the test.
        pub fn start(kind: Kind) -> Option<Cluster> {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let state = std::env::temp_dir().join(format!(
                "rwsplit-switchover-{}-{}",
                kind.script(),
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&state);
            let cluster = Cluster {
                kind,
                script: root.join("scripts").join(kind.script()),
                state,
                env: HashMap::new(),
            };
            let flag = match kind {
                Kind::MariaDb => "--replicas",
                Kind::Postgres => "--standbys",
            };
            let out = cluster.command(&["start", flag, "2"]);
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr).to_string();
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("starting the {kind:?} drill cluster failed: {why}");
                }
                eprintln!("skipping: cannot start the {kind:?} drill cluster: {why}");
                return None;
            }
            let mut cluster = cluster;
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                    cluster
                        .env
                        .insert(k.to_string(), v.trim_matches('\'').to_string());
                }
            }
            Some(cluster)
        }

        fn command(&self, args: &[&str]) -> std::process::Output {
            Command::new(&self.script)
                .args(args)
                .env("RWSPLIT_STATE_DIR", &self.state)
                .output()
                .expect("run the server script")
        }

        /// Runs a drill command; returns what it printed on stderr (its timings).
        pub fn drill(&self, args: &[&str]) -> String {
            let out = self.command(args);
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                out.status.success(),
                "{} {args:?} failed: {err}",
                self.kind.script()
            );
            err
        }

        /// Blocking drill on a thread of its own, so the load keeps running meanwhile.
        pub async fn drill_async(self: &Arc<Self>, args: &[&str]) -> String {
            let me = self.clone();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                me.drill(&args)
            })
            .await
            .expect("drill thread")
        }

        pub fn url(&self, server: &str) -> String {
            let var = self.kind.var(server, false);
            self.env
                .get(&var)
                .cloned()
                .unwrap_or_else(|| panic!("{var} missing from the drill cluster's env"))
        }

        fn admin_url(&self, server: &str) -> String {
            let var = self.kind.var(server, true);
            self.env
                .get(&var)
                .cloned()
                .unwrap_or_else(|| panic!("{var} missing from the drill cluster's env"))
        }

        /// Runs statements as the administrator on one server.
        async fn admin<DB: Backend>(&self, server: &str, statements: &[&str]) {
            let pool = sqlx_pool::<DB>(&self.admin_url(server));
            for sql in statements {
                DB::pool_executor(&pool)
                    .execute(AssertSqlSafe(sql.to_string()))
                    .await
                    .unwrap_or_else(|e| panic!("{sql} on {server}: {e}"));
            }
            pool.close().await;
        }

        /// Makes the writer acknowledge a commit only once a replica has it (MariaDB semi-sync
        /// after sync, PostgreSQL `synchronous_standby_names`), as a deployment that must not
        /// lose acknowledged writes in a failover does: with asynchronous replication, a
        /// commit acknowledged just before the writer dies can be on no other server.
        async fn synchronous<DB: Backend>(&self, writer: &str, replicas: &[&str]) {
            match self.kind {
                Kind::MariaDb => {
                    self.admin::<DB>(
                        writer,
                        &[
                            "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                            "SET GLOBAL rpl_semi_sync_master_timeout = 60000",
                            "SET GLOBAL rpl_semi_sync_master_enabled = ON",
                        ],
                    )
                    .await;
                    for r in replicas {
                        self.admin::<DB>(
                            r,
                            &[
                                "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
                                "STOP SLAVE IO_THREAD",
                                "START SLAVE IO_THREAD",
                            ],
                        )
                        .await;
                    }
                }
                Kind::Postgres => {
                    self.admin::<DB>(
                        writer,
                        &[
                            "ALTER SYSTEM SET synchronous_standby_names = '*'",
                            "SELECT pg_reload_conf()",
                        ],
                    )
                    .await;
                }
            }
        }

        fn port(&self, server: &str) -> i64 {
            let url = self.url(server);
            let after = url.rsplit_once(':').expect("url with port").1;
            after
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port")
        }

        /// The script's name of the pool's server `name` (`primary`, `replica1`, `replica2`).
        fn script_name(&self, name: &str) -> String {
            match name.strip_prefix("replica") {
                Some(n) => self.kind.replica(n.parse().expect("replica number")),
                None => name.to_string(),
            }
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            let _ = self.command(&["stop"]);
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }

    fn sqlx_pool<DB: Backend>(url: &str) -> sqlx::Pool<DB> {
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(20))
            .connect_lazy(url)
            .expect("pool options")
    }

    async fn routing_pool<DB: Backend>(
        c: &Cluster,
        registry: &prometheus::Registry,
    ) -> RoutingPool<DB> {
        let pool = RoutingPool::builder(sqlx_pool(&c.url("primary")))
            .metrics(registry, None)
            .replica("replica1", sqlx_pool(&c.url(&c.kind.replica(1))))
            .replica("replica2", sqlx_pool(&c.url(&c.kind.replica(2))))
            .options(
                PoolOptions::new()
                    .monitor_interval(Duration::from_millis(100))
                    .probe_timeout(Duration::from_millis(1000))
                    .breaker_cooldown(Duration::from_millis(200))
                    // Longer than the default, for a loaded machine: the drill finishes well
                    // within it (the time is printed), and a planned switchover must fail no
                    // write.
                    .write_hold(Duration::from_secs(20)),
            )
            .build()
            .expect("build");
        let ready = eventually(Duration::from_secs(60), || async {
            let s = pool.status();
            s.primary.eligible && s.replicas.iter().all(|r| r.eligible && r.probes > 0)
        })
        .await;
        assert!(ready, "cluster healthy at start: {:?}", pool.status());
        pool
    }

    /// What a mixed load saw.
    #[derive(Default)]
    struct Load {
        acked: BTreeSet<i64>,
        /// Writes that failed, with whether the error was rwsplit's typed, retriable one.
        write_errors: Vec<(bool, String)>,
        /// When each failed write started and ended (for the message when a drill fails).
        failed_at: Vec<(Instant, Instant)>,
        read_errors: Vec<String>,
        /// When each acknowledged write completed.
        acked_at: Vec<Instant>,
        reads: usize,
    }

    impl Load {
        /// When each failed write started and ended, in seconds from `from`.
        fn failures_from(&self, from: Instant) -> Vec<(f64, f64)> {
            let secs = |t: Instant| {
                let d = if t >= from {
                    (t - from).as_secs_f64()
                } else {
                    -(from - t).as_secs_f64()
                };
                (d * 1000.0).round() / 1000.0
            };
            self.failed_at
                .iter()
                .map(|&(a, b)| (secs(a), secs(b)))
                .collect()
        }

        /// The longest time between two acknowledged writes in `window` (the drill's run): how
        /// long writes were unavailable.
        fn longest_gap(&self, window: (Instant, Instant)) -> Duration {
            let mut times: Vec<Instant> = self.acked_at.clone();
            times.sort();
            let mut last = window.0;
            let mut gap = Duration::ZERO;
            for t in times.into_iter().filter(|t| *t >= window.0) {
                gap = gap.max(t - last);
                last = t;
                if t > window.1 {
                    break;
                }
            }
            gap
        }
    }

    /// 32 tasks, each writing a row of its own and then reading, until `stop`.
    async fn mixed_load<DB: Backend>(
        pool: &RoutingPool<DB>,
        table: &str,
        base: i64,
        stop: Arc<AtomicBool>,
    ) -> Load {
        let mut handles = Vec::new();
        for task in 0..32i64 {
            let pool = pool.clone();
            let table = table.to_string();
            let stop = stop.clone();
            handles.push(tokio::spawn(async move {
                let mut load = Load::default();
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = base + task * 1_000_000 + n;
                    let insert = format!("INSERT INTO {table} (id, v) VALUES ({id}, {task})");
                    let sent = Instant::now();
                    match pool.execute(AssertSqlSafe(insert)).await {
                        Ok(_) => {
                            load.acked.insert(id);
                            load.acked_at.push(Instant::now());
                        }
                        Err(e) => {
                            let typed = matches!(
                                Error::from_sqlx(&e),
                                Some(Error::PrimaryUnavailable { .. } | Error::SplitBrain { .. })
                            );
                            load.write_errors.push((typed, e.to_string()));
                            load.failed_at.push((sent, Instant::now()));
                        }
                    }
                    let read = format!("SELECT id FROM {table} WHERE v = {task} LIMIT 5");
                    match pool.fetch_all(AssertSqlSafe(read)).await {
                        Ok(_) => load.reads += 1,
                        Err(e) => load.read_errors.push(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                load
            }));
        }
        let mut all = Load::default();
        for h in handles {
            let l = h.await.expect("load task");
            all.acked.extend(l.acked);
            all.acked_at.extend(l.acked_at);
            all.write_errors.extend(l.write_errors);
            all.failed_at.extend(l.failed_at);
            all.read_errors.extend(l.read_errors);
            all.reads += l.reads;
        }
        all
    }

    /// Every id in `table` on one server, read on a plain sqlx pool of its own.
    async fn ids_on<DB: Backend>(url: &str, table: &str) -> BTreeSet<i64>
    where
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        let pool = sqlx_pool::<DB>(url);
        let rows = DB::pool_executor(&pool)
            .fetch_all(AssertSqlSafe(format!("SELECT id FROM {table}")))
            .await
            .unwrap_or_else(|e| panic!("read {table} on {url}: {e}"));
        pool.close().await;
        rows.iter().map(|r| r.get::<i64, _>(0)).collect()
    }

    /// Waits until every running server has the same rows as the writer, and returns them.
    async fn converged<DB: Backend>(c: &Cluster, servers: &[&str], table: &str) -> BTreeSet<i64>
    where
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (same, last) = loop {
            let mut seen = BTreeMap::new();
            for s in servers {
                seen.insert(s.to_string(), ids_on::<DB>(&c.url(s), table).await);
            }
            let first = seen.values().next().cloned();
            let all_same = seen.values().all(|v| Some(v) == first.as_ref());
            if all_same || Instant::now() > deadline {
                break (all_same, seen);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let sizes: Vec<(String, usize)> = last.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        assert!(same, "servers converge on the same rows: {sizes:?}");
        last.into_values().next().unwrap_or_default()
    }

    async fn who<DB: Backend>(c: &Cluster, pool: &RoutingPool<DB>) -> Option<String>
    where
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        let row = pool.fetch_one(AssertSqlSafe(c.kind.who())).await.ok()?;
        let port: i64 = row.get(0);
        ["primary", "replica1", "replica2"]
            .into_iter()
            .find(|s| c.port(&c.script_name(s)) == port)
            .map(str::to_string)
    }

    fn writer_is<DB: Backend>(pool: &RoutingPool<DB>, name: &str) -> bool {
        let s = pool.status();
        s.writer.as_deref() == Some(name)
    }

    /// The whole drill on one backend: a planned switchover under load (with a token from
    /// before it, and the demoted primary then serving reads), an unplanned failover under
    /// load, and a split brain.
    pub async fn follow_the_writer<DB: Backend>(kind: Kind)
    where
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        if std::env::var_os("RWSPLIT_TEST_LOG").is_some() {
            // Opt in, to diagnose a failed drill: rwsplit's own log (writer changes, breakers)
            // with times, beside the drill's. Off by default: an installed subscriber turns on
            // every call's span, which changes the timing under test.
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
                .with_test_writer()
                .try_init();
        }
        let Some(c) = Cluster::start(kind) else {
            return;
        };
        let c = Arc::new(c);
        let registry = prometheus::Registry::new();
        let pool = routing_pool::<DB>(&c, &registry).await;
        let t = "drill";
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");

        // A session that wrote before the switchover.
        let session = pool.session();
        session
            .execute(AssertSqlSafe(format!(
                "INSERT INTO {t} (id, v) VALUES (1, -1)"
            )))
            .await
            .expect("session write");
        let token = session.token().await.expect("token").to_string();

        // 1. Planned switchover to replica 1, under load.
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn({
            let (pool, stop) = (pool.clone(), stop.clone());
            async move { mixed_load(&pool, t, 100_000_000, stop).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = Instant::now();
        let timings = c.drill_async(&["switchover", &kind.replica(1)]).await;
        let ended = Instant::now();
        let moved = eventually(Duration::from_secs(30), || async {
            writer_is(&pool, "replica1")
        })
        .await;
        assert!(moved, "writes follow the new writer: {:?}", pool.status());
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let load = load.await.expect("load");
        let gap = load.longest_gap((began, ended + Duration::from_secs(1)));
        eprintln!(
            "{kind:?} planned switchover: {} writes acknowledged, {} failed, {} reads, {} failed; \
             writes unavailable for {gap:?} (drill took {:?}); drill said:\n{timings}",
            load.acked.len(),
            load.write_errors.len(),
            load.reads,
            load.read_errors.len(),
            ended - began,
        );
        assert!(
            load.read_errors.is_empty(),
            "failed reads: {:?}",
            load.read_errors
        );
        // MariaDB's fence (`read_only`) waits for the writes running on the old writer: a
        // planned switchover fails none. PostgreSQL's (`default_transaction_read_only` and a
        // reload) cannot wait for a write a backend read just before the reload and has not
        // yet reported: on a loaded machine (four CPU burners) the fast shutdown cut one such
        // write in two of three runs (never on a quiet machine). It may have run, so it fails
        // with the typed, retriable error, as it would fail with plain sqlx.
        let allowed = match kind {
            Kind::MariaDb => 0,
            Kind::Postgres => 2,
        };
        assert!(
            load.write_errors.len() <= allowed && load.write_errors.iter().all(|(typed, _)| *typed),
            "a planned switchover fails at most {allowed} write(s), each with the typed error: \
             {:?}",
            load.write_errors
        );
        assert!(!load.acked.is_empty());
        let servers = ["replica1", &kind.replica(2), "primary"].map(|s| c.script_name(s));
        let servers: Vec<&str> = servers.iter().map(String::as_str).collect();
        let rows = converged::<DB>(&c, &servers, t).await;
        let lost: Vec<&i64> = load.acked.difference(&rows).collect();
        assert!(
            lost.is_empty(),
            "acknowledged writes lost: {} {lost:?}",
            lost.len()
        );
        let s = pool.status();
        assert_eq!(s.writer.as_deref(), Some("replica1"));
        assert_eq!(s.replicas[0].role, Role::Primary);
        assert!(s.writer_changes >= 1, "{s:?}");
        // The metrics say the same.
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("metrics");
        let value = |name: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        };
        assert_eq!(
            value(r#"rwsplit_writer{replica="replica1",role="replica"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(r#"rwsplit_writer{replica="",role="primary"}"#),
            Some(0.0),
            "{text}"
        );
        assert!(
            value("rwsplit_writer_changes_total").unwrap_or(0.0) >= 1.0,
            "{text}"
        );

        // The token from before the switchover is honoured: its write is visible.
        let resumed = pool
            .resume(&token)
            .expect("the token survives the switchover");
        let row = resumed
            .fetch_optional(AssertSqlSafe(format!("SELECT v FROM {t} WHERE id = 1")))
            .await
            .expect("read with the old token");
        assert!(
            row.is_some(),
            "the session's write is visible after the switchover"
        );

        // The demoted primary replicates from the new writer and serves reads.
        let serving = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.primary.role == Role::Replica && s.primary.eligible
        })
        .await;
        assert!(
            serving,
            "the old primary rejoins as a replica: {:?}",
            pool.status()
        );
        pool.set_in_rotation("replica2", false).expect("replica2");
        let mut by = BTreeMap::new();
        for _ in 0..20 {
            *by.entry(who(&c, &pool).await).or_insert(0) += 1;
        }
        pool.set_in_rotation("replica2", true).expect("replica2");
        assert_eq!(
            by.get(&Some("primary".to_string())),
            Some(&20),
            "reads go to the demoted primary, the only replica in rotation: {by:?}"
        );

        // 2. Unplanned failover: SIGKILL the writer (replica 1), promote the old primary.
        //    A transaction open on the writer is cut: its error says to retry. The writer
        //    acknowledges commits once a replica has them, or no failover could keep them.
        c.synchronous::<DB>(
            &c.script_name("replica1"),
            &[&c.script_name("primary"), &c.script_name("replica2")],
        )
        .await;
        let mut cut = pool.begin().await.expect("begin on the writer");
        DB::conn_executor(&mut cut)
            .execute(AssertSqlSafe(format!(
                "INSERT INTO {t} (id, v) VALUES (2, -2)"
            )))
            .await
            .expect("write in the transaction");
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn({
            let (pool, stop) = (pool.clone(), stop.clone());
            async move { mixed_load(&pool, t, 200_000_000, stop).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = Instant::now();
        let timings = c.drill_async(&["failover", "primary"]).await;
        let ended = Instant::now();
        let moved = eventually(Duration::from_secs(30), || async {
            writer_is(&pool, "primary")
        })
        .await;
        let followed = began.elapsed();
        assert!(
            moved,
            "writes follow the promoted server: {:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let load = load.await.expect("load");
        let gap = load.longest_gap((began, ended + Duration::from_secs(1)));
        eprintln!(
            "{kind:?} unplanned failover: {} writes acknowledged, {} failed, {} reads, {} failed; \
             writes unavailable for {gap:?} (drill took {:?}; the pool saw the new writer after \
             {followed:?}); drill said:\n{timings}",
            load.acked.len(),
            load.write_errors.len(),
            load.reads,
            load.read_errors.len(),
            ended - began,
        );
        assert!(
            load.read_errors.is_empty(),
            "failed reads: {:?}",
            load.read_errors
        );
        let err = match DB::conn_executor(&mut cut)
            .execute(AssertSqlSafe(format!(
                "INSERT INTO {t} (id, v) VALUES (3, -3)"
            )))
            .await
        {
            Ok(_) => match cut.commit().await {
                Ok(()) => panic!("a transaction on a killed server cannot commit"),
                Err(e) => e,
            },
            Err(e) => e,
        };
        assert!(
            pool.is_retriable(&err),
            "a cut transaction's error is retriable: {err}"
        );
        let mut again = pool.begin().await.expect("begin on the new writer");
        DB::conn_executor(&mut again)
            .execute(AssertSqlSafe(format!(
                "INSERT INTO {t} (id, v) VALUES (2, -2)"
            )))
            .await
            .expect("the transaction again, on the new writer");
        again.commit().await.expect("commit on the new writer");
        let untyped: Vec<&String> = load
            .write_errors
            .iter()
            .filter(|(typed, _)| !typed)
            .map(|(_, e)| e)
            .collect();
        assert!(
            untyped.is_empty(),
            "writes fail only with the typed error: {untyped:?}; failed writes (start, end) in \
             seconds from the drill's start: {:?}; status now: {:?}",
            load.failures_from(began),
            pool.status()
        );
        let servers = ["primary", &kind.replica(2)].map(|s| c.script_name(s));
        let servers: Vec<&str> = servers.iter().map(String::as_str).collect();
        let rows = converged::<DB>(&c, &servers, t).await;
        let lost: Vec<&i64> = load.acked.difference(&rows).collect();
        eprintln!(
            "{kind:?} unplanned failover: {} acknowledged writes lost",
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "acknowledged writes lost: {} {lost:?}",
            lost.len()
        );

        // 3. Split brain: replica 2 promoted beside the writer. Writes are refused with the
        //    typed error, never sent to one of them.
        c.drill(&["promote", &kind.replica(2)]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut refused = None;
        while refused.is_none() && Instant::now() < deadline {
            let insert = format!("INSERT INTO {t} (id, v) VALUES (30000000, 0)");
            match pool.execute(AssertSqlSafe(insert)).await {
                Err(e) if matches!(Error::from_sqlx(&e), Some(Error::SplitBrain { .. })) => {
                    refused = Some(e.to_string());
                }
                Ok(_) => {
                    let delete = format!("DELETE FROM {t} WHERE id = 30000000");
                    let _ = pool.execute(AssertSqlSafe(delete)).await;
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let found = refused.is_some();
        assert!(
            found,
            "writes refused in a split brain: {:?}",
            pool.status()
        );
        let s = pool.status();
        assert_eq!(s.writer, None);
        assert_eq!(
            s.split_brain
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            BTreeSet::from(["primary", "replica2"]),
            "{s:?}"
        );
        eprintln!("{kind:?} split brain: {}", refused.unwrap_or_default());
        drop(c);
    }
}

/// Writes held while no server accepts writes, on the shared servers of the suite: the primary
/// is made read-only for a moment (MariaDB `read_only`, PostgreSQL
/// `default_transaction_read_only`) and writable again, with no other writer to take over.
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod hold {
    use std::time::Duration;

    use rwsplit::{Backend, Error, PoolOptions, RoutingPool};
    use sqlx::{AssertSqlSafe, Executor};

    use super::common::faults::{Kind, Server};
    use super::common::{eventually, server_url, unique_table};

    fn demote(kind: Kind) -> &'static [&'static str] {
        match kind {
            Kind::MariaDb => &["SET GLOBAL read_only = 1"],
            Kind::Postgres => &[
                "ALTER SYSTEM SET default_transaction_read_only = on",
                "SELECT pg_reload_conf()",
            ],
        }
    }

    fn promote(kind: Kind) -> &'static [&'static str] {
        match kind {
            Kind::MariaDb => &["SET GLOBAL read_only = 0"],
            Kind::Postgres => &[
                "ALTER SYSTEM RESET default_transaction_read_only",
                "SELECT pg_reload_conf()",
            ],
        }
    }

    /// Makes the primary writable again when the test ends, also when it panics.
    struct Writable(Kind);

    impl Drop for Writable {
        fn drop(&mut self) {
            let kind = self.0;
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(kind.admin(Server::Primary, promote(kind)))
            })
            .join();
        }
    }

    fn sqlx_pool<DB: Backend>(url: &str) -> sqlx::Pool<DB> {
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(4)
            .connect_lazy(url)
            .expect("pool options")
    }

    /// A write waits while the primary is read-only and no other server is writable, a second
    /// one finds the queue full and fails at once with the typed error, reads go on, and the
    /// held write runs once the primary is writable again.
    pub async fn writes_wait_for_a_writer<DB: Backend>(kind: Kind, primary: &str, replica: &str) {
        let (Some(primary), Some(replica)) = (server_url(primary), server_url(replica)) else {
            return;
        };
        let pool = RoutingPool::builder(sqlx_pool::<DB>(&primary))
            .replica("replica1", sqlx_pool(&replica))
            .options(
                PoolOptions::new()
                    .monitor_interval(Duration::from_millis(100))
                    .write_hold(Duration::from_secs(60))
                    .max_held_writes(1),
            )
            .build()
            .expect("build");
        let t = unique_table("hold");
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");
        pool.wait_for_replicas(Duration::from_secs(30))
            .await
            .expect("the replica has the table");

        let _writable = Writable(kind);
        kind.admin(Server::Primary, demote(kind)).await;
        // The monitor sees the primary read-only first. Without this wait, a PostgreSQL
        // backend that sat idle in the pool through the reload runs the next write with the
        // old setting (it reads the reload only after that command), and the write succeeds.
        let no_writer = eventually(Duration::from_secs(30), || async {
            pool.status().writer.is_none()
        })
        .await;
        assert!(
            no_writer,
            "the primary is seen read-only: {:?}",
            pool.status()
        );
        let held = tokio::spawn({
            let (pool, t) = (pool.clone(), t.clone());
            async move {
                pool.execute(AssertSqlSafe(format!(
                    "INSERT INTO {t} (id, v) VALUES (1, 1)"
                )))
                .await
            }
        });
        let waiting = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.held_writes == 1 && s.writer.is_none()
        })
        .await;
        assert!(waiting, "the write waits for a writer: {:?}", pool.status());
        let Err(err) = pool
            .execute(AssertSqlSafe(format!(
                "INSERT INTO {t} (id, v) VALUES (2, 2)"
            )))
            .await
        else {
            panic!("the queue of held writes is full: the second write must fail");
        };
        assert!(
            matches!(
                Error::from_sqlx(&err),
                Some(Error::PrimaryUnavailable { .. })
            ),
            "the typed error: {err}"
        );
        assert!(pool.is_retriable(&err));
        pool.fetch_all(AssertSqlSafe(format!("SELECT id FROM {t}")))
            .await
            .expect("reads go on");
        assert!(!held.is_finished(), "still waiting");

        kind.admin(Server::Primary, promote(kind)).await;
        held.await
            .expect("task")
            .expect("the held write runs once the primary is writable again");
        let s = pool.status();
        assert_eq!(s.writer.as_deref(), Some("primary"), "{s:?}");
        assert!(s.writer_changes >= 2, "to none and back: {s:?}");
        let rows = DB::pool_executor(pool.primary_pool())
            .fetch_all(AssertSqlSafe(format!("SELECT id FROM {t}")))
            .await
            .expect("read on the primary");
        assert_eq!(
            rows.len(),
            1,
            "the held write ran once, the refused one never"
        );
        pool.execute(AssertSqlSafe(format!("DROP TABLE {t}")))
            .await
            .expect("drop");
    }
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_writes_wait_for_a_writer_in_a_bounded_queue() {
    hold::writes_wait_for_a_writer::<sqlx::MySql>(
        common::faults::Kind::MariaDb,
        "RWSPLIT_MYSQL_PRIMARY",
        "RWSPLIT_MYSQL_REPLICA_1",
    )
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_wait_for_a_writer_in_a_bounded_queue() {
    hold::writes_wait_for_a_writer::<sqlx::Postgres>(
        common::faults::Kind::Postgres,
        "RWSPLIT_PG_PRIMARY",
        "RWSPLIT_PG_STANDBY_1",
    )
    .await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_follows_the_writer_through_switchover_failover_and_split_brain() {
    drill::follow_the_writer::<sqlx::MySql>(drill::Kind::MariaDb).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_follows_the_writer_through_switchover_failover_and_split_brain() {
    drill::follow_the_writer::<sqlx::Postgres>(drill::Kind::Postgres).await;
}
