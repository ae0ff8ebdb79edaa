//! sqlx's everyday idioms, unchanged, against a `RoutingPool` (issue #13): migrations with
//! `migrate!()` and `Migrator::run`, code generic over `Acquire` given the pool and a
//! transaction, `acquire()`, `&mut *tx` as a connection, savepoints, and functions typed with
//! sqlx's own `Transaction`. SQLite (embedded): the writer is the primary, the readers the
//! replicas.

#[path = "../../tests/common/mod.rs"]
mod common;

use futures_util::TryStreamExt;
use rwsplit::{Reason, RoutingPool, Target};
use sqlx::{Acquire, Either, Executor, Row, Sqlite, SqliteConnection, Transaction};

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

/// Every `Executor` method, from a fresh database: what each call returned, as text. Run once
/// on a plain sqlx pool (the oracle) and once through each routing executor, the outputs must
/// be the same (the routing executors implement `fetch_one`, `fetch_all`, `fetch`, `execute`
/// and `execute_many` themselves, to save sqlx's default wrappers their boxes).
async fn every_method<'c, E>(e: E) -> Vec<String>
where
    E: Executor<'c, Database = Sqlite> + Copy,
{
    fn err(e: &sqlx::Error) -> String {
        match e {
            sqlx::Error::Database(db) => format!("database: {}", db.message()),
            other => format!("{other:?}"),
        }
    }
    let mut out = Vec::new();
    let create = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)";
    let r = e.execute(create).await.unwrap();
    out.push(format!("create: {}", r.rows_affected()));
    let r = e
        .execute("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')")
        .await
        .unwrap();
    out.push(format!(
        "insert: {} {}",
        r.rows_affected(),
        r.last_insert_rowid()
    ));
    let r = sqlx::query("UPDATE t SET v = v || ? WHERE id >= ?")
        .bind("!")
        .bind(2_i64)
        .execute(e)
        .await
        .unwrap();
    out.push(format!("bound update: {}", r.rows_affected()));
    // Several statements in one call: the results are added up.
    let many = "UPDATE t SET v = v || '1' WHERE id = 1; UPDATE t SET v = v || '2' WHERE id > 1";
    let r = e.execute(many).await.unwrap();
    out.push(format!("two updates: {}", r.rows_affected()));
    let each: Vec<u64> = e
        .execute_many(many)
        .map_ok(|r| r.rows_affected())
        .try_collect()
        .await
        .unwrap();
    out.push(format!("execute_many: {each:?}"));
    let select = "SELECT v FROM t ORDER BY id";
    let streamed: Vec<String> = e
        .fetch(select)
        .map_ok(|row| row.get::<String, _>(0))
        .try_collect()
        .await
        .unwrap();
    out.push(format!("fetch: {streamed:?}"));
    let all: Vec<String> = sqlx::query_scalar(select).fetch_all(e).await.unwrap();
    out.push(format!("fetch_all: {all:?}"));
    let rows = e.fetch_all("SELECT 1 AS n; SELECT 2 AS n").await.unwrap();
    let ns: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    out.push(format!("fetch_all of two selects: {ns:?}"));
    let one: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
        .bind(3_i64)
        .fetch_one(e)
        .await
        .unwrap();
    out.push(format!("fetch_one: {one}"));
    let none = sqlx::query_scalar::<_, String>("SELECT v FROM t WHERE id = ?")
        .bind(99_i64)
        .fetch_one(e)
        .await;
    out.push(format!(
        "fetch_one, no row: {:?}",
        none.map_err(|e| err(&e))
    ));
    // `query_scalar` and `query_as` reach `fetch_optional`; `query` and the executor's own
    // method reach `fetch_one`.
    let none = sqlx::query("SELECT v FROM t WHERE id = ?")
        .bind(99_i64)
        .fetch_one(e)
        .await;
    out.push(format!(
        "query fetch_one, no row: {:?}",
        none.map(|_| ()).map_err(|e| err(&e))
    ));
    let none = e.fetch_one("SELECT v FROM t WHERE id = 99").await;
    out.push(format!(
        "executor fetch_one, no row: {:?}",
        none.map(|_| ()).map_err(|e| err(&e))
    ));
    let optional = sqlx::query_scalar::<_, String>("SELECT v FROM t WHERE id = 99")
        .fetch_optional(e)
        .await
        .unwrap();
    out.push(format!("fetch_optional, no row: {optional:?}"));
    let steps: Vec<String> = e
        .fetch_many("SELECT v FROM t WHERE id = 1; DELETE FROM t WHERE id = 1")
        .map_ok(|step| match step {
            Either::Left(r) => format!("result {}", r.rows_affected()),
            Either::Right(row) => format!("row {}", row.get::<String, _>(0)),
        })
        .try_collect()
        .await
        .unwrap();
    out.push(format!("fetch_many: {steps:?}"));
    for bad in [
        "SELEC v FROM t",
        "SELECT nope FROM t",
        "INSERT INTO t (v) VALUES (NULL)",
    ] {
        let executed = e.execute(bad).await.map(|r| r.rows_affected());
        let one = e.fetch_one(bad).await.map(|_| ());
        let all = e.fetch_all(bad).await.map(|rows| rows.len());
        let streamed: Result<Vec<_>, _> = e.fetch(bad).try_collect().await;
        let results: Result<Vec<_>, _> = e.execute_many(bad).try_collect().await;
        out.push(format!(
            "{bad}: {:?} {:?} {:?} {:?} {:?}",
            executed.map_err(|e| err(&e)),
            one.map_err(|e| err(&e)),
            all.map_err(|e| err(&e)),
            streamed.map(|v| v.len()).map_err(|e| err(&e)),
            results.map(|v| v.len()).map_err(|e| err(&e)),
        ));
    }
    out
}

#[tokio::test]
async fn every_executor_method_answers_as_plain_sqlx_does() {
    let oracle_dir = temp_dir("idioms-oracle");
    let file = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(oracle_dir.join("plain.db"))
        .create_if_missing(true);
    // One connection, as `rwsplit::sqlite::open`'s writer: SQLite reports a SELECT's
    // `rows_affected` as its connection's last change count.
    let plain = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(file)
        .await
        .unwrap();
    let expected = every_method(&plain).await;
    plain.close().await;
    assert!(
        expected.iter().any(|l| l.contains("RowNotFound")),
        "{expected:#?}"
    );

    for via in [
        "&pool",
        "pool.primary()",
        "pool.replica()",
        "&pool in a session",
    ] {
        let (pool, dir) = pool(&format!("idioms-methods-{}", via.len())).await;
        let got = match via {
            "&pool" => every_method(&pool).await,
            "pool.primary()" => every_method(pool.primary()).await,
            "pool.replica()" => every_method(pool.replica()).await,
            _ => rwsplit::with_session(pool.session(), every_method(&pool)).await,
        };
        assert_eq!(got, expected, "through {via}");
        pool.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::remove_dir_all(oracle_dir).unwrap();
}
