//! Span construction and attributes. Building a span costs a few nanoseconds when no subscriber
//! listens; attributes are computed only for enabled spans.

use tracing::field::Empty;
use tracing::Span;

use crate::backend::ServerInfo;
use crate::classify::Analysis;
use crate::error::Error;
use crate::options::QueryText;
use crate::route::{Decision, Target};

/// A `db.query` span with every field the call fills in later; `parent: ..,` is optional
/// (without it, the current span is the parent, as decided by the subscriber, so nothing is
/// looked up when no subscriber listens).
macro_rules! statement_span {
    ($($parent:tt)*) => {
        tracing::info_span!(
            target: "rwsplit",
            $($parent)*
            "db.query",
            otel.name = Empty,
            otel.kind = "client",
            db.system.name = Empty,
            db.namespace = Empty,
            db.query.text = Empty,
            db.query.summary = Empty,
            db.operation.name = Empty,
            db.collection.name = Empty,
            server.address = Empty,
            server.port = Empty,
            db.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            rwsplit.target = Empty,
            rwsplit.replica = Empty,
            rwsplit.reason = Empty,
            rwsplit.retry = Empty,
            rwsplit.fallback = Empty,
            rwsplit.consistency = Empty,
            rwsplit.causal_wait_ms = Empty,
            rwsplit.replica_lag_ms = Empty,
        )
    };
}

/// A client span for one statement, under the current span. Fields are filled by
/// [`record_call`], [`record_server`] and [`record_outcome`].
///
/// Before any subscriber was ever installed (globally or for a scope), nothing can listen: there
/// is no span (`None`, without asking its callsite, and nothing to drop). A disabled span built
/// by the macro would still go through `tracing`'s `log` compatibility (its "log" feature, which
/// sqlx enables), recording every field for a logger: about 300 instructions per statement for
/// nothing.
#[inline]
pub(crate) fn call_span() -> Option<Span> {
    if !tracing::dispatcher::has_been_set() {
        return None;
    }
    Some(statement_span!())
}

/// The parent span of the statements of one transaction.
pub(crate) fn transaction_span(system: &str) -> Span {
    tracing::info_span!(
        target: "rwsplit",
        "db.transaction",
        otel.name = "TRANSACTION",
        otel.kind = "client",
        db.system.name = system,
        rwsplit.target = "primary",
        rwsplit.reason = "transaction",
        db.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// A statement span under `parent`.
pub(crate) fn call_span_in(parent: &Span) -> Span {
    statement_span!(parent: parent,)
}

/// The attributes of a call that do not depend on the server that answers.
pub(crate) struct CallFacts<'a> {
    pub system: &'a str,
    pub sql: &'a str,
    pub text_mode: QueryText,
    pub analysis: &'a Analysis,
    pub consistency: &'a str,
    pub sanitize: &'a dyn Fn(&str) -> String,
}

pub(crate) fn record_call(span: &Span, f: &CallFacts<'_>) {
    let summary = f.analysis.summary();
    span.record("otel.name", summary);
    span.record("db.query.summary", summary);
    span.record("db.operation.name", f.analysis.operation());
    if let Some(c) = f.analysis.collection() {
        span.record("db.collection.name", c);
    }
    span.record("db.system.name", f.system);
    match f.text_mode {
        QueryText::Off => {}
        QueryText::Full => {
            span.record("db.query.text", f.sql);
        }
        // Placeholders are not literals, so parameterized text comes out as written; inline
        // values become `?`. Cached per statement text with the classification.
        QueryText::Sanitized => {
            let text = f.analysis.sanitized(|| (f.sanitize)(f.sql));
            span.record("db.query.text", text);
        }
    }
    span.record("rwsplit.consistency", f.consistency);
}

/// Records the server that answers the call.
pub(crate) fn record_server(
    span: &Span,
    decision: &Decision,
    replica: Option<&str>,
    server: &ServerInfo,
    lag_ms: Option<f64>,
) {
    span.record("server.address", server.address.as_str());
    if let Some(port) = server.port {
        span.record("server.port", i64::from(port));
    }
    if let Some(ns) = &server.namespace {
        span.record("db.namespace", ns.as_str());
    }
    span.record("rwsplit.target", decision.target.as_str());
    span.record("rwsplit.reason", decision.reason.label());
    if let Some(name) = replica {
        span.record("rwsplit.replica", name);
    }
    if let Some(lag) = lag_ms {
        span.record("rwsplit.replica_lag_ms", lag);
    }
    if decision.target == Target::Primary && decision.reason.is_fallback() {
        span.record("rwsplit.fallback", decision.reason.label());
    }
}

/// Records a failed outcome: `db.response.status_code` (the server's own code, from
/// `code_of`) and `error.type`.
pub(crate) fn record_outcome(
    span: &Span,
    err: &sqlx::Error,
    code_of: impl Fn(&dyn sqlx::error::DatabaseError) -> Option<String>,
) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    match err {
        sqlx::Error::Database(db) => match code_of(db.as_ref()) {
            Some(code) => {
                span.record("db.response.status_code", code.as_str());
                span.record("error.type", code.as_str());
            }
            None => {
                span.record("error.type", "database");
            }
        },
        other => {
            span.record("error.type", error_type(other));
        }
    }
}

fn error_type(err: &sqlx::Error) -> &'static str {
    if let Some(e) = Error::from_sqlx(err) {
        return match e {
            Error::PrimaryUnavailable { .. } => "primary_unavailable",
            Error::NoEligibleReplica { .. } => "no_eligible_replica",
            Error::ReplicaTimeout { .. } => "replica_timeout",
            Error::ReplicaDown { .. } => "replica_down",
            _ => "rwsplit",
        };
    }
    match err {
        sqlx::Error::Io(_) => "io",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => "decode",
        _ => "other",
    }
}
