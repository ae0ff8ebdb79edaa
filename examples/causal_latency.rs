//! Benchmark: the extra latency of a read-your-writes read. Runs write-then-read cycles on a
//! primary and replica and reports the read latency (p50, p99) in three modes:
//!
//! - `eventual`: the read goes to a replica with no consistency check (may be stale);
//! - `causal_after_write`: a `Session` read right after the session's write (captures the
//!   primary's position, then reads from a replica at that position or waits for one);
//! - `causal_no_write`: a `Session` read with no write before it (should cost nothing extra).
//!
//! ```text
//! cargo run --release --example causal_latency --all-features -- --backend mysql --cycles 2000
//! ```
//! Uses `RWSPLIT_MYSQL_PRIMARY`/`RWSPLIT_MYSQL_REPLICA_1` or `RWSPLIT_PG_PRIMARY`/
//! `RWSPLIT_PG_STANDBY_1` (scripts/mariadb.sh, scripts/postgres.sh). Prints one JSON line per mode.

#![cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    allow(
        unused_imports,
        unused_macros,
        unused_variables,
        unused_assignments,
        unreachable_code,
        dead_code
    )
)]

use std::time::{Duration, Instant};

use rwsplit::RoutingPool;
use sqlx::{AssertSqlSafe, Executor};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn report(backend: &str, mode: &str, mut reads: Vec<Duration>, stale: usize) {
    reads.sort();
    println!(
        "{{\"backend\":\"{backend}\",\"mode\":\"{mode}\",\"reads\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"stale\":{stale}}}",
        reads.len(),
        percentile(&reads, 0.5),
        percentile(&reads, 0.99)
    );
}

macro_rules! bench {
    ($db:ty, $backend:literal, $primary:literal, $replica:literal, $p:literal, $cycles:expr) => {{
        let primary = sqlx::Pool::<$db>::connect(&std::env::var($primary)?).await?;
        let replica = sqlx::Pool::<$db>::connect(&std::env::var($replica)?).await?;
        let pool = RoutingPool::builder(primary)
            .replica("replica1", replica)
            .build()?;
        let table = format!("causal_latency_{}", std::process::id());
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await?;
        pool.execute(AssertSqlSafe(format!("INSERT INTO {table} VALUES (1, 0)")))
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let update = format!("UPDATE {table} SET v = {} WHERE id = 1", $p);
        let select = format!("SELECT v FROM {table} WHERE id = 1");
        let mut n = 0_i64;
        for mode in ["eventual", "causal_after_write", "causal_no_write"] {
            let session = pool.session();
            let (mut reads, mut stale) = (Vec::with_capacity($cycles), 0);
            for _ in 0..$cycles {
                n += 1;
                if mode != "causal_no_write" {
                    sqlx::query(AssertSqlSafe(update.clone()))
                        .bind(n)
                        .execute(&session)
                        .await?;
                }
                let start = Instant::now();
                let v: i64 = if mode == "eventual" {
                    sqlx::query_scalar(AssertSqlSafe(select.clone()))
                        .fetch_one(&pool)
                        .await?
                } else {
                    sqlx::query_scalar(AssertSqlSafe(select.clone()))
                        .fetch_one(&session)
                        .await?
                };
                reads.push(start.elapsed());
                if mode != "causal_no_write" && v < n {
                    stale += 1;
                }
            }
            report($backend, mode, reads, stale);
        }
        pool.execute(AssertSqlSafe(format!("DROP TABLE {table}")))
            .await?;
        pool.close().await;
    }};
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut backend = "mysql".to_string();
    let mut cycles = 1000_usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => backend = args.next().ok_or("--backend needs a value")?,
            "--cycles" => cycles = args.next().ok_or("--cycles needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    match backend.as_str() {
        #[cfg(feature = "mysql")]
        "mysql" => bench!(
            sqlx::MySql,
            "mysql",
            "RWSPLIT_MYSQL_PRIMARY",
            "RWSPLIT_MYSQL_REPLICA_1",
            "?",
            cycles
        ),
        #[cfg(feature = "postgres")]
        "postgres" => bench!(
            sqlx::Postgres,
            "postgres",
            "RWSPLIT_PG_PRIMARY",
            "RWSPLIT_PG_STANDBY_1",
            "$1",
            cycles
        ),
        other => {
            return Err(
                format!("backend {other} is not built in (features mysql, postgres)").into(),
            )
        }
    }
    Ok(())
}
