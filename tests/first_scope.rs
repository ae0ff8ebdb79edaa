//! A process looks up no task-local until it has entered a task scope (a route hint, a
//! consistency level, an ambient session): each kind of scope records that it is entered. This
//! checks each kind when it is the first scope of its process: the binary runs itself once per
//! kind (`RWSPLIT_FIRST_SCOPE`), since any scope entered earlier in the same process would hide a
//! kind that forgot to record itself. Route hints and consistency levels on embedded SQLite;
//! the ambient session on MariaDB (SQLite has no positions, so nothing shows a session there).

mod common;

use std::process::Command;

use rwsplit::{Consistency, Route, Target};

const CASES: [&str; 3] = ["route", "consistency", "session"];
const ME: &str = "each_kind_of_scope_is_seen_when_it_is_the_first_of_its_process";

#[test]
fn each_kind_of_scope_is_seen_when_it_is_the_first_of_its_process() {
    if let Ok(case) = std::env::var("RWSPLIT_FIRST_SCOPE") {
        one_case(&case);
        return;
    }
    let me = std::env::current_exe().expect("the test binary");
    for case in CASES {
        if case == "session"
            && (!cfg!(feature = "mysql") || common::server_url("RWSPLIT_MYSQL_PRIMARY").is_none())
        {
            continue;
        }
        let out = Command::new(&me)
            .args(["--exact", ME, "--nocapture", "--test-threads=1"])
            .env("RWSPLIT_FIRST_SCOPE", case)
            .output()
            .expect("the test binary runs");
        assert!(
            out.status.success(),
            "{case}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The child really ran the case (not a filtered-out empty run).
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("case {case}: seen")),
            "{case}: the case did not run"
        );
    }
}

/// Outside any scope a point select goes to the reader; inside the first scope of the
/// process it goes where that scope says. A write outside a session is not the session's;
/// inside it, it is (the session's token then carries its position).
fn one_case(case: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        if case == "session" {
            #[cfg(feature = "mysql")]
            session_case().await;
            println!("case {case}: seen");
            return;
        }
        let dir = common::temp_dir(&format!("first-scope-{case}"));
        let pool = rwsplit::sqlite::open(dir.join("db"), 1)
            .await
            .expect("the database")
            .options(common::no_monitor())
            .build()
            .expect("the pool");
        let sql = "SELECT 1";
        let outside = pool.explain(sql).target;
        let inside = match case {
            "route" => rwsplit::scope(Route::Primary, async { pool.explain(sql).target }).await,
            "consistency" => {
                rwsplit::with_consistency(Consistency::Strong, async { pool.explain(sql).target })
                    .await
            }
            other => panic!("unknown case {other}"),
        };
        assert_eq!(outside, Target::Replica, "{case}: outside the scope");
        assert_eq!(inside, Target::Primary, "{case}: inside the scope");
        println!("case {case}: seen");
        pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[cfg(feature = "mysql")]
async fn session_case() {
    use sqlx::{AssertSqlSafe, Executor};
    let url = |var: &str| common::server_url(var).expect("the MariaDB servers");
    let open = |u: String| async move {
        sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(2)
            .connect(&u)
            .await
            .expect("a MariaDB connection")
    };
    let primary = open(url("RWSPLIT_MYSQL_PRIMARY")).await;
    let replica = open(url("RWSPLIT_MYSQL_REPLICA_1")).await;
    let pool = rwsplit::RoutingPool::builder(primary)
        .replica("replica1", replica)
        .options(common::no_monitor())
        .build()
        .expect("the pool");
    let t = common::unique_table("first_scope");
    let sql = |s: String| AssertSqlSafe(s);
    pool.execute(sql(format!("CREATE TABLE {t} (v INT)")))
        .await
        .expect("create");
    let session = pool.session();
    pool.execute(sql(format!("INSERT INTO {t} VALUES (1)")))
        .await
        .expect("a write outside the session");
    session.token().await.expect("a token");
    assert!(
        session.position().is_none(),
        "a write outside the session moved it"
    );
    rwsplit::with_session(session.clone(), async {
        pool.execute(sql(format!("INSERT INTO {t} VALUES (2)")))
            .await
            .expect("a write in the session")
    })
    .await;
    session.token().await.expect("a token");
    assert!(
        session.position().is_some(),
        "a write through &pool inside with_session is not the session's"
    );
    pool.execute(sql(format!("DROP TABLE {t}")))
        .await
        .expect("drop");
    pool.close().await;
}
