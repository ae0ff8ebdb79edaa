//! [`Transaction`]: the traced transaction of [`crate::RoutingPool::begin_traced`], whose
//! statements are spans under one transaction span. (`RoutingPool::begin` gives sqlx's own
//! `sqlx::Transaction`, for the idioms that need that type.)
//!
//! It dereferences to [`InTransaction`], the executor, so sqlx's idiom keeps working:
//! `sqlx::query(..).execute(&mut *tx)`, then `tx.commit().await`; it converts to and from
//! `sqlx::Transaction` ([`Transaction::into_sqlx`], [`Transaction::from_sqlx`]).
//!
//! Layer: scopes (above `call` and `router`; below `pool`).

use std::ops::{Deref, DerefMut};

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::{Execute, Executor, SqlStr};
use tracing::{Instrument, Span};

use crate::backend::Backend;
use crate::call::{error_stream, Owned, Step};
use crate::route::{Decision, Reason};
use crate::router::RoutingPool;
use crate::telemetry::{self, span};

/// A transaction on the primary. Dropped without `commit`, it rolls back (sqlx's behaviour).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-tx-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let pool = rwsplit::sqlite::open(dir.join("tx.db"), 2).await?.build()?;
/// sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await?;
///
/// // Each statement is a span under one TRANSACTION span (with a tracing subscriber).
/// let mut tx = pool.begin_traced().await?;
/// sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await?;
/// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut *tx).await?;
/// assert_eq!(n, 1);
/// // Code typed with sqlx's transaction takes it, and gives it back.
/// let sqlx_tx: sqlx::Transaction<'static, sqlx::Sqlite> = tx.into_sqlx();
/// let tx = rwsplit::Transaction::from_sqlx(sqlx_tx, &pool);
/// tx.commit().await?;
/// # pool.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct Transaction<DB: Backend> {
    conn: InTransaction<DB>,
}

/// The executor of a [`Transaction`]: every statement runs on its one primary connection.
pub struct InTransaction<DB: Backend> {
    tx: sqlx::Transaction<'static, DB>,
    pool: RoutingPool<DB>,
    span: Span,
}

impl<DB: Backend> std::fmt::Debug for Transaction<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}

impl<DB: Backend> std::fmt::Debug for InTransaction<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTransaction").finish_non_exhaustive()
    }
}

impl<DB: Backend> Deref for Transaction<DB> {
    type Target = InTransaction<DB>;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: Backend> DerefMut for Transaction<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl<DB: Backend> Transaction<DB> {
    /// Traces a transaction of sqlx's type begun on `pool`'s primary (for example from
    /// [`RoutingPool::begin`] or a function that returned one).
    pub fn from_sqlx(tx: sqlx::Transaction<'static, DB>, pool: &RoutingPool<DB>) -> Self {
        Self::new(tx, pool.clone())
    }

    pub(crate) fn new(tx: sqlx::Transaction<'static, DB>, pool: RoutingPool<DB>) -> Self {
        let span = span::transaction_span(pool.system_known());
        Transaction {
            conn: InTransaction { tx, pool, span },
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let span = self.conn.span.clone();
        let result = self.conn.tx.commit().instrument(span.clone()).await;
        if let Err(e) = &result {
            telemetry::record_outcome(&span, e, |db| DB::error_code(db));
        }
        result
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        let span = self.conn.span.clone();
        self.conn.tx.rollback().instrument(span).await
    }

    /// The underlying sqlx transaction, for APIs that need one (its statements are not
    /// instrumented by rwsplit).
    pub fn into_sqlx(self) -> sqlx::Transaction<'static, DB> {
        self.conn.tx
    }
}

impl<DB: Backend> InTransaction<DB> {
    /// The underlying sqlx transaction (statements run on it are not instrumented).
    pub fn as_sqlx(&mut self) -> &mut sqlx::Transaction<'static, DB> {
        &mut self.tx
    }

    fn statement_span(&self, sql: &str) -> Span {
        let span = span::call_span_in(&self.span);
        if span.is_disabled() {
            return span;
        }
        let pool = &self.pool;
        let classifier = &pool.0.classifier;
        let analysis = classifier.analyze(sql);
        span::record_call(
            &span,
            &span::CallFacts {
                system: pool.system_known(),
                sql,
                text_mode: pool.0.options.query_text,
                analysis: &analysis,
                consistency: "strong",
                sanitize: &|s| classifier.sanitize(s),
            },
        );
        let t = &pool.0.topology;
        span::record_server(
            &span,
            &Decision::primary(Reason::Transaction),
            None,
            &t.writer_or_primary().info,
            None,
        );
        span
    }
}

impl<'t, DB: Backend> Executor<'t> for &'t mut InTransaction<DB> {
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let owned = match Owned::take(query) {
            Ok(owned) => owned,
            Err(e) => return error_stream(sqlx::Error::Encode(e)),
        };
        let span = self.statement_span(owned.sql_str());
        let steps = {
            let _entered = span.enter();
            DB::conn_executor(&mut *self.tx).fetch_many(owned)
        };
        steps
            .map(move |step| {
                if let Err(e) = &step {
                    telemetry::record_outcome(&span, e, |db| DB::error_code(db));
                }
                step
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let owned = Owned::take(query);
        async move {
            let owned = owned.map_err(sqlx::Error::Encode)?;
            let span = self.statement_span(owned.sql_str());
            let result = DB::conn_executor(&mut *self.tx)
                .fetch_optional(owned)
                .instrument(span.clone())
                .await;
            if let Err(e) = &result {
                telemetry::record_outcome(&span, e, |db| DB::error_code(db));
            }
            result
        }
        .boxed()
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        't: 'e,
    {
        DB::conn_executor(&mut *self.tx).prepare_with(sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        't: 'e,
    {
        DB::conn_executor(&mut *self.tx).describe(sql)
    }
}
