//! The Prometheus exposition of a pool after a known workload: its values match the workload,
//! and `promtool check metrics` accepts it. Plus the secrets check: the connection password
//! never appears in any span, log line, metric, `Debug` output or error message.
//!
//! `promtool` comes from Debian's `prometheus` package (ops/check.sh installs it in CI, before
//! the tests run). Without it the promtool step is skipped locally and fails under `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use prometheus::{Registry, TextEncoder};
use rwsplit::{PoolOptions, RoutingPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor, Sqlite};
use tracing_subscriber::layer::SubscriberExt;

// ------------------------------------------------------------------------------------------
// Exposition parsing

/// One sample of the text exposition: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format's sample lines (label values here never contain `"` or `,`).
fn parse(exposition: &str) -> Vec<Sample> {
    exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split(',')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').expect("label");
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include every pair of `matching`.
fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            matching
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn exposition(registry: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode")
}

/// `promtool check metrics < file`: `None` when promtool is not installed (locally only).
fn promtool_check(exposition: &str, file: &Path) -> Option<(bool, String)> {
    std::fs::write(file, exposition).unwrap();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("promtool is not on PATH under CI=true: ops/check.sh installs it");
            }
            eprintln!("skipping promtool check: promtool not found (apt-get install prometheus)");
            return None;
        }
        Err(e) => panic!("run promtool: {e}"),
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(&format!("expo-{name}"))
}

async fn sqlite_pool(
    dir: &Path,
    registry: &Registry,
    label: &str,
    options: PoolOptions,
) -> RoutingPool<Sqlite> {
    let pool = rwsplit::sqlite::open(dir.join("m.db"), 2)
        .await
        .unwrap()
        .metrics(registry, Some(label))
        .options(options)
        .build()
        .unwrap();
    pool.primary_pool()
        .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .unwrap();
    pool
}

// ------------------------------------------------------------------------------------------
// The exposition matches the workload

#[tokio::test]
async fn exposition_matches_workload_and_passes_promtool() {
    let dir = temp_dir("workload");
    let registry = Registry::new();
    let pool = sqlite_pool(
        &dir,
        &registry,
        "expo",
        PoolOptions::new().monitor_interval(Duration::from_millis(50)),
    )
    .await;

    const WRITES: i64 = 3;
    const READS: i64 = 7;
    for i in 0..WRITES {
        sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
            .bind(i)
            .bind(format!("v{i}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    for i in 0..READS {
        let _: Option<String> = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
            .bind(i % WRITES)
            .fetch_optional(&pool)
            .await
            .unwrap();
    }
    // Let the monitor probe at least once, so the state gauges are known.
    let probed = common::eventually(Duration::from_secs(30), || async {
        pool.status().replicas[0].probes > 0 && pool.status().primary.probes > 0
    })
    .await;
    assert!(probed, "{:?}", pool.status());

    let text = exposition(&registry);
    let samples = parse(&text);
    let expo = [("pool", "expo")];

    let routed = "rwsplit_routed_statements_total";
    assert_eq!(
        sum(
            &samples,
            routed,
            &[
                ("pool", "expo"),
                ("target", "replica"),
                ("reason", "pure_read")
            ]
        ),
        READS as f64,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            routed,
            &[("pool", "expo"), ("target", "primary"), ("reason", "write")]
        ),
        WRITES as f64
    );
    assert_eq!(sum(&samples, routed, &expo), (READS + WRITES) as f64);

    let count = "db_client_operation_duration_seconds_count";
    let reads = [
        ("pool", "expo"),
        ("db_system", "sqlite"),
        ("role", "replica"),
        ("replica", "reader"),
        ("operation", "SELECT"),
        ("outcome", "ok"),
    ];
    assert_eq!(sum(&samples, count, &reads), READS as f64, "{text}");
    let writes = [
        ("pool", "expo"),
        ("db_system", "sqlite"),
        ("role", "primary"),
        ("replica", ""),
        ("operation", "INSERT"),
        ("outcome", "ok"),
    ];
    assert_eq!(sum(&samples, count, &writes), WRITES as f64);
    assert_eq!(sum(&samples, count, &expo), (READS + WRITES) as f64);
    assert_eq!(
        sum(&samples, count, &[("outcome", "error")]),
        0.0,
        "no failed call"
    );
    // The +Inf bucket is the count; the sum is positive.
    assert_eq!(
        sum(
            &samples,
            "db_client_operation_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        (READS + WRITES) as f64
    );
    assert!(sum(&samples, "db_client_operation_duration_seconds_sum", &expo) > 0.0);

    for name in [
        "rwsplit_retries_total",
        "rwsplit_fallbacks_total",
        "rwsplit_no_eligible_replica_total",
        "rwsplit_causal_wait_seconds_count",
    ] {
        assert_eq!(sum(&samples, name, &expo), 0.0, "{name}");
    }
    // Scrape-time state.
    assert_eq!(
        sum(
            &samples,
            "rwsplit_server_up",
            &[("role", "replica"), ("replica", "reader")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(&samples, "rwsplit_server_up", &[("role", "primary")]),
        1.0
    );
    assert_eq!(sum(&samples, "rwsplit_circuit_breaker_state", &expo), 0.0);
    assert_eq!(
        sum(
            &samples,
            "rwsplit_pool_connections",
            &[("role", "replica"), ("state", "max")]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &samples,
            "rwsplit_replica_lag_seconds",
            &[("replica", "reader")]
        ),
        0.0
    );
    // Every statement was classified once per distinct text: 2 misses, the rest hits.
    assert_eq!(
        sum(
            &samples,
            "rwsplit_classifier_cache_total",
            &[("result", "miss")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "rwsplit_classifier_cache_total",
            &[("result", "hit")]
        ),
        (READS + WRITES - 2) as f64
    );

    // A second scrape does not double the cache counters.
    let again = parse(&exposition(&registry));
    assert_eq!(
        sum(&again, "rwsplit_classifier_cache_total", &expo),
        (READS + WRITES) as f64
    );

    if let Some((ok, out)) = promtool_check(&text, &dir.join("metrics.prom")) {
        assert!(ok, "promtool check metrics failed:\n{out}\n---\n{text}");
    }
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn errors_retries_and_fallbacks_are_counted() {
    let dir = temp_dir("errors");
    let registry = Registry::new();
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
        .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    // A replica whose pool is closed: every read on it fails at the connection level.
    let replica = SqlitePoolOptions::new().connect_lazy_with(
        SqliteConnectOptions::new()
            .filename(dir.join("p.db"))
            .read_only(true),
    );
    replica.close().await;
    let pool = RoutingPool::builder(primary)
        .replica("closed", replica)
        .metrics(&registry, Some("errs"))
        .options(common::no_monitor())
        .build()
        .unwrap();

    // A read retried on the primary.
    let _: Option<String> = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_optional(&pool)
        .await
        .expect("retried on the primary");
    // A failing write.
    sqlx::query("INSERT INTO missing (id) VALUES (?)")
        .bind(1_i64)
        .execute(&pool)
        .await
        .expect_err("no such table");

    let text = exposition(&registry);
    let samples = parse(&text);
    assert_eq!(
        sum(
            &samples,
            "rwsplit_retries_total",
            &[("cause", "replica_error")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "rwsplit_fallbacks_total",
            &[("cause", "no_eligible_replica")]
        ),
        1.0
    );
    assert_eq!(sum(&samples, "rwsplit_no_eligible_replica_total", &[]), 1.0);
    let count = "db_client_operation_duration_seconds_count";
    assert_eq!(
        sum(
            &samples,
            count,
            &[
                ("role", "replica"),
                ("replica", "closed"),
                ("outcome", "error")
            ]
        ),
        1.0,
        "the failed replica attempt: {text}"
    );
    assert_eq!(
        sum(
            &samples,
            count,
            &[
                ("role", "primary"),
                ("operation", "SELECT"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            count,
            &[
                ("role", "primary"),
                ("operation", "INSERT"),
                ("outcome", "error")
            ]
        ),
        1.0
    );
    // The breaker of the failed replica is open (2).
    assert_eq!(
        sum(
            &samples,
            "rwsplit_circuit_breaker_state",
            &[("role", "replica"), ("replica", "closed")]
        ),
        2.0,
        "{text}"
    );
    if let Some((ok, out)) = promtool_check(&text, &dir.join("metrics.prom")) {
        assert!(ok, "promtool check metrics failed:\n{out}\n---\n{text}");
    }
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn two_pools_share_a_registry_with_labels() {
    let registry = Registry::new();
    let (a, b) = (temp_dir("share-a"), temp_dir("share-b"));
    let no_monitor = || common::no_monitor();
    let pa = sqlite_pool(&a, &registry, "a", no_monitor()).await;
    let pb = sqlite_pool(&b, &registry, "b", no_monitor()).await;
    sqlx::query("SELECT count(*) FROM t")
        .fetch_one(&pa)
        .await
        .unwrap();
    let samples = parse(&exposition(&registry));
    let routed = "rwsplit_routed_statements_total";
    assert_eq!(sum(&samples, routed, &[("pool", "a")]), 1.0);
    assert_eq!(sum(&samples, routed, &[("pool", "b")]), 0.0);
    // The same label twice is an error, not a silent merge.
    let c = temp_dir("share-c");
    let err = rwsplit::sqlite::open(c.join("m.db"), 1)
        .await
        .unwrap()
        .metrics(&registry, Some("a"))
        .build()
        .expect_err("duplicate registration");
    assert!(matches!(err, rwsplit::Error::Metrics(_)), "{err}");
    pa.close().await;
    pb.close().await;
    for d in [a, b, c] {
        std::fs::remove_dir_all(&d).ok();
    }
}

// ------------------------------------------------------------------------------------------
// Secrets: spans, logs, metrics, Debug output and errors

/// Everything a process emits: exported spans and formatted log lines (spans included, with
/// their fields, when they close), for the current thread.
struct Emitted {
    spans: InMemorySpanExporter,
    logs: Arc<Mutex<Vec<u8>>>,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn emitted() -> Emitted {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let buf = LogBuf(logs.clone());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || buf.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("secrets")))
        .with(fmt);
    let guard = tracing::subscriber::set_default(subscriber);
    Emitted {
        spans,
        logs,
        _provider: provider,
        _guard: guard,
    }
}

impl Emitted {
    fn spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap()
    }

    /// Every span as text: name, attributes, events, status.
    fn span_text(&self) -> String {
        self.spans()
            .iter()
            .map(|s| {
                let attrs: Vec<String> = s
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value))
                    .collect();
                let events: Vec<String> = s
                    .events
                    .iter()
                    .map(|e| {
                        let a: Vec<String> = e
                            .attributes
                            .iter()
                            .map(|kv| format!("{}={}", kv.key, kv.value))
                            .collect();
                        format!("{}({})", e.name, a.join(","))
                    })
                    .collect();
                format!(
                    "{} [{}] {{{}}} {:?}\n",
                    s.name,
                    attrs.join(", "),
                    events.join("; "),
                    s.status
                )
            })
            .collect()
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

/// Fails, naming the place, if any of `texts` contains any of `secrets`.
#[track_caller]
fn assert_no_secret(texts: &[(&str, &str)], secrets: &[&str]) {
    for (what, text) in texts {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what} contains the secret {secret:?}:\n{text}"
            );
        }
    }
}

/// No server: SQLite has no password, so the secret is an inline literal of a statement (what
/// `QueryText::Sanitized` keeps out of spans). Checks the pool's own outputs: spans, rwsplit's
/// log lines, metrics, `Debug` of the pool and its status, and error messages.
#[tokio::test]
async fn sqlite_outputs_carry_no_inline_secret() {
    const SECRET: &str = "inline-secret-4711";
    let dir = temp_dir("secret");
    let registry = Registry::new();
    let em = emitted();
    let pool = sqlite_pool(&dir, &registry, "secret", PoolOptions::default()).await;

    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO t (id, v) VALUES (1, '{SECRET}')"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT id FROM t WHERE v = '{SECRET}'"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    sqlx::query("SELECT v FROM t WHERE id = ?")
        .bind(1_i64)
        .fetch_all(&pool)
        .await
        .unwrap();
    let err = sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT v FROM missing WHERE v = '{SECRET}'"
    )))
    .fetch_all(&pool)
    .await
    .expect_err("no such table");

    // A span ends when its last handle drops, which can be a moment after the call returned
    // (SQLite's worker thread): wait for the four statement spans rather than a fixed time.
    let statement_spans = || {
        em.spans()
            .into_iter()
            .filter(|s| {
                s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "rwsplit.target")
            })
            .count()
    };
    let ended =
        common::eventually(Duration::from_secs(30), || async { statement_spans() >= 4 }).await;
    assert!(ended, "{}", em.span_text());
    // rwsplit's own log lines (sqlx logs statements verbatim under its own target, by design).
    let rwsplit_logs: String = em
        .log_text()
        .lines()
        .filter(|l| l.contains("rwsplit") && !l.contains("sqlx::query"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        rwsplit_logs.contains("db.query"),
        "the fmt layer saw the statement spans:\n{}",
        em.log_text()
    );
    assert_no_secret(
        &[
            ("spans", &em.span_text()),
            ("rwsplit log lines", &rwsplit_logs),
            ("metrics", &exposition(&registry)),
            ("Debug of the pool", &format!("{pool:?}")),
            ("Debug of the status", &format!("{:?}", pool.status())),
            ("error Display", &err.to_string()),
            ("error Debug", &format!("{err:?}")),
        ],
        &[SECRET],
    );
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "mysql")]
mod mariadb {
    use super::*;
    use common::{eventually, server_url, unique_table};
    use sqlx::mysql::MySqlPoolOptions;
    use sqlx::MySql;

    /// The password of the test servers' application account (scripts/sql/common).
    const PASSWORD: &str = "rwsplit_pw";
    /// A wrong password, recognizable in any output.
    const WRONG: &str = "wrongPw-93z7q";

    fn connect_lazy(url: &str) -> sqlx::MySqlPool {
        MySqlPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)
            .expect("pool options")
    }

    #[tokio::test]
    async fn password_never_appears() {
        let Some(primary_url) = server_url("RWSPLIT_MYSQL_PRIMARY") else {
            return;
        };
        let Some(replica_url) = server_url("RWSPLIT_MYSQL_REPLICA_1") else {
            return;
        };
        assert!(
            primary_url.contains(&format!(":{PASSWORD}@")),
            "RWSPLIT_MYSQL_PRIMARY is expected to carry the test password"
        );
        let wrong_url = replica_url.replace(&format!(":{PASSWORD}@"), &format!(":{WRONG}@"));
        assert_ne!(wrong_url, replica_url);

        let em = emitted();
        let registry = Registry::new();
        let options = PoolOptions::new().monitor_interval(Duration::from_millis(100));
        let pool: RoutingPool<MySql> = RoutingPool::builder(connect_lazy(&primary_url))
            .replica("replica1", connect_lazy(&replica_url))
            .metrics(&registry, Some("pw"))
            .options(options.clone())
            .build()
            .unwrap();
        // A second pool whose replica has the wrong password: its probes fail, and so do
        // reads on it.
        let broken: RoutingPool<MySql> = RoutingPool::builder(connect_lazy(&primary_url))
            .replica("wrongpw", connect_lazy(&wrong_url))
            .metrics(&registry, Some("broken"))
            .options(options)
            .build()
            .unwrap();
        let ready = eventually(Duration::from_secs(20), || async {
            pool.system_name() == "mariadb"
                && pool.status().replicas[0].eligible
                && broken.status().replicas[0].last_error.is_some()
        })
        .await;
        assert!(ready, "{:?} / {:?}", pool.status(), broken.status());

        let table = unique_table("otel_pw");
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(20))"
        )))
        .execute(&pool)
        .await
        .unwrap();
        for i in 0..3 {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {table} (id, v) VALUES (?, ?)"
            )))
            .bind(i)
            .bind("x")
            .execute(&pool)
            .await
            .unwrap();
        }
        let replicated = eventually(Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(pool.replica_pool("replica1").unwrap())
                .await
                .is_ok_and(|n| n == 3)
        })
        .await;
        assert!(replicated);
        for _ in 0..5 {
            sqlx::query(AssertSqlSafe(format!("SELECT v FROM {table} WHERE id = ?")))
                .bind(1)
                .fetch_all(&pool)
                .await
                .unwrap();
        }
        let failing = sqlx::query("SELECT v FROM no_such_table_pw")
            .fetch_all(&pool)
            .await
            .expect_err("no such table");
        // A read through the pool whose replica refuses the login (on the primary if the
        // breaker already excluded it).
        let through_broken = sqlx::query("SELECT 1")
            .fetch_all(&broken)
            .await
            .err()
            .map(|e| (e.to_string(), format!("{e:?}")))
            .unwrap_or_default();
        // Connecting directly with the wrong password.
        let refused = MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&wrong_url)
            .await
            .expect_err("wrong password is refused");
        assert!(
            refused.to_string().contains("Access denied"),
            "expected an access-denied error, got {refused}"
        );
        let refused_rwsplit = rwsplit::Error::from(refused);
        // Spans end when their last handle drops: wait for the replica's, not a fixed time.
        let captured = eventually(Duration::from_secs(30), || async {
            em.span_text().contains("rwsplit.replica=replica1")
        })
        .await;
        assert!(captured, "spans were captured:\n{}", em.span_text());

        let span_text = em.span_text();
        let log_text = em.log_text();
        let metrics = exposition(&registry);
        assert!(
            span_text.contains("rwsplit.replica=replica1"),
            "spans were captured:\n{span_text}"
        );
        assert!(metrics.contains("pool=\"pw\""), "{metrics}");
        assert!(!log_text.is_empty());
        let broken_status = format!("{:?}", broken.status());
        assert!(
            broken_status.contains("Access denied"),
            "the broken replica's last error is kept: {broken_status}"
        );
        assert_no_secret(
            &[
                ("spans", &span_text),
                ("log lines", &log_text),
                ("metrics", &metrics),
                ("Debug of the pool", &format!("{pool:?}")),
                ("Debug of the status", &format!("{:?}", pool.status())),
                ("Debug of the broken pool", &format!("{broken:?}")),
                ("Debug of the broken status", &broken_status),
                ("failing statement Display", &failing.to_string()),
                ("failing statement Debug", &format!("{failing:?}")),
                ("read through broken pool Display", &through_broken.0),
                ("read through broken pool Debug", &through_broken.1),
                ("wrong-password error Display", &refused_rwsplit.to_string()),
                (
                    "wrong-password error Debug",
                    &format!("{refused_rwsplit:?}"),
                ),
            ],
            &[PASSWORD, WRONG],
        );

        pool.primary_pool()
            .execute(AssertSqlSafe(format!("DROP TABLE {table}")))
            .await
            .unwrap();
        pool.close().await;
        broken.close().await;
    }
}
