//! One routed call, from the routing decision to the caller's result: the attempt on the
//! chosen server, what happens when it fails ([`policy`]: a read moves to another replica or
//! the primary only on evidence that its server is down, a lost connection is verified by the
//! monitor first, a replica's read-only refusal sends the read to the primary), the replica's
//! in-flight count and watchdog, the duration metric, and the call's span.
//!
//! A call is a hand-written future ([`Optional`]) or stream ([`Steps`]) around the chosen
//! server's own sqlx future or stream, boxed once per attempt: no nested `async` state machines
//! to move, no timer per call (see `topology::watchdog`), and the span entered only when a
//! subscriber listens. A replica attempt is watched from its start (taking a connection talks to
//! the server: sqlx pings an idle one or opens one) by the replica's watchdog; at the bound, an
//! attempt that may be queueing for a connection in a full pool ([`CallState::queueing`]: the
//! replica answered another call during the bound) gets a new bound instead, up to the pool's
//! `acquire_timeout`, so queueing behaves exactly as sqlx's pool does (same timeout, same
//! `PoolTimedOut`), while a replica that answers nobody for a whole bound is taken for hung.
//! Calls waiting on a server whose breaker opens on evidence end at once: on the primary with
//! [`Error::PrimaryUnavailable`], on a replica by moving elsewhere.
//!
//! The same two types serve every method of sqlx's `Executor`: [`Optional`] answers
//! `fetch_optional` or `fetch_one` (`Want`), [`Steps`] streams every step, the rows or the query
//! results (`Keep`), and is also the future of `execute` and `fetch_all` (the kept steps
//! collected), so no call needs a second box around the first.
//!
//! Layer: execution (above `router`; below the scopes and the surface).

mod policy;
mod query;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Either, Executor, Pool};
use tracing::Span;

use crate::backend::{judge, Backend, ErrorClass};
use crate::classify::Analysis;
use crate::error::Error;
use crate::plan::{admit, Refusal};
use crate::route::Decision;
use crate::router::{Call, Routed, RoutingPool};
use crate::telemetry::{self, span, CallTimer, RetryCause};
use crate::topology::{Claim, InFlight, Server, Watch};
use policy::{next, Failure, Next, Probe};
pub(crate) use query::Owned;

pub(crate) type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;
pub(crate) type StepStream<'e, DB> = BoxStream<'e, Result<Step<DB>, sqlx::Error>>;
pub(crate) type RowStream<'e, DB> = BoxStream<'e, Result<<DB as Database>::Row, sqlx::Error>>;
pub(crate) type ResultStream<'e, DB> =
    BoxStream<'e, Result<<DB as Database>::QueryResult, sqlx::Error>>;
type OptionalRow<DB> = Result<Option<<DB as Database>::Row>, sqlx::Error>;
pub(crate) type RowOf<DB> = Result<<DB as Database>::Row, sqlx::Error>;
pub(crate) type RowsOf<DB> = Result<Vec<<DB as Database>::Row>, sqlx::Error>;
pub(crate) type ResultOf<DB> = Result<<DB as Database>::QueryResult, sqlx::Error>;

type Acquire<DB> = BoxFuture<'static, Result<PoolConnection<DB>, sqlx::Error>>;
/// A query and how to run it on a connection the attempt owns (boxed: only the rare stages
/// carry one, and the common one, `Running`, stays small to move).
type Job<DB, R> = Box<(Owned<DB>, fn(PoolConnection<DB>, Owned<DB>) -> R)>;

/// A stream of just `error`, for an executor call that fails before it starts.
pub(crate) fn error_stream<'e, T: Send + 'e>(
    error: sqlx::Error,
) -> BoxStream<'e, Result<T, sqlx::Error>> {
    futures_util::stream::once(std::future::ready(Err(error))).boxed()
}

/// Why a routed call does not start now.
enum NotNow {
    /// It is for the writer and none is usable: wait for one (`write_hold`).
    Hold,
    /// It fails with this error.
    Fail(sqlx::Error),
}

impl<DB: Backend> RoutingPool<DB> {
    /// Routes a call; `tried` holds the replicas this call already tried and `again` says the
    /// call was routed before (a retry, or a held write: the routed statements counter does not
    /// count it again).
    #[inline]
    fn routed(
        &self,
        sql: &str,
        call: Call,
        tried: u64,
        again: bool,
    ) -> Result<Routed<'_, DB>, NotNow> {
        let routed = self.route(sql, &call, tried);
        if let Some(m) = &self.0.metrics {
            if !again && !call.refused {
                m.routed(&routed.decision);
            }
            if let Some(cause) = routed.decision.reason.fallback_cause() {
                m.fallback(cause);
            }
        }
        let down = || self.0.topology.writer_down();
        match admit(&routed.decision, self.0.options.fallback, down) {
            Ok(()) => Ok(routed),
            Err(Refusal::NoEligibleReplica) => {
                let why = "every replica is down, lagging or out of rotation";
                Err(NotNow::Fail(Error::NoEligibleReplica { why }.into_sqlx()))
            }
            Err(Refusal::PrimaryDown) => Err(NotNow::Hold),
        }
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
            let cause = if call.causal_lag {
                "causal_lag"
            } else {
                "causal_wait_timeout"
            };
            span.record("rwsplit.fallback", cause);
        }
        let classifier = &self.0.classifier;
        span::record_call(
            span,
            &span::CallFacts {
                system: self.system_known(),
                sql,
                text_mode: self.0.options.query_text,
                analysis: &routed.analysis,
                consistency: routed.consistency.label(),
                sanitize: &|s| classifier.sanitize(s),
            },
        );
    }

    /// Records the server that answers (once per call: after a retry, the retry's server).
    fn describe_server(
        &self,
        span: &Span,
        decision: &Decision,
        server: &Server<DB>,
        replica: Option<&Server<DB>>,
    ) {
        if span.is_disabled() {
            return;
        }
        span::record_server(
            span,
            decision,
            replica.map(|r| &*r.name),
            &server.info,
            replica
                .and_then(|r| r.health.lag())
                .map(|l| l.as_secs_f64() * 1000.0),
        );
    }

    fn record_outcome(&self, span: &Span, error: &sqlx::Error) {
        telemetry::record_outcome(span, error, |db| DB::error_code(db));
    }

    /// `fetch_optional` through the pool: routes now and returns one boxed [`Optional`].
    pub(crate) fn run_optional(
        &self,
        call: Call,
        query: Owned<DB>,
    ) -> BoxFuture<'_, OptionalRow<DB>> {
        self.optional::<AnyRow>(call, query)
    }

    /// `fetch_one` through the pool: [`Self::run_optional`] that wants exactly one row, in the
    /// same box (sqlx's default `fetch_one` boxes another future around `fetch_optional`).
    pub(crate) fn run_one(&self, call: Call, query: Owned<DB>) -> BoxFuture<'_, RowOf<DB>> {
        self.optional::<OneRow>(call, query)
    }

    fn optional<W: Want<DB>>(
        &self,
        call: Call,
        query: Owned<DB>,
    ) -> BoxFuture<'_, Result<W::Output, sqlx::Error>> {
        // The box is taken before the call's state is set up, and the span before that (an
        // opaque call while the state is set up would have it built on the stack and copied):
        // the state is large, and each copy of it costs about 70 instructions. The span is None
        // until a subscriber was ever installed: a disabled span still costs its drop.
        let span = telemetry::call_span();
        let mut call = Box::write(
            Box::new_uninit(),
            Optional {
                state: CallState::new(self, call, span),
                stage: Stage::Done,
                want: PhantomData::<fn() -> W>,
            },
        );
        let Optional { state, stage, .. } = &mut *call;
        match state.first(&query) {
            Ok(start) => {
                {
                    let _entered = state.entered();
                    *stage = Stage::start(start, query, run_optional::<DB>);
                }
                Box::into_pin(call)
            }
            Err(e) => {
                self.record_outcome(state.span(), &e);
                Box::pin(std::future::ready(Err(e)))
            }
        }
    }

    /// `fetch_many` through the pool: routes now and returns one boxed [`Steps`].
    pub(crate) fn run_many(&self, call: Call, query: Owned<DB>) -> StepStream<'_, DB> {
        match self.steps::<AllSteps, ()>(call, query, None) {
            Ok(steps) => steps,
            Err(e) => error_stream(e),
        }
    }

    /// `fetch` through the pool: the rows of [`Self::run_many`], kept in the same box.
    pub(crate) fn run_rows(&self, call: Call, query: Owned<DB>) -> RowStream<'_, DB> {
        match self.steps::<RowsOnly, ()>(call, query, None) {
            Ok(steps) => steps,
            Err(e) => error_stream(e),
        }
    }

    /// `execute_many` through the pool: the query results of [`Self::run_many`].
    pub(crate) fn run_results(&self, call: Call, query: Owned<DB>) -> ResultStream<'_, DB> {
        match self.steps::<ResultsOnly, ()>(call, query, None) {
            Ok(steps) => steps,
            Err(e) => error_stream(e),
        }
    }

    /// `execute` through the pool: the query results of [`Self::run_many`] added up, in the
    /// same box (sqlx's default `execute` boxes two more around `fetch_many`).
    pub(crate) fn run_execute(&self, call: Call, query: Owned<DB>) -> BoxFuture<'_, ResultOf<DB>> {
        match self.steps::<ResultsOnly, _>(call, query, Some(DB::QueryResult::default())) {
            Ok(steps) => steps,
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// `fetch_all` through the pool: the rows of [`Self::run_many`] in a `Vec`, in the same
    /// box.
    pub(crate) fn run_all(&self, call: Call, query: Owned<DB>) -> BoxFuture<'_, RowsOf<DB>> {
        match self.steps::<RowsOnly, _>(call, query, Some(Vec::new())) {
            Ok(steps) => steps,
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// A boxed [`Steps`] keeping `K`'s steps, routed and started; with `into`, it is also the
    /// future of those steps collected into it.
    fn steps<K: Keep<DB>, C>(
        &self,
        call: Call,
        query: Owned<DB>,
        into: Option<C>,
    ) -> Result<BoxedSteps<'_, DB, K, C>, sqlx::Error> {
        let span = telemetry::call_span();
        let mut call = Box::write(
            Box::new_uninit(),
            Steps {
                state: CallState::new(self, call, span),
                stage: Stage::Done,
                into,
                keep: PhantomData::<fn() -> K>,
            },
        );
        let Steps { state, stage, .. } = &mut *call;
        match state.first(&query) {
            Ok(start) => {
                {
                    let _entered = state.entered();
                    *stage = Stage::start(start, query, run_many::<DB>);
                }
                Ok(Box::into_pin(call))
            }
            Err(e) => {
                self.record_outcome(state.span(), &e);
                Err(e)
            }
        }
    }
}

/// `fetch_optional` on a connection the attempt owns.
fn run_optional<DB: Backend>(
    mut conn: PoolConnection<DB>,
    query: Owned<DB>,
) -> BoxFuture<'static, OptionalRow<DB>> {
    Box::pin(async move { DB::conn_executor(&mut conn).fetch_optional(query).await })
}

/// `fetch_many` on a connection the attempt owns.
fn run_many<DB: Backend>(conn: PoolConnection<DB>, query: Owned<DB>) -> StepStream<'static, DB> {
    Box::pin(sqlx_core::ext::async_stream::TryAsyncStream::new(
        move |yielder| async move {
            let yielder = &yielder;
            let mut conn = conn;
            let mut steps = DB::conn_executor(&mut conn).fetch_many(query);
            while let Some(step) = steps.try_next().await? {
                yielder.r#yield(step).await;
            }
            Ok(())
        },
    ))
}

/// What the caller of a `fetch_optional`-shaped call gets: the row if any, or exactly one.
trait Want<DB: Database>: 'static {
    type Output: Send;
    fn from(row: Option<DB::Row>) -> Result<Self::Output, sqlx::Error>;
}

/// `fetch_optional`.
struct AnyRow;

impl<DB: Database> Want<DB> for AnyRow {
    type Output = Option<DB::Row>;
    fn from(row: Option<DB::Row>) -> Result<Self::Output, sqlx::Error> {
        Ok(row)
    }
}

/// `fetch_one`: no row is sqlx's `RowNotFound`.
struct OneRow;

impl<DB: Database> Want<DB> for OneRow {
    type Output = DB::Row;
    fn from(row: Option<DB::Row>) -> Result<Self::Output, sqlx::Error> {
        row.ok_or(sqlx::Error::RowNotFound)
    }
}

/// Which steps of a `fetch_many`-shaped call its caller gets.
trait Keep<DB: Database>: 'static {
    type Item: Send;
    fn keep(step: Step<DB>) -> Option<Self::Item>;
}

/// `fetch_many`: every step.
struct AllSteps;

impl<DB: Database> Keep<DB> for AllSteps {
    type Item = Step<DB>;
    fn keep(step: Step<DB>) -> Option<Self::Item> {
        Some(step)
    }
}

/// `fetch`, `fetch_all`: the rows.
struct RowsOnly;

impl<DB: Database> Keep<DB> for RowsOnly {
    type Item = DB::Row;
    fn keep(step: Step<DB>) -> Option<Self::Item> {
        match step {
            Either::Left(_) => None,
            Either::Right(row) => Some(row),
        }
    }
}

/// `execute`, `execute_many`: the query results.
struct ResultsOnly;

impl<DB: Database> Keep<DB> for ResultsOnly {
    type Item = DB::QueryResult;
    fn keep(step: Step<DB>) -> Option<Self::Item> {
        match step {
            Either::Left(result) => Some(result),
            Either::Right(_) => None,
        }
    }
}

/// sqlx's default `fetch_one` for a call that is not the pool's own (a session's).
pub(crate) fn one_of<'e, DB: Database>(
    optional: BoxFuture<'e, OptionalRow<DB>>,
) -> BoxFuture<'e, RowOf<DB>> {
    optional
        .map(|row| row.and_then(<OneRow as Want<DB>>::from))
        .boxed()
}

/// sqlx's default `fetch`/`execute_many` for a stream that is not the pool's own (a session's).
fn kept<'e, DB: Database, K: Keep<DB>>(
    steps: StepStream<'e, DB>,
) -> BoxStream<'e, Result<K::Item, sqlx::Error>> {
    steps
        .try_filter_map(|step| std::future::ready(Ok(K::keep(step))))
        .boxed()
}

/// `fetch` through a session: the rows of its steps.
pub(crate) fn rows_of<DB: Database>(steps: StepStream<'_, DB>) -> RowStream<'_, DB> {
    kept::<DB, RowsOnly>(steps)
}

/// `execute_many` through a session: the query results of its steps.
pub(crate) fn results_of<DB: Database>(steps: StepStream<'_, DB>) -> ResultStream<'_, DB> {
    kept::<DB, ResultsOnly>(steps)
}

/// `execute` through a session: the query results of its steps added up.
pub(crate) fn executed<DB: Database>(steps: StepStream<'_, DB>) -> BoxFuture<'_, ResultOf<DB>> {
    results_of::<DB>(steps).try_collect().boxed()
}

/// `fetch_all` through a session: the rows of its steps.
pub(crate) fn all_rows<DB: Database>(steps: StepStream<'_, DB>) -> BoxFuture<'_, RowsOf<DB>> {
    rows_of::<DB>(steps).try_collect().boxed()
}

/// Every connection of `pool` is in use and it may open no more: a new acquire queues.
fn saturated<DB: Database>(pool: &Pool<DB>) -> bool {
    pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections()
}

/// Where to run an attempt.
struct Attempt<'e, DB: Backend> {
    pool: &'e Pool<DB>,
    /// A replica attempt that will queue for a connection: it takes one first, so that the
    /// watchdog starts only once the server has the statement.
    queued: bool,
}

/// How a call (or its next attempt) starts: on a server, or by waiting for a writer.
enum Start<'e, DB: Backend> {
    Attempt(Attempt<'e, DB>),
    Hold(Held<'e>),
}

/// A [`Steps`] in its box.
type BoxedSteps<'e, DB, K, C> = Pin<Box<Steps<'e, DB, K, C>>>;

/// Waiting for a usable writer (`RoutingPool::writer`).
type Held<'e> = BoxFuture<'e, Result<(), sqlx::Error>>;

/// What the running part of an attempt is: a future (`fetch_optional`) or a stream.
trait Run<'e, DB: Backend>: Sized + Send + 'e {
    /// Runs on the server's pool (the primary: queueing and running are one).
    fn on_pool(pool: &'e Pool<DB>, query: Owned<DB>) -> Self;
}

impl<'e, DB: Backend> Run<'e, DB> for BoxFuture<'e, OptionalRow<DB>> {
    fn on_pool(pool: &'e Pool<DB>, query: Owned<DB>) -> Self {
        DB::pool_executor(pool).fetch_optional(query)
    }
}

impl<'e, DB: Backend> Run<'e, DB> for StepStream<'e, DB> {
    fn on_pool(pool: &'e Pool<DB>, query: Owned<DB>) -> Self {
        DB::pool_executor(pool).fetch_many(query)
    }
}

/// Where one attempt is.
enum Stage<'e, DB: Backend, R> {
    /// Waiting for a connection in a replica's pool (not watched: queueing is not the
    /// server's fault), with what to run on it.
    Acquiring(Acquire<DB>, Option<Job<DB, R>>),
    /// Running on the server.
    Running(R),
    /// Waiting for the monitor's verdict on a lost connection, with the error it ended with.
    Verifying(BoxFuture<'e, Option<bool>>, Option<sqlx::Error>),
    /// A write waiting for a usable writer, with what to run once there is one.
    Holding(Held<'e>, Option<Job<DB, R>>),
    /// Over (the stream was exhausted or failed for good).
    Done,
}

impl<'e, DB: Backend, R: Run<'e, DB>> Stage<'e, DB, R> {
    #[inline]
    fn start(
        start: Start<'e, DB>,
        query: Owned<DB>,
        owned: fn(PoolConnection<DB>, Owned<DB>) -> R,
    ) -> Self {
        let attempt = match start {
            Start::Attempt(attempt) => attempt,
            Start::Hold(held) => return Stage::Holding(held, Some(Box::new((query, owned)))),
        };
        if attempt.queued {
            Stage::Acquiring(
                Box::pin(attempt.pool.acquire()),
                Some(Box::new((query, owned))),
            )
        } else {
            Stage::Running(R::on_pool(attempt.pool, query))
        }
    }
}

/// After a failed attempt.
enum After<'e, DB: Backend> {
    /// The caller gets this error.
    Deliver(sqlx::Error),
    /// Wait for the monitor's verdict, then judge this error again.
    Verify(BoxFuture<'e, Option<bool>>, sqlx::Error),
    /// Run the query again there (or wait for a writer first).
    Retry(Start<'e, DB>, Owned<DB>),
}

/// What one call carries across its attempts (at most one per replica, plus the primary).
struct CallState<'e, DB: Backend> {
    pool: &'e RoutingPool<DB>,
    call: Call,
    span: Option<Span>,
    /// The replica of the current attempt, if any (`None`: the writer).
    replica: Option<&'e Server<DB>>,
    /// The server of the current attempt (the replica, or the writer).
    server: Option<&'e Server<DB>>,
    /// When the call first waited for a writer (its `write_hold` counts from there).
    held_since: Option<std::time::Instant>,
    /// The call was routed before (a retry or a held write).
    routed_before: bool,
    /// The current replica attempt's decision, recorded on the span once it answers (kept
    /// only when the call has an enabled span).
    decision: Option<Decision>,
    /// A copy of the query for a retry, while the current attempt, on a replica, has not
    /// answered (none once every replica has had its attempt).
    retry: Option<Owned<DB>>,
    /// The attempt's watch (replica: its watchdog; primary: its breaker), until the first
    /// answer.
    watch: Option<Watch<'e>>,
    /// The first answer has not arrived yet.
    first: bool,
    /// The replica attempt is still waiting for a connection.
    queued: bool,
    /// The replica's `answers` when the attempt's current bound started.
    answers: u64,
    /// Times the attempt's bound was renewed because it was waiting in a full pool.
    renewed: u32,
    /// The attempt runs inside sqlx's `fetch_optional` / `fetch_many` on the replica's pool, so
    /// it may be waiting in sqlx's queue (an attempt that took its connection first, after
    /// queueing, is known to be on the server and is never renewed).
    renewable: bool,
    timer: Option<CallTimer<'e>>,
    in_flight: Option<InFlight<'e>>,
    /// Attempts started so far.
    attempts: usize,
    /// Replicas tried so far (bits by index).
    tried: u64,
    /// The statement's analysis (moved out of the routing, no extra count), where a replica's
    /// read-only refusal is learned.
    analysis: Option<std::sync::Arc<Analysis>>,
}

/// The span of a call that has none ([`CallState::span`]).
static NO_SPAN: Span = Span::none();

impl<'e, DB: Backend> CallState<'e, DB> {
    /// The call's span (disabled when it has none).
    #[inline]
    fn span(&self) -> &Span {
        self.span.as_ref().unwrap_or(&NO_SPAN)
    }

    /// `span`: [`telemetry::call_span`], taken before the call's box is, so that the state is
    /// written straight into the box (no opaque call while it is set up).
    #[inline]
    fn new(pool: &'e RoutingPool<DB>, call: Call, span: Option<Span>) -> Self {
        CallState {
            pool,
            call,
            span,
            replica: None,
            server: None,
            held_since: None,
            routed_before: false,
            decision: None,
            retry: None,
            watch: None,
            first: true,
            queued: false,
            answers: 0,
            renewed: 0,
            renewable: false,
            timer: None,
            in_flight: None,
            attempts: 0,
            tried: 0,
            analysis: None,
        }
    }

    /// Routes the call and sets up the first attempt.
    #[inline]
    fn first(&mut self, query: &Owned<DB>) -> Result<Start<'e, DB>, sqlx::Error> {
        let routed = match self.pool.routed(query.sql_str(), self.call, 0, false) {
            Ok(routed) => routed,
            Err(NotNow::Fail(e)) => return Err(e),
            Err(NotNow::Hold) => {
                self.routed_before = true;
                return Ok(Start::Hold(self.hold()));
            }
        };
        self.pool
            .describe_call(self.span(), &routed, &self.call, query.sql_str());
        Ok(Start::Attempt(self.begin(routed, query)))
    }

    /// Waits for a usable writer, up to `write_hold` from the call's first wait.
    fn hold(&mut self) -> Held<'e> {
        let since = *self.held_since.get_or_insert_with(std::time::Instant::now);
        let pool = self.pool;
        Box::pin(async move { pool.writer(Some(since)).await.map(|_| ()) })
    }

    /// Routes the call again after it waited for a writer: a writer is usable, unless it was
    /// lost again meanwhile (then it waits again, within the same `write_hold`).
    fn after_hold(&mut self, query: &Owned<DB>) -> Result<Start<'e, DB>, sqlx::Error> {
        let first_time = !self.routed_before;
        self.routed_before = true;
        match self
            .pool
            .routed(query.sql_str(), self.call, self.tried, !first_time)
        {
            Ok(routed) => {
                if self.attempts == 0 {
                    self.pool
                        .describe_call(self.span(), &routed, &self.call, query.sql_str());
                }
                Ok(Start::Attempt(self.begin(routed, query)))
            }
            Err(NotNow::Fail(e)) => Err(e),
            Err(NotNow::Hold) => Ok(Start::Hold(self.hold())),
        }
    }

    /// Sets up an attempt on the routed server; on a replica, keeps a copy of `query` for a
    /// retry, unless every replica has had its attempt.
    #[inline]
    fn begin(&mut self, routed: Routed<'e, DB>, query: &Owned<DB>) -> Attempt<'e, DB> {
        // The previous attempt's timer records and its in-flight count drops first.
        self.timer = None;
        self.in_flight = None;
        self.watch = None;
        self.first = true;
        self.attempts += 1;
        let replica = routed.replica;
        self.server = Some(routed.server);
        self.timer = Some(CallTimer::start(
            self.pool.0.metrics.as_ref(),
            replica.map_or(0, |r| r.index),
            routed.analysis.operation(),
            routed.at,
        ));
        self.replica = replica;
        // Where each statement went, for a plain `fmt` subscriber at DEBUG (one atomic load
        // when nothing listens at that level).
        tracing::debug!(
            target: "rwsplit",
            server = &*routed.server.name,
            route = routed.decision.target.as_str(),
            reason = routed.decision.reason.label(),
            attempt = self.attempts,
            statement = routed.analysis.summary(),
            "routed"
        );
        match replica {
            Some(r) => {
                self.tried |= r.bit();
                self.in_flight = Some(r.start());
                // With an idle connection or room for a new one, the attempt runs inside sqlx's
                // pool call (taking a connection talks to the server). In a saturated pool it
                // takes a connection first, then runs on it (`acquired`): the bound then starts
                // again and is never renewed. Either way the watchdog measures from the start;
                // waiting in the queue renews the bound while the replica answers others.
                self.queued = saturated(&r.pool);
                self.answers = r.answers.load(Ordering::Relaxed);
                self.renewed = 0;
                self.renewable = true;
                self.watch = Some(r.watchdog.watch());
                let retries_left = self.attempts < self.pool.0.topology.servers.len();
                self.retry = retries_left.then(|| query.clone());
                // Only a span records it: without one, no decision to keep and drop.
                if !self.span().is_disabled() {
                    self.decision = Some(routed.decision);
                }
            }
            None => {
                // A copy for the writer's next incarnation: a write it refuses as read-only
                // (a switchover demoted it) had no effect and runs again on the new writer.
                let options = &self.pool.0.options;
                let can_hold = self.pool.0.topology.monitored && !options.write_hold.is_zero();
                self.retry = can_hold.then(|| query.clone());
                // And a connection first: a write that fails before it has one was never sent,
                // so it can wait for the next writer too.
                self.queued = can_hold;
                self.watch = Some(routed.server.writes.watch());
                self.pool
                    .describe_server(self.span(), &routed.decision, routed.server, None)
            }
        }
        let pool = routed.pool;
        self.analysis = Some(routed.analysis);
        Attempt {
            pool,
            queued: self.queued,
        }
    }

    /// A queued replica attempt has its connection: from now on the replica's watchdog
    /// measures the server's answer.
    fn acquired(&mut self) {
        self.queued = false;
        self.renewable = false;
        if self.replica.is_some() {
            // A new bound for the server's answer, keeping the view of the breaker's events.
            self.watch = self.watch.as_ref().map(Watch::renew);
        }
    }

    /// Runs `f` inside the call's span, when a subscriber listens (sqlx's own events then
    /// nest under it).
    #[inline]
    fn in_span<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = self.entered();
        f()
    }

    /// The call's span entered, when a subscriber listens, until the guard drops: what
    /// [`Self::in_span`] does, for a call that moves a large value (the query) in, which a
    /// closure would copy once more.
    #[inline]
    fn entered(&self) -> Option<tracing::span::Entered<'_>> {
        self.span
            .as_ref()
            .filter(|span| !span.is_disabled())
            .map(Span::enter)
    }

    /// The attempt is still pending: how it ends when its watch has ended it (a replica that
    /// gave no answer in time, a replica or primary whose breaker opened meanwhile), else
    /// `None`.
    fn expired(&mut self, cx: &Context<'_>) -> Option<(sqlx::Error, Failure)> {
        let watch = self.watch.as_mut()?;
        let t = &self.pool.0.topology;
        match self.replica {
            None => {
                // This writer's breaker, not "is there a writer": a write in flight on a writer
                // that was just demoted finishes there (the server decides: it commits, or
                // refuses it as read-only and it moves on).
                let down = self
                    .server
                    .is_some_and(|w| t.writer.current() == w.index && t.breaker_open(w));
                (watch.pending(cx) || down)
                    .then(|| (self.pool.primary_unavailable(), Failure::PrimaryDown))
            }
            Some(replica) => {
                if !watch.pending(cx) {
                    return None;
                }
                if !replica.health.is_open() && self.queueing(replica) {
                    // Renew the bound: the next expiry is judged the same way, on the
                    // replica's answers from now on.
                    self.renewed += 1;
                    self.answers = replica.answers.load(Ordering::Relaxed);
                    let mut watch = self.watch.as_ref()?.renew();
                    let ended = watch.pending(cx);
                    self.watch = Some(watch);
                    if !ended {
                        return None;
                    }
                }
                let name = replica.name.to_string();
                if replica.health.is_open() {
                    // Its breaker opened on evidence while this call waited on it.
                    let error = Error::ReplicaDown { replica: name }.into_sqlx();
                    return Some((error, Failure::Error(ErrorClass::ServerDown)));
                }
                let after = self.waited();
                let error = Error::ReplicaTimeout {
                    replica: name,
                    after,
                };
                Some((error.into_sqlx(), Failure::NoAnswer))
            }
        }
    }

    /// A replica attempt reached `replica_timeout`: may it be waiting in sqlx's queue rather than
    /// on the server? Only if it may not have a connection yet (it runs inside sqlx's pool
    /// call, or is still taking one), the pool is full now (the check in `begin` is a snapshot:
    /// a connection seen idle can be taken by another call first), and the replica gave another
    /// call its first answer during this bound, so it is answering. A call on a
    /// replica that hangs gets at most one renewal (the answers before the hang), and none once
    /// it has waited the pool's `acquire_timeout` (sqlx would have ended a queued call by then).
    fn queueing(&self, replica: &Server<DB>) -> bool {
        let pool = &replica.pool;
        self.renewable
            && saturated(pool)
            && self.waited() < pool.options().get_acquire_timeout()
            && replica.answers.load(Ordering::Relaxed) != self.answers
    }

    /// How long the attempt has waited when its current bound expires: the bound, and each
    /// renewal of it.
    fn waited(&self) -> std::time::Duration {
        let bound = self.pool.0.options.replica_timeout;
        bound.saturating_mul(self.renewed.saturating_add(1))
    }

    /// The first answer arrived and is a success.
    #[inline]
    fn answered(&mut self) {
        self.watch = None;
        self.first = false;
        match self.replica {
            Some(replica) => {
                if let Some(decision) = self.decision.take() {
                    self.pool
                        .describe_server(self.span(), &decision, replica, Some(replica));
                }
                replica.health.succeeded();
                replica.answers.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                if let Some(writer) = self.server {
                    writer.health.succeeded();
                }
            }
        }
    }

    /// The attempt failed before its first answer: what the error proves decides the next step
    /// ([`policy::next`]).
    fn failed(&mut self, error: sqlx::Error, failure: Failure, probe: Probe) -> After<'e, DB> {
        self.watch = None;
        // A write that failed before it had a connection, or whose connection was refused
        // (`ServerDown`: refused, login refused, shutting down), was never run.
        let unsent = self.replica.is_none()
            && (self.queued || failure == Failure::Error(ErrorClass::ServerDown));
        let t = &self.pool.0.topology;
        let on_replica = self.replica.is_some();
        match next(failure, on_replica, t.monitored, probe) {
            Next::Deliver => {
                if let (Some(replica), Some(decision)) = (self.replica, self.decision.take()) {
                    self.pool
                        .describe_server(self.span(), &decision, replica, Some(replica));
                }
                // A write whose connection was lost on a writer that is no longer the writer (a
                // failover), or that no probe could vouch for in time: the typed error that
                // says to retry, not the socket's.
                let lost = failure == Failure::Error(ErrorClass::ConnectionLost);
                let replaced = self.server.is_some_and(|w| t.writer.current() != w.index);
                if self.replica.is_none() && lost && (replaced || probe == Probe::NoVerdict) {
                    return After::Deliver(self.pool.primary_unavailable());
                }
                After::Deliver(error)
            }
            Next::Verify => {
                let Some(server) = self.server else {
                    return After::Deliver(error);
                };
                let health = &server.health;
                // A probe connects and asks: up to two probe timeouts, plus the interval's
                // probe that may be under way.
                let wait = self.pool.0.options.probe_timeout * 3;
                After::Verify(Box::pin(health.verify(wait)), error)
            }
            Next::Down => match self.replica {
                Some(replica) => {
                    if !replica.health.is_open() {
                        replica.trip(&error);
                    }
                    let cause = match failure {
                        Failure::NoAnswer => RetryCause::Timeout,
                        _ => RetryCause::Error,
                    };
                    self.retry_elsewhere(error, cause)
                }
                None => {
                    if let Some(writer) = self.server {
                        if !writer.health.is_open() {
                            writer.trip(&error);
                        }
                    }
                    // Never sent: wait for a writer and run it there.
                    if unsent {
                        if let Some(copy) = self.retry.take() {
                            return self.retry_after_hold(copy);
                        }
                    }
                    After::Deliver(self.pool.primary_unavailable())
                }
            },
            Next::Hold => {
                // The writer refused the write as read-only: it is not the writer any more.
                if let Some(writer) = self.server {
                    t.claim(writer.index, Claim::ReadOnly, std::time::Instant::now());
                }
                match self.retry.take() {
                    Some(copy) => self.retry_after_hold(copy),
                    // Without `write_hold`, the typed error at once (the refusal had no effect).
                    None => After::Deliver(self.pool.primary_unavailable()),
                }
            }
            Next::Elsewhere => self.retry_elsewhere(error, RetryCause::Error),
            Next::Primary => {
                if let Some(analysis) = &self.analysis {
                    analysis.refused();
                }
                self.call.refused = true;
                self.retry_elsewhere(error, RetryCause::Refused)
            }
        }
    }

    /// Runs the query again where the router now sends it (another replica whose breaker is
    /// closed, else the primary), if a copy is left; else the caller gets `error`.
    fn retry_elsewhere(&mut self, error: sqlx::Error, cause: RetryCause) -> After<'e, DB> {
        let Some(copy) = self.retry.take() else {
            return After::Deliver(error);
        };
        self.fail_timer();
        self.span().record("rwsplit.retry", true);
        if let Some(m) = &self.pool.0.metrics {
            m.retry(cause);
        }
        match self
            .pool
            .routed(copy.sql_str(), self.call, self.tried, true)
        {
            Ok(again) => {
                let attempt = self.begin(again, &copy);
                After::Retry(Start::Attempt(attempt), copy)
            }
            Err(NotNow::Fail(e)) => After::Deliver(e),
            Err(NotNow::Hold) => {
                let held = self.hold();
                After::Retry(Start::Hold(held), copy)
            }
        }
    }

    /// The write had no effect on the writer it was sent to: wait for a writer (the monitor
    /// is looking) and run it there.
    fn retry_after_hold(&mut self, copy: Owned<DB>) -> After<'e, DB> {
        self.fail_timer();
        self.timer = None;
        self.watch = None;
        self.span().record("rwsplit.retry", true);
        let held = self.hold();
        After::Retry(Start::Hold(held), copy)
    }

    /// The current attempt failed (for the duration metric's outcome label).
    fn fail_timer(&mut self) {
        if let Some(t) = &mut self.timer {
            t.fail();
        }
    }

    /// An error reaches the caller.
    fn deliver_error(&mut self, error: &sqlx::Error) {
        self.fail_timer();
        self.pool.record_outcome(self.span(), error);
    }

    /// The call is over: the timer records, the replica's in-flight count drops.
    #[inline]
    fn finish(&mut self) {
        self.watch = None;
        self.timer = None;
        self.in_flight = None;
    }
}

/// One poll of a stage that has not produced the attempt's result: either it is pending, or
/// the attempt failed before its first answer (and how).
enum Polled<T> {
    Pending,
    Value(T),
    Failed(sqlx::Error, Failure, Probe),
    /// The call ends with this error (a held write found no writer in time).
    Fatal(sqlx::Error),
}

impl<'e, DB: Backend, R: Run<'e, DB>> Stage<'e, DB, R> {
    /// Drives the stages that come before the running one (taking a connection, waiting for a
    /// verdict); `Value(())` means the stage is now `Running` and should be polled. Inline:
    /// `Running`, the common case, returns at once without the call to the rest.
    #[inline(always)]
    fn prepare(&mut self, state: &mut CallState<'e, DB>, cx: &mut Context<'_>) -> Polled<()> {
        match self {
            Stage::Running(_) => Polled::Value(()),
            _ => self.prepare_other(state, cx),
        }
    }

    /// [`Self::prepare`] for every stage but `Running`.
    fn prepare_other(&mut self, state: &mut CallState<'e, DB>, cx: &mut Context<'_>) -> Polled<()> {
        match self {
            Stage::Acquiring(acquire, job) => match acquire.poll_unpin(cx) {
                Poll::Ready(Ok(conn)) => {
                    let Some((query, owned)) = job.take().map(|job| *job) else {
                        return Polled::Pending;
                    };
                    state.acquired();
                    *self = Stage::Running(state.in_span(|| owned(conn, query)));
                    Polled::Value(())
                }
                Poll::Ready(Err(e)) => {
                    let class = judge::<DB>(&e);
                    Polled::Failed(e, Failure::Error(class), Probe::NotAsked)
                }
                Poll::Pending => match state.expired(cx) {
                    Some((e, failure)) => Polled::Failed(e, failure, Probe::NotAsked),
                    None => Polled::Pending,
                },
            },
            Stage::Verifying(verdict, error) => match verdict.poll_unpin(cx) {
                Poll::Ready(down) => {
                    let probe = match down {
                        Some(true) => Probe::Down,
                        Some(false) => Probe::Up,
                        None => Probe::NoVerdict,
                    };
                    let error = error.take().unwrap_or(sqlx::Error::WorkerCrashed);
                    let class = judge::<DB>(&error);
                    *self = Stage::Done;
                    Polled::Failed(error, Failure::Error(class), probe)
                }
                Poll::Pending => Polled::Pending,
            },
            Stage::Holding(held, job) => match held.poll_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    let Some((query, owned)) = job.take().map(|job| *job) else {
                        return Polled::Pending;
                    };
                    match state.after_hold(&query) {
                        Ok(start) => {
                            *self = state.in_span(|| Stage::start(start, query, owned));
                            // Polled again by the caller's loop: `Value` drives the new stage.
                            match self {
                                Stage::Running(_) => Polled::Value(()),
                                _ => self.prepare(state, cx),
                            }
                        }
                        Err(e) => {
                            *self = Stage::Done;
                            Polled::Fatal(e)
                        }
                    }
                }
                Poll::Ready(Err(e)) => {
                    *self = Stage::Done;
                    Polled::Fatal(e)
                }
                Poll::Pending => Polled::Pending,
            },
            Stage::Running(_) | Stage::Done => Polled::Value(()),
        }
    }

    /// Acts on a failed attempt: the error for the caller, or the stage to go on with.
    fn after_failure(
        &mut self,
        state: &mut CallState<'e, DB>,
        error: sqlx::Error,
        failure: Failure,
        probe: Probe,
        owned: fn(PoolConnection<DB>, Owned<DB>) -> R,
    ) -> Option<sqlx::Error> {
        match state.failed(error, failure, probe) {
            After::Deliver(e) => {
                *self = Stage::Done;
                Some(e)
            }
            After::Verify(verdict, e) => {
                *self = Stage::Verifying(verdict, Some(e));
                None
            }
            After::Retry(attempt, query) => {
                *self = state.in_span(|| Stage::start(attempt, query, owned));
                None
            }
        }
    }
}

/// The future of one `fetch_optional` (or `fetch_one`: `W`) call.
struct Optional<'e, DB: Backend, W> {
    state: CallState<'e, DB>,
    stage: Stage<'e, DB, BoxFuture<'e, OptionalRow<DB>>>,
    want: PhantomData<fn() -> W>,
}

// Neither `Optional` nor `Steps` ever hands out pinned references to its fields: they are used
// by value or through `&mut`, and the inner futures and streams are themselves boxed.
impl<DB: Backend, W> Unpin for Optional<'_, DB, W> {}
impl<DB: Backend, K, C> Unpin for Steps<'_, DB, K, C> {}

impl<DB: Backend, W: Want<DB>> Future for Optional<'_, DB, W> {
    type Output = Result<W::Output, sqlx::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let owned: fn(_, _) -> _ = run_optional::<DB>;
        loop {
            let state = &mut this.state;
            let failed = match this.stage.prepare(state, cx) {
                Polled::Pending => return Poll::Pending,
                Polled::Failed(e, failure, probe) => Some((e, failure, probe)),
                Polled::Fatal(e) => {
                    state.deliver_error(&e);
                    state.finish();
                    return Poll::Ready(Err(e));
                }
                Polled::Value(()) => None,
            };
            let (error, failure, probe) = match failed {
                Some(f) => f,
                None => {
                    let Stage::Running(inner) = &mut this.stage else {
                        return Poll::Ready(Err(sqlx::Error::WorkerCrashed));
                    };
                    match state.in_span(|| inner.poll_unpin(cx)) {
                        Poll::Ready(Ok(row)) => {
                            state.answered();
                            state.finish();
                            this.stage = Stage::Done;
                            return Poll::Ready(W::from(row));
                        }
                        Poll::Ready(Err(e)) => {
                            let class = judge::<DB>(&e);
                            (e, Failure::Error(class), Probe::NotAsked)
                        }
                        Poll::Pending => match state.expired(cx) {
                            Some((e, failure)) => (e, failure, Probe::NotAsked),
                            None => return Poll::Pending,
                        },
                    }
                }
            };
            if let Some(e) = this
                .stage
                .after_failure(state, error, failure, probe, owned)
            {
                state.deliver_error(&e);
                state.finish();
                return Poll::Ready(Err(e));
            }
        }
    }
}

/// The stream of one `fetch_many` call, keeping `K`'s steps (every step, the rows or the query
/// results); with `into` (`execute`, `fetch_all`), also the future of those steps collected.
struct Steps<'e, DB: Backend, K, C> {
    state: CallState<'e, DB>,
    stage: Stage<'e, DB, StepStream<'e, DB>>,
    into: Option<C>,
    keep: PhantomData<fn() -> K>,
}

impl<DB: Backend, K: Keep<DB>, C> Stream for Steps<'_, DB, K, C> {
    type Item = Result<K::Item, sqlx::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let owned: fn(_, _) -> _ = run_many::<DB>;
        loop {
            let state = &mut this.state;
            let failed = match this.stage.prepare(state, cx) {
                Polled::Pending => return Poll::Pending,
                Polled::Failed(e, failure, probe) => Some((e, failure, probe)),
                Polled::Fatal(e) => {
                    state.deliver_error(&e);
                    return Poll::Ready(Some(Err(e)));
                }
                Polled::Value(()) => None,
            };
            let (error, failure, probe) = match failed {
                Some(f) => f,
                None => {
                    let Stage::Running(inner) = &mut this.stage else {
                        // Done: the stream ended (or failed for good) earlier.
                        state.finish();
                        return Poll::Ready(None);
                    };
                    let polled = state.in_span(|| inner.poll_next_unpin(cx));
                    match polled {
                        Poll::Ready(Some(Ok(step))) => {
                            if state.first {
                                state.answered();
                            }
                            match K::keep(step) {
                                Some(item) => return Poll::Ready(Some(Ok(item))),
                                None => continue,
                            }
                        }
                        Poll::Ready(None) => {
                            if state.first {
                                state.answered();
                            }
                            state.finish();
                            this.stage = Stage::Done;
                            return Poll::Ready(None);
                        }
                        // After the first answer, errors go to the caller as they are: rows
                        // were delivered, so the read cannot move elsewhere. A replica that
                        // refused it as a write then (a function that writes on a later row)
                        // still teaches the router: the next call goes to the primary.
                        Poll::Ready(Some(Err(e))) if !state.first => {
                            if state.replica.is_some() && judge::<DB>(&e) == ErrorClass::ReadOnly {
                                if let Some(analysis) = &state.analysis {
                                    analysis.refused();
                                }
                            }
                            state.deliver_error(&e);
                            return Poll::Ready(Some(Err(e)));
                        }
                        Poll::Ready(Some(Err(e))) => {
                            let class = judge::<DB>(&e);
                            (e, Failure::Error(class), Probe::NotAsked)
                        }
                        Poll::Pending if !state.first => return Poll::Pending,
                        Poll::Pending => match state.expired(cx) {
                            Some((e, failure)) => (e, failure, Probe::NotAsked),
                            None => return Poll::Pending,
                        },
                    }
                }
            };
            if let Some(e) = this
                .stage
                .after_failure(state, error, failure, probe, owned)
            {
                state.deliver_error(&e);
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

/// `execute` and `fetch_all`: the kept steps collected, as sqlx's `try_collect` does (the first
/// error ends it).
impl<DB: Backend, K: Keep<DB>, C: Default + Extend<K::Item>> Future for Steps<'_, DB, K, C> {
    type Output = Result<C, sqlx::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if let Some(into) = &mut self.into {
                        into.extend(Some(item));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(self.into.take().unwrap_or_default())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
