//! MySQL 8 and MariaDB: `SHOW REPLICA STATUS` (column names in both spellings), `@@read_only`,
//! and an optional pt-heartbeat style table for sub-second lag.

use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, MySql, Pool, Row};

use super::{backend_executors, Backend, PrimaryProbe, ReplicaProbe};
use crate::classify::Dialect;

impl Backend for MySql {
    const DIALECT: Dialect = Dialect::MySql;
    backend_executors!();

    fn probe_replica<'a>(
        pool: &'a Pool<Self>,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ReplicaProbe, sqlx::Error>> {
        async move {
            let mut conn = pool.acquire().await?;
            let read_only: i64 = sqlx::query_scalar("SELECT CAST(@@global.read_only AS SIGNED)")
                .fetch_one(&mut *conn)
                .await?;
            let status = sqlx::query("SHOW REPLICA STATUS")
                .fetch_optional(&mut *conn)
                .await?;
            let mut probe = ReplicaProbe {
                writable: read_only == 0,
                ..ReplicaProbe::default()
            };
            if let Some(row) = status {
                probe.receiving = text(&row, &["Replica_IO_Running", "Slave_IO_Running"])
                    .as_deref()
                    == Some("Yes");
                probe.applying = text(&row, &["Replica_SQL_Running", "Slave_SQL_Running"])
                    .as_deref()
                    == Some("Yes");
                probe.lag = number(&row, &["Seconds_Behind_Source", "Seconds_Behind_Master"])
                    .map(|s| Duration::from_secs(s.max(0) as u64));
            }
            if let (Some(table), true) = (heartbeat, probe.applying) {
                let sql = format!(
                    "SELECT CAST(TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS SIGNED) \
                     FROM {table} WHERE id = 1"
                );
                let us: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(us) = us {
                    probe.lag = Some(Duration::from_micros(us.max(0) as u64));
                }
            }
            Ok(probe)
        }
        .boxed()
    }

    fn probe_primary<'a>(
        pool: &'a Pool<Self>,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PrimaryProbe, sqlx::Error>> {
        async move {
            let mut conn = pool.acquire().await?;
            let read_only: i64 = sqlx::query_scalar("SELECT CAST(@@global.read_only AS SIGNED)")
                .fetch_one(&mut *conn)
                .await?;
            if let (Some(table), 0) = (heartbeat, read_only) {
                let create = format!(
                    "CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL)"
                );
                sqlx::raw_sql(AssertSqlSafe(create)).execute(&mut *conn).await?;
                let beat = format!(
                    "INSERT INTO {table} (id, ts) VALUES (1, UTC_TIMESTAMP(6)) \
                     ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
                );
                sqlx::raw_sql(AssertSqlSafe(beat)).execute(&mut *conn).await?;
            }
            Ok(PrimaryProbe {
                writable: read_only == 0,
            })
        }
        .boxed()
    }
}

/// The first of `names` present in the row, as text.
fn text(row: &MySqlRow, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        row.try_get::<Option<String>, _>(*n)
            .ok()
            .flatten()
            .or_else(|| {
                row.try_get::<Option<Vec<u8>>, _>(*n)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
    })
}

/// The first of `names` present in the row, as a number (`None` for SQL NULL).
fn number(row: &MySqlRow, names: &[&str]) -> Option<i64> {
    names.iter().find_map(|n| {
        row.try_get::<Option<i64>, _>(*n)
            .ok()
            .flatten()
            .or_else(|| {
                row.try_get::<Option<u64>, _>(*n)
                    .ok()
                    .flatten()
                    .map(|v| v as i64)
            })
            .or_else(|| text(row, &[n]).and_then(|t| t.trim().parse().ok()))
    })
}
