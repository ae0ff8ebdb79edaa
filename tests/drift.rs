//! The replica drift check against the real primary/replica pair of `scripts/mariadb.sh`: rows
//! changed, deleted and added on the replica behind replication's back (admin account,
//! `sql_log_bin = 0`) are found, fixed rows are not, row locks on the replica do not block the
//! check, a busy primary produces no confirmed drift, and a lagging replica is waited for.
//! Identifier validation needs no server.

#![cfg(feature = "mysql")]

mod common;

use std::time::Duration;

use rwsplit::drift::{check_table, DriftOptions, DriftReport, KeyRange};
use rwsplit::Error;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, MySqlPool};

const ROWS: i64 = 5000;

fn invalid_option(opts: &DriftOptions) -> Option<&'static str> {
    match opts.validate() {
        Err(Error::InvalidOption { option, .. }) => Some(option),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(()) => None,
    }
}

#[test]
fn identifiers_are_validated() {
    for table in [
        "t",
        "T_1",
        "rwsplit_test.orders",
        "2024_log",
        &"a".repeat(64),
    ] {
        assert_eq!(
            invalid_option(&DriftOptions::new(table, "id")),
            None,
            "{table}"
        );
    }
    for table in [
        "",
        "a.b.c",
        ".t",
        "s.",
        "t;DROP TABLE x",
        "t`",
        "t name",
        "\"t\"",
        "tä",
        &"a".repeat(65),
    ] {
        assert_eq!(
            invalid_option(&DriftOptions::new(table, "id")),
            Some("table"),
            "{table:?}"
        );
    }
    for key in ["", "s.id", "id)", "id -- x", "`id`"] {
        assert_eq!(
            invalid_option(&DriftOptions::new("t", key)),
            Some("key_column"),
            "{key:?}"
        );
    }
    let opts = DriftOptions::new("t", "id").chunk_rows(0);
    assert_eq!(invalid_option(&opts), Some("chunk_rows"));
}

#[tokio::test]
async fn invalid_options_fail_before_connecting() {
    // Nothing listens on port 1: validation must fail first.
    let pool = MySqlPool::connect_lazy("mysql://nobody@127.0.0.1:1/none").unwrap();
    let opts = DriftOptions::new("t; DROP TABLE t", "id");
    let check = check_table(&pool, &pool, &opts);
    assert_send(&check);
    match check.await {
        Err(Error::InvalidOption {
            option: "table", ..
        }) => {}
        other => panic!("expected InvalidOption(table), got {other:?}"),
    }
}

fn assert_send<T: Send>(_: &T) {}

/// Runs `sql` on the replica as the admin account without binlogging it (a logged write on a
/// replica with gtid_strict_mode breaks replication later). The admin bypasses `read_only` on
/// MariaDB (READ_ONLY ADMIN); where it cannot (MySQL's `super_read_only`, or an admin without
/// that privilege), the flag is lifted for this one statement and restored right after.
async fn behind_replications_back(admin_url: &str, sql: &str) {
    let mut conn = MySqlConnection::connect(admin_url).await.unwrap();
    sqlx::raw_sql("SET SESSION sql_log_bin = 0")
        .execute(&mut conn)
        .await
        .unwrap();
    let stmt = || sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
    if let Err(e) = stmt().execute(&mut conn).await {
        // ER_OPTION_PREVENTS_STATEMENT: --read-only / --super-read-only.
        let read_only = e
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
            .is_some_and(|d| d.number() == 1290);
        assert!(read_only, "{sql}: {e}");
        let version: String = sqlx::query_scalar("SELECT CONVERT(VERSION() USING utf8mb4)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let flag = match version.contains("MariaDB") {
            true => "read_only",
            false => "super_read_only",
        };
        let set = |on: u8| sqlx::raw_sql(AssertSqlSafe(format!("SET GLOBAL {flag} = {on}")));
        set(0).execute(&mut conn).await.unwrap();
        let outcome = stmt().execute(&mut conn).await;
        set(1).execute(&mut conn).await.unwrap();
        outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.close().await.unwrap();
}

async fn check(primary: &MySqlPool, replica: &MySqlPool, opts: &DriftOptions) -> DriftReport {
    let report = tokio::time::timeout(Duration::from_secs(60), check_table(primary, replica, opts))
        .await
        .expect("the check finishes")
        .expect("the check succeeds");
    eprintln!("{report}");
    report
}

#[tokio::test]
async fn finds_rows_changed_on_the_replica_behind_replications_back() {
    let (Some(primary_url), Some(replica_url), Some(admin_url)) = (
        common::server_url("RWSPLIT_MYSQL_PRIMARY"),
        common::server_url("RWSPLIT_MYSQL_REPLICA_1"),
        common::server_url("RWSPLIT_MYSQL_ADMIN_REPLICA_1"),
    ) else {
        return;
    };
    let primary = MySqlPool::connect(&primary_url).await.unwrap();
    let replica = MySqlPool::connect(&replica_url).await.unwrap();
    let table = common::unique_table("drift");
    let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenario(
        &primary, &replica, &admin_url, &table,
    )))
    .await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&primary)
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(primary: &MySqlPool, replica: &MySqlPool, admin_url: &str, table: &str) {
    let exec = |sql: String| async move {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(primary)
            .await
            .unwrap();
    };
    exec(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(32) NULL)"
    ))
    .await;
    let values: Vec<String> = (1..=ROWS)
        .map(|i| match i % 10 {
            0 => format!("({i}, {}, NULL)", i * 7),
            _ => format!("({i}, {}, 'row {i}')", i * 7),
        })
        .collect();
    exec(format!(
        "INSERT INTO {table} (id, v, note) VALUES {}",
        values.join(", ")
    ))
    .await;
    let opts = DriftOptions::new(table, "id");

    // Freshly replicated (the check waits for the replica to catch up): no drift.
    let report = check(primary, replica, &opts).await;
    assert!(report.is_consistent(), "{report}");
    assert_eq!(
        (report.chunks_checked, report.rows_checked),
        (6, ROWS as u64)
    );

    // Every row locked on the replica: the check's non-locking reads pass those locks (a
    // locking read would wait for innodb_lock_wait_timeout and fail).
    let mut locker = MySqlConnection::connect(admin_url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "BEGIN; SELECT COUNT(*) FROM {table} FOR UPDATE"
    )))
    .execute(&mut locker)
    .await
    .unwrap();
    let report = check(primary, replica, &opts).await;
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    locker.close().await.unwrap();
    assert!(report.is_consistent(), "{report}");

    // One value changed on the replica: exactly its range differs, with equal row counts.
    behind_replications_back(
        admin_url,
        &format!("UPDATE {table} SET v = v + 1 WHERE id = 4321"),
    )
    .await;
    let report = check(primary, replica, &opts).await;
    assert_eq!(report.differing.len(), 1, "{report}");
    let range = &report.differing[0];
    assert!((range.low..=range.high).contains(&4321), "{report}");
    assert_eq!((range.low, range.high), (4001, 5000));
    assert_eq!((range.primary_rows, range.replica_rows), (1000, 1000));
    assert!(range.confirmed, "{report}");
    assert!(report.to_string().contains("keys 4001..=5000"), "{report}");

    // Changed back: no drift.
    behind_replications_back(
        admin_url,
        &format!("UPDATE {table} SET v = v - 1 WHERE id = 4321"),
    )
    .await;
    let report = check(primary, replica, &opts).await;
    assert!(report.is_consistent(), "{report}");

    // A row missing and a row the primary never had (beyond its largest key): the open-ended
    // first and last ranges catch both. A NULL turned into '' is caught too.
    behind_replications_back(admin_url, &format!("DELETE FROM {table} WHERE id = 1")).await;
    behind_replications_back(
        admin_url,
        &format!("INSERT INTO {table} VALUES (1000000, 0, 'x')"),
    )
    .await;
    behind_replications_back(
        admin_url,
        &format!("UPDATE {table} SET note = '' WHERE id = 2500"),
    )
    .await;
    let report = check(primary, replica, &opts).await;
    let ranges: Vec<_> = report
        .differing
        .iter()
        .map(|r| (r.low, r.high, r.primary_rows, r.replica_rows, r.confirmed))
        .collect();
    assert_eq!(
        ranges,
        [
            (i64::MIN, 1000, 1000, 999, true),
            (2001, 3000, 1000, 1000, true),
            (5001, i64::MAX, 0, 1, true),
        ],
        "{report}"
    );

    // A busy primary: rows change all through the check. Writes still replicating must never
    // be reported as confirmed drift; the planted differences still are. Nothing here depends
    // on how many writes a loaded machine manages: the check starts once the writer has done a
    // fixed number of writes, and the writer must still be running (no write failed) and must
    // have completed at least one write while a check ran (a check that blocked writes on the
    // primary would stop it).
    const WARM_UP: u64 = 20;
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (primary, table, writes) = (primary.clone(), table.to_string(), writes.clone());
        tokio::spawn(async move {
            let mut id: i64 = 17;
            loop {
                id = (id * 7919 + 13) % ROWS + 1;
                if id == 1 || id == 2500 {
                    continue; // changing a drifted row would break replication
                }
                let sql = format!("UPDATE {table} SET v = v + 1 WHERE id = {id}");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&primary)
                    .await
                    .unwrap_or_else(|e| panic!("write on the busy primary: {e}"));
                writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let warmed = common::eventually(Duration::from_secs(120), || async {
        writes.load(std::sync::atomic::Ordering::Relaxed) >= WARM_UP || writer.is_finished()
    })
    .await;
    assert!(
        warmed && !writer.is_finished(),
        "the writer did not get to {WARM_UP} writes"
    );
    let small = opts.clone().chunk_rows(250);
    let planted = |r: &KeyRange| {
        [1, 2500, 1000000]
            .iter()
            .any(|k| (r.low..=r.high).contains(k))
    };
    // Checks until one ran while a write completed on the primary (a check that blocked writes
    // would never see one), at most `CHECKS`: how fast the writer goes beside one check depends
    // on the machine's load (a check can end before a loaded machine completes one write).
    // Every check must report no false drift and all the planted rows.
    const CHECKS: u32 = 10;
    for attempt in 1..=CHECKS {
        let before = writes.load(std::sync::atomic::Ordering::Relaxed);
        let report = check(primary, replica, &small).await;
        let during = writes.load(std::sync::atomic::Ordering::Relaxed) - before;
        eprintln!("{during} rows changed on the primary during check {attempt}");
        assert!(
            !writer.is_finished(),
            "the writer stopped during the check: {:?}",
            writer.await
        );
        for range in report.differing.iter().filter(|r| !planted(r)) {
            assert!(
                !range.confirmed,
                "false drift under load: {range}\n{report}"
            );
        }
        // (A planted range may come out unconfirmed if the writer changed it in every
        // comparison.)
        assert_eq!(
            report.differing.iter().filter(|r| planted(r)).count(),
            3,
            "{report}"
        );
        if during > 0 {
            break;
        }
        assert!(
            attempt < CHECKS,
            "no write completed on the primary during any of {CHECKS} checks"
        );
    }
    writer.abort();
    let _ = writer.await;

    // A lagging replica is waited for, never compared early: with its applier stopped, a write
    // on the primary makes a check with a short wait time out instead of reporting drift, and
    // a check that is still waiting when the applier starts again finds only the planted rows.
    let admin = |sql: &'static str| async move {
        let mut conn = MySqlConnection::connect(admin_url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    };
    admin("STOP REPLICA SQL_THREAD").await;
    exec(format!("UPDATE {table} SET v = v + 1 WHERE id = 10")).await;
    let short = opts.clone().wait_timeout(Duration::from_millis(300));
    let early = check_table(primary, replica, &short).await;
    let waiting = {
        let (primary, replica, opts) = (primary.clone(), replica.clone(), opts.clone());
        tokio::spawn(async move { check_table(&primary, &replica, &opts).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin("START REPLICA SQL_THREAD").await;
    match early {
        Err(Error::CausalWaitTimeout(_)) => {}
        other => panic!("expected a wait timeout while the replica lags, got {other:?}"),
    }
    let report = waiting.await.unwrap().unwrap();
    let ranges: Vec<_> = report.differing.iter().map(|r| (r.low, r.high)).collect();
    assert_eq!(
        ranges,
        [(i64::MIN, 1000), (2001, 3000), (5001, i64::MAX)],
        "{report}"
    );
}
