//! The spans a `RoutingPool` emits, as an OpenTelemetry backend sees them: `tracing` spans go
//! through `tracing-opentelemetry` into the SDK and an in-memory exporter, and each test asserts
//! the exported span's name, kind, status and attributes (OpenTelemetry database semantic
//! conventions plus `rwsplit.*`).
//!
//! Every test installs its own subscriber for its own thread (`set_default`), so tests run in
//! parallel without seeing each other's spans. SQLite needs no server; one test runs on MariaDB
//! (feature `mysql`, servers from `scripts/mariadb.sh`).
//!
//! Statements run on `pool.begin()`'s transaction (sqlx's own type) are plain sqlx calls on the
//! primary connection, which rwsplit does not instrument; `pool.begin_traced()` is covered.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rwsplit::{PoolOptions, QueryText, RoutingPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Executor, Sqlite};
use tracing_subscriber::layer::SubscriberExt;

/// Spans of this thread, exported synchronously to memory as each span ends.
struct Capture {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

fn capture() -> Capture {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rwsplit-tests"));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    Capture {
        exporter,
        _provider: provider,
        _guard: guard,
    }
}

impl Capture {
    /// The statement spans exported so far (those carrying `rwsplit.target`).
    fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("finished spans")
            .into_iter()
            .filter(|s| attr(s, "rwsplit.target").is_some() || attr(s, "error.type").is_some())
            .collect()
    }

    /// Forgets the spans exported so far.
    fn clear(&self) {
        self.exporter.reset();
    }

    /// The one statement span exported since the last `clear`. A span ends when its last
    /// handle drops, which can be just after the call returned (SQLite's worker thread holds
    /// one until it has finished the command), so this waits a little for it.
    async fn one(&self) -> SpanData {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.spans().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Anything else that was going to end has ended by now.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let spans = self.spans();
        assert_eq!(
            spans.len(),
            1,
            "expected exactly one statement span, got {:#?}",
            spans.iter().map(describe).collect::<Vec<_>>()
        );
        spans.into_iter().next().unwrap()
    }
}

/// The attribute's value (the last one recorded, as a recorded field may be set twice).
fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn describe(span: &SpanData) -> String {
    let attrs: Vec<String> = span
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    format!("{} [{}] {:?}", span.name, attrs.join(", "), span.status)
}

/// Asserts `key` is `expected` on the span, showing the whole span when it is not.
#[track_caller]
fn assert_attr(span: &SpanData, key: &str, expected: &str) {
    assert_eq!(
        text(span, key).as_deref(),
        Some(expected),
        "attribute {key} of {}",
        describe(span)
    );
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(&format!("telemetry-{name}"))
}

use common::no_monitor;

/// A SQLite pool (writer + reader "replica") with table `t (id, v)` holding row (1, 'one').
async fn sqlite_pool(dir: &Path, options: PoolOptions) -> RoutingPool<Sqlite> {
    let pool = rwsplit::sqlite::open(dir.join("t.db"), 2)
        .await
        .expect("open sqlite")
        .options(options)
        .build()
        .expect("build");
    // Set up on the writer's own pool: no span.
    pool.primary_pool()
        .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .unwrap();
    pool.primary_pool()
        .execute("INSERT INTO t (id, v) VALUES (1, 'one')")
        .await
        .unwrap();
    pool
}

#[tokio::test]
async fn routed_read_span() {
    let dir = temp_dir("read");
    let db = dir.join("t.db");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, "one");
    let span = cap.one().await;
    assert_eq!(span.name, "SELECT t");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    assert_attr(&span, "db.system.name", "sqlite");
    assert_attr(&span, "db.operation.name", "SELECT");
    assert_attr(&span, "db.collection.name", "t");
    assert_attr(&span, "db.query.summary", "SELECT t");
    assert_attr(&span, "db.query.text", "SELECT v FROM t WHERE id = ?");
    assert_attr(&span, "db.namespace", "main");
    assert_attr(&span, "server.address", &db.display().to_string());
    assert!(
        attr(&span, "server.port").is_none(),
        "no port for SQLite: {}",
        describe(&span)
    );
    assert_attr(&span, "rwsplit.target", "replica");
    assert_attr(&span, "rwsplit.replica", rwsplit::sqlite::READER_NAME);
    assert_attr(&span, "rwsplit.reason", "pure_read");
    assert_attr(&span, "rwsplit.consistency", "eventual");
    for absent in [
        "rwsplit.retry",
        "rwsplit.fallback",
        "error.type",
        "db.response.status_code",
    ] {
        assert!(
            attr(&span, absent).is_none(),
            "{absent} set on {}",
            describe(&span)
        );
    }
    // The span name is the summary, never the text: the tracing name `db.query` is replaced.
    assert_ne!(span.name, "db.query");

    // The streaming path (fetch_all goes through fetch_many) records the same attributes.
    cap.clear();
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, v FROM t WHERE id > ?")
        .bind(0_i64)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let span = cap.one().await;
    assert_eq!(span.name, "SELECT t");
    assert_attr(&span, "rwsplit.target", "replica");
    assert_attr(&span, "rwsplit.reason", "pure_read");
    assert_attr(&span, "db.query.text", "SELECT id, v FROM t WHERE id > ?");

    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn write_span() {
    let dir = temp_dir("write");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
        .bind(2_i64)
        .bind("two")
        .execute(&pool)
        .await
        .unwrap();
    let span = cap.one().await;
    // The classifier names the table of reads only, so a write's summary (and span name) is
    // its operation alone and it has no `db.collection.name` (see `write_summary_names_table`).
    assert!(span.name.starts_with("INSERT"), "{}", describe(&span));
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "write");
    assert_attr(&span, "db.operation.name", "INSERT");
    assert_attr(&span, "db.system.name", "sqlite");
    assert_attr(
        &span,
        "server.address",
        &dir.join("t.db").display().to_string(),
    );
    assert!(
        attr(&span, "rwsplit.replica").is_none(),
        "{}",
        describe(&span)
    );

    cap.clear();
    sqlx::query("UPDATE t SET v = ? WHERE id = ?")
        .bind("deux")
        .bind(2_i64)
        .execute(&pool)
        .await
        .unwrap();
    let span = cap.one().await;
    assert!(span.name.starts_with("UPDATE"), "{}", describe(&span));
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "write");
    assert_attr(&span, "db.operation.name", "UPDATE");

    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// OpenTelemetry's `db.query.summary` names the table of writes too (`INSERT t`), and
/// `db.collection.name` is set for single-table writes.
#[tokio::test]
async fn write_summary_names_table() {
    let dir = temp_dir("write-summary");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();
    for (sql, summary) in [
        ("INSERT INTO t (id, v) VALUES (?, 'x')", "INSERT t"),
        ("UPDATE t SET v = 'y' WHERE id = ?", "UPDATE t"),
        ("DELETE FROM t WHERE id = ?", "DELETE t"),
    ] {
        cap.clear();
        sqlx::query(sql).bind(5_i64).execute(&pool).await.unwrap();
        let span = cap.one().await;
        assert_eq!(span.name, summary, "{}", describe(&span));
        assert_attr(&span, "db.query.summary", summary);
        assert_attr(&span, "db.collection.name", "t");
    }
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn hint_spans() {
    let dir = temp_dir("hint");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    let v: String = sqlx::query_scalar("/* rwsplit:primary */ SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, "one");
    let span = cap.one().await;
    assert_eq!(span.name, "SELECT t");
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "hint_comment");
    assert_attr(&span, "db.operation.name", "SELECT");
    assert!(
        attr(&span, "rwsplit.replica").is_none(),
        "{}",
        describe(&span)
    );

    cap.clear();
    let _: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(pool.primary())
        .await
        .unwrap();
    let span = cap.one().await;
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "hint_call");

    cap.clear();
    pool.force_primary(true);
    let _: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.force_primary(false);
    let span = cap.one().await;
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "forced_to_primary");
    assert_attr(&span, "rwsplit.fallback", "forced_to_primary");

    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A pool over a SQLite primary holding `t (1, 'one')` and one replica, "broken", that every
/// read fails on. The monitor is off, so the replica is eligible until a read fails on it.
async fn pool_with_broken_replica(dir: &Path, replica: SqlitePool) -> RoutingPool<Sqlite> {
    let primary = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.join("p.db"))
                .create_if_missing(true),
        )
        .await
        .unwrap();
    primary
        .execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); INSERT OR REPLACE INTO t VALUES (1, 'one')")
        .await
        .unwrap();
    RoutingPool::builder(primary)
        .replica("broken", replica)
        .options(no_monitor())
        .build()
        .unwrap()
}

/// A replica pool that fails every acquire with `PoolClosed`, a connection-level error.
async fn closed_replica(dir: &Path) -> SqlitePool {
    let replica = SqlitePoolOptions::new().connect_lazy_with(
        SqliteConnectOptions::new()
            .filename(dir.join("p.db"))
            .read_only(true),
    );
    replica.close().await;
    replica
}

/// A replica pool whose file is inside a directory that does not exist: every connection
/// attempt fails with SQLITE_CANTOPEN.
fn unopenable_replica(dir: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(
            SqliteConnectOptions::new()
                .filename(dir.join("no-such-dir").join("r.db"))
                .read_only(true),
        )
}

#[track_caller]
fn assert_retried_on_primary(span: &SpanData, dir: &Path) {
    assert_eq!(span.name, "SELECT t");
    assert_eq!(
        attr(span, "rwsplit.retry"),
        Some(Value::Bool(true)),
        "{}",
        describe(span)
    );
    assert_attr(span, "rwsplit.target", "primary");
    assert_attr(span, "rwsplit.reason", "no_eligible_replica");
    assert_attr(span, "rwsplit.fallback", "no_eligible_replica");
    assert_attr(
        span,
        "server.address",
        &dir.join("p.db").display().to_string(),
    );
}

#[tokio::test]
async fn fallback_after_replica_failure_span() {
    let dir = temp_dir("fallback");
    let cap = capture();

    // fetch_optional / fetch_one
    let pool = pool_with_broken_replica(&dir, closed_replica(&dir).await).await;
    let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .expect("the read is retried on the primary");
    assert_eq!(v, "one");
    assert_retried_on_primary(&cap.one().await, &dir);
    pool.close().await;

    // fetch_many / fetch_all: the streaming path retries too.
    let pool = pool_with_broken_replica(&dir, closed_replica(&dir).await).await;
    cap.clear();
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, v FROM t WHERE id > ?")
        .bind(0_i64)
        .fetch_all(&pool)
        .await
        .expect("the streamed read is retried on the primary");
    assert_eq!(rows.len(), 1);
    let span = cap.one().await;
    assert_eq!(
        attr(&span, "rwsplit.retry"),
        Some(Value::Bool(true)),
        "{}",
        describe(&span)
    );
    assert_attr(&span, "rwsplit.target", "primary");
    pool.close().await;

    std::fs::remove_dir_all(&dir).ok();
}

/// With every replica broken, a read goes from replica to replica (each one's breaker opening)
/// and ends on the primary: it never fails while the primary answers.
#[tokio::test]
async fn every_replica_broken_the_read_ends_on_the_primary() {
    let dir = temp_dir("all-broken");
    let cap = capture();
    for streamed in [false, true] {
        let primary = pool_with_broken_replica(&dir, closed_replica(&dir).await)
            .await
            .primary_pool()
            .clone();
        let pool = RoutingPool::builder(primary)
            .replica("broken1", closed_replica(&dir).await)
            .replica("broken2", unopenable_replica(&dir))
            .replica("broken3", closed_replica(&dir).await)
            .options(no_monitor())
            .build()
            .unwrap();
        cap.clear();
        let v: String = if streamed {
            let rows: Vec<String> = sqlx::query_scalar("SELECT v FROM t WHERE id > ?")
                .bind(0_i64)
                .fetch_all(&pool)
                .await
                .expect("the streamed read ends on the primary");
            rows.into_iter().next().unwrap()
        } else {
            sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
                .bind(1_i64)
                .fetch_one(&pool)
                .await
                .expect("the read ends on the primary")
        };
        assert_eq!(v, "one");
        let status = pool.status();
        for r in &status.replicas {
            assert_eq!(r.breaker, rwsplit::BreakerState::Open, "{status:?}");
            assert!(r.last_error.is_some(), "{r:?}");
        }
        let span = cap.one().await;
        assert_attr(&span, "rwsplit.target", "primary");
        assert_attr(&span, "rwsplit.reason", "no_eligible_replica");
        pool.close().await;
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// After a successful retry the span describes the call that answered: no error status or
/// `error.type` left from the failed attempt, no `rwsplit.replica` naming the replica that did not
/// answer, and every attribute key once (OTLP requires unique keys; `tracing-opentelemetry`
/// appends a second value when a field is recorded twice).
#[tokio::test]
async fn retried_read_span_is_clean() {
    let dir = temp_dir("retry-clean");
    let cap = capture();
    let pool = pool_with_broken_replica(&dir, closed_replica(&dir).await).await;
    let _: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .expect("the read is retried on the primary");
    let span = cap.one().await;
    assert_retried_on_primary(&span, &dir);
    assert_eq!(span.status, Status::Unset, "{}", describe(&span));
    assert!(attr(&span, "error.type").is_none(), "{}", describe(&span));
    assert!(
        attr(&span, "rwsplit.replica").is_none(),
        "{}",
        describe(&span)
    );
    let mut keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "duplicate keys: {}", describe(&span));
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A replica that cannot even open a connection is a connection-level failure too: nothing ran,
/// so the read should be retried. rwsplit only retries `Io`/`PoolTimedOut`/`PoolClosed`/`Tls`/
/// `Protocol`/`WorkerCrashed`, and a failed connect surfaces from the pool as the driver's
/// `Database` error (SQLITE_CANTOPEN here; ER_ACCESS_DENIED on MySQL), so the read fails.
#[tokio::test]
async fn fallback_after_replica_connect_failure_span() {
    let dir = temp_dir("fallback-connect");
    let cap = capture();
    let pool = pool_with_broken_replica(&dir, unopenable_replica(&dir)).await;
    let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await
        .expect("the read is retried on the primary");
    assert_eq!(v, "one");
    assert_retried_on_primary(&cap.one().await, &dir);
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn error_span() {
    let dir = temp_dir("error");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    // A pure read of a table that does not exist: routed to the reader, fails there with
    // SQLITE_ERROR (1), and is not retried (the server answered).
    let err = sqlx::query("SELECT v FROM missing_table WHERE id = ?")
        .bind(1_i64)
        .fetch_optional(&pool)
        .await
        .expect_err("no such table");
    assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
    let span = cap.one().await;
    assert_eq!(span.name, "SELECT missing_table");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{}",
        describe(&span)
    );
    assert_attr(&span, "db.response.status_code", "1");
    assert_attr(&span, "error.type", "1");
    assert_attr(&span, "rwsplit.target", "replica");
    assert!(
        attr(&span, "rwsplit.retry").is_none(),
        "{}",
        describe(&span)
    );

    // A syntax error: unparseable, so it goes to the primary, which rejects it.
    cap.clear();
    let err = sqlx::query("SELEKT v FROM t")
        .fetch_all(&pool)
        .await
        .expect_err("syntax error");
    assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
    let span = cap.one().await;
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{}",
        describe(&span)
    );
    assert_attr(&span, "rwsplit.target", "primary");
    assert_attr(&span, "rwsplit.reason", "unparseable");
    assert_attr(&span, "db.response.status_code", "1");
    assert_attr(&span, "error.type", "1");

    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn query_text_modes() {
    let dir = temp_dir("text");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    // Parameterized: kept as written.
    sqlx::query("SELECT v FROM t WHERE id = ? AND v <> ?")
        .bind(1_i64)
        .bind("hidden")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_attr(
        &cap.one().await,
        "db.query.text",
        "SELECT v FROM t WHERE id = ? AND v <> ?",
    );

    // Inline literals (a raw statement, no arguments): every literal replaced by `?`.
    cap.clear();
    sqlx::raw_sql("SELECT v FROM t WHERE id = 1 AND v <> 'secret-literal'")
        .fetch_all(&pool)
        .await
        .unwrap();
    let span = cap.one().await;
    assert_attr(
        &span,
        "db.query.text",
        "SELECT v FROM t WHERE id = ? AND v <> ?",
    );
    assert!(!describe(&span).contains("secret-literal"));

    // Off: nothing recorded.
    let off_dir = temp_dir("text-off");
    let off = sqlite_pool(&off_dir, no_monitor().query_text(QueryText::Off)).await;
    cap.clear();
    sqlx::raw_sql("SELECT v FROM t WHERE v = 'secret-literal'")
        .fetch_all(&off)
        .await
        .unwrap();
    let span = cap.one().await;
    assert!(
        attr(&span, "db.query.text").is_none(),
        "{}",
        describe(&span)
    );
    assert_attr(&span, "db.query.summary", "SELECT t");

    // Full: as written, literals included.
    let full_dir = temp_dir("text-full");
    let full = sqlite_pool(&full_dir, no_monitor().query_text(QueryText::Full)).await;
    cap.clear();
    sqlx::raw_sql("SELECT v FROM t WHERE v = 'shown'")
        .fetch_all(&full)
        .await
        .unwrap();
    assert_attr(
        &cap.one().await,
        "db.query.text",
        "SELECT v FROM t WHERE v = 'shown'",
    );

    for (p, d) in [(pool, dir), (off, off_dir), (full, full_dir)] {
        p.close().await;
        std::fs::remove_dir_all(&d).ok();
    }
}

/// `sqlx::query(sql)` without any `.bind(..)` still carries an (empty) argument list, but its
/// literals are inline values: the default `Sanitized` mode must replace them.
#[tokio::test]
async fn query_without_binds_is_sanitized() {
    let dir = temp_dir("nobind");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();

    sqlx::query("SELECT v FROM t WHERE v = 'secret-literal'")
        .fetch_all(&pool)
        .await
        .unwrap();
    let span = cap.one().await;
    assert_attr(&span, "db.query.text", "SELECT v FROM t WHERE v = ?");

    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// No span, and no `rwsplit` span field, without a subscriber: the pool works as before.
#[tokio::test]
async fn spans_without_subscriber_cost_nothing_visible() {
    let dir = temp_dir("nosub");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "mysql")]
mod mariadb {
    use super::*;
    use common::{eventually, server_url, unique_table};
    use sqlx::mysql::MySqlPoolOptions;
    use sqlx::{AssertSqlSafe, MySql};

    fn port(url: &str) -> i64 {
        let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
        let host_port = after_at.split('/').next().unwrap();
        host_port
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the server URL"))
    }

    #[tokio::test]
    async fn mariadb_spans() {
        let Some(primary_url) = server_url("RWSPLIT_MYSQL_PRIMARY") else {
            return;
        };
        let Some(replica_url) = server_url("RWSPLIT_MYSQL_REPLICA_1") else {
            return;
        };
        let connect = |url: &str| {
            MySqlPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy(url)
                .expect("pool options")
        };
        let replica_pool = connect(&replica_url);
        let pool: RoutingPool<MySql> = RoutingPool::builder(connect(&primary_url))
            .replica("replica1", replica_pool.clone())
            .options(PoolOptions::new().monitor_interval(Duration::from_millis(100)))
            .build()
            .expect("build");
        let detected = eventually(Duration::from_secs(20), || async {
            pool.system_name() == "mariadb" && pool.status().replicas[0].eligible
        })
        .await;
        assert!(
            detected,
            "the monitor did not detect MariaDB: {}, {:?}",
            pool.system_name(),
            pool.status()
        );

        let table = unique_table("otel_spans");
        pool.primary_pool()
            .execute(AssertSqlSafe(format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)"
            )))
            .await
            .unwrap();
        let cap = capture();

        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, v) VALUES (?, ?)"
        )))
        .bind(1_i32)
        .bind("one")
        .execute(&pool)
        .await
        .unwrap();
        let span = cap.one().await;
        assert!(span.name.starts_with("INSERT"), "{}", describe(&span));
        assert_attr(&span, "db.system.name", "mariadb");
        assert_attr(&span, "rwsplit.target", "primary");
        assert_attr(&span, "rwsplit.reason", "write");
        assert_attr(&span, "server.address", "127.0.0.1");
        assert_attr(&span, "db.namespace", "rwsplit_test");
        assert_eq!(
            attr(&span, "server.port"),
            Some(Value::I64(port(&primary_url))),
            "{}",
            describe(&span)
        );

        // Wait until the replica has the row, then read through the pool.
        let check = format!("SELECT COUNT(*) FROM {table}");
        let replicated = eventually(Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(check.clone()))
                .fetch_one(&replica_pool)
                .await
                .is_ok_and(|n| n == 1)
        })
        .await;
        assert!(replicated, "the replica did not apply the insert");
        cap.clear();
        let v: String =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT v FROM {table} WHERE id = ?")))
                .bind(1_i32)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(v, "one");
        let span = cap.one().await;
        assert_eq!(span.name, format!("SELECT {table}"));
        assert_attr(&span, "db.system.name", "mariadb");
        assert_attr(&span, "db.operation.name", "SELECT");
        assert_attr(&span, "db.collection.name", &table);
        assert_attr(&span, "rwsplit.target", "replica");
        assert_attr(&span, "rwsplit.replica", "replica1");
        assert_attr(&span, "rwsplit.reason", "pure_read");
        assert_attr(&span, "server.address", "127.0.0.1");
        assert_eq!(
            attr(&span, "server.port"),
            Some(Value::I64(port(&replica_url))),
            "{}",
            describe(&span)
        );
        assert!(
            attr(&span, "rwsplit.replica_lag_ms").is_some(),
            "the monitor measured lag: {}",
            describe(&span)
        );

        // A server error carries the server's code.
        cap.clear();
        let err = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, v) VALUES (?, ?)"
        )))
        .bind(1_i32)
        .bind("dup")
        .execute(&pool)
        .await
        .expect_err("duplicate key");
        assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
        let span = cap.one().await;
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{}",
            describe(&span)
        );
        // The server's code is recorded (see `mariadb_status_code_is_error_number` for which).
        assert!(
            attr(&span, "db.response.status_code").is_some(),
            "{}",
            describe(&span)
        );
        assert!(attr(&span, "error.type").is_some(), "{}", describe(&span));

        pool.primary_pool()
            .execute(AssertSqlSafe(format!("DROP TABLE {table}")))
            .await
            .unwrap();
        pool.close().await;
    }

    /// The MySQL and MariaDB semantic conventions define `db.response.status_code` as the
    /// server's error number ("1062" for a duplicate key), not the SQLSTATE class ("23000")
    /// that `sqlx::error::DatabaseError::code()` returns for MySQL.
    #[tokio::test]
    async fn mariadb_status_code_is_error_number() {
        let Some(primary_url) = server_url("RWSPLIT_MYSQL_PRIMARY") else {
            return;
        };
        let pool: RoutingPool<MySql> = RoutingPool::builder(
            MySqlPoolOptions::new()
                .max_connections(2)
                .connect_lazy(&primary_url)
                .unwrap(),
        )
        .options(no_monitor())
        .build()
        .unwrap();
        let table = unique_table("otel_code");
        pool.primary_pool()
            .execute(AssertSqlSafe(format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY)"
            )))
            .await
            .unwrap();
        let cap = capture();
        let insert = format!("INSERT INTO {table} (id) VALUES (1)");
        sqlx::raw_sql(AssertSqlSafe(insert.clone()))
            .execute(&pool)
            .await
            .unwrap();
        cap.clear();
        sqlx::raw_sql(AssertSqlSafe(insert))
            .execute(&pool)
            .await
            .expect_err("duplicate key");
        let span = cap.one().await;
        pool.primary_pool()
            .execute(AssertSqlSafe(format!("DROP TABLE {table}")))
            .await
            .unwrap();
        assert_attr(&span, "db.response.status_code", "1062");
        pool.close().await;
    }
}

#[tokio::test]
async fn transaction_statements_are_children_of_one_transaction_span() {
    let dir = temp_dir("tx");
    let pool = sqlite_pool(&dir, no_monitor()).await;
    let cap = capture();
    cap.clear();
    let mut tx = pool.begin_traced().await.unwrap();
    sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
        .bind(40_i64)
        .bind("forty")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = 40")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(v, "forty", "the transaction sees its own write");
    tx.commit().await.unwrap();
    // The transaction span ends when its last child does; SQLite's worker thread drops its
    // handle of the last statement's span only after acknowledging the command, which on a
    // loaded machine (the whole suite in parallel on 2 cores) once took longer than 5 s, and
    // once never within 30 s. Closing the pool ends its connections' worker threads, and with
    // them any handle they still hold: what is checked is which span is whose child, not when
    // sqlx lets go of them.
    pool.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (parent, children) = loop {
        let all = cap.exporter.get_finished_spans().unwrap();
        let parent = all.iter().find(|s| s.name == "TRANSACTION").cloned();
        let children: Vec<SpanData> = all
            .iter()
            .filter(|s| {
                text(s, "rwsplit.reason").as_deref() == Some("transaction")
                    && s.name != "TRANSACTION"
            })
            .cloned()
            .collect();
        if parent.is_some() && children.len() == 2 || std::time::Instant::now() > deadline {
            break (parent.expect("a transaction span"), children);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        children.len(),
        2,
        "{:#?}",
        children.iter().map(describe).collect::<Vec<_>>()
    );
    for child in &children {
        assert_eq!(
            child.parent_span_id,
            parent.span_context.span_id(),
            "{}",
            describe(child)
        );
        assert_attr(child, "rwsplit.target", "primary");
    }
    assert!(children.iter().any(|c| c.name == "INSERT t"));
    assert!(children.iter().any(|c| c.name == "SELECT t"));
    std::fs::remove_dir_all(&dir).ok();
}
