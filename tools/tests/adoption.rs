//! Adopting rwsplit in a web application and its tests (issue #13), on the real MariaDB and
//! PostgreSQL clusters started by `scripts/test.sh`:
//! - `SessionLayer` (feature `tower`) over real HTTP with axum: write-then-read cycles from a
//!   client that sends the token back, with one replica applying 1 s late, give no stale read
//!   (and the same cycles without the token do, so the test can see them); the cookie carries
//!   the session as well; an unusable token is never a stale read.
//! - `RoutingPool::wait_for_replicas`: a database created on the primary is on every replica
//!   when it returns; a replica that stopped applying makes it fail with `ReplicaBehind`.
//! - `RoutingPool::for_test`: the one line that wraps a test's pool (with `#[sqlx::test]` on
//!   SQLite here), and over a replicated cluster, a pool on the test's own database whose
//!   replica reads see the test's fixtures at once.

#[path = "../../tests/common/mod.rs"]
mod common;

#[cfg(feature = "sqlite")]
use rwsplit::RoutingPool;

/// `#[sqlx::test]` hands each test a pool on a fresh database; one line makes it a routing
/// pool for the code under test.
#[cfg(feature = "sqlite")]
#[sqlx::test]
async fn a_sqlx_test_pool_is_wrapped_in_one_line(pool: sqlx::SqlitePool) -> sqlx::Result<()> {
    let pool = RoutingPool::for_test(pool, &[])
        .await
        .expect("a routing pool");
    sqlx::query("CREATE TABLE t (v INTEGER)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO t VALUES (7)")
        .execute(&pool)
        .await?;
    let v: i64 = sqlx::query_scalar("SELECT v FROM t")
        .fetch_one(&pool)
        .await?;
    assert_eq!(v, 7);
    let d = pool.explain("SELECT v FROM t");
    assert_eq!(
        d.target,
        rwsplit::Target::Primary,
        "no replicas: the test's pool serves all"
    );
    Ok(())
}

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod cluster {
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::extract::{Path, RawQuery, State};
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::{Extension, Router};
    use rwsplit::{Backend, PoolOptions, RoutingPool, Session};
    use sqlx::{AssertSqlSafe, Executor};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub use super::common::faults::{Kind, Server};
    use super::common::{eventually, server_url, unique_table};

    /// Environment variables of one cluster.
    pub struct Flavor {
        pub kind: Kind,
        pub primary: &'static str,
        pub replica: &'static str,
        pub replica2: &'static str,
        pub admin_primary: &'static str,
        pub admin_replica: &'static str,
        pub admin_replica2: &'static str,
    }

    /// Puts the replicas back as the suite expects them (applying, without delay) when a test
    /// ends, also when it panics: on a thread of its own, since `drop` cannot await.
    struct Heal(Kind);

    impl Drop for Heal {
        fn drop(&mut self) {
            let kind = self.0;
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async {
                    kind.start_replication(Server::Replica(2)).await;
                    kind.delay(Server::Replica(1), 0).await;
                })
            })
            .join();
        }
    }

    fn sqlx_pool<DB: Backend>(url: &str, size: u32) -> sqlx::Pool<DB> {
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy(url)
            .expect("pool options")
    }

    fn options() -> PoolOptions {
        PoolOptions::new().monitor_interval(Duration::from_millis(100))
    }

    /// Primary plus both replicas, healthy and probed.
    async fn pool<DB: Backend>(f: &Flavor) -> Option<RoutingPool<DB>> {
        let primary = server_url(f.primary)?;
        let pool = RoutingPool::builder(sqlx_pool(&primary, 8))
            .replica("replica1", sqlx_pool(&server_url(f.replica)?, 8))
            .replica("replica2", sqlx_pool(&server_url(f.replica2)?, 8))
            .options(options())
            .build()
            .expect("build");
        let ready = eventually(Duration::from_secs(30), || async {
            let s = pool.status();
            s.primary.eligible && s.replicas.iter().all(|r| r.eligible && r.probes > 0)
        })
        .await;
        assert!(ready, "cluster healthy at start: {:?}", pool.status());
        Some(pool)
    }

    /// One HTTP/1.1 request on its own connection: status, the token header, `Set-Cookie`
    /// values, body.
    struct Reply {
        status: u16,
        token: Option<String>,
        cookies: Vec<String>,
        body: String,
    }

    async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("receive");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let mut reply = Reply {
            status,
            token: None,
            cookies: Vec::new(),
            body: body.to_string(),
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "x-rwsplit-token" => reply.token = Some(value),
                "set-cookie" => reply.cookies.push(value),
                _ => {}
            }
        }
        reply
    }

    /// The application: `POST /items/1/{v}` sets the item's value, `GET /items/1?min=V`
    /// answers `fresh` when the value it reads is at least V, else `stale`; both take `&pool`
    /// only. `GET /rejected` tells whether the layer flagged the request's token.
    async fn serve<DB: Backend>(
        pool: RoutingPool<DB>,
        t: String,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let write_t = t.clone();
        let app = Router::new()
            .route(
                "/items/1/{v}",
                axum::routing::post(
                    move |State(pool): State<RoutingPool<DB>>, Path(v): Path<i64>| {
                        let sql = format!("UPDATE {write_t} SET v = {v} WHERE id = 1");
                        async move {
                            pool.execute(AssertSqlSafe(sql))
                                .await
                                .map(|_| "ok")
                                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                        }
                    },
                ),
            )
            .route(
                "/items/1",
                get(
                    move |State(pool): State<RoutingPool<DB>>, RawQuery(q): RawQuery| {
                        let min: i64 = q
                            .as_deref()
                            .and_then(|q| q.strip_prefix("min="))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let sql = format!("SELECT 1 FROM {t} WHERE id = 1 AND v >= {min}");
                        async move {
                            match pool.fetch_optional(AssertSqlSafe(sql)).await {
                                Ok(Some(_)) => Ok("fresh"),
                                Ok(None) => Ok("stale"),
                                Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                            }
                        }
                    },
                ),
            )
            .route(
                "/rejected",
                get(
                    |rejected: Option<Extension<rwsplit::RejectedToken>>,
                     Extension(_session): Extension<Session<DB>>| async move {
                        if rejected.is_some() {
                            "rejected"
                        } else {
                            "accepted"
                        }
                    },
                ),
            )
            .with_state(pool.clone())
            .layer(rwsplit::SessionLayer::new(pool).cookie("rwsplit_token"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        (addr, server)
    }

    /// `cycles` write-then-read cycles over HTTP through `SessionLayer`, replica 1 applying
    /// 1 s late and replica 2 on time: with the token sent back, 0 stale reads; without it,
    /// some (so the test can see them). Then the cookie alone carries the session, and an
    /// unusable token is flagged but never read stale.
    pub async fn layer_over_http<DB: Backend>(f: &Flavor, cycles: i64) {
        let Some(pool) = pool::<DB>(f).await else {
            return;
        };
        let t = unique_table("http");
        pool.execute(AssertSqlSafe(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"
        )))
        .await
        .expect("create");
        pool.execute(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, v) VALUES (1, 0)"
        )))
        .await
        .expect("insert");
        pool.wait_for_replicas(Duration::from_secs(30))
            .await
            .expect("the replicas have the table");
        let _heal = Heal(f.kind);
        f.kind.delay(Server::Replica(1), 1).await;
        // Restarting replication to set the delay can open replica 1's breaker (a probe saw its
        // apply thread stopped): wait until it is back in rotation, or no read could be stale.
        let back = eventually(Duration::from_secs(30), || async {
            pool.status().replicas.iter().all(|r| r.eligible)
        })
        .await;
        assert!(
            back,
            "replicas eligible after the delay: {:?}",
            pool.status()
        );
        let (addr, server) = serve(pool.clone(), t.clone()).await;

        // Without the token: the client sees stale reads.
        let mut stale = 0;
        for i in 1..=100 {
            let w = http(addr, "POST", &format!("/items/1/{i}"), &[]).await;
            assert_eq!(w.status, 200, "write {i}: {}", w.body);
            let r = http(addr, "GET", &format!("/items/1?min={i}"), &[]).await;
            assert_eq!(r.status, 200, "read {i}: {}", r.body);
            stale += usize::from(r.body == "stale");
        }
        eprintln!("without the token: {stale} of 100 reads stale");
        assert!(stale > 0, "the test can see stale reads without the token");

        // With the token sent back, as a client does: none.
        let mut token: Option<String> = None;
        let mut stale = 0;
        let mut tokens = 0;
        for i in 1_000_000..1_000_000 + cycles {
            let headers: Vec<(&str, &str)> = token
                .iter()
                .map(|t| ("x-rwsplit-token", t.as_str()))
                .collect();
            let w = http(addr, "POST", &format!("/items/1/{i}"), &headers).await;
            assert_eq!(w.status, 200, "write {i}: {}", w.body);
            let fresh = w.token.expect("a write's response carries the token");
            tokens += 1;
            let r = http(
                addr,
                "GET",
                &format!("/items/1?min={i}"),
                &[("x-rwsplit-token", &fresh)],
            )
            .await;
            assert_eq!(r.status, 200, "read {i}: {}", r.body);
            stale += usize::from(r.body == "stale");
            assert!(r.token.is_none(), "a read leaves the client's token alone");
            token = Some(fresh);
        }
        eprintln!("with the token over HTTP: {stale} of {cycles} reads stale ({tokens} tokens)");
        assert_eq!(stale, 0, "stale reads with the token sent back");

        // The cookie alone carries the session, and responses set it.
        let mut stale = 0;
        for i in 2_000_000..2_000_050_i64 {
            let w = http(addr, "POST", &format!("/items/1/{i}"), &[]).await;
            let cookie = w
                .cookies
                .iter()
                .find(|c| c.starts_with("rwsplit_token="))
                .expect("the write's response sets the cookie")
                .clone();
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            let value = cookie.split(';').next().unwrap().to_string();
            let r = http(
                addr,
                "GET",
                &format!("/items/1?min={i}"),
                &[("cookie", &format!("theme=José; {value}"))],
            )
            .await;
            stale += usize::from(r.body == "stale");
        }
        assert_eq!(stale, 0, "stale reads with the cookie sent back");

        // An unusable token (malformed, or from another cluster) is flagged to the handler,
        // and the request's reads still see every earlier write.
        let other = RoutingPool::builder(pool.primary_pool().clone())
            .options(
                PoolOptions::new()
                    .cluster_name(format!("not {t}"))
                    .monitor_interval(Duration::ZERO),
            )
            .build()
            .unwrap();
        let foreign = other.session().token().await.unwrap().to_string();
        assert_ne!(other.cluster_id(), pool.cluster_id());
        for bad in [
            "not-a-token",
            foreign.as_str(),
            rwsplit::layer::UNKNOWN_POSITION,
        ] {
            let r = http(addr, "GET", "/rejected", &[("x-rwsplit-token", bad)]).await;
            let flagged = if bad == rwsplit::layer::UNKNOWN_POSITION {
                "accepted"
            } else {
                "rejected"
            };
            assert_eq!(r.body, flagged, "{bad}");
            let mut stale = 0;
            for i in 3_000_000..3_000_020_i64 {
                let w = http(addr, "POST", &format!("/items/1/{i}"), &[]).await;
                assert_eq!(w.status, 200);
                let r = http(
                    addr,
                    "GET",
                    &format!("/items/1?min={i}"),
                    &[("x-rwsplit-token", bad)],
                )
                .await;
                assert_eq!(r.status, 200, "{}", r.body);
                stale += usize::from(r.body == "stale");
            }
            assert_eq!(stale, 0, "stale reads with an unusable token {bad}");
        }
        let r = http(addr, "GET", "/rejected", &[]).await;
        assert_eq!(r.body, "accepted");

        // Two pools, two nested sessions (as two layers would nest them): each pool keeps its
        // own session inside the inner scope.
        let second = RoutingPool::builder(pool.primary_pool().clone())
            .replica("replica1", pool.replica_pool("replica1").unwrap().clone())
            .replica("replica2", pool.replica_pool("replica2").unwrap().clone())
            .options(options())
            .build()
            .unwrap();
        let probed = eventually(Duration::from_secs(30), || async {
            second
                .status()
                .replicas
                .iter()
                .all(|r| r.eligible && r.probes > 0)
        })
        .await;
        assert!(probed, "{:?}", second.status());
        let cycle = async |p: &RoutingPool<DB>, i: i64| {
            p.execute(AssertSqlSafe(format!(
                "UPDATE {t} SET v = {i} WHERE id = 1"
            )))
            .await
            .expect("write");
            let fresh = format!("SELECT 1 FROM {t} WHERE id = 1 AND v >= {i}");
            usize::from(
                p.fetch_optional(AssertSqlSafe(fresh))
                    .await
                    .expect("read")
                    .is_none(),
            )
        };
        let stale = rwsplit::with_session(
            pool.session(),
            rwsplit::with_session(second.session(), async {
                let mut stale = 0;
                for i in 4_000_000..4_000_050_i64 {
                    stale += cycle(&pool, 2 * i).await;
                    stale += cycle(&second, 2 * i + 1).await;
                }
                stale
            }),
        )
        .await;
        assert_eq!(
            stale, 0,
            "stale reads through either pool in nested sessions"
        );

        // A stronger level still applies inside a session: `Strong` reads see writes the
        // session did not make (another client's, straight to the primary).
        let stale = rwsplit::with_session(pool.session(), async {
            let mut stale = 0;
            for i in 5_000_000..5_000_050_i64 {
                DB::pool_executor(pool.primary_pool())
                    .execute(AssertSqlSafe(format!(
                        "UPDATE {t} SET v = {i} WHERE id = 1"
                    )))
                    .await
                    .expect("another client's write");
                let fresh = format!("SELECT 1 FROM {t} WHERE id = 1 AND v >= {i}");
                let strong = rwsplit::with_consistency(
                    rwsplit::Consistency::Strong,
                    pool.fetch_optional(AssertSqlSafe(fresh)),
                )
                .await
                .expect("read");
                stale += usize::from(strong.is_none());
            }
            stale
        })
        .await;
        assert_eq!(stale, 0, "Strong reads inside a session");

        // A transaction begun in the session, then a read, then the commit: the next read
        // still sees the commit (the session cannot see when it commits, so it captures
        // again). Only the delayed replica in rotation, and the commit more than its delay
        // after the read: that replica has the position of the read but not the commit.
        pool.set_in_rotation("replica2", false).unwrap();
        let stale = rwsplit::with_session(pool.session(), async {
            let mut stale = 0;
            for i in 6_000_000..6_000_003_i64 {
                let mut tx = pool.begin().await.expect("begin");
                let before = format!("SELECT 1 FROM {t} WHERE id = 1");
                pool.fetch_optional(AssertSqlSafe(before))
                    .await
                    .expect("a read mid-transaction");
                tokio::time::sleep(Duration::from_millis(1500)).await;
                DB::conn_executor(&mut tx)
                    .execute(AssertSqlSafe(format!(
                        "UPDATE {t} SET v = {i} WHERE id = 1"
                    )))
                    .await
                    .expect("write in the transaction");
                tx.commit().await.expect("commit");
                let fresh = format!("SELECT 1 FROM {t} WHERE id = 1 AND v >= {i}");
                let row = pool
                    .fetch_optional(AssertSqlSafe(fresh))
                    .await
                    .expect("read");
                stale += usize::from(row.is_none());
            }
            stale
        })
        .await;
        pool.set_in_rotation("replica2", true).unwrap();
        assert_eq!(
            stale, 0,
            "a read after a commit of a transaction begun before a read"
        );

        server.abort();
        let _ = pool.execute(AssertSqlSafe(format!("DROP TABLE {t}"))).await;
        pool.close().await;
    }

    /// A database created on the primary (as a test harness creates one per test) is on every
    /// replica when `wait_for_replicas` returns, with its rows; `for_test` then gives a pool on
    /// that database whose replica reads see them. A replica that stopped applying makes the
    /// wait fail with `ReplicaBehind` naming it.
    pub async fn replicas_have_a_new_database<DB: Backend>(f: &Flavor) {
        let Some(admin) = server_url(f.admin_primary) else {
            return;
        };
        let replicas = [
            server_url(f.admin_replica).unwrap(),
            server_url(f.admin_replica2).unwrap(),
        ];
        let db = unique_table("waitdb");
        let base = sqlx_pool::<DB>(&admin, 2);
        DB::pool_executor(&base)
            .execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .await
            .expect("create database");
        let on_db = sqlx_pool::<DB>(&with_database(&admin, &db), 2);
        DB::pool_executor(&on_db)
            .execute(AssertSqlSafe(
                "CREATE TABLE fixture (id BIGINT PRIMARY KEY)".to_string(),
            ))
            .await
            .expect("create table");
        DB::pool_executor(&on_db)
            .execute(AssertSqlSafe(
                "INSERT INTO fixture VALUES (1), (2), (3)".to_string(),
            ))
            .await
            .expect("fixture rows");
        // Replica 1 a second late: the database is not there at once, only after the wait.
        let _heal = Heal(f.kind);
        f.kind.delay(Server::Replica(1), 1).await;
        DB::pool_executor(&on_db)
            .execute(AssertSqlSafe("INSERT INTO fixture VALUES (4)".to_string()))
            .await
            .expect("a late row");
        let urls: Vec<&str> = replicas.iter().map(String::as_str).collect();
        let pool = RoutingPool::for_test(on_db.clone(), &urls)
            .await
            .expect("for_test");
        for name in ["replica1", "replica2"] {
            let replica = pool.replica_pool(name).unwrap();
            let rows = DB::pool_executor(replica)
                .fetch_all(AssertSqlSafe("SELECT id FROM fixture".to_string()))
                .await
                .unwrap_or_else(|e| panic!("{name} has the test's database: {e}"));
            assert_eq!(rows.len(), 4, "{name} has every fixture row at once");
        }
        let rows = pool
            .replica()
            .fetch_all(AssertSqlSafe("SELECT id FROM fixture".to_string()))
            .await
            .expect("a routed read");
        assert_eq!(rows.len(), 4);
        // Not `close()`: the routing pool shares the test's pool (a clone), which goes on.
        drop(pool);

        // A replica that stopped applying: the wait fails, naming it.
        f.kind.stop_replication(Server::Replica(2)).await;
        DB::pool_executor(&on_db)
            .execute(AssertSqlSafe("INSERT INTO fixture VALUES (5)".to_string()))
            .await
            .expect("a row the stopped replica lacks");
        let pool = RoutingPool::builder(on_db.clone())
            .replica("replica1", sqlx_pool(&with_database(&replicas[0], &db), 1))
            .replica("replica2", sqlx_pool(&with_database(&replicas[1], &db), 1))
            .options(PoolOptions::new().monitor_interval(Duration::ZERO))
            .build()
            .unwrap();
        // Replica 1 on time again (so only the stopped one can be behind), then the wait.
        f.kind.delay(Server::Replica(1), 0).await;
        let behind = pool.wait_for_replicas(Duration::from_secs(3)).await;
        f.kind.start_replication(Server::Replica(2)).await;
        f.kind.delay(Server::Replica(1), 0).await;
        match behind {
            Err(rwsplit::Error::ReplicaBehind { replica, .. }) => assert_eq!(replica, "replica2"),
            other => panic!("a stopped replica: {other:?}"),
        }
        pool.wait_for_replicas(Duration::from_secs(30))
            .await
            .expect("caught up after the restart");
        pool.close().await;
        drop(pool);
        on_db.close().await;
        let drop_db = match f.kind {
            Kind::Postgres => format!("DROP DATABASE {db} WITH (FORCE)"),
            Kind::MariaDb => format!("DROP DATABASE {db}"),
        };
        DB::pool_executor(&base)
            .execute(AssertSqlSafe(drop_db))
            .await
            .expect("drop database");
        base.close().await;
    }

    /// `url` pointing at `db` (the URLs of the local clusters end with their database).
    fn with_database(url: &str, db: &str) -> String {
        let (head, query) = url
            .split_once('?')
            .map_or((url, None), |(h, q)| (h, Some(q)));
        let cut = head.rfind('/').expect("a database in the URL");
        match query {
            Some(q) => format!("{}/{db}?{q}", &head[..cut]),
            None => format!("{}/{db}", &head[..cut]),
        }
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use super::cluster::{self, Flavor, Kind};
    use tokio::sync::Mutex;

    static SERIAL: Mutex<()> = Mutex::const_new(());
    const F: Flavor = Flavor {
        kind: Kind::MariaDb,
        primary: "RWSPLIT_MYSQL_PRIMARY",
        replica: "RWSPLIT_MYSQL_REPLICA_1",
        replica2: "RWSPLIT_MYSQL_REPLICA_2",
        admin_primary: "RWSPLIT_MYSQL_ADMIN_PRIMARY",
        admin_replica: "RWSPLIT_MYSQL_ADMIN_REPLICA_1",
        admin_replica2: "RWSPLIT_MYSQL_ADMIN_REPLICA_2",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_session_layer_gives_read_your_writes_over_http() {
        let _serial = SERIAL.lock().await;
        cluster::layer_over_http::<sqlx::MySql>(&F, 1000).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_for_replicas_and_for_test_see_a_new_database() {
        let _serial = SERIAL.lock().await;
        cluster::replicas_have_a_new_database::<sqlx::MySql>(&F).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::cluster::{self, Flavor, Kind};
    use tokio::sync::Mutex;

    static SERIAL: Mutex<()> = Mutex::const_new(());
    const F: Flavor = Flavor {
        kind: Kind::Postgres,
        primary: "RWSPLIT_PG_PRIMARY",
        replica: "RWSPLIT_PG_STANDBY_1",
        replica2: "RWSPLIT_PG_STANDBY_2",
        admin_primary: "RWSPLIT_PG_ADMIN_PRIMARY",
        admin_replica: "RWSPLIT_PG_ADMIN_STANDBY_1",
        admin_replica2: "RWSPLIT_PG_ADMIN_STANDBY_2",
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_session_layer_gives_read_your_writes_over_http() {
        let _serial = SERIAL.lock().await;
        cluster::layer_over_http::<sqlx::Postgres>(&F, 1000).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_for_replicas_and_for_test_see_a_new_database() {
        let _serial = SERIAL.lock().await;
        cluster::replicas_have_a_new_database::<sqlx::Postgres>(&F).await;
    }
}
