//! Serves a pool's Prometheus metrics at `/metrics` while a small, bounded workload runs
//! against the pool: the setup behind `ops/prometheus/prometheus.yml` and the Grafana dashboard.
//!
//! ```text
//! cargo run -p rwsplit-tools --example metrics_server                         # 127.0.0.1:9898, 10 s, SQLite
//! cargo run -p rwsplit-tools --example metrics_server -- --duration 60
//! cargo run -p rwsplit-tools --example metrics_server -- --listen 0.0.0.0:9898   # reachable from containers
//! cargo run -p rwsplit-tools --example metrics_server -- --statements 100 --duration 5
//! curl -s http://127.0.0.1:9898/metrics | grep rwsplit_routed_statements_total
//! ```
//!
//! Options:
//! * `--listen ADDR`: where to serve (default `127.0.0.1:9898`; port 0 picks a free one, and the
//!   address is printed on stderr as `listening on http://ADDR/metrics`).
//! * `--duration SECS`: how long to run (default 10); the server stops after it.
//! * `--statements N`: run exactly N statements, then keep serving until the duration ends, so
//!   a scrape after the workload sees final values.
//! * `--pool-label NAME`: the `pool` label of every metric (default `example`).
//! * `--mysql`: use `RWSPLIT_MYSQL_PRIMARY` and `RWSPLIT_MYSQL_REPLICA_1` (feature `mysql`)
//!   instead of a SQLite file in a temporary directory.
//!
//! The workload mixes reads (7 in 10: point reads, a range read, a count) and writes (inserts
//! and updates), at most 200 statements a second. Before each statement it asks the pool where
//! it will go (`pool.explain(sql)`), and at the end it prints one JSON line on stderr with the
//! counts it sent per target, for comparison with `rwsplit_routed_statements_total`:
//!
//! ```text
//! {"statements":100,"primary":30,"replica":70,"errors":0}
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::header;
use axum::response::IntoResponse;
use prometheus::{Registry, TextEncoder};
use rwsplit::{RoutingPool, Target};
use tokio::sync::oneshot;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Pause between statements: bounds the rate at 200 statements a second.
const PACE: Duration = Duration::from_millis(5);

struct Args {
    listen: SocketAddr,
    duration: Duration,
    statements: Option<u64>,
    pool_label: String,
    mysql: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo run -p rwsplit-tools --example metrics_server -- [--listen ADDR] [--duration SECS] \
         [--statements N] [--pool-label NAME] [--mysql]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut args = Args {
        listen: "127.0.0.1:9898".parse().unwrap(),
        duration: Duration::from_secs(10),
        statements: None,
        pool_label: "example".into(),
        mysql: false,
    };
    let mut it = std::env::args().skip(1);
    let value = |it: &mut std::iter::Skip<std::env::Args>| it.next().unwrap_or_else(|| usage());
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => args.listen = value(&mut it).parse().unwrap_or_else(|_| usage()),
            "--duration" => {
                let secs: f64 = value(&mut it).parse().unwrap_or_else(|_| usage());
                if !(0.0..=86_400.0).contains(&secs) {
                    usage();
                }
                args.duration = Duration::from_secs_f64(secs);
            }
            "--statements" => {
                args.statements = Some(value(&mut it).parse().unwrap_or_else(|_| usage()))
            }
            "--pool-label" => args.pool_label = value(&mut it),
            "--mysql" => args.mysql = true,
            _ => usage(),
        }
    }
    args
}

/// What the workload sent, by the target `explain` gave before each call.
#[derive(Debug, Default)]
struct Counts {
    statements: u64,
    primary: u64,
    replica: u64,
    errors: u64,
}

impl Counts {
    fn json(&self) -> String {
        format!(
            r#"{{"statements":{},"primary":{},"replica":{},"errors":{}}}"#,
            self.statements, self.primary, self.replica, self.errors
        )
    }
}

/// The workload for one backend: `$pool` is a `RoutingPool<_>`; the SQL runs on SQLite and
/// MySQL/MariaDB alike.
macro_rules! workload {
    ($pool:expr, $limit:expr, $deadline:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS metrics_demo (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
        )
        .execute(pool.primary_pool())
        .await?;
        sqlx::query("DELETE FROM metrics_demo")
            .execute(pool.primary_pool())
            .await?;
        let mut counts = Counts::default();
        let mut next_id: i64 = 0;
        while $limit.is_none_or(|n| counts.statements < n) && Instant::now() < $deadline {
            let i = counts.statements;
            let id = if next_id == 0 {
                0
            } else {
                (i as i64 * 7) % next_id
            };
            let sql = match i % 10 {
                0 | 4 | 8 => {
                    if i % 20 == 4 && next_id > 0 {
                        "UPDATE metrics_demo SET v = v + 1 WHERE id = ?"
                    } else {
                        "INSERT INTO metrics_demo (id, v) VALUES (?, 0)"
                    }
                }
                1 | 3 | 5 | 7 | 9 => "SELECT v FROM metrics_demo WHERE id = ?",
                2 => "SELECT id, v FROM metrics_demo WHERE id >= ? ORDER BY id LIMIT 5",
                _ => "SELECT COUNT(*) FROM metrics_demo WHERE id >= ?",
            };
            let bind = if sql.starts_with("INSERT") {
                next_id += 1;
                next_id - 1
            } else {
                id
            };
            match pool.explain(sql).target {
                Target::Primary => counts.primary += 1,
                Target::Replica => counts.replica += 1,
            }
            counts.statements += 1;
            if let Err(e) = sqlx::query(sql).bind(bind).execute(pool).await {
                counts.errors += 1;
                eprintln!("statement failed: {e}");
            }
            tokio::time::sleep(PACE).await;
        }
        Ok::<Counts, BoxError>(counts)
    }};
}

async fn sqlite_workload(
    registry: &Registry,
    args: &Args,
    deadline: Instant,
) -> Result<Counts, BoxError> {
    let dir = std::env::temp_dir().join(format!("rwsplit-metrics-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("metrics.db"), 4)
        .await?
        .metrics(registry, Some(&args.pool_label))
        .build()?;
    let counts = workload!(&pool, args.statements, deadline);
    // Keep the pool (and its scrape-time gauges) alive while the server runs.
    hold(&pool, deadline).await;
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
    counts
}

#[cfg(feature = "mysql")]
async fn mysql_workload(
    registry: &Registry,
    args: &Args,
    deadline: Instant,
) -> Result<Counts, BoxError> {
    use sqlx::mysql::MySqlPoolOptions;
    let var = |name: &str| {
        std::env::var(name).map_err(|_| format!("--mysql needs {name} (scripts/mariadb.sh env)"))
    };
    let (primary, replica) = (
        var("RWSPLIT_MYSQL_PRIMARY")?,
        var("RWSPLIT_MYSQL_REPLICA_1")?,
    );
    let connect = |url: &str| {
        MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)
    };
    let pool = RoutingPool::builder(connect(&primary)?)
        .replica("replica1", connect(&replica)?)
        .metrics(registry, Some(&args.pool_label))
        .build()?;
    let counts = workload!(&pool, args.statements, deadline);
    hold(&pool, deadline).await;
    pool.close().await;
    counts
}

/// Keeps the pool open until the deadline.
async fn hold<DB: rwsplit::Backend>(_pool: &RoutingPool<DB>, deadline: Instant) {
    tokio::time::sleep_until(deadline.into()).await;
}

async fn metrics(registry: Registry) -> impl IntoResponse {
    match TextEncoder::new().encode_to_string(&registry.gather()) {
        Ok(text) => (
            axum::http::StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            text,
        ),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            e.to_string(),
        ),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args();
    let registry = Registry::new();
    let started = Instant::now();
    let deadline = started + args.duration;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr}/metrics");
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get({
                let registry = registry.clone();
                move || metrics(registry.clone())
            }),
        )
        .route(
            "/",
            axum::routing::get(|| async { "rwsplit metrics example: see /metrics\n" }),
        );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
    });

    let counts = if args.mysql {
        #[cfg(feature = "mysql")]
        {
            mysql_workload(&registry, &args, deadline).await
        }
        #[cfg(not(feature = "mysql"))]
        {
            Err::<Counts, BoxError>("--mysql needs the `mysql` feature".into())
        }
    } else {
        sqlite_workload(&registry, &args, deadline).await
    };

    stop.send(()).ok();
    // Open scrape connections get a moment to finish; the server never outlives that.
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("server error: {e}"),
        Ok(Err(e)) => eprintln!("server task failed: {e}"),
        Err(_) => eprintln!("server did not stop within 5 s"),
    }
    let counts = counts?;
    eprintln!("{}", counts.json());
    Ok(())
}
