//! What a routed call costs in client instructions, exactly: `N` operations of a 90/10 mix
//! (point selects by primary key, single-row updates, one after the other on one task), either
//! through a `RoutingPool` (`routed`) or by hand on the writer and reader pools (`direct`: the
//! code an application would write instead). Run under callgrind by `scripts/bench.sh
//! instructions`, twice per mode with different `N`, so that the difference per operation cancels
//! the start-up: (Ir(N2) − Ir(N1)) / (N2 − N1).
//!
//! ```text
//! instructions BACKEND MODE N
//!   BACKEND  mysql (RWSPLIT_MYSQL_PRIMARY, RWSPLIT_MYSQL_REPLICA_1), postgres (RWSPLIT_PG_PRIMARY,
//!            RWSPLIT_PG_STANDBY_1) or sqlite (embedded, no server)
//!   MODE     routed or direct
//! cargo run --release -p rwsplit-tools --features mysql,postgres,metrics --example instructions -- mysql routed 10000
//! ```
//!
//! With MySQL/MariaDB and PostgreSQL the whole client runs on the calling thread (a
//! current-thread runtime; the drivers do their socket work in the calling task), and the
//! servers are other processes that callgrind does not count, so the figure is the client's own
//! and repeats to within a few instructions per operation. With SQLite, sqlx runs the database on
//! worker threads that park and wake the caller, which makes the caller's count vary by a few
//! thousand instructions from run to run: use it without servers, not for the exact figure.
//!
//! The pool is built as an application would build it: default options, the Prometheus metrics
//! on, one replica. Only the monitor is off (`monitor_interval` zero): its probes run on their
//! own threads on a clock, are not part of a call, and would make the count depend on time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rwsplit::{Backend, PoolOptions, RoutingPool};
use sqlx::{AssertSqlSafe, Executor, Pool};

const ROWS: i64 = 1000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let mode = args.next().unwrap_or_else(|| "routed".into());
    let n: i64 = args.next().map_or(Ok(10_000), |n| n.parse())?;
    if mode != "routed" && mode != "direct" {
        return Err(format!("mode {mode}: use routed or direct").into());
    }
    match backend.as_str() {
        #[cfg(feature = "mysql")]
        "mysql" => {
            let pool =
                routing::<sqlx::MySql>("RWSPLIT_MYSQL_PRIMARY", "RWSPLIT_MYSQL_REPLICA_1").await?;
            let sql = Mix {
                create: "CREATE TABLE IF NOT EXISTS instr_kv (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
                fill: "INSERT IGNORE INTO instr_kv (id, v) \
                       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
                       SELECT i, 0 FROM n",
                select: "SELECT v FROM instr_kv WHERE id = ?",
                update: "UPDATE instr_kv SET v = v + 1 WHERE id = ?",
            };
            run(pool, &sql, &mode, n).await?;
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let pool =
                routing::<sqlx::Postgres>("RWSPLIT_PG_PRIMARY", "RWSPLIT_PG_STANDBY_1").await?;
            let sql = Mix {
                create:
                    "CREATE TABLE IF NOT EXISTS instr_kv (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
                fill: "INSERT INTO instr_kv (id, v) SELECT i, 0 FROM generate_series(1, {ROWS}) i \
                       ON CONFLICT DO NOTHING",
                select: "SELECT v FROM instr_kv WHERE id = $1",
                update: "UPDATE instr_kv SET v = v + 1 WHERE id = $1",
            };
            run(pool, &sql, &mode, n).await?;
        }
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let dir =
                std::env::temp_dir().join(format!("rwsplit-instructions-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let pool = rwsplit::sqlite::open(dir.join("kv.db"), 1)
                .await?
                .options(options())
                .metrics(&prometheus::Registry::new(), None)
                .build()?;
            let sql = Mix {
                create: "CREATE TABLE IF NOT EXISTS instr_kv (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
                fill: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
                       INSERT OR IGNORE INTO instr_kv (id, v) SELECT i, 0 FROM n",
                select: "SELECT v FROM instr_kv WHERE id = ?",
                update: "UPDATE instr_kv SET v = v + 1 WHERE id = ?",
            };
            run(pool, &sql, &mode, n).await?;
            std::fs::remove_dir_all(&dir)?;
        }
        other => {
            return Err(format!(
                "backend {other}: use mysql, postgres or sqlite (built with its feature)"
            )
            .into())
        }
    }
    Ok(())
}

/// The statements of the mix for one dialect.
struct Mix {
    create: &'static str,
    /// Fills `instr_kv` with `ROWS` rows (`{ROWS}` is replaced).
    fill: &'static str,
    select: &'static str,
    update: &'static str,
}

fn options() -> PoolOptions {
    PoolOptions::new().monitor_interval(Duration::ZERO)
}

/// The routing pool over the servers whose URLs are in the environment variables `primary` and
/// `replica`. Each sqlx pool has a few connections, all opened first: the loop runs one
/// statement at a time, and a connection goes back to its pool in a task of its own after each,
/// so one connection alone would make the next statement find its pool momentarily empty (and
/// take the saturated path).
#[allow(dead_code)] // with neither server backend built
async fn routing<DB: Backend>(
    primary: &str,
    replica: &str,
) -> Result<RoutingPool<DB>, Box<dyn std::error::Error>> {
    async fn open<DB: Backend>(var: &str) -> Result<Pool<DB>, Box<dyn std::error::Error>> {
        let url = std::env::var(var)
            .map_err(|_| format!("{var} is not set (source the servers' env)"))?;
        let options = sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(4)
            .min_connections(4);
        Ok(options.connect(&url).await?)
    }
    let primary = open::<DB>(primary).await?;
    let replica = open::<DB>(replica).await?;
    Ok(RoutingPool::builder(primary)
        .replica("replica", replica)
        .options(options())
        .metrics(&prometheus::Registry::new(), None)
        .build()?)
}

async fn run<DB>(
    pool: RoutingPool<DB>,
    sql: &Mix,
    mode: &str,
    n: i64,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB: Backend,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    pool.execute(sql.create).await?;
    pool.execute(AssertSqlSafe(sql.fill.replace("{ROWS}", &ROWS.to_string())))
        .await?;
    let writer = pool.primary_pool().clone();
    let reader = pool
        .replica_pool(pool.replica_names().next().expect("one replica"))
        .expect("the replica")
        .clone();
    // The replica has every row before the loop starts, so both modes read the same rows.
    let last = sql
        .select
        .replace("?", &ROWS.to_string())
        .replace("$1", &ROWS.to_string());
    while reader
        .fetch_optional(AssertSqlSafe(last.clone()))
        .await?
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if std::env::var_os("INSTR_BLOCKING").is_some() {
        blocking_sockets();
    }
    // The same mix first, uncounted, in the same mode: every connection has prepared both
    // statements, and through the pool both are classified (the figure is that of a statement
    // already in the classification cache; the first sight of one is parsed once).
    mix(&pool, &writer, &reader, sql, mode == "routed", 0..WARM_UP).await?;
    // Behind a `dyn Future`, so that its poll is a function of its own, never inlined: under
    // `--collect-atstart=no --toggle-collect=*measured_loop*` callgrind counts only the
    // statements, not the set-up (connections, logins, the table) nor the shutdown.
    let measured: Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + '_>> = Box::pin(
        measured_loop(&pool, &writer, &reader, sql, mode == "routed", n),
    );
    measured.await?;
    pool.close().await;
    Ok(())
}

/// The `n` statements of the mix, through the pool (`routed`) or by hand: what callgrind counts.
async fn measured_loop<DB>(
    pool: &RoutingPool<DB>,
    writer: &Pool<DB>,
    reader: &Pool<DB>,
    sql: &Mix,
    routed: bool,
    n: i64,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    mix(pool, writer, reader, sql, routed, WARM_UP..WARM_UP + n).await
}

/// Statements run before the measured ones: two rounds of the mix on each of the four
/// connections of a pool.
const WARM_UP: i64 = 80;

/// The statements `range` of the mix (statement `i` is an update when `i % 10 == 0`, else a
/// point select), through the pool (`routed`) or by hand.
async fn mix<DB>(
    pool: &RoutingPool<DB>,
    writer: &Pool<DB>,
    reader: &Pool<DB>,
    sql: &Mix,
    routed: bool,
    range: std::ops::Range<i64>,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    for i in range {
        let write = i % 10 == 0;
        let id = i % ROWS + 1;
        // As an application (and the load generator) would: `execute` for the update,
        // `fetch_one` for the point select.
        match (routed, write) {
            (true, true) => drop(sqlx::query(sql.update).bind(id).execute(pool).await?),
            (true, false) => drop(sqlx::query(sql.select).bind(id).fetch_one(pool).await?),
            (false, true) => drop(sqlx::query(sql.update).bind(id).execute(writer).await?),
            (false, false) => drop(sqlx::query(sql.select).bind(id).fetch_one(reader).await?),
        }
        // The connection goes back to its pool in a task of its own (sqlx's `PoolConnection`
        // drop); with blocking sockets this task would otherwise never yield, so the pools
        // would run dry every few statements and a quarter of them would queue for a
        // connection. An application's task yields at every statement's socket read, which
        // lets those tasks run: so does this loop, in both modes.
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Turns every socket of the process to blocking mode: a read then waits in the kernel for the
/// server's answer instead of returning "would block" and parking the runtime, so each
/// statement takes the same path through the client whatever the servers' speed.
fn blocking_sockets() {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for fd in fds.flatten() {
        let is_socket = std::fs::read_link(fd.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = fd.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if is_socket {
            // SAFETY: fcntl on a descriptor this process owns; only the O_NONBLOCK flag changes.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
            }
        }
    }
}
