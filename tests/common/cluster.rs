//! Fixture code shared by the suites that run against a primary and its replicas
//! (tests/failover.rs, tests/routing.rs): the server-side identity of whoever answers, and the
//! wait until a table has reached every replica.

use std::time::Duration;

use rwsplit::{Backend, RoutingPool};
use sqlx::{AssertSqlSafe, Executor};

use super::eventually;

/// The identity of the server that runs `sql` (a query of one BIGINT: `@@server_id` on
/// MariaDB/MySQL, `inet_server_port()` on PostgreSQL).
pub async fn identity<'e, DB, E>(sql: &'static str, e: E) -> i64
where
    DB: Backend,
    E: Executor<'e, Database = DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(e)
        .await
        .expect("identity query")
}

/// Waits up to 20 s until table `t` has `rows` rows on each of `replicas`, and asserts it.
pub async fn replicated<DB>(replicas: &[(String, sqlx::Pool<DB>)], t: &str, rows: i64)
where
    DB: Backend,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let sql = format!("SELECT count(*) FROM {t}");
    for (name, replica) in replicas {
        let ok = eventually(Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.clone()))
                .fetch_one(DB::pool_executor(replica))
                .await
                .is_ok_and(|n| n == rows)
        })
        .await;
        assert!(ok, "{t} did not reach {rows} rows on {name}");
    }
}

/// The replica pools of `pool`, by name.
pub fn replica_pools<DB: Backend>(pool: &RoutingPool<DB>) -> Vec<(String, sqlx::Pool<DB>)> {
    pool.replica_names()
        .map(|name| {
            let replica = pool.replica_pool(name).expect("a named replica").clone();
            (name.to_string(), replica)
        })
        .collect()
}
