//! The drift check's statements (`crate::drift`): each table's columns from the catalog, the
//! range boundaries and the range checksums, implemented beside each backend's other SQL
//! (`mysql.rs`, `postgres.rs`). The positions the check waits for are the backend's own
//! ([`super::Backend::position_on`], [`super::Backend::wait_on`]).

use std::future::Future;

use sqlx::pool::PoolConnection;
use sqlx::SqlStr;

use crate::error::Error;

/// One server's connection for the duration of a check.
#[derive(Debug)]
pub struct Side<DB: sqlx::Database> {
    /// The connection every statement of the check runs on.
    pub conn: PoolConnection<DB>,
    /// Its `db.system.name` (`mysql`, `mariadb`, `postgresql`): which SQL it speaks.
    pub system: &'static str,
}

/// The SQL of one table's check, built from the primary's catalog and run on both servers.
#[derive(Debug)]
pub struct Plan {
    /// Binds `from`, `offset`: the key `offset` rows past the first key `>= from`.
    pub boundary: SqlStr,
    /// Binds `low`, `high`: row count and checksum of the range.
    pub checksum: SqlStr,
}

/// A range's row count and combined hash on one server.
pub type Checksum = (i64, i64);

/// The SQL of one database for the drift check.
pub trait Checksums: sqlx::Database + Sized {
    /// The catalog's data types of integer columns, in lower case.
    const INTEGER_TYPES: &'static [&'static str];

    /// `(name, data type)` of every column of the table, in order; empty if there is no
    /// such table.
    fn columns(
        primary: &mut Side<Self>,
        schema: Option<&str>,
        table: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send;

    /// The check's SQL. `schema`, `table` are validated; `key`, `columns` from the catalog.
    fn plan(schema: Option<&str>, table: &str, key: &str, columns: &[&str]) -> Plan;

    /// The key `offset` rows past the first key `>= from`, if there is one.
    fn boundary(
        side: &mut Side<Self>,
        plan: &Plan,
        from: i64,
        offset: i64,
    ) -> impl Future<Output = Result<Option<i64>, Error>> + Send;

    /// Row count and checksum of the keys `low..=high`, in one statement.
    fn checksum(
        side: &mut Side<Self>,
        plan: &Plan,
        low: i64,
        high: i64,
    ) -> impl Future<Output = Result<Checksum, Error>> + Send;
}

/// `boundary` and `checksum`, the same on every database: run the plan's statements.
macro_rules! run_plan {
    () => {
        async fn boundary(
            side: &mut Side<Self>,
            plan: &Plan,
            from: i64,
            offset: i64,
        ) -> Result<Option<i64>, Error> {
            let query = sqlx::query_scalar(plan.boundary.clone())
                .bind(from)
                .bind(offset);
            Ok(query.fetch_optional(&mut *side.conn).await?)
        }

        async fn checksum(
            side: &mut Side<Self>,
            plan: &Plan,
            low: i64,
            high: i64,
        ) -> Result<Checksum, Error> {
            let query = sqlx::query_as(plan.checksum.clone()).bind(low).bind(high);
            Ok(query.fetch_one(&mut *side.conn).await?)
        }
    };
}
#[allow(unused_imports)]
pub(super) use run_plan;
