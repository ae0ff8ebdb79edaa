//! Replica health, lag-aware routing and failover against real MariaDB servers: replicas are
//! killed (SIGKILL), hung (SIGSTOP), delayed (`MASTER_DELAY`) and cut off (`STOP SLAVE`), and
//! the primary is killed, while reads and writes go through the pool. Outcomes are asserted by
//! counts and by the server that answered (`@@server_id`).
//!
//! The tests change shared servers, so they run one at a time (a global lock) and each heals
//! the cluster when it ends.

#![cfg(feature = "mysql")]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::faults::{heal, Server};
use common::{eventually, server_url};
use rwsplit::{Balance, Consistency, Error, PoolOptions, Reason, RoutingPool, Target};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{AssertSqlSafe, Executor, MySql};
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

const WHO: &str = "SELECT CAST(@@server_id AS SIGNED)";

struct Cluster {
    pool: RoutingPool<MySql>,
}

fn options() -> PoolOptions {
    PoolOptions {
        monitor_interval: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(500),
        replica_timeout: Duration::from_millis(800),
        breaker_cooldown: Duration::from_millis(200),
        ..PoolOptions::default()
    }
}

async fn cluster(options: PoolOptions) -> Option<Cluster> {
    let primary_url = server_url("RWSPLIT_MYSQL_PRIMARY")?;
    let connect = |url: String| async move {
        MySqlPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_millis(800))
            .connect_lazy(&url)
            .expect("pool options")
    };
    let mut builder = RoutingPool::builder(connect(primary_url).await)
        .balance(Balance::RoundRobin)
        .options(options);
    for n in 1..=2 {
        let url = server_url(&format!("RWSPLIT_MYSQL_REPLICA_{n}"))?;
        builder = builder.replica(format!("replica{n}"), connect(url).await);
    }
    let pool = builder.build().expect("build");
    let ready = eventually(Duration::from_secs(20), || async {
        let s = pool.status();
        s.primary.eligible && s.replicas.iter().all(|r| r.eligible && r.probes > 0)
    })
    .await;
    assert!(
        ready,
        "cluster not healthy at test start: {:?}",
        pool.status()
    );
    Some(Cluster { pool })
}

impl Cluster {
    async fn who(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar::<_, i64>(WHO)
            .fetch_one(&self.pool)
            .await
    }

    /// Runs `reads` reads from `tasks` concurrent tasks; returns answers per server id and
    /// the errors.
    async fn read_load(&self, tasks: usize, reads: usize) -> (BTreeMap<i64, usize>, Vec<String>) {
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let pool = self.pool.clone();
            handles.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..reads {
                    let r = sqlx::query_scalar::<_, i64>(WHO).fetch_one(&pool).await;
                    seen.push(r.map_err(|e| e.to_string()));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen
            }));
        }
        let (mut by_server, mut errors) = (BTreeMap::new(), Vec::new());
        for h in handles {
            for r in h.await.unwrap() {
                match r {
                    Ok(id) => *by_server.entry(id).or_insert(0) += 1,
                    Err(e) => errors.push(e),
                }
            }
        }
        (by_server, errors)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_fails_no_read_and_rejoins_after_restart() {
    let _serial = SERIAL.lock().await;
    let Some(c) = cluster(options()).await else {
        return;
    };
    let load = {
        let c = Cluster {
            pool: c.pool.clone(),
        };
        tokio::spawn(async move { c.read_load(8, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    Server::Replica(1).signal("KILL");
    let (by_server, errors) = load.await.unwrap();
    assert!(
        errors.is_empty(),
        "{} failed reads: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(by_server.values().sum::<usize>(), 480);
    assert!(
        by_server.get(&3).copied().unwrap_or(0) > 0,
        "replica2 served reads: {by_server:?}"
    );
    assert!(
        !by_server.contains_key(&1) || by_server[&1] < 480,
        "{by_server:?}"
    );
    let status = c.pool.status();
    assert!(
        !status.replicas[0].eligible,
        "killed replica1 is out: {status:?}"
    );

    Server::Replica(1).restart();
    let back = eventually(Duration::from_secs(20), || async {
        c.pool.status().replicas[0].eligible
    })
    .await;
    assert!(back, "replica1 rejoins: {:?}", c.pool.status());
    let mut seen = BTreeMap::new();
    for _ in 0..20 {
        *seen.entry(c.who().await.unwrap()).or_insert(0) += 1;
    }
    assert!(
        seen.contains_key(&2),
        "replica1 serves reads again: {seen:?}"
    );
    heal(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_replica_never_holds_a_read_beyond_the_timeout_plus_one_retry() {
    let _serial = SERIAL.lock().await;
    let opts = options();
    let Some(c) = cluster(opts.clone()).await else {
        return;
    };
    // Warm connections to both replicas, then hang replica1.
    for _ in 0..4 {
        c.who().await.unwrap();
    }
    Server::Replica(1).signal("STOP");
    let mut slowest = Duration::ZERO;
    let mut answered = BTreeMap::new();
    for _ in 0..30 {
        let start = Instant::now();
        let id = c.who().await.expect("a read survives a hung replica");
        slowest = slowest.max(start.elapsed());
        *answered.entry(id).or_insert(0) += 1;
    }
    Server::Replica(1).signal("CONT");
    // One timeout on the hung replica, then the retry elsewhere (generous margin for CI).
    let bound = opts.replica_timeout * 2 + Duration::from_secs(1);
    assert!(slowest < bound, "slowest read {slowest:?}, bound {bound:?}");
    assert!(
        !answered.contains_key(&2),
        "the hung replica answered: {answered:?}"
    );
    let back = eventually(Duration::from_secs(20), || async {
        c.pool.status().replicas[0].eligible
    })
    .await;
    assert!(
        back,
        "replica1 rejoins after SIGCONT: {:?}",
        c.pool.status()
    );
    heal(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_replica_is_skipped_beyond_the_lag_bound_and_returns_when_caught_up() {
    let _serial = SERIAL.lock().await;
    let opts = PoolOptions {
        max_replica_lag: Duration::from_secs(1),
        heartbeat_table: Some("rwsplit_heartbeat".into()),
        ..options()
    };
    let Some(c) = cluster(opts).await else { return };
    Server::Replica(1).delay(3).await;
    let lagging = eventually(Duration::from_secs(20), || async {
        c.pool.status().replicas[0]
            .lag
            .is_some_and(|l| l > Duration::from_secs(1))
    })
    .await;
    assert!(lagging, "replica1 lag is measured: {:?}", c.pool.status());
    let (by_server, errors) = c.read_load(4, 25).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        !by_server.contains_key(&2),
        "no read from the delayed replica: {by_server:?}"
    );
    assert!(by_server.contains_key(&3), "{by_server:?}");
    // A per-call bound looser than the delay accepts it; a tighter one does not.
    let loose = sqlx::query_scalar::<_, i64>(WHO)
        .fetch_one(c.pool.max_staleness(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(loose == 2 || loose == 3);
    let d = rwsplit::with_consistency(
        Consistency::BoundedStaleness(Duration::from_millis(1)),
        async { c.pool.explain(WHO) },
    )
    .await;
    assert_eq!(d.target, Target::Primary, "{d:?}");

    Server::Replica(1).delay(0).await;
    let back = eventually(Duration::from_secs(30), || async {
        c.pool.status().replicas[0].eligible
    })
    .await;
    assert!(
        back,
        "replica1 returns once caught up: {:?}",
        c.pool.status()
    );
    heal(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_replication_makes_a_replica_ineligible() {
    let _serial = SERIAL.lock().await;
    let Some(c) = cluster(options()).await else {
        return;
    };
    Server::Replica(2).admin("STOP SLAVE").await;
    let out = eventually(Duration::from_secs(10), || async {
        !c.pool.status().replicas[1].eligible
    })
    .await;
    let status = c.pool.status();
    assert!(out, "{status:?}");
    let why = status.replicas[1].last_error.clone().unwrap_or_default();
    assert!(why.contains("replication broken"), "{why}");
    let (by_server, errors) = c.read_load(2, 20).await;
    assert!(errors.is_empty());
    assert!(!by_server.contains_key(&3), "{by_server:?}");
    Server::Replica(2).admin("START SLAVE").await;
    let back = eventually(Duration::from_secs(20), || async {
        c.pool.status().replicas[1].eligible
    })
    .await;
    assert!(back, "{:?}", c.pool.status());
    heal(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primary_fails_writes_fast_and_reads_continue_on_replicas() {
    let _serial = SERIAL.lock().await;
    let Some(c) = cluster(options()).await else {
        return;
    };
    let table = common::unique_table("pd");
    c.pool
        .execute(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY)"
        )))
        .await
        .unwrap();
    Server::Primary.signal("KILL");
    let insert = format!("INSERT INTO {table} VALUES (1)");
    let err = c
        .pool
        .execute(AssertSqlSafe(insert.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            Error::from_sqlx(&err),
            Some(Error::PrimaryUnavailable { .. })
        ),
        "dedicated error, got {err}"
    );
    // Now the breaker is open: the next write fails without touching the network.
    let start = Instant::now();
    let err = c
        .pool
        .execute(AssertSqlSafe(insert.clone()))
        .await
        .unwrap_err();
    assert!(matches!(
        Error::from_sqlx(&err),
        Some(Error::PrimaryUnavailable { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "fail fast: {:?}",
        start.elapsed()
    );
    assert!(c.pool.begin().await.is_err());
    let (by_server, errors) = c.read_load(4, 20).await;
    assert!(
        errors.is_empty(),
        "reads fail with the primary down: {errors:?}"
    );
    assert!(!by_server.contains_key(&1));
    assert_eq!(by_server.values().sum::<usize>(), 80);

    Server::Primary.restart();
    let back = eventually(Duration::from_secs(20), || async {
        c.pool.status().primary.eligible
    })
    .await;
    assert!(back, "{:?}", c.pool.status());
    c.pool
        .execute(AssertSqlSafe(insert))
        .await
        .expect("writes work again");
    heal(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degrade_switch_and_rotation_control() {
    let _serial = SERIAL.lock().await;
    let Some(c) = cluster(options()).await else {
        return;
    };
    c.pool.force_primary(true);
    for _ in 0..10 {
        assert_eq!(c.who().await.unwrap(), 1, "forced to the primary");
    }
    assert_eq!(c.pool.explain(WHO).reason, Reason::ForcedToPrimary);
    c.pool.force_primary(false);
    let ids: Vec<i64> = futures_util::future::join_all((0..10).map(|_| c.who()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids.iter().all(|id| *id != 1), "{ids:?}");
    c.pool.set_in_rotation("replica2", false).unwrap();
    for _ in 0..10 {
        assert_eq!(c.who().await.unwrap(), 2);
    }
    c.pool.set_in_rotation("replica2", true).unwrap();
    assert!(matches!(
        c.pool.set_in_rotation("nope", false),
        Err(Error::UnknownReplica(_))
    ));
    assert_eq!(c.pool.status().monitor_tasks, 3);
}
