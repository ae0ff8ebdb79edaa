//! The per-call cost of instrumentation with and without an OpenTelemetry subscriber: the same
//! routed `SELECT` on the embedded SQLite backend (no network), measured with no subscriber,
//! with `tracing-opentelemetry` exporting to an in-memory exporter, and with Prometheus metrics
//! on top. The differences between the groups are the instrumentation's cost.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rwsplit::{PoolOptions, RoutingPool};
use sqlx::Sqlite;
use tracing_subscriber::layer::SubscriberExt;

fn pool(rt: &tokio::runtime::Runtime, dir: &std::path::Path, metrics: bool) -> RoutingPool<Sqlite> {
    rt.block_on(async {
        let mut builder = rwsplit::sqlite::open(dir.join("bench.db"), 2)
            .await
            .unwrap()
            .options(PoolOptions::new().monitor_interval(Duration::ZERO));
        if metrics {
            builder = builder.metrics(&prometheus::Registry::new(), None);
        }
        builder.build().unwrap()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rwsplit-bench-telemetry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = pool(&rt, &dir, false);
    let metered = pool(&rt, &dir, true);
    let sql = "SELECT 1";
    let mut group = c.benchmark_group("instrumentation");
    group.bench_function("no_subscriber", |b| {
        b.to_async(&rt).iter(|| async {
            let v: i32 = sqlx::query_scalar(sql).fetch_one(&plain).await.unwrap();
            v
        })
    });
    group.bench_function("no_subscriber_with_metrics", |b| {
        b.to_async(&rt).iter(|| async {
            let v: i32 = sqlx::query_scalar(sql).fetch_one(&metered).await.unwrap();
            v
        })
    });
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let _guard = tracing::subscriber::set_default(subscriber);
    group.bench_function("otel_subscriber", |b| {
        b.to_async(&rt).iter(|| async {
            let v: i32 = sqlx::query_scalar(sql).fetch_one(&plain).await.unwrap();
            exporter.reset();
            v
        })
    });
    group.finish();
    rt.block_on(async {
        plain.close().await;
        metered.close().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
