//! rwsplit on the embedded SQLite default: no server needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Opens a WAL-mode database with one writer connection (the "primary") and four read-only
//! reader connections (the "replica"), then creates a schema, writes, reads and runs a
//! transaction, printing where each statement went and why.

use rwsplit::{scope, Route, RoutingPool};
use sqlx::{Row, Sqlite};

fn show(pool: &RoutingPool<Sqlite>, sql: &str) {
    let d = pool.explain(sql);
    println!(
        "{:<8} {:<34} {}",
        d.target.as_str(),
        d.reason.to_string(),
        sql
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("rwsplit-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("app.db"), 4)
        .await?
        .build()?;
    println!("{:<8} {:<34} statement", "route", "reason");

    let ddl = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)";
    show(&pool, ddl);
    sqlx::query(ddl).execute(&pool).await?;

    let insert = "INSERT INTO users (name) VALUES (?)";
    show(&pool, insert);
    for name in ["ada", "grace", "edsger"] {
        sqlx::query(insert).bind(name).execute(&pool).await?;
    }

    let select = "SELECT id, name FROM users ORDER BY id";
    show(&pool, select);
    for row in sqlx::query(select).fetch_all(&pool).await? {
        println!(
            "         -> {} {}",
            row.get::<i64, _>("id"),
            row.get::<String, _>("name")
        );
    }

    let count = "SELECT count(*) FROM users WHERE name <> 'DELETE FROM users'";
    show(&pool, count);
    let n: i64 = sqlx::query_scalar(count).fetch_one(&pool).await?;
    println!("         -> {n} users");

    println!("-- a transaction: pinned to the primary (the writer connection)");
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET name = upper(name) WHERE id = ?")
        .bind(1_i64)
        .execute(&mut *tx)
        .await?;
    let in_tx: String = sqlx::query_scalar("SELECT name FROM users WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    println!("primary  transaction                        UPDATE ...; SELECT ... -> {in_tx}");

    println!("-- hints");
    let hinted = "/* rwsplit:primary */ SELECT name FROM users WHERE id = 1";
    show(&pool, hinted);
    let name: String = sqlx::query_scalar(hinted).fetch_one(&pool).await?;
    println!("         -> {name}");
    let by_call: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool.primary())
        .await?;
    println!("primary  hint (call)                        pool.primary(): {by_call} users");
    let in_scope = scope(Route::Primary, async {
        pool.explain("SELECT count(*) FROM users")
    })
    .await;
    println!(
        "{:<8} {:<34} inside rwsplit::scope(Route::Primary, ..)",
        in_scope.target.as_str(),
        in_scope.reason.to_string()
    );

    let last = "SELECT last_insert_rowid()";
    show(&pool, last);
    let stats = pool.classifier().cache_stats();
    println!(
        "classifier cache: {} hits, {} misses",
        stats.hits, stats.misses
    );

    pool.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
