//! rwsplit on a MySQL/MariaDB primary and replica: the docker-compose pair by default.
//!
//! ```text
//! docker compose up -d                       # MySQL 8.4 primary :3306, replica :3307
//! cargo run --example mysql_replicas --features mysql
//! ```
//!
//! Other servers: set `RWSPLIT_MYSQL_PRIMARY` and `RWSPLIT_MYSQL_REPLICA_1` (URLs). Prints,
//! for each statement, the route rwsplit chose, why, and the `@@server_id` that answered.

use std::time::Duration;

use rwsplit::{RoutingPool, Target};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{AssertSqlSafe, MySql};

const WHO: &str = "SELECT CAST(@@server_id AS SIGNED)";

async fn pool(url: &str) -> Result<sqlx::MySqlPool, sqlx::Error> {
    MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

async fn show(pool: &RoutingPool<MySql>, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
    let d = pool.explain(sql);
    // Statements that select the server id show which server answered them; others run,
    // then the primary's id is shown (they can only have run there).
    let server: i64 = if d.target == Target::Replica || sql.contains("@@server_id") {
        sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
            .fetch_one(pool)
            .await?
    } else {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(pool)
            .await?;
        sqlx::query_scalar(WHO).fetch_one(pool.primary()).await?
    };
    println!(
        "{:<8} {:<28} server_id={server:<3} {sql}",
        d.target.as_str(),
        d.reason.to_string()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let primary_url = std::env::var("RWSPLIT_MYSQL_PRIMARY")
        .unwrap_or_else(|_| "mysql://rwsplit:rwsplit_pw@127.0.0.1:3306/rwsplit_test".into());
    let replica_url = std::env::var("RWSPLIT_MYSQL_REPLICA_1")
        .unwrap_or_else(|_| "mysql://rwsplit:rwsplit_pw@127.0.0.1:3307/rwsplit_test".into());
    let pool = RoutingPool::builder(pool(&primary_url).await?)
        .replica("replica1", pool(&replica_url).await?)
        .build()?;
    for issue in pool.check_config().await {
        println!("config: {issue}");
    }
    let table = format!("example_{}", std::process::id());
    show(
        &pool,
        &format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"),
    )
    .await?;
    show(&pool, &format!("INSERT INTO {table} VALUES (1, 10)")).await?;
    show(&pool, WHO).await?;
    show(
        &pool,
        &format!("SELECT CAST(@@server_id AS SIGNED) FROM {table} FOR UPDATE"),
    )
    .await?;
    show(
        &pool,
        "/* rwsplit:primary */ SELECT CAST(@@server_id AS SIGNED)",
    )
    .await?;
    show(&pool, &format!("DROP TABLE {table}")).await?;
    let status = pool.status();
    for s in std::iter::once(&status.primary).chain(&status.replicas) {
        println!("status: {} healthy={} lag={:?}", s.name, s.healthy, s.lag);
    }
    pool.close().await;
    Ok(())
}
