//! The sqlx-facing glue (surface layer): [`sqlx::Executor`] for `&RoutingPool` and for the
//! per-call hint handles. Each call takes the query apart (statement, arguments, persistence,
//! SQL) and hands it to `call`, which routes it and delegates to the chosen server's pool with
//! the same prepared-statement and argument semantics; inside a session scope it goes through
//! the session (`consistency`). `fetch_one`, `fetch_all`, `fetch`, `execute` and `execute_many`
//! are implemented here too: sqlx's defaults wrap `fetch_optional` or `fetch_many` in one or two
//! more boxed futures, where the routed call's own future does their work, with sqlx's results
//! and errors (`tools/tests/idioms.rs` compares every method with plain sqlx). Below `pool`,
//! above every other layer.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::{Execute, Executor, SqlStr};

use crate::backend::Backend;
use crate::call::{
    all_rows, error_stream, executed, one_of, results_of, rows_of, Owned, ResultOf, ResultStream,
    RowOf, RowStream, RowsOf, Step,
};
use crate::consistency::{ambient, session_many, session_optional, Session};
use crate::options::Consistency;
use crate::route::{Decision, Route};
use crate::router::{Call, RoutingPool};

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
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_many(self.call(), owned),
                        Some(session) => session_many(session, self.pool(), self.call(), owned),
                    },
                    Err(err) => error_stream(sqlx::Error::Encode(err)),
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
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_optional(self.call(), owned),
                        Some(session) => session_optional(session, self.pool(), self.call(), owned),
                    },
                    Err(err) => encode_error(err),
                }
            }

            fn fetch_one<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, RowOf<DB>>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_one(self.call(), owned),
                        Some(session) => {
                            one_of::<DB>(session_optional(session, self.pool(), self.call(), owned))
                        }
                    },
                    Err(err) => encode_error(err),
                }
            }

            fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, ResultOf<DB>>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_execute(self.call(), owned),
                        Some(session) => {
                            executed::<DB>(session_many(session, self.pool(), self.call(), owned))
                        }
                    },
                    Err(err) => encode_error(err),
                }
            }

            fn execute_many<'e, 'q: 'e, E>(self, query: E) -> ResultStream<'e, DB>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_results(self.call(), owned),
                        Some(session) => {
                            results_of::<DB>(session_many(session, self.pool(), self.call(), owned))
                        }
                    },
                    Err(err) => error_stream(sqlx::Error::Encode(err)),
                }
            }

            fn fetch<'e, 'q: 'e, E>(self, query: E) -> RowStream<'e, DB>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_rows(self.call(), owned),
                        Some(session) => {
                            rows_of::<DB>(session_many(session, self.pool(), self.call(), owned))
                        }
                    },
                    Err(err) => error_stream(sqlx::Error::Encode(err)),
                }
            }

            fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, RowsOf<DB>>
            where
                'p: 'e,
                E: 'q + Execute<'q, DB>,
            {
                match Owned::take(query) {
                    Ok(owned) => match self.ambient() {
                        None => self.pool().run_all(self.call(), owned),
                        Some(session) => {
                            all_rows::<DB>(session_many(session, self.pool(), self.call(), owned))
                        }
                    },
                    Err(err) => encode_error(err),
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
                self.pool().prepare_routed(&self.call(), sql, parameters)
            }

            #[doc(hidden)]
            fn describe<'e>(
                self,
                sql: SqlStr,
            ) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
            where
                'p: 'e,
            {
                self.pool().describe_on_primary(sql)
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
    #[inline]
    fn ambient(&self) -> Option<Session<DB>> {
        ambient(self)
    }
}

impl<'p, DB: Backend> RoutingPoolRef<'p, DB> for Hinted<'p, DB> {
    fn pool(&self) -> &'p RoutingPool<DB> {
        self.pool
    }
    fn call(&self) -> Call {
        self.call
    }
    fn ambient(&self) -> Option<Session<DB>> {
        // A handle's route hint keeps its meaning inside a session; a per-call consistency
        // level beats the session (as it beats a scope).
        match self.call.consistency {
            None => ambient(self.pool),
            Some(_) => None,
        }
    }
}

/// What the two executor types share: a pool and per-call routing input.
trait RoutingPoolRef<'p, DB: Backend> {
    fn pool(&self) -> &'p RoutingPool<DB>;
    fn call(&self) -> Call;
    /// The ambient session of [`crate::with_session`] for this pool, if any.
    fn ambient(&self) -> Option<Session<DB>>;
}

routing_executor!(&'p RoutingPool<DB>);
routing_executor!(Hinted<'p, DB>);

/// A future of just the error of a query that could not be taken apart.
fn encode_error<'e, T: Send + 'e>(
    err: sqlx::error::BoxDynError,
) -> BoxFuture<'e, Result<T, sqlx::Error>> {
    Box::pin(std::future::ready(Err(sqlx::Error::Encode(err))))
}

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

    /// The decision this handle would make for `sql` now, in the current task scope.
    pub fn explain(&self, sql: &str) -> Decision {
        let call = Call {
            session: self.ambient().is_some(),
            ..self.call
        };
        self.pool.route(sql, &call, 0).decision
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
