//! What a routed call costs in client instructions, exactly: `N` operations of a 90/10 mix
//! (point selects by primary key, single-row updates) on an embedded SQLite database, either
//! through a `RoutingPool` (`routed`) or by hand on the writer and reader pools (`direct`: the
//! code an application would write instead). Run under callgrind by `scripts/bench.sh
//! instructions`, twice per mode with different `N`, so that the difference per operation cancels
//! the start-up: (Ir(N2) − Ir(N1)) / (N2 − N1). SQLite runs in the process, so its own work is
//! the same on both sides and the routed − direct difference is rwsplit's.
//!
//!   cargo run --release -p rwsplit-tools --example instructions -- routed 10000
//!
//! The monitor is off (`monitor_interval` zero): its probes run on their own threads, on a
//! clock, and are not part of a call.

use std::time::Duration;

use rwsplit::{PoolOptions, RoutingPool};
use sqlx::{AssertSqlSafe, Executor, Sqlite};

const ROWS: i64 = 1000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "routed".into());
    let n: i64 = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let dir = std::env::temp_dir().join(format!("rwsplit-instructions-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("kv.db"), 1)
        .await?
        .options(PoolOptions::new().monitor_interval(Duration::ZERO))
        .build()?;
    setup(&pool).await?;
    match mode.as_str() {
        "routed" => {
            for i in 0..n {
                let (sql, _) = statement(i);
                pool.execute(sqlx::query(sql).bind(i % ROWS + 1)).await?;
            }
        }
        "direct" => {
            let writer = pool.primary_pool().clone();
            let reader = pool
                .replica_pool(rwsplit::sqlite::READER_NAME)
                .expect("the reader")
                .clone();
            for i in 0..n {
                let (sql, write) = statement(i);
                let target: &sqlx::Pool<Sqlite> = if write { &writer } else { &reader };
                target.execute(sqlx::query(sql).bind(i % ROWS + 1)).await?;
            }
        }
        other => return Err(format!("mode {other}: use routed or direct").into()),
    }
    pool.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The `i`-th operation of the 90/10 mix and whether it writes.
fn statement(i: i64) -> (&'static str, bool) {
    if i % 10 == 0 {
        ("UPDATE kv SET v = v + 1 WHERE id = ?", true)
    } else {
        ("SELECT v FROM kv WHERE id = ?", false)
    }
}

async fn setup(pool: &RoutingPool<Sqlite>) -> Result<(), sqlx::Error> {
    pool.execute("CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        .await?;
    pool.execute(AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
         INSERT OR IGNORE INTO kv (id, v) SELECT i, 0 FROM n"
    )))
    .await?;
    Ok(())
}
