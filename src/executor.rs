//! The sqlx-facing glue: [`sqlx::Executor`] for `&RoutingPool` and for the per-call hint
//! handles. Each call takes the query apart (statement, arguments, persistence, SQL), routes
//! it, and delegates to the chosen server's pool with the same prepared-statement and argument
//! semantics. A read that fails on a replica with a connection-level error is retried once
//! elsewhere (another replica or the primary); nothing else is ever retried.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{stream, FutureExt, StreamExt};
use sqlx::database::Database;
use sqlx::error::BoxDynError;
use sqlx::{Either, Execute, Executor, SqlStr};

use tracing::{Instrument, Span};

use crate::backend::{Backend, ErrorClass};
use crate::options::{Consistency, Fallback};
use crate::pool::{Routed, RoutingPool};
use crate::route::{Decision, Reason, Route, Target};
use crate::telemetry::{self, span, CallTimer, FallbackCause, RetryCause};
use crate::topology::Replica;
use crate::Error;

/// A query taken apart, owned, so it can be routed and (for reads) sent again.
pub(crate) struct Owned<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<DB::Arguments>,
    persistent: bool,
}

impl<DB: Backend> Clone for Owned<DB> {
    fn clone(&self) -> Self {
        Owned {
            sql: self.sql.clone(),
            statement: self.statement.clone(),
            arguments: self.arguments.clone(),
            persistent: self.persistent,
        }
    }
}

impl<DB: Database> Owned<DB> {
    /// The SQL text.
    pub(crate) fn sql_str(&self) -> &str {
        self.sql.as_str()
    }

    /// Reads the parts in the order sqlx's own types expect: statement, arguments,
    /// persistence, then the SQL (which consumes the query).
    pub(crate) fn take<'q, E: Execute<'q, DB>>(mut query: E) -> Result<Self, BoxDynError> {
        let statement = query.statement().cloned();
        let arguments = query.take_arguments()?;
        let persistent = query.persistent();
        let sql = query.sql();
        Ok(Owned {
            sql,
            statement,
            arguments,
            persistent,
        })
    }
}

impl<'q, DB: Database> Execute<'q, DB> for Owned<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;

/// A failure of the connection or server rather than of the statement: the primary is
/// unavailable.
pub(crate) fn server_gone<DB: Backend>(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => DB::error_class(db.as_ref()) == ErrorClass::ServerGone,
        _ => false,
    }
}

/// A failure that says nothing about the statement: safe to retry a read elsewhere (also a
/// replica this pool cannot log in to or open).
pub(crate) fn is_retriable<DB: Backend>(err: &sqlx::Error) -> bool {
    server_gone::<DB>(err)
        || matches!(err, sqlx::Error::Database(db) if DB::error_class(db.as_ref()) == ErrorClass::Unusable)
}

/// The per-call part of routing: a handle's hint and consistency, and what a causal session
/// decided (a replica known to be at the session's position, or a fallback to the primary).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Call {
    pub route: Option<Route>,
    pub consistency: Option<Consistency>,
    /// Index (as in `Replica::index`) of the replica a causal read must use.
    pub pin: Option<usize>,
    /// The causal wait timed out (or the time window is open): read from the primary.
    pub causal_fallback: bool,
    /// How long the causal wait took.
    pub causal_wait: Option<std::time::Duration>,
}

type StepStream<'e, DB> = BoxStream<'e, Result<Step<DB>, sqlx::Error>>;

impl<DB: Backend> RoutingPool<DB> {
    /// Routes a call; `exclude` names a replica that just failed (a retry, which the routed
    /// statements counter does not count again).
    fn routed(
        &self,
        sql: &str,
        call: Call,
        exclude: Option<&str>,
    ) -> Result<Routed<'_, DB>, sqlx::Error> {
        let routed = self.route(sql, &call, exclude);
        if let Some(m) = &self.0.metrics {
            if exclude.is_none() {
                m.routed(&routed.decision);
            }
            let cause = match routed.decision.reason {
                Reason::NoEligibleReplica => Some(FallbackCause::NoEligibleReplica),
                Reason::ForcedToPrimary => Some(FallbackCause::ForcedToPrimary),
                _ => None,
            };
            if let Some(cause) = cause {
                m.fallback(cause);
            }
        }
        if routed.decision.target == Target::Primary {
            if routed.decision.reason == Reason::NoEligibleReplica
                && self.0.options.fallback == Fallback::Error
            {
                let why = "every replica is down, lagging or out of rotation";
                return Err(Error::NoEligibleReplica { why }.into_sqlx());
            }
            if self.0.topology.primary_down() {
                return Err(self.primary_unavailable());
            }
        }
        Ok(routed)
    }

    /// Records the attributes that do not depend on the server (once per call).
    fn describe_call(&self, span: &Span, routed: &Routed<'_, DB>, call: &Call, sql: &str) {
        if span.is_disabled() {
            return;
        }
        if let Some(wait) = call.causal_wait {
            span.record("rwsplit.causal_wait_ms", wait.as_secs_f64() * 1000.0);
        }
        if call.causal_fallback {
            span.record("rwsplit.fallback", "causal_wait_timeout");
        }
        let classifier = &self.0.classifier;
        span::record_call(
            span,
            &span::CallFacts {
                system: self.system_name(),
                sql,
                text_mode: self.0.options.query_text,
                analysis: &routed.analysis,
                consistency: routed.consistency.label(),
                sanitize: &|s| classifier.sanitize(s),
            },
        );
    }

    /// Records the server that answers (once per call: after a retry, the retry's server).
    fn describe_server(&self, span: &Span, decision: &Decision, replica: Option<&Replica<DB>>) {
        if span.is_disabled() {
            return;
        }
        let t = &self.0.topology;
        span::record_server(
            span,
            decision,
            replica.map(|r| &*r.name),
            replica.map_or(&t.primary_info, |r| &r.info),
            replica
                .and_then(|r| r.health.lag())
                .map(|l| l.as_secs_f64() * 1000.0),
        );
    }

    fn record_outcome(&self, span: &Span, error: &sqlx::Error) {
        telemetry::record_outcome(span, error, |db| DB::error_code(db));
    }

    /// A replica failed: open its breaker and count the retry.
    fn replica_failed(
        &self,
        span: &Span,
        replica: &Replica<DB>,
        err: &sqlx::Error,
        timed_out: bool,
    ) {
        replica.health.trip(err);
        span.record("rwsplit.retry", true);
        if let Some(m) = &self.0.metrics {
            m.retry(if timed_out {
                RetryCause::ReplicaTimeout
            } else {
                RetryCause::ReplicaError
            });
        }
    }

    /// A connection-level failure on the primary opens its breaker and becomes
    /// [`Error::PrimaryUnavailable`]; anything else passes through.
    fn primary_result<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        match result {
            Ok(v) => {
                self.0.topology.primary_health.succeeded();
                Ok(v)
            }
            Err(e) => Err(self.primary_result_of(e)),
        }
    }

    pub(crate) fn run_many<'e>(&'e self, call: Call, query: Owned<DB>) -> StepStream<'e, DB> {
        let span = telemetry::call_span();
        let routed = match self.routed(query.sql.as_str(), call, None) {
            Ok(routed) => routed,
            Err(e) => {
                self.record_outcome(&span, &e);
                return stream::once(async move { Err(e) }).boxed();
            }
        };
        self.describe_call(&span, &routed, &call, query.sql.as_str());
        let Some(replica) = routed.replica else {
            self.describe_server(&span, &routed.decision, None);
            return self.attempt_many(routed, query, span, true);
        };
        let decision = routed.decision.clone();
        let retry = query.clone();
        let first = self.attempt_many(routed, query, span.clone(), false);
        let limit = self.0.options.replica_timeout;
        stream::once(async move {
            let mut first = first;
            let head = tokio::time::timeout(limit, first.next()).await;
            let timed_out = head.is_err();
            match head.unwrap_or(Some(Err(sqlx::Error::PoolTimedOut))) {
                Some(Err(err)) if is_retriable::<DB>(&err) => {
                    drop(first);
                    self.replica_failed(&span, replica, &err, timed_out);
                    match self.routed(retry.sql.as_str(), call, Some(&replica.name)) {
                        Ok(again) => {
                            self.describe_server(&span, &again.decision, again.replica);
                            self.attempt_many(again, retry, span, true)
                        }
                        Err(e) => {
                            self.record_outcome(&span, &e);
                            stream::once(async move { Err(e) }).boxed()
                        }
                    }
                }
                head => {
                    self.describe_server(&span, &decision, Some(replica));
                    match &head {
                        Some(Err(e)) => self.record_outcome(&span, e),
                        _ => replica.health.succeeded(),
                    }
                    stream::iter(head).chain(first).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// One attempt as a stream. Errors are recorded on the span when the attempt is `last`
    /// (no retry can follow) or once rows were seen (a retry cannot follow them either).
    fn attempt_many<'e>(
        &'e self,
        routed: Routed<'e, DB>,
        query: Owned<DB>,
        span: Span,
        last: bool,
    ) -> StepStream<'e, DB> {
        let steps = {
            let _entered = span.enter();
            DB::pool_executor(routed.pool).fetch_many(query)
        };
        let server = routed.replica.map_or(0, |r| r.index);
        let timer = CallTimer::start(self.0.metrics.as_ref(), server, routed.analysis.operation());
        // The guards live in the stream: the timer records and the in-flight count drops when
        // the stream ends or is dropped.
        let mut guards = (timer, routed.replica.map(|r| r.start()), false);
        let on_primary = routed.replica.is_none();
        steps
            .map(move |step| {
                let step = if on_primary {
                    self.primary_result(step)
                } else {
                    step
                };
                match &step {
                    Ok(_) => guards.2 = true,
                    Err(e) => {
                        guards.0.fail();
                        if last || guards.2 {
                            self.record_outcome(&span, e);
                        }
                    }
                }
                step
            })
            .boxed()
    }

    async fn attempt_optional(
        &self,
        routed: Routed<'_, DB>,
        query: Owned<DB>,
        span: &Span,
    ) -> Result<Option<DB::Row>, sqlx::Error> {
        let server = routed.replica.map_or(0, |r| r.index);
        let mut timer =
            CallTimer::start(self.0.metrics.as_ref(), server, routed.analysis.operation());
        let attempt = DB::pool_executor(routed.pool)
            .fetch_optional(query)
            .instrument(span.clone());
        let result = match routed.replica {
            Some(replica) => {
                let _guard = replica.start();
                tokio::time::timeout(self.0.options.replica_timeout, attempt)
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            }
            None => self.primary_result(attempt.await),
        };
        if result.is_err() {
            timer.fail();
        }
        result
    }

    pub(crate) fn run_optional<'e>(
        &'e self,
        call: Call,
        query: Owned<DB>,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>> {
        let span = telemetry::call_span();
        async move {
            let result = self.run_optional_in(&span, call, query).await;
            if let Err(e) = &result {
                self.record_outcome(&span, e);
            }
            result
        }
        .boxed()
    }

    async fn run_optional_in(
        &self,
        span: &Span,
        call: Call,
        query: Owned<DB>,
    ) -> Result<Option<DB::Row>, sqlx::Error> {
        let routed = self.routed(query.sql.as_str(), call, None)?;
        self.describe_call(span, &routed, &call, query.sql.as_str());
        let Some(replica) = routed.replica else {
            self.describe_server(span, &routed.decision, None);
            return self.attempt_optional(routed, query, span).await;
        };
        let decision = routed.decision.clone();
        let retry = query.clone();
        let limit = self.0.options.replica_timeout;
        let start = std::time::Instant::now();
        match self.attempt_optional(routed, query, span).await {
            Err(err) if is_retriable::<DB>(&err) => {
                let timed_out = start.elapsed() >= limit;
                self.replica_failed(span, replica, &err, timed_out);
                let again = self.routed(retry.sql.as_str(), call, Some(&replica.name))?;
                self.describe_server(span, &again.decision, again.replica);
                self.attempt_optional(again, retry, span).await
            }
            other => {
                self.describe_server(span, &decision, Some(replica));
                if other.is_ok() {
                    replica.health.succeeded();
                }
                other
            }
        }
    }
}

fn encode_error_stream<'e, T: Send + 'e>(
    err: BoxDynError,
) -> BoxStream<'e, Result<T, sqlx::Error>> {
    stream::once(async move { Err(sqlx::Error::Encode(err)) }).boxed()
}

/// Implements `Executor` for a type with a `pool()` and a `hint()`.
macro_rules! routing_executor {
    ($ty:ty) => {
        impl<'p, DB: Backend> Executor<'p> for $ty {
            type Database = DB;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => self.pool().run_many(self.call(), owned),
                    Err(err) => encode_error_stream(err),
                }
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => self.pool().run_optional(self.call(), owned),
                    Err(err) => async move { Err(sqlx::Error::Encode(err)) }.boxed(),
                }
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [DB::TypeInfo],
            ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
            where
                'p: 'e,
            {
                let routed = self.pool().route(sql.as_str(), &self.call(), None);
                DB::pool_executor(routed.pool).prepare_with(sql, parameters)
            }

            #[doc(hidden)]
            fn describe<'e>(
                self,
                sql: SqlStr,
            ) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
            where
                'p: 'e,
            {
                DB::pool_executor(self.pool().primary_pool()).describe(sql)
            }
        }
    };
}

impl<'p, DB: Backend> RoutingPoolRef<'p, DB> for &'p RoutingPool<DB> {
    fn pool(&self) -> &'p RoutingPool<DB> {
        self
    }
    fn call(&self) -> Call {
        Call::default()
    }
}

impl<'p, DB: Backend> RoutingPoolRef<'p, DB> for Hinted<'p, DB> {
    fn pool(&self) -> &'p RoutingPool<DB> {
        self.pool
    }
    fn call(&self) -> Call {
        self.call
    }
}

/// What the two executor types share: a pool and per-call routing input.
trait RoutingPoolRef<'p, DB: Backend> {
    fn pool(&self) -> &'p RoutingPool<DB>;
    fn call(&self) -> Call;
}

routing_executor!(&'p RoutingPool<DB>);
routing_executor!(Hinted<'p, DB>);

/// An executor that carries a per-call route hint or consistency level; see
/// [`RoutingPool::primary`], [`RoutingPool::replica`] and [`RoutingPool::with_consistency`].
pub struct Hinted<'p, DB: Backend> {
    pool: &'p RoutingPool<DB>,
    call: Call,
}

impl<'p, DB: Backend> Hinted<'p, DB> {
    pub(crate) fn new(
        pool: &'p RoutingPool<DB>,
        route: Option<Route>,
        consistency: Option<Consistency>,
    ) -> Self {
        Hinted {
            pool,
            call: Call {
                route,
                consistency,
                ..Call::default()
            },
        }
    }

    /// The route hint this handle applies, if any.
    pub fn route(&self) -> Option<Route> {
        self.call.route
    }

    /// The consistency this handle asks for, if any.
    pub fn consistency(&self) -> Option<Consistency> {
        self.call.consistency
    }
}

impl<DB: Backend> Clone for Hinted<'_, DB> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<DB: Backend> Copy for Hinted<'_, DB> {}

impl<DB: Backend> std::fmt::Debug for Hinted<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hinted").field("call", &self.call).finish()
    }
}
