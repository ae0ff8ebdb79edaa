//! Routing against real servers, one suite for every backend with replicas: each statement's
//! server is identified on the server side (`@@server_id` on MariaDB/MySQL,
//! `inet_server_port()` on PostgreSQL), replicas run read-only so a misrouted write fails
//! loudly, and a labelled corpus checks the classifier differentially against the replica.
//!
//! Plain functions over a per-backend [`Flavor`](cluster::Flavor) (environment variables and
//! the SQL that differs), one `#[tokio::test]` per backend and function.

mod common;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod cluster {
    use std::collections::{BTreeSet, HashMap};
    use std::time::Duration;

    use futures_util::TryStreamExt;
    use rwsplit::{scope, Backend, Balance, Reason, Route, RoutingPool, Target};
    use sqlx::pool::PoolOptions;
    use sqlx::{AssertSqlSafe, Executor, Row, SqlSafeStr};

    use super::common::cluster::{identity, replicated};
    use super::common::{self, eventually, server_url};

    /// What differs between the backends.
    pub struct Flavor {
        pub primary: &'static str,
        pub replicas: [&'static str; 2],
        /// A query of one BIGINT that names the server answering it.
        pub identity: &'static str,
        /// The first bind parameter's placeholder.
        pub param: &'static str,
        /// The locking clauses a `SELECT` can end with.
        pub locking: &'static [&'static str],
        /// The identity query, with a function that has a side effect (takes a lock).
        pub side_effect_identity: &'static str,
        /// The labelled corpus and the schema it runs against, from the crate root.
        pub corpus: &'static str,
        pub schema: &'static str,
    }

    /// `rows_affected()`, an inherent method of each backend's query result.
    pub trait RowsAffected {
        fn rows_affected(&self) -> u64;
    }

    #[cfg(feature = "mysql")]
    impl RowsAffected for sqlx::mysql::MySqlQueryResult {
        fn rows_affected(&self) -> u64 {
            sqlx::mysql::MySqlQueryResult::rows_affected(self)
        }
    }

    #[cfg(feature = "postgres")]
    impl RowsAffected for sqlx::postgres::PgQueryResult {
        fn rows_affected(&self) -> u64 {
            sqlx::postgres::PgQueryResult::rows_affected(self)
        }
    }

    pub struct Cluster<DB: Backend> {
        pool: RoutingPool<DB>,
        names: HashMap<i64, String>,
        replica_pools: Vec<(String, sqlx::Pool<DB>)>,
        identity: &'static str,
    }

    async fn connect<DB: Backend>(url: &str) -> sqlx::Pool<DB> {
        PoolOptions::<DB>::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to a test server: {e}"))
    }

    async fn cluster_with<DB>(f: &Flavor, balance: Balance, replicas: bool) -> Option<Cluster<DB>>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let primary = connect::<DB>(&server_url(f.primary)?).await;
        let mut names = HashMap::new();
        names.insert(
            identity(f.identity, DB::pool_executor(&primary)).await,
            "primary".to_string(),
        );
        let options = rwsplit::PoolOptions::new().function_volatility(true);
        let mut builder = RoutingPool::builder(primary)
            .balance(balance)
            .options(options);
        let mut replica_pools = Vec::new();
        if replicas {
            for (i, var) in f.replicas.into_iter().enumerate() {
                let Some(url) = server_url(var) else { continue };
                let pool = connect::<DB>(&url).await;
                let name = format!("replica{}", i + 1);
                names.insert(
                    identity(f.identity, DB::pool_executor(&pool)).await,
                    name.clone(),
                );
                replica_pools.push((name.clone(), pool.clone()));
                builder = builder.replica(name, pool);
            }
        }
        Some(Cluster {
            pool: builder.build().expect("build pool"),
            names,
            replica_pools,
            identity: f.identity,
        })
    }

    async fn cluster<DB>(f: &Flavor) -> Option<Cluster<DB>>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        cluster_with(f, Balance::RoundRobin, true).await
    }

    impl<DB> Cluster<DB>
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        async fn who<'e, E: Executor<'e, Database = DB>>(&self, e: E) -> String {
            let id = identity(self.identity, e).await;
            self.names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("unknown server {id}"))
        }

        async fn table(&self) -> String {
            let t = common::unique_table("rt");
            let ddl = format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
            self.pool
                .execute(AssertSqlSafe(ddl))
                .await
                .expect("create table via the pool");
            t
        }

        async fn replicated(&self, t: &str, rows: i64) {
            replicated(&self.replica_pools, t, rows).await;
        }
    }

    pub async fn replicas_are_read_only_so_misroutes_fail_loudly<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let t = c.table().await;
        c.replicated(&t, 0).await;
        for (_, replica) in &c.replica_pools {
            let insert = format!("INSERT INTO {t} (id, v) VALUES (1, 1)");
            let err = DB::pool_executor(replica)
                .execute(AssertSqlSafe(insert))
                .await;
            assert!(err.is_err(), "a write on a replica must fail");
        }
    }

    pub async fn pure_reads_run_on_every_replica_in_turn<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let mut seen = BTreeSet::new();
        for _ in 0..12 {
            let who = c.who(&c.pool).await;
            assert!(who.starts_with("replica"), "a pure read ran on {who}");
            seen.insert(who);
        }
        assert_eq!(
            seen.len(),
            c.replica_pools.len(),
            "round robin reaches every replica"
        );
        let d = c.pool.explain(f.identity);
        assert_eq!((d.target, d.reason), (Target::Replica, Reason::PureRead));
    }

    pub async fn writes_and_locking_reads_run_on_the_primary<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let t = c.table().await;
        let insert = format!("INSERT INTO {t} (id, v) VALUES ({}, 10)", f.param);
        let done = sqlx::query(AssertSqlSafe(insert))
            .bind(1_i64)
            .execute(&c.pool)
            .await
            .map(drop);
        assert!(done.is_ok(), "insert through the pool: {done:?}");
        for clause in f.locking {
            let sql = format!("{} FROM {t} WHERE id = 1 {clause}", f.identity);
            let mut tx = c.pool.begin().await.unwrap();
            assert_eq!(
                c.who(DB::conn_executor(&mut tx)).await,
                "primary",
                "{sql} in a transaction"
            );
            tx.rollback().await.unwrap();
            assert!(c.who(&c.pool).await.starts_with("replica"));
            let who = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.clone()))
                .fetch_one(&c.pool)
                .await
                .expect(&sql);
            assert_eq!(c.names[&who], "primary", "{sql}");
        }
        let who = sqlx::query_scalar::<_, i64>(f.side_effect_identity)
            .fetch_one(&c.pool)
            .await
            .unwrap();
        assert_eq!(c.names[&who], "primary", "side-effect call");
        c.replicated(&t, 1).await;
    }

    pub async fn transactions_are_pinned_to_one_primary_connection<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let t = c.table().await;
        let mut tx = c.pool.begin().await.unwrap();
        let insert = format!("INSERT INTO {t} (id, v) VALUES (7, 70)");
        DB::conn_executor(&mut tx)
            .execute(AssertSqlSafe(insert))
            .await
            .unwrap();
        let sql = format!("SELECT v FROM {t} WHERE id = 7");
        let v: i64 = sqlx::query_scalar(AssertSqlSafe(sql.clone()))
            .fetch_one(DB::conn_executor(&mut tx))
            .await
            .unwrap();
        assert_eq!(v, 70, "the uncommitted row is visible: same connection");
        assert_eq!(c.who(DB::conn_executor(&mut tx)).await, "primary");
        tx.commit().await.unwrap();
        c.replicated(&t, 1).await;
        for raw in ["BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK"] {
            assert_eq!(c.pool.explain(raw).target, Target::Primary, "{raw}");
        }
    }

    pub async fn hints_by_call_scope_and_comment<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        assert_eq!(c.who(c.pool.primary()).await, "primary");
        assert!(c.who(c.pool.replica()).await.starts_with("replica"));
        let commented = format!("/* rwsplit:primary */ {}", f.identity);
        let who = sqlx::query_scalar::<_, i64>(AssertSqlSafe(commented))
            .fetch_one(&c.pool)
            .await
            .unwrap();
        assert_eq!(c.names[&who], "primary");
        let in_scope = scope(Route::Primary, async { c.who(&c.pool).await }).await;
        assert_eq!(in_scope, "primary");
        let nested = scope(
            Route::Primary,
            scope(Route::Replica, async { c.who(&c.pool).await }),
        )
        .await;
        assert!(
            nested.starts_with("replica"),
            "innermost scope wins: {nested}"
        );
        // A replica hint never moves a write: this insert would fail on a replica.
        let t = c.table().await;
        let insert = format!("INSERT INTO {t} (id, v) VALUES (1, 1)");
        c.pool
            .replica()
            .execute(AssertSqlSafe(insert.clone()))
            .await
            .expect("replica-hinted write");
        let insert2 = insert.replace("(1, 1)", "(2, 2)");
        scope(Route::Replica, async {
            c.pool.execute(AssertSqlSafe(insert2)).await
        })
        .await
        .expect("write in a replica scope");
        c.replicated(&t, 2).await;
    }

    pub async fn without_replicas_everything_runs_on_the_primary<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster_with::<DB>(f, Balance::default(), false).await else {
            return;
        };
        assert_eq!(c.who(&c.pool).await, "primary");
        assert_eq!(c.pool.explain(f.identity).reason, Reason::NoReplica);
    }

    pub async fn every_query_form_keeps_its_semantics<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        DB: sqlx::database::HasStatementCache,
        DB::QueryResult: RowsAffected,
    {
        let Some(c) = cluster_with::<DB>(f, Balance::Random, true).await else {
            return;
        };
        let t = c.table().await;
        for i in 1..=3_i64 {
            let sql = format!("INSERT INTO {t} (id, v) VALUES ({}, 0)", f.param);
            sqlx::query(AssertSqlSafe(sql))
                .bind(i)
                .execute(&c.pool)
                .await
                .unwrap();
        }
        let upd = format!("UPDATE {t} SET v = id * 10");
        let done = c.pool.execute(AssertSqlSafe(upd)).await.unwrap();
        assert_eq!(done.rows_affected(), 3);
        c.replicated(&t, 3).await;
        let select = format!("SELECT id, v FROM {t} WHERE id >= {} ORDER BY id", f.param);
        let rows: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(select.clone()))
            .bind(2_i64)
            .fetch_all(&c.pool)
            .await
            .unwrap();
        assert!(
            rows == vec![(2, 20), (3, 30)] || rows == vec![(2, 0), (3, 0)],
            "{rows:?}"
        );
        let ok = eventually(Duration::from_secs(10), || async {
            let rows: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(select.clone()))
                .bind(2_i64)
                .fetch_all(&c.pool)
                .await
                .unwrap();
            rows == vec![(2, 20), (3, 30)]
        })
        .await;
        assert!(ok, "query_as with a bound argument reads replicated rows");
        let streamed: Vec<i64> =
            sqlx::query(AssertSqlSafe(format!("SELECT id FROM {t} ORDER BY id")))
                .fetch(&c.pool)
                .map_ok(|row| row.get::<i64, _>(0))
                .try_collect()
                .await
                .unwrap();
        assert_eq!(streamed, vec![1, 2, 3]);
        let none = sqlx::query(AssertSqlSafe(format!("SELECT id FROM {t} WHERE id = 99")))
            .fetch_optional(&c.pool)
            .await
            .unwrap();
        assert!(none.is_none());
        let stmt = (&c.pool)
            .prepare(
                AssertSqlSafe(format!("SELECT v FROM {t} WHERE id = {}", f.param)).into_sql_str(),
            )
            .await
            .unwrap();
        let v: i64 = sqlx::Statement::query_scalar(&stmt)
            .bind(3_i64)
            .fetch_one(&c.pool)
            .await
            .unwrap();
        assert_eq!(v, 30);
        let persistent_off = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT v FROM {t} WHERE id = {}",
            f.param
        )))
        .bind(1_i64)
        .persistent(false)
        .fetch_one(&c.pool)
        .await
        .unwrap();
        assert_eq!(persistent_off, 10);
    }

    pub async fn configuration_checks_catch_common_mistakes<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let found = c.pool.check_config().await;
        assert!(
            found.is_empty(),
            "the test cluster is configured right: {found:?}"
        );
        let primary_url = server_url(f.primary).unwrap();
        let replica_url = server_url(f.replicas[0]).unwrap();
        let built = RoutingPool::builder(connect::<DB>(&primary_url).await)
            .replica("oops", connect::<DB>(&primary_url).await)
            .build_checked()
            .await;
        assert!(
            matches!(&built, Err(rwsplit::Error::ReplicaIsPrimary(name)) if name == "oops"),
            "a replica pool that reaches the primary is refused"
        );
        let oversized = PoolOptions::<DB>::new()
            .max_connections(100_000)
            .idle_timeout(Duration::from_secs(3600))
            .max_lifetime(Duration::from_secs(60))
            .connect_lazy(&replica_url)
            .unwrap();
        let (_, issues) = RoutingPool::builder(connect::<DB>(&primary_url).await)
            .replica("big", oversized)
            .build_checked()
            .await
            .expect("only warnings");
        assert!(
            issues.iter().any(|i| matches!(
                i,
                rwsplit::ConfigIssue::PoolLargerThanServer { server, pool_max: 100_000, .. }
                    if server == "big"
            )),
            "{issues:?}"
        );
        assert!(
            issues.iter().any(|i| matches!(
                i,
                rwsplit::ConfigIssue::IdleTimeoutNotBelowMaxLifetime { server, .. }
                    if server == "big"
            )),
            "{issues:?}"
        );
        assert!(
            !issues
                .iter()
                .any(|i| matches!(i, rwsplit::ConfigIssue::WritableReplica { .. })),
            "{issues:?}"
        );
    }

    pub async fn corpus_routes_safely_and_reads_run_on_the_read_only_replica<DB>(f: &Flavor)
    where
        DB: Backend,
        for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let Some(c) = cluster::<DB>(f).await else {
            return;
        };
        let dir = env!("CARGO_MANIFEST_DIR");
        for stmt in common::schema_statements(&format!("{dir}/{}", f.schema)) {
            sqlx::raw_sql(AssertSqlSafe(stmt.clone()))
                .execute(DB::pool_executor(c.pool.primary_pool()))
                .await
                .unwrap_or_else(|e| panic!("schema: {stmt}: {e}"));
        }
        let marker = c.table().await;
        c.replicated(&marker, 0).await;
        let corpus = common::read_corpus(&format!("{dir}/{}", f.corpus));
        let (mut reads, mut reads_on_replica, mut failures) = (0, 0, Vec::new());
        for line in &corpus {
            // Ask the server about user functions first (PostgreSQL's volatility).
            let _ = c.pool.learn_functions(&line.sql).await;
            let d = c.pool.explain(&line.sql);
            if line.class == "read" {
                reads += 1;
            } else if d.target != Target::Primary {
                failures.push(format!(
                    "line {}: {} `{}` went to {} ({})",
                    line.line, line.class, line.sql, d.target, d.reason
                ));
            }
            if d.target == Target::Replica {
                if line.class == "read" {
                    reads_on_replica += 1;
                }
                for (_, replica) in &c.replica_pools {
                    match sqlx::raw_sql(AssertSqlSafe(line.sql.clone()))
                        .execute(DB::pool_executor(replica))
                        .await
                    {
                        // sqlx runs COPY ... TO STDOUT only through copy_out_raw, not the
                        // query API: the server accepted it (CopyOutResponse).
                        Err(e) if e.to_string().contains("CopyOutResponse") => {}
                        Err(e) => failures.push(format!(
                            "line {}: `{}` failed on the replica: {e}",
                            line.line, line.sql
                        )),
                        Ok(_) => {}
                    }
                }
            }
        }
        assert!(
            corpus.len() >= 250,
            "corpus has {} statements",
            corpus.len()
        );
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
        let share = reads_on_replica as f64 / reads as f64;
        eprintln!(
            "{reads_on_replica}/{reads} pure reads routed to a replica ({:.1}%)",
            share * 100.0
        );
        assert!(
            share >= 0.95,
            "only {reads_on_replica} of {reads} pure reads went to a replica"
        );
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use sqlx::MySql;

    use super::cluster::{self, Flavor};

    const F: Flavor = Flavor {
        primary: "RWSPLIT_MYSQL_PRIMARY",
        replicas: ["RWSPLIT_MYSQL_REPLICA_1", "RWSPLIT_MYSQL_REPLICA_2"],
        identity: "SELECT CAST(@@server_id AS SIGNED)",
        param: "?",
        locking: &["FOR UPDATE", "LOCK IN SHARE MODE", "FOR UPDATE SKIP LOCKED"],
        side_effect_identity:
            "SELECT CAST(@@server_id AS SIGNED) FROM (SELECT GET_LOCK('rwsplit_test', 0) AS l) AS x",
        corpus: "tests/corpus/mysql.tsv",
        schema: "tests/corpus/mysql_schema.sql",
    };

    #[tokio::test]
    async fn replicas_are_read_only_so_misroutes_fail_loudly() {
        cluster::replicas_are_read_only_so_misroutes_fail_loudly::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn pure_reads_run_on_every_replica_in_turn() {
        cluster::pure_reads_run_on_every_replica_in_turn::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn writes_and_locking_reads_run_on_the_primary() {
        cluster::writes_and_locking_reads_run_on_the_primary::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn transactions_are_pinned_to_one_primary_connection() {
        cluster::transactions_are_pinned_to_one_primary_connection::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn hints_by_call_scope_and_comment() {
        cluster::hints_by_call_scope_and_comment::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn without_replicas_everything_runs_on_the_primary() {
        cluster::without_replicas_everything_runs_on_the_primary::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn every_query_form_keeps_its_semantics() {
        cluster::every_query_form_keeps_its_semantics::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn configuration_checks_catch_common_mistakes() {
        cluster::configuration_checks_catch_common_mistakes::<MySql>(&F).await;
    }

    #[tokio::test]
    async fn corpus_routes_safely_and_reads_run_on_the_read_only_replica() {
        cluster::corpus_routes_safely_and_reads_run_on_the_read_only_replica::<MySql>(&F).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::Postgres;

    use super::cluster::{self, Flavor};

    const F: Flavor = Flavor {
        primary: "RWSPLIT_PG_PRIMARY",
        replicas: ["RWSPLIT_PG_STANDBY_1", "RWSPLIT_PG_STANDBY_2"],
        identity: "SELECT inet_server_port()::int8",
        param: "$1",
        locking: &[
            "FOR UPDATE",
            "FOR NO KEY UPDATE",
            "FOR SHARE",
            "FOR KEY SHARE",
            "FOR UPDATE SKIP LOCKED",
        ],
        side_effect_identity:
            "SELECT inet_server_port()::int8 FROM (SELECT pg_try_advisory_xact_lock(42) AS l) AS x",
        corpus: "tests/corpus/postgres.tsv",
        schema: "tests/corpus/postgres_schema.sql",
    };

    #[tokio::test]
    async fn replicas_are_read_only_so_misroutes_fail_loudly() {
        cluster::replicas_are_read_only_so_misroutes_fail_loudly::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn pure_reads_run_on_every_replica_in_turn() {
        cluster::pure_reads_run_on_every_replica_in_turn::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn writes_and_locking_reads_run_on_the_primary() {
        cluster::writes_and_locking_reads_run_on_the_primary::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn transactions_are_pinned_to_one_primary_connection() {
        cluster::transactions_are_pinned_to_one_primary_connection::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn hints_by_call_scope_and_comment() {
        cluster::hints_by_call_scope_and_comment::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn without_replicas_everything_runs_on_the_primary() {
        cluster::without_replicas_everything_runs_on_the_primary::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn every_query_form_keeps_its_semantics() {
        cluster::every_query_form_keeps_its_semantics::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn configuration_checks_catch_common_mistakes() {
        cluster::configuration_checks_catch_common_mistakes::<Postgres>(&F).await;
    }

    #[tokio::test]
    async fn corpus_routes_safely_and_reads_run_on_the_read_only_replica() {
        cluster::corpus_routes_safely_and_reads_run_on_the_read_only_replica::<Postgres>(&F).await;
    }
}

/// PostgreSQL only: the server's own word on user functions (`pg_proc.provolatile`).
#[cfg(feature = "postgres")]
#[tokio::test]
async fn learned_volatility_keeps_volatile_functions_on_the_primary() {
    use rwsplit::{PoolOptions, Reason, RoutingPool, Target};
    use sqlx::{AssertSqlSafe, Executor};
    let Some(primary_url) = common::server_url("RWSPLIT_PG_PRIMARY") else {
        return;
    };
    let Some(standby_url) = common::server_url("RWSPLIT_PG_STANDBY_1") else {
        return;
    };
    let primary = sqlx::PgPool::connect(&primary_url).await.unwrap();
    let standby = sqlx::PgPool::connect(&standby_url).await.unwrap();
    let suffix = std::process::id();
    let (log, volatile, immutable) = (
        format!("vol_log_{suffix}"),
        format!("vol_insert_{suffix}"),
        format!("imm_add_{suffix}"),
    );
    for ddl in [
        format!("CREATE TABLE {log} (id serial PRIMARY KEY)"),
        format!("CREATE FUNCTION {volatile}() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO {log} DEFAULT VALUES RETURNING id $$"),
        format!("CREATE FUNCTION {immutable}(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$"),
    ] {
        primary.execute(AssertSqlSafe(ddl)).await.unwrap();
    }
    let pool = RoutingPool::builder(primary.clone())
        .replica("standby1", standby)
        .options(PoolOptions::new().function_volatility(true))
        .build()
        .unwrap();
    let call_volatile = format!("SELECT {volatile}()");
    let call_immutable = format!("SELECT {immutable}(1, 2)");
    // Unknown at first: fail-safe on the primary while the server is asked.
    assert_eq!(pool.explain(&call_immutable).target, Target::Primary);
    pool.learn_functions(&call_volatile).await.unwrap();
    pool.learn_functions(&call_immutable).await.unwrap();
    let d = pool.explain(&call_volatile);
    assert_eq!(d.target, Target::Primary, "{d:?}");
    assert!(matches!(d.reason, Reason::SideEffectFunction(_)), "{d:?}");
    assert_eq!(pool.explain(&call_immutable).target, Target::Replica);
    // Run both through the pool: the volatile one inserts, which only the primary allows.
    let id: i32 = sqlx::query_scalar(AssertSqlSafe(call_volatile))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(id >= 1);
    let sum: i32 = sqlx::query_scalar(AssertSqlSafe(call_immutable))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sum, 3);
    for ddl in [
        format!("DROP FUNCTION {volatile}()"),
        format!("DROP FUNCTION {immutable}(int, int)"),
        format!("DROP TABLE {log}"),
    ] {
        primary.execute(AssertSqlSafe(ddl)).await.unwrap();
    }
}
