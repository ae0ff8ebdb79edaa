//! Everything database-specific lives behind [`Backend`]: the SQL dialect, and (in later
//! modules) the lag probe, the role check and the replication-position SQL. Adding a database
//! means one new file here.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use sqlx::{Database, Executor, Pool};

use crate::classify::Dialect;

/// A database rwsplit can route for. Implemented for `sqlx::MySql`, `sqlx::Postgres` and
/// `sqlx::Sqlite` behind the crate features of the same names.
///
/// The two executor methods exist so that generic code needs no higher-ranked `where` clause:
/// each implementation hands out its pool or connection, whose `Executor` impl is known for the
/// concrete database.
pub trait Backend: Database<Arguments: Clone> {
    /// The dialect statements are classified in.
    const DIALECT: Dialect;

    /// The pool as an executor.
    fn pool_executor(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;

    /// A connection as an executor.
    fn conn_executor(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;
}

/// Implements the executor plumbing of [`Backend`] for one sqlx database type.
macro_rules! backend_executors {
    () => {
        fn pool_executor(pool: &sqlx::Pool<Self>) -> impl sqlx::Executor<'_, Database = Self> {
            pool
        }

        fn conn_executor(conn: &mut Self::Connection) -> impl sqlx::Executor<'_, Database = Self> {
            conn
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_executors;
