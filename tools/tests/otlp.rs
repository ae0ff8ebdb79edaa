//! Spans over the wire: the real `opentelemetry-otlp` exporters (gRPC with tonic, and HTTP
//! with protobuf bodies) send the pool's statement spans to in-process OTLP receivers on
//! 127.0.0.1:0, and the test reads them back as a collector would. Every wait is bounded.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use sqlx::Executor;
use tokio::sync::oneshot;
use tracing_subscriber::layer::SubscriberExt;

const SERVICE: &str = "rwsplit-otlp-test";

/// A received span with its resource's `service.name`.
type ServiceSpan = (Option<String>, Span);

/// What a receiver got.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<ServiceSpan>>>);

impl Received {
    fn add(&self, request: ExportTraceServiceRequest) {
        let mut all = self.0.lock().unwrap();
        for rs in request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| string_attr(&r.attributes, "service.name"));
            for ss in rs.scope_spans {
                for span in ss.spans {
                    all.push((service.clone(), span));
                }
            }
        }
    }

    fn find(&self, name: &str) -> Option<ServiceSpan> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.name == name)
            .cloned()
    }

    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect()
    }
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// An OTLP/gRPC receiver on a free loopback port.
async fn grpc_receiver() -> (SocketAddr, Received, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = TraceServiceServer::new(received.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    stopped.await.ok();
                },
            )
            .await
            .expect("OTLP gRPC receiver");
    });
    (addr, received, stop)
}

/// An OTLP/HTTP receiver (protobuf bodies on `POST /v1/traces`) on a free loopback port.
async fn http_receiver() -> (SocketAddr, Received, oneshot::Sender<()>) {
    use axum::body::Bytes;
    use axum::http::{header, StatusCode};
    use prost::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        sink.add(request);
                        let reply = ExportTraceServiceResponse {
                            partial_success: None,
                        };
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/x-protobuf")],
                            reply.encode_to_vec(),
                        )
                    }
                    Err(e) => (
                        StatusCode::BAD_REQUEST,
                        [(header::CONTENT_TYPE, "text/plain")],
                        e.to_string().into_bytes(),
                    ),
                }
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
            .expect("OTLP HTTP receiver");
    });
    (addr, received, stop)
}

/// Runs a write and a read through a SQLite pool with `provider`'s tracer installed for this
/// thread, then flushes until `received` has both statement spans (bounded).
async fn run_and_collect(provider: SdkTracerProvider, received: &Received) {
    let dir = common::temp_dir("otlp");
    {
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rwsplit-otlp"));
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

        let pool = rwsplit::sqlite::open(dir.join("otlp.db"), 1)
            .await
            .unwrap()
            .options(common::no_monitor())
            .build()
            .unwrap();
        pool.primary_pool()
            .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
            .bind(1_i64)
            .bind("one")
            .execute(&pool)
            .await
            .unwrap();
        let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
            .bind(1_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(v, "one");
        pool.close().await;
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = provider.clone();
        // force_flush blocks until the batch processor's thread has exported.
        tokio::task::spawn_blocking(move || p.force_flush())
            .await
            .unwrap()
            .ok();
        if received.find("SELECT t").is_some() && received.find("INSERT t").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spans did not arrive in time; received: {:?}",
            received.names()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || provider.shutdown()),
    )
    .await
    .expect("provider shutdown in time")
    .unwrap()
    .ok();
    std::fs::remove_dir_all(&dir).ok();
}

fn assert_statement_spans(received: &Received) {
    let (service, read) = received.find("SELECT t").expect("read span");
    assert_eq!(service.as_deref(), Some(SERVICE));
    assert_eq!(read.kind, SpanKind::Client as i32);
    assert_eq!(
        string_attr(&read.attributes, "rwsplit.target").as_deref(),
        Some("replica")
    );
    assert_eq!(
        string_attr(&read.attributes, "rwsplit.reason").as_deref(),
        Some("pure_read")
    );
    assert_eq!(
        string_attr(&read.attributes, "db.system.name").as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        string_attr(&read.attributes, "db.query.text").as_deref(),
        Some("SELECT v FROM t WHERE id = ?")
    );

    let (_, write) = received.find("INSERT t").expect("write span");
    assert_eq!(
        string_attr(&write.attributes, "rwsplit.target").as_deref(),
        Some("primary")
    );
    assert_eq!(
        string_attr(&write.attributes, "rwsplit.reason").as_deref(),
        Some("write")
    );
    assert_eq!(read.trace_id.len(), 16);
    assert_ne!(
        read.trace_id, write.trace_id,
        "each statement is its own trace"
    );
}

fn resource() -> Resource {
    Resource::builder().with_service_name(SERVICE).build()
}

/// Sends the pool's spans through `exporter`, batched as in production, and checks what the
/// receiver got; then stops the receiver.
async fn export_and_check(
    exporter: opentelemetry_otlp::SpanExporter,
    received: &Received,
    stop: oneshot::Sender<()>,
) {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    tokio::time::timeout(Duration::from_secs(60), run_and_collect(provider, received))
        .await
        .expect("bounded");
    assert_statement_spans(received);
    stop.send(()).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_otlp_grpc() {
    let (addr, received, stop) = grpc_receiver().await;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{addr}"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("gRPC exporter");
    export_and_check(exporter, &received, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_otlp_http() {
    let (addr, received, stop) = http_receiver().await;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("http://{addr}/v1/traces"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP exporter");
    export_and_check(exporter, &received, stop).await;
}
