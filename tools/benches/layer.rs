//! The per-request cost of `SessionLayer` (feature `tower`), with no network and no database
//! round trip: a bare service that answers at once, the same service behind the layer for a
//! request without a token, and for a request carrying a token (parsed, checked against the
//! pool's cluster, merged into the request's session). The difference of the medians is what
//! the layer adds to a request. Over a `RoutingPool<Sqlite>` (no monitor); a request whose
//! session has a replication position (MySQL, PostgreSQL) also encodes the token on the
//! response: a base64 encoding of about 20 bytes more.
//!
//! ```text
//! cargo bench -p rwsplit-tools --bench layer
//! ```

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rwsplit::{PoolOptions, SessionLayer};
use tower_layer::Layer;
use tower_service::Service;

/// A service that answers every request at once.
#[derive(Clone)]
struct Answer;

impl Service<http::Request<()>> for Answer {
    type Response = http::Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        ready(Ok(http::Response::new(())))
    }
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = std::env::temp_dir().join(format!("rwsplit-bench-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pool = rt.block_on(async {
        rwsplit::sqlite::open(dir.join("bench.db"), 1)
            .await
            .expect("open sqlite")
            .options(PoolOptions::new().monitor_interval(Duration::ZERO))
            .build()
            .expect("build pool")
    });
    let token = rt
        .block_on(pool.session().token())
        .expect("a token")
        .to_string();
    let mut group = c.benchmark_group("layer");
    group.bench_function("bare", |b| {
        let mut svc = Answer;
        b.to_async(&rt)
            .iter(|| black_box(svc.call(http::Request::new(()))));
    });
    group.bench_function("no-token", |b| {
        let svc = SessionLayer::new(pool.clone()).layer(Answer);
        b.to_async(&rt).iter(|| {
            let mut svc = svc.clone();
            async move { black_box(svc.call(http::Request::new(())).await) }
        });
    });
    group.bench_function("token", |b| {
        let svc = SessionLayer::new(pool.clone()).layer(Answer);
        b.to_async(&rt).iter(|| {
            let mut svc = svc.clone();
            let req = http::Request::builder()
                .header(rwsplit::layer::TOKEN_HEADER, token.as_str())
                .body(())
                .expect("a request");
            async move { black_box(svc.call(req).await) }
        });
    });
    group.finish();
    rt.block_on(pool.close());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = layer
}
criterion_main!(benches);
