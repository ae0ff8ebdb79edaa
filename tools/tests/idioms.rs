//! sqlx's everyday idioms, unchanged, against a `RoutingPool` (issue #13): migrations with
//! `migrate!()` and `Migrator::run`, code generic over `Acquire` given the pool and a
//! transaction, `acquire()`, `&mut *tx` as a connection, savepoints, and functions typed with
//! sqlx's own `Transaction`. SQLite (embedded): the writer is the primary, the readers the
//! replicas.

#[path = "../../tests/common/mod.rs"]
mod common;

use rwsplit::{Reason, RoutingPool, Target};
use sqlx::{Acquire, Sqlite, SqliteConnection, Transaction};

use common::{no_monitor, temp_dir};

async fn pool(name: &str) -> (RoutingPool<Sqlite>, std::path::PathBuf) {
    let dir = temp_dir(name);
    let pool = rwsplit::sqlite::open(dir.join("app.db"), 2)
        .await
        .unwrap()
        .options(no_monitor())
        .build()
        .unwrap();
    (pool, dir)
}

/// Code generic over `Acquire`, as libraries and repositories write it.
async fn deposit<'a, A>(conn: A, id: i64, amount: i64) -> sqlx::Result<i64>
where
    A: Acquire<'a, Database = Sqlite>,
{
    let mut conn = conn.acquire().await?;
    sqlx::query("UPDATE accounts SET balance = balance + ? WHERE id = ?")
        .bind(amount)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT balance FROM accounts WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
}

/// A repository function taking a plain connection, called with `&mut *tx`.
async fn owner(conn: &mut SqliteConnection, id: i64) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT owner FROM accounts WHERE id = ?")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// A function typed with the transaction type sqlx users write.
async fn open_account(tx: &mut Transaction<'_, Sqlite>, id: i64, who: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO accounts (id, owner, balance) VALUES (?, ?, 0)")
        .bind(id)
        .bind(who)
        .execute(&mut **tx)
        .await
        .map(drop)
}

#[tokio::test]
async fn migrate_macro_runs_on_the_pool() {
    let (pool, dir) = pool("idioms-migrate").await;
    sqlx::migrate!("tests/migrations").run(&pool).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Running again applies nothing and fails nothing.
    sqlx::migrate!("tests/migrations").run(&pool).await.unwrap();
    pool.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn migrator_loaded_at_run_time_runs_on_the_pool() {
    let (pool, dir) = pool("idioms-migrator").await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrations");
    let migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    migrator.run(&pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(pool.primary())
        .await
        .unwrap();
    assert_eq!(applied, 2);
    pool.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn acquire_generic_code_takes_the_pool_and_a_transaction() {
    let (pool, dir) = pool("idioms-acquire").await;
    sqlx::migrate!("tests/migrations").run(&pool).await.unwrap();
    assert_eq!(deposit(&pool, 1, 10).await.unwrap(), 110);
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(deposit(&mut tx, 1, 5).await.unwrap(), 115);
    tx.rollback().await.unwrap();
    let balance: i64 = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = 1")
        .fetch_one(pool.primary())
        .await
        .unwrap();
    assert_eq!(balance, 110, "the rolled-back deposit is gone");
    pool.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn acquire_gives_a_primary_connection() {
    let (pool, dir) = pool("idioms-conn").await;
    sqlx::migrate!("tests/migrations").run(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // The readers are read-only: a write succeeds only on the primary's connection.
    sqlx::query("UPDATE accounts SET balance = 0 WHERE id = 1")
        .execute(&mut *conn)
        .await
        .expect("a primary connection takes writes");
    assert_eq!(owner(&mut conn, 1).await.unwrap(), "ada");
    drop(conn);
    pool.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn transactions_are_sqlx_transactions_with_savepoints() {
    let (pool, dir) = pool("idioms-tx").await;
    sqlx::migrate!("tests/migrations").run(&pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    open_account(&mut tx, 2, "grace").await.unwrap();
    assert_eq!(
        owner(&mut tx, 2).await.unwrap(),
        "grace",
        "&mut *tx is a connection"
    );
    {
        let mut savepoint = tx.begin().await.unwrap();
        open_account(&mut savepoint, 3, "edsger").await.unwrap();
        savepoint.rollback().await.unwrap();
    }
    {
        let mut savepoint = tx.begin().await.unwrap();
        open_account(&mut savepoint, 4, "barbara").await.unwrap();
        savepoint.commit().await.unwrap();
    }
    tx.commit().await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM accounts ORDER BY id")
        .fetch_all(pool.primary())
        .await
        .unwrap();
    assert_eq!(ids, [1, 2, 4], "the rolled-back savepoint's row is gone");
    // Reads through the pool still go to the readers.
    let d = pool.explain("SELECT id FROM accounts");
    assert_eq!((d.target, d.reason), (Target::Replica, Reason::PureRead));
    // A traced transaction converts to sqlx's type and back.
    let traced = pool.begin_traced().await.unwrap();
    let mut plain = traced.into_sqlx();
    open_account(&mut plain, 5, "frances").await.unwrap();
    let traced = rwsplit::Transaction::from_sqlx(plain, &pool);
    traced.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(pool.primary())
        .await
        .unwrap();
    assert_eq!(n, 4);
    pool.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}
