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

use crate::backend::Backend;
use crate::pool::{Routed, RoutingPool};
use crate::route::{Route, Target};

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
    /// Reads the parts in the order sqlx's own types expect: statement, arguments,
    /// persistence, then the SQL (which consumes the query).
    fn take<'q, E: Execute<'q, DB>>(mut query: E) -> Result<Self, BoxDynError> {
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

/// Errors that say nothing reached a result: safe to retry a read elsewhere.
pub(crate) fn is_retriable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

impl<DB: Backend> RoutingPool<DB> {
    fn run_many<'e>(
        &'e self,
        call: Option<Route>,
        query: Owned<DB>,
    ) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>> {
        let routed = self.route(query.sql.as_str(), call, None);
        if routed.decision.target == Target::Primary {
            return DB::pool_executor(routed.pool).fetch_many(query);
        }
        let retry = query.clone();
        let failed = routed.replica.map(|r| r.name.clone());
        let first = self.attempt_many(routed, query);
        let limit = self.0.options.replica_timeout;
        stream::once(async move {
            let mut first = first;
            let head = tokio::time::timeout(limit, first.next())
                .await
                .unwrap_or(Some(Err(sqlx::Error::PoolTimedOut)));
            match head {
                Some(Err(err)) if is_retriable(&err) => {
                    let again = self.route(retry.sql.as_str(), call, failed.as_deref());
                    self.attempt_many(again, retry)
                }
                head => stream::iter(head).chain(first).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn attempt_many<'e>(
        &'e self,
        routed: Routed<'e, DB>,
        query: Owned<DB>,
    ) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>> {
        let guard = routed.replica.map(|r| r.start());
        DB::pool_executor(routed.pool)
            .fetch_many(query)
            .map(move |step| {
                let _ = &guard;
                step
            })
            .boxed()
    }

    fn run_optional<'e>(
        &'e self,
        call: Option<Route>,
        query: Owned<DB>,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>> {
        let routed = self.route(query.sql.as_str(), call, None);
        if routed.decision.target == Target::Primary {
            return DB::pool_executor(routed.pool).fetch_optional(query);
        }
        let retry = query.clone();
        async move {
            let failed = routed.replica.map(|r| r.name.clone());
            let first = {
                let _guard = routed.replica.map(|r| r.start());
                let attempt = DB::pool_executor(routed.pool).fetch_optional(query);
                tokio::time::timeout(self.0.options.replica_timeout, attempt)
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            };
            match first {
                Err(err) if is_retriable(&err) => {
                    let again = self.route(retry.sql.as_str(), call, failed.as_deref());
                    let _guard = again.replica.map(|r| r.start());
                    DB::pool_executor(again.pool).fetch_optional(retry).await
                }
                other => other,
            }
        }
        .boxed()
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
                    Ok(owned) => self.pool().run_many(self.hint(), owned),
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
                    Ok(owned) => self.pool().run_optional(self.hint(), owned),
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
                let routed = self.pool().route(sql.as_str(), self.hint(), None);
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
    fn hint(&self) -> Option<Route> {
        None
    }
}

impl<'p, DB: Backend> RoutingPoolRef<'p, DB> for Hinted<'p, DB> {
    fn pool(&self) -> &'p RoutingPool<DB> {
        self.pool
    }
    fn hint(&self) -> Option<Route> {
        Some(self.route)
    }
}

trait RoutingPoolRef<'p, DB: Backend> {
    fn pool(&self) -> &'p RoutingPool<DB>;
    fn hint(&self) -> Option<Route>;
}

routing_executor!(&'p RoutingPool<DB>);
routing_executor!(Hinted<'p, DB>);

/// An executor that carries a per-call route hint; see [`RoutingPool::primary`] and
/// [`RoutingPool::replica`].
pub struct Hinted<'p, DB: Backend> {
    pool: &'p RoutingPool<DB>,
    route: Route,
}

impl<'p, DB: Backend> Hinted<'p, DB> {
    pub(crate) fn new(pool: &'p RoutingPool<DB>, route: Route) -> Self {
        Hinted { pool, route }
    }

    /// The hint this handle applies.
    pub fn route(&self) -> Route {
        self.route
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
        f.debug_struct("Hinted")
            .field("route", &self.route)
            .finish()
    }
}
