//! Exporting rwsplit's statement spans with OpenTelemetry: `tracing-opentelemetry` turns each
//! `tracing` span into an OpenTelemetry span, and `opentelemetry-otlp` sends them over OTLP,
//! by gRPC (port 4317) or HTTP (port 4318), to a collector or a tracing backend such as Jaeger.
//!
//! Every statement run through a `RoutingPool` is one client span named by its summary
//! (`SELECT orders`), with the OpenTelemetry database attributes (`db.system.name`,
//! `db.query.text`, `server.address`, ...) and the routing decision (`rwsplit.target`,
//! `rwsplit.replica`, `rwsplit.reason`, `rwsplit.retry`, ...). Statements run inside an
//! application span become its children.
//!
//! # Run it against Jaeger
//!
//! ```text
//! docker compose --profile observability up -d jaeger   # OTLP on 127.0.0.1:4317 and :4318
//! cargo run -p rwsplit-tools --example otel                              # gRPC to http://127.0.0.1:4317
//! cargo run -p rwsplit-tools --example otel -- http                      # HTTP to http://127.0.0.1:4318/v1/traces
//! cargo run -p rwsplit-tools --example otel -- grpc --endpoint http://collector:4317
//! ```
//!
//! Then open <http://127.0.0.1:16686>, pick the service `rwsplit-example` and find the trace
//! `checkout`: its children are the statements, each tagged with where it ran and why.
//! `RWSPLIT_OTLP_PROTOCOL=http` chooses the protocol like the first argument does.
//!
//! By default the pool is SQLite (a writer plus read-only readers on one file in a temporary
//! directory), so nothing else is needed. With the `mysql` feature and `RWSPLIT_MYSQL_PRIMARY`
//! and `RWSPLIT_MYSQL_REPLICA_1` set, it runs on those servers instead:
//!
//! ```text
//! eval "$(scripts/mariadb.sh start --replicas 1)"
//! cargo run -p rwsplit-tools --example otel --features mysql
//! scripts/mariadb.sh stop
//! ```
//!
//! The example exits within a few seconds even when nothing listens on the endpoint: the
//! exporter's timeout and the provider's shutdown are bounded, and export errors are reported,
//! not fatal.
//!
//! # The setup, in short
//!
//! ```ignore
//! let exporter = opentelemetry_otlp::SpanExporter::builder()
//!     .with_tonic()                                  // or .with_http()
//!     .with_endpoint("http://127.0.0.1:4317")        // or "http://127.0.0.1:4318/v1/traces"
//!     .build()?;
//! let provider = SdkTracerProvider::builder()
//!     .with_batch_exporter(exporter)
//!     .with_resource(Resource::builder().with_service_name("my-service").build())
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service")))
//!     .init();
//! // ... run the application; then, before exiting, flush what is still buffered:
//! provider.shutdown()?;
//! ```

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const SERVICE: &str = "rwsplit-example";
/// Bound on one export call.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on flushing and shutting the provider down at exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Grpc,
    Http,
}

struct Args {
    protocol: Protocol,
    endpoint: String,
}

fn usage() -> ! {
    eprintln!("usage: cargo run -p rwsplit-tools --example otel -- [grpc|http] [--endpoint URL]");
    std::process::exit(2)
}

fn parse_protocol(s: &str) -> Option<Protocol> {
    match s.to_ascii_lowercase().as_str() {
        "grpc" => Some(Protocol::Grpc),
        "http" | "http/protobuf" => Some(Protocol::Http),
        _ => None,
    }
}

fn args() -> Args {
    let mut protocol = std::env::var("RWSPLIT_OTLP_PROTOCOL")
        .ok()
        .map(|p| parse_protocol(&p).unwrap_or_else(|| usage()))
        .unwrap_or(Protocol::Grpc);
    let mut endpoint = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--endpoint" => endpoint = Some(it.next().unwrap_or_else(|| usage())),
            "-h" | "--help" => usage(),
            other => protocol = parse_protocol(other).unwrap_or_else(|| usage()),
        }
    }
    let endpoint = endpoint.unwrap_or_else(|| {
        match protocol {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::Http => "http://127.0.0.1:4318/v1/traces",
        }
        .to_string()
    });
    Args { protocol, endpoint }
}

/// A tracer provider exporting in batches over OTLP.
fn tracer_provider(args: &Args) -> Result<SdkTracerProvider, BoxError> {
    let exporter = match args.protocol {
        // The tonic client needs a Tokio runtime: build it inside one (here, `main`).
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&args.endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()?,
        // The endpoint is used as given: include the `/v1/traces` path.
        Protocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&args.endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()?,
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(SERVICE).build())
        .build())
}

/// The same statements for every backend (the SQL is valid on SQLite and MySQL/MariaDB).
macro_rules! workload {
    ($pool:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS otel_orders \
             (id BIGINT PRIMARY KEY, item VARCHAR(40) NOT NULL, qty BIGINT NOT NULL)",
        )
        .execute(pool)
        .await?;
        sqlx::query("DELETE FROM otel_orders").execute(pool).await?;

        // One application span ("checkout") with the statements as its children.
        async {
            // A session: its reads see its own writes, even on a lagging replica.
            let session = pool.session();
            for (id, item, qty) in [(1_i64, "apple", 3_i64), (2, "pear", 1), (3, "plum", 7)] {
                sqlx::query("INSERT INTO otel_orders (id, item, qty) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(item)
                    .bind(qty)
                    .execute(&session)
                    .await?;
            }
            let mut total = 0;
            for id in 1..=3_i64 {
                let qty: i64 = sqlx::query_scalar("SELECT qty FROM otel_orders WHERE id = ?")
                    .bind(id)
                    .fetch_one(&session)
                    .await?;
                total += qty;
            }
            println!("total quantity: {total}");
            Ok::<_, BoxError>(())
        }
        .instrument(tracing::info_span!("checkout"))
        .await?;

        // Plain pool reads go to a replica; a hint sends one to the primary.
        let items: Vec<String> =
            sqlx::query_scalar("SELECT item FROM otel_orders WHERE qty > ? ORDER BY id")
                .bind(1_i64)
                .fetch_all(pool)
                .await?;
        println!("items with qty > 1: {items:?}");
        let n: i64 = sqlx::query_scalar("/* rwsplit:primary */ SELECT COUNT(*) FROM otel_orders")
            .fetch_one(pool)
            .await?;
        println!("orders (read on the primary): {n}");

        // A failing statement: its span carries error.type and an error status.
        if let Err(e) = sqlx::query("SELECT nope FROM otel_missing_table")
            .fetch_all(pool)
            .await
        {
            println!("expected failure: {e}");
        }
        for name in pool.replica_names() {
            println!("replica in pool: {name}");
        }
        Ok::<_, BoxError>(())
    }};
}

async fn run_sqlite() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("rwsplit-otel-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("otel.db"), 2)
        .await?
        .build()?;
    println!("running on SQLite at {}", dir.join("otel.db").display());
    let result = workload!(&pool);
    pool.close().await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

#[cfg(feature = "mysql")]
async fn run_mysql(primary: &str, replica: &str) -> Result<(), BoxError> {
    use sqlx::mysql::MySqlPoolOptions;
    let connect = |url: &str| {
        MySqlPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)
    };
    let pool = rwsplit::RoutingPool::builder(connect(primary)?)
        .replica("replica1", connect(replica)?)
        .build()?;
    // Give the monitor a moment to tell MySQL from MariaDB (db.system.name).
    for _ in 0..50 {
        if pool.status().primary.probes > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("running on {} (primary + replica1)", pool.system_name());
    let result = workload!(&pool);
    pool.close().await;
    result
}

async fn run() -> Result<(), BoxError> {
    let servers = (
        std::env::var("RWSPLIT_MYSQL_PRIMARY").ok(),
        std::env::var("RWSPLIT_MYSQL_REPLICA_1").ok(),
    );
    match servers {
        #[cfg(feature = "mysql")]
        (Some(primary), Some(replica)) => run_mysql(&primary, &replica).await,
        #[cfg(not(feature = "mysql"))]
        (Some(_), Some(_)) => {
            println!("RWSPLIT_MYSQL_* is set, but the `mysql` feature is off: using SQLite");
            run_sqlite().await
        }
        _ => run_sqlite().await,
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args();
    let provider = tracer_provider(&args)?;
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE)))
        .init();
    println!(
        "exporting spans over OTLP/{} to {}",
        match args.protocol {
            Protocol::Grpc => "gRPC",
            Protocol::Http => "HTTP",
        },
        args.endpoint
    );

    let result = run().await;

    // Flush and stop the exporter. shutdown blocks (the batch processor runs on its own
    // thread), so it runs off the async workers, and it is bounded even if no collector answers.
    let shutdown =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
    match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), shutdown).await {
        // Export errors (no collector listening) are not returned here: the batch processor
        // drops the batch after the exporter's timeout.
        Ok(Ok(Ok(()))) => println!("exporter flushed and shut down"),
        Ok(Ok(Err(e))) => eprintln!("could not flush all spans (is a collector listening?): {e}"),
        Ok(Err(e)) => eprintln!("shutdown task failed: {e}"),
        Err(_) => eprintln!("shutdown timed out after {SHUTDOWN_TIMEOUT:?}"),
    }
    result
}
