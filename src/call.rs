//! One routed call, from the routing decision to the caller's result: the attempt on the
//! chosen server, the retries of a read whose replica fails or hangs before answering (on
//! another replica whose breaker is closed, else the primary; at most one attempt per replica),
//! the replica's in-flight count and watchdog, the duration metric, and the call's span.
//!
//! A call is a hand-written future ([`Optional`]) or stream ([`Steps`]) around the chosen
//! server's own sqlx future or stream, boxed once: no nested `async` state machines to move, no
//! timer per call (see `topology::watchdog`), and the span entered only when a subscriber
//! listens.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use futures_util::{FutureExt, StreamExt};
use sqlx::{Database, Either, Executor, Pool};
use tracing::Span;

use crate::backend::{Backend, ErrorClass};
use crate::executor::Owned;
use crate::options::{Consistency, Fallback};
use crate::pool::{Routed, RoutingPool};
use crate::route::{Decision, Reason, Route, Target};
use crate::telemetry::{self, span, CallTimer, FallbackCause, RetryCause};
use crate::topology::{InFlight, Replica, Watch};
use crate::Error;

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

pub(crate) type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;
pub(crate) type StepStream<'e, DB> = BoxStream<'e, Result<Step<DB>, sqlx::Error>>;
type OptionalRow<DB> = Result<Option<<DB as Database>::Row>, sqlx::Error>;

/// A stream of just `error`, for an executor call that fails before it starts.
pub(crate) fn error_stream<'e, T: Send + 'e>(
    error: sqlx::Error,
) -> BoxStream<'e, Result<T, sqlx::Error>> {
    futures_util::stream::once(std::future::ready(Err(error))).boxed()
}

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

    /// `fetch_optional` through the pool: routes now and returns one boxed [`Optional`].
    pub(crate) fn run_optional(
        &self,
        call: Call,
        query: Owned<DB>,
    ) -> BoxFuture<'_, OptionalRow<DB>> {
        let mut state = CallState::new(self, call);
        match state.first(&query) {
            Ok(pool) => {
                let inner = DB::pool_executor(pool).fetch_optional(query);
                Box::pin(Optional { state, inner })
            }
            Err(e) => {
                self.record_outcome(&state.span, &e);
                Box::pin(std::future::ready(Err(e)))
            }
        }
    }

    /// `fetch_many` through the pool: routes now and returns one boxed [`Steps`].
    pub(crate) fn run_many(&self, call: Call, query: Owned<DB>) -> StepStream<'_, DB> {
        let mut state = CallState::new(self, call);
        match state.first(&query) {
            Ok(pool) => {
                let inner = state.in_span(|| DB::pool_executor(pool).fetch_many(query));
                Box::pin(Steps { state, inner })
            }
            Err(e) => {
                self.record_outcome(&state.span, &e);
                error_stream(e)
            }
        }
    }
}

/// What happens after an attempt on a replica ended.
enum Next<'e, DB: Backend> {
    /// The outcome goes to the caller.
    Deliver,
    /// Run the query again on the newly routed server.
    Retry(&'e Pool<DB>, Owned<DB>),
    /// The retry could not be routed: the caller gets this error instead.
    Fail(sqlx::Error),
}

/// What one call carries across its attempts (at most one per replica, plus the primary).
struct CallState<'e, DB: Backend> {
    pool: &'e RoutingPool<DB>,
    call: Call,
    span: Span,
    /// The replica of the current attempt, if any (`None`: the primary).
    replica: Option<&'e Replica<DB>>,
    /// The current replica attempt's decision, recorded on the span once it answers.
    decision: Option<Decision>,
    /// A copy of the query for a retry, while the current attempt, on a replica, has not
    /// answered (none once every replica has had its attempt).
    retry: Option<Owned<DB>>,
    /// The replica's watchdog, until its first answer.
    watch: Option<Watch<'e>>,
    timer: Option<CallTimer<'e>>,
    in_flight: Option<InFlight<'e>>,
    /// Attempts started so far.
    attempts: usize,
}

impl<'e, DB: Backend> CallState<'e, DB> {
    fn new(pool: &'e RoutingPool<DB>, call: Call) -> Self {
        CallState {
            pool,
            call,
            span: telemetry::call_span(),
            replica: None,
            decision: None,
            retry: None,
            watch: None,
            timer: None,
            in_flight: None,
            attempts: 0,
        }
    }

    /// Routes the call and sets up the first attempt; returns the pool to run it on.
    fn first(&mut self, query: &Owned<DB>) -> Result<&'e Pool<DB>, sqlx::Error> {
        let routed = self.pool.routed(query.sql_str(), self.call, None)?;
        self.pool
            .describe_call(&self.span, &routed, &self.call, query.sql_str());
        Ok(self.begin(routed, query))
    }

    /// Sets up an attempt on the routed server; on a replica, keeps a copy of `query` for a
    /// retry, unless every replica has had its attempt.
    fn begin(&mut self, routed: Routed<'e, DB>, query: &Owned<DB>) -> &'e Pool<DB> {
        // The previous attempt's timer records and its in-flight count drops first.
        self.timer = None;
        self.in_flight = None;
        self.attempts += 1;
        let replica = routed.replica;
        self.timer = Some(CallTimer::start(
            self.pool.0.metrics.as_ref(),
            replica.map_or(0, |r| r.index),
            routed.analysis.operation(),
        ));
        self.replica = replica;
        match replica {
            Some(r) => {
                self.in_flight = Some(r.start());
                self.watch = Some(r.watchdog.watch());
                let retries_left = self.attempts <= self.pool.0.topology.replicas.len();
                self.retry = retries_left.then(|| query.clone());
                self.decision = Some(routed.decision);
            }
            None => self
                .pool
                .describe_server(&self.span, &routed.decision, None),
        }
        routed.pool
    }

    /// Runs `f` inside the call's span, when a subscriber listens (sqlx's own events then
    /// nest under it).
    fn in_span<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = (!self.span.is_disabled()).then(|| self.span.enter());
        f()
    }

    /// The attempt is still pending: the error it ends with when the replica's watchdog has
    /// given up on it ([`Error::ReplicaTimeout`]), else `None`.
    fn expired(&mut self, cx: &Context<'_>) -> Option<sqlx::Error> {
        let replica = self.replica?;
        if !self.watch.as_mut()?.pending(cx) {
            return None;
        }
        let after = self.pool.0.options.replica_timeout;
        let replica = replica.name.to_string();
        Some(Error::ReplicaTimeout { replica, after }.into_sqlx())
    }

    /// The first answer of a replica attempt arrived (`error`: it failed; `timed_out`: no
    /// answer in time): retry elsewhere when the failure is the server's and a copy is left.
    /// The failed replica's breaker is open by then, so the retry goes to another replica
    /// whose breaker is closed, else to the primary.
    fn settle(&mut self, error: Option<&sqlx::Error>, timed_out: bool) -> Next<'e, DB> {
        self.watch = None;
        let Some(replica) = self.replica else {
            return Next::Deliver;
        };
        // A failure of the server (not of the statement) opens the replica's breaker, also on
        // a retry that has no copy left to go again with.
        let failed = error.filter(|e| timed_out || is_retriable::<DB>(e));
        if let Some(err) = failed {
            self.failed();
            replica.health.trip(err);
        }
        let retry = self.retry.take();
        if let (Some(_), Some(retry)) = (failed, retry) {
            self.span.record("rwsplit.retry", true);
            if let Some(m) = &self.pool.0.metrics {
                m.retry(if timed_out {
                    RetryCause::ReplicaTimeout
                } else {
                    RetryCause::ReplicaError
                });
            }
            return match self
                .pool
                .routed(retry.sql_str(), self.call, Some(&replica.name))
            {
                Ok(again) => Next::Retry(self.begin(again, &retry), retry),
                Err(e) => Next::Fail(e),
            };
        }
        if let Some(decision) = self.decision.take() {
            self.pool
                .describe_server(&self.span, &decision, Some(replica));
        }
        if error.is_none() {
            replica.health.succeeded();
        }
        Next::Deliver
    }

    /// The current attempt failed (for the duration metric's outcome label).
    fn failed(&mut self) {
        if let Some(t) = &mut self.timer {
            t.fail();
        }
    }

    /// An error reaches the caller.
    fn deliver_error(&mut self, error: &sqlx::Error) {
        self.failed();
        self.pool.record_outcome(&self.span, error);
    }

    /// The call is over: the timer records, the replica's in-flight count drops.
    fn finish(&mut self) {
        self.watch = None;
        self.timer = None;
        self.in_flight = None;
    }
}

/// The future of one `fetch_optional` call.
struct Optional<'e, DB: Backend> {
    state: CallState<'e, DB>,
    inner: BoxFuture<'e, OptionalRow<DB>>,
}

// Neither `Optional` nor `Steps` ever hands out pinned references to its fields: they are used
// by value or through `&mut`, and the inner future or stream is itself boxed.
impl<DB: Backend> Unpin for Optional<'_, DB> {}
impl<DB: Backend> Unpin for Steps<'_, DB> {}

impl<DB: Backend> Future for Optional<'_, DB> {
    type Output = OptionalRow<DB>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let polled = this.state.in_span(|| this.inner.poll_unpin(cx));
            let (result, timed_out) = match polled {
                Poll::Ready(result) => (result, false),
                Poll::Pending => match this.state.expired(cx) {
                    Some(timeout) => (Err(timeout), true),
                    None => return Poll::Pending,
                },
            };
            let state = &mut this.state;
            let result = if state.replica.is_none() {
                state.pool.primary_result(result)
            } else {
                match state.settle(result.as_ref().err(), timed_out) {
                    Next::Deliver => result,
                    Next::Fail(e) => Err(e),
                    Next::Retry(pool, query) => {
                        this.inner = DB::pool_executor(pool).fetch_optional(query);
                        continue;
                    }
                }
            };
            if let Err(e) = &result {
                state.deliver_error(e);
            }
            state.finish();
            return Poll::Ready(result);
        }
    }
}

/// The stream of one `fetch_many` call.
struct Steps<'e, DB: Backend> {
    state: CallState<'e, DB>,
    inner: StepStream<'e, DB>,
}

impl<DB: Backend> Stream for Steps<'_, DB> {
    type Item = Result<Step<DB>, sqlx::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let polled = this.state.in_span(|| this.inner.poll_next_unpin(cx));
            let (step, timed_out) = match polled {
                Poll::Ready(step) => (step, false),
                Poll::Pending => match this.state.expired(cx) {
                    Some(timeout) => (Some(Err(timeout)), true),
                    None => return Poll::Pending,
                },
            };
            let state = &mut this.state;
            let step = match state.replica {
                None => step.map(|s| state.pool.primary_result(s)),
                // Only the replica's first answer (or its timeout, which needs the watch too)
                // can lead to a retry; `settle` ends the watch.
                Some(_) if state.watch.is_some() => {
                    let error = match &step {
                        Some(Err(e)) => Some(e),
                        _ => None,
                    };
                    match state.settle(error, timed_out) {
                        Next::Deliver => step,
                        Next::Fail(e) => {
                            // The failed attempt's stream is done with.
                            this.inner = futures_util::stream::empty().boxed();
                            Some(Err(e))
                        }
                        Next::Retry(pool, query) => {
                            this.inner =
                                state.in_span(|| DB::pool_executor(pool).fetch_many(query));
                            continue;
                        }
                    }
                }
                Some(_) => step,
            };
            match &step {
                Some(Ok(_)) => {}
                Some(Err(e)) => state.deliver_error(e),
                None => state.finish(),
            }
            return Poll::Ready(step);
        }
    }
}
