//! The sqlx-facing glue: [`sqlx::Executor`] for `&RoutingPool` and for the per-call hint
//! handles. Each call takes the query apart (statement, arguments, persistence, SQL) and hands
//! it to `call`, which routes it and delegates to the chosen server's pool with the same
//! prepared-statement and argument semantics.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::database::Database;
use sqlx::error::BoxDynError;
use sqlx::{Execute, Executor, SqlStr};

use crate::backend::Backend;
use crate::call::{error_stream, Call, Step};
use crate::consistency::Session;
use crate::options::Consistency;
use crate::pool::RoutingPool;
use crate::route::Route;

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
                let routed = self.pool().route(sql.as_str(), &self.call(), 0);
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
    fn ambient(&self) -> Option<Session<DB>> {
        crate::consistency::ambient(self)
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
            None => crate::consistency::ambient(self.pool),
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

/// `fetch_optional` through a causal session: plan (capture, wait), then run.
pub(crate) fn session_optional<'e, DB: Backend>(
    session: Session<DB>,
    pool: &'e RoutingPool<DB>,
    base: Call,
    owned: Owned<DB>,
) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>> {
    async move {
        let (call, analysis) = session.plan(owned.sql_str(), base).await?;
        let result = pool.run_optional(call, owned).await;
        if analysis.was_refused() {
            // A replica refused it as a write: it ran on the primary, and wrote there.
            session.wrote_elsewhere();
        }
        result
    }
    .boxed()
}

/// `fetch_many` through a causal session: plan (capture, wait), then run.
pub(crate) fn session_many<'e, DB: Backend>(
    session: Session<DB>,
    pool: &'e RoutingPool<DB>,
    base: Call,
    owned: Owned<DB>,
) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>> {
    let after = session.clone();
    let planned = futures_util::stream::once(async move {
        match session.plan(owned.sql_str(), base).await {
            Ok((call, analysis)) => (pool.run_many(call, owned), Some(analysis)),
            Err(e) => (error_stream(e), None),
        }
    });
    planned
        .flat_map(move |(steps, analysis)| {
            let after = after.clone();
            // When the steps end: a statement a replica refused ran, and wrote, on the primary.
            let end = futures_util::stream::poll_fn(move |_| {
                if analysis.as_ref().is_some_and(|a| a.was_refused()) {
                    after.wrote_elsewhere();
                }
                std::task::Poll::Ready(None)
            });
            steps.chain(end)
        })
        .boxed()
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

    /// The decision this handle would make for `sql` now, in the current task scope.
    pub fn explain(&self, sql: &str) -> crate::Decision {
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
