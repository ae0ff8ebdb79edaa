//! Load generator for rwsplit's end-to-end benchmarks (`scripts/bench.sh`, `BENCHMARKS.md`).
//!
//! An OLTP mix on table `loadgen_kv(id BIGINT PRIMARY KEY, v BIGINT)`: point selects by primary
//! key (`SELECT v FROM loadgen_kv WHERE id = ?`) and single-row updates
//! (`UPDATE loadgen_kv SET v = v + 1 WHERE id = ?`) on uniformly random ids, from N concurrent
//! tasks for a fixed time. Prints ONE JSON line:
//! `{"mode":..,"backend":..,"concurrency":..,"duration_s":..,"ops":..,"throughput":..,
//!   "p50_us":..,"p99_us":..,"errors":..}` (plus a few diagnostic fields).
//!
//! Modes:
//! * `routed`: everything through one `rwsplit::RoutingPool` (primary + the replica);
//! * `direct`: hand routing with two plain sqlx pools: selects on the replica pool, updates on
//!   the primary pool (the baseline rwsplit must match);
//! * `interleaved`: both of the above in one process, alternating: `--rounds` rounds of one
//!   `--duration` window routed and one direct (the order flips every round), after one
//!   `--warmup` of each; one JSON line per window, with `"round"`. Alternating every few
//!   seconds cancels the drift of a shared machine far better than separate processes
//!   minutes apart. (The routed pool's health monitor, a few queries per second, keeps running
//!   during the direct windows.) `--pair direct,direct` runs the same alternation with one
//!   mode on both sides: the spread of its ratios is the machine's noise floor.
//! * `proxy`:  one plain sqlx pool to a routing proxy (`--proxy URL`, e.g. pgpool-II);
//! * `memory`: no server; pushes `--statements` distinct statements (inline literals) through
//!   `rwsplit::Classifier::analyze` and prints RSS (VmRSS) every `--every` statements, to show
//!   that memory plateaus at the classification cache's budget.
//!
//! ```text
//! cargo run --release -p rwsplit-tools --features mysql --example loadgen -- --mode routed --backend mysql \
//!     --primary mysql://u:p@127.0.0.1:3306/db --replica mysql://u:p@127.0.0.1:3307/db
//! cargo run --release -p rwsplit-tools --example loadgen -- --mode memory --statements 1000000
//! ```
//!
//! All pools (either mode) get `max_connections = min_connections = --concurrency`, and by
//! default no ping before each acquire (`--test-before-acquire` turns sqlx's default ping back
//! on, for every mode alike). Setup (`--rows`, default 10000) creates and fills the table on the
//! primary if needed and waits until the replica (or, with only `--proxy`, the proxy) sees
//! every row. A warm-up (`--warmup`, default 1 s) runs before the measured window.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Args {
    mode: String,
    backend: String,
    primary: Option<String>,
    replica: Option<String>,
    proxy: Option<String>,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    write_ratio: f64,
    rows: i64,
    seed: u64,
    test_before_acquire: bool,
    /// `interleaved` mode: routed/direct rounds.
    rounds: u64,
    /// `interleaved` mode: the two modes that alternate (default `routed,direct`;
    /// `direct,direct` measures the noise floor).
    pair: (String, String),
    // memory mode
    statements: u64,
    every: u64,
    cache_bytes: Option<u64>,
    dialect: String,
}

const USAGE: &str = "usage: loadgen --mode routed|direct|interleaved|proxy|memory \
[--backend mysql|postgres] [--primary URL] [--replica URL] [--proxy URL] [--concurrency 32] \
[--duration 10] [--warmup 1] [--rounds 10 (interleaved)] \
[--write-ratio 0.1] [--rows 10000] [--seed N] [--test-before-acquire] \
[memory: --statements 1000000 --every 100000 --cache-bytes N --dialect mysql|postgres]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        mode: String::new(),
        backend: "mysql".into(),
        primary: None,
        replica: None,
        proxy: None,
        concurrency: 32,
        duration: 10.0,
        warmup: 1.0,
        write_ratio: 0.1,
        rows: 10_000,
        seed: 0x5eed,
        test_before_acquire: false,
        rounds: 10,
        pair: ("routed".into(), "direct".into()),
        statements: 1_000_000,
        every: 100_000,
        cache_bytes: None,
        dialect: "mysql".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if key == "--test-before-acquire" {
            a.test_before_acquire = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{key}: {e}"));
        let int = |v: String| v.parse::<u64>().map_err(|e| format!("{key}: {e}"));
        match key.as_str() {
            "--mode" => a.mode = value()?,
            "--backend" => a.backend = value()?,
            "--primary" => a.primary = Some(value()?),
            "--replica" => a.replica = Some(value()?),
            "--proxy" => a.proxy = Some(value()?),
            "--concurrency" => a.concurrency = int(value()?)? as usize,
            "--duration" => a.duration = num(value()?)?,
            "--warmup" => a.warmup = num(value()?)?,
            "--write-ratio" => a.write_ratio = num(value()?)?,
            "--rows" => a.rows = int(value()?)? as i64,
            "--seed" => a.seed = int(value()?)?,
            "--rounds" => a.rounds = int(value()?)?,
            "--pair" => {
                let v = value()?;
                let (x, y) = v
                    .split_once(',')
                    .ok_or("--pair takes two modes: routed,direct")?;
                a.pair = (x.to_string(), y.to_string());
            }
            "--statements" => a.statements = int(value()?)?,
            "--every" => a.every = int(value()?)?,
            "--cache-bytes" => a.cache_bytes = Some(int(value()?)?),
            "--dialect" => a.dialect = value()?,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    if !matches!(
        a.mode.as_str(),
        "routed" | "direct" | "interleaved" | "proxy" | "memory"
    ) {
        return Err(format!(
            "--mode must be routed, direct, interleaved, proxy or memory\n{USAGE}"
        ));
    }
    if !(0.0..=1.0).contains(&a.write_ratio) {
        return Err("--write-ratio must be between 0 and 1".into());
    }
    if a.concurrency == 0 || a.rows < 1 || a.duration <= 0.0 || a.every == 0 || a.rounds == 0 {
        return Err(
            "--concurrency, --rows, --duration, --rounds and --every must be positive".into(),
        );
    }
    Ok(a)
}

/// splitmix64: a tiny, fast, seedable generator (one per task, no shared state).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    if args.mode == "memory" {
        if let Err(e) = memory(&args) {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------------------------------
// memory mode

fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn memory(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dialect: rwsplit::Dialect = args.dialect.parse()?;
    let mut opts = rwsplit::ClassifierOptions::new(dialect);
    if let Some(bytes) = args.cache_bytes {
        opts = opts.cache_bytes(bytes);
    }
    let classifier = opts.build();
    let base = vm_rss_kib().unwrap_or(0);
    let t0 = Instant::now();
    println!(
        "{{\"mode\":\"memory\",\"statements\":0,\"rss_kib\":{base},\"cache_entries\":0,\"cache_bytes\":0,\"elapsed_s\":0}}"
    );
    let mut reads = 0u64;
    let mut sql = String::with_capacity(128);
    for i in 1..=args.statements {
        use std::fmt::Write;
        sql.clear();
        // Distinct text every time: inline literals, as an ORM that does not bind would send.
        // Mixed shapes and lengths (40 to ~120 bytes).
        match i % 4 {
            0 => write!(sql, "SELECT v FROM loadgen_kv WHERE id = {i}"),
            1 => write!(
                sql,
                "SELECT id, v FROM loadgen_kv WHERE id BETWEEN {i} AND {} ORDER BY id LIMIT 10",
                i + 10
            ),
            2 => write!(sql, "UPDATE loadgen_kv SET v = v + 1 WHERE id = {i}"),
            _ => write!(
                sql,
                "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id \
                 WHERE c.email = 'user{i}@example.com' AND o.status = 'open'"
            ),
        }?;
        if classifier.analyze(&sql).is_pure_read() {
            reads += 1;
        }
        if i % args.every == 0 || i == args.statements {
            let stats = classifier.cache_stats();
            println!(
                "{{\"mode\":\"memory\",\"statements\":{i},\"rss_kib\":{},\"cache_entries\":{},\"cache_bytes\":{},\"elapsed_s\":{:.2}}}",
                vm_rss_kib().unwrap_or(0),
                stats.entries,
                stats.bytes,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let stats = classifier.cache_stats();
    eprintln!(
        "loadgen memory: {} statements ({} pure reads), cache hits {} misses {}, {} entries / {} bytes held",
        args.statements, reads, stats.hits, stats.misses, stats.entries, stats.bytes
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------
// load modes

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (Linux; clock ticks of 10 ms, fine over a run of seconds).
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Per-task results.
#[derive(Default)]
struct TaskResult {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// The executors of one run, behind one enum so the workload loop is written once.
#[derive(Clone)]
enum Exec {
    /// Keeps the enum inhabited-by-nothing but matchable when neither backend is built in.
    #[allow(dead_code)]
    Never(std::convert::Infallible),
    #[cfg(feature = "mysql")]
    MyDirect {
        primary: sqlx::MySqlPool,
        replica: sqlx::MySqlPool,
    },
    #[cfg(feature = "mysql")]
    MyRouted(rwsplit::RoutingPool<sqlx::MySql>),
    #[cfg(feature = "mysql")]
    MyProxy(sqlx::MySqlPool),
    #[cfg(feature = "postgres")]
    PgDirect {
        primary: sqlx::PgPool,
        replica: sqlx::PgPool,
    },
    #[cfg(feature = "postgres")]
    PgRouted(rwsplit::RoutingPool<sqlx::Postgres>),
    #[cfg(feature = "postgres")]
    PgProxy(sqlx::PgPool),
}

#[cfg(feature = "mysql")]
const MY_SELECT: &str = "SELECT v FROM loadgen_kv WHERE id = ?";
#[cfg(feature = "mysql")]
const MY_UPDATE: &str = "UPDATE loadgen_kv SET v = v + 1 WHERE id = ?";
#[cfg(feature = "postgres")]
const PG_SELECT: &str = "SELECT v FROM loadgen_kv WHERE id = $1";
#[cfg(feature = "postgres")]
const PG_UPDATE: &str = "UPDATE loadgen_kv SET v = v + 1 WHERE id = $1";

#[allow(unused_macros)]
macro_rules! select_on {
    ($sql:expr, $exec:expr, $id:expr) => {{
        let v: i64 = sqlx::query_scalar($sql).bind($id).fetch_one($exec).await?;
        std::hint::black_box(v);
        Ok(())
    }};
}

#[allow(unused_macros)]
macro_rules! update_on {
    ($sql:expr, $exec:expr, $id:expr) => {{
        let done = sqlx::query($sql).bind($id).execute($exec).await?;
        if done.rows_affected() != 1 {
            return Err(sqlx::Error::RowNotFound);
        }
        Ok(())
    }};
}

impl Exec {
    #[allow(unreachable_code, unused_variables)]
    async fn select(&self, id: i64) -> Result<(), sqlx::Error> {
        match self {
            Exec::Never(n) => match *n {},
            #[cfg(feature = "mysql")]
            Exec::MyDirect { replica, .. } => select_on!(MY_SELECT, replica, id),
            #[cfg(feature = "mysql")]
            Exec::MyRouted(pool) => select_on!(MY_SELECT, pool, id),
            #[cfg(feature = "mysql")]
            Exec::MyProxy(pool) => select_on!(MY_SELECT, pool, id),
            #[cfg(feature = "postgres")]
            Exec::PgDirect { replica, .. } => select_on!(PG_SELECT, replica, id),
            #[cfg(feature = "postgres")]
            Exec::PgRouted(pool) => select_on!(PG_SELECT, pool, id),
            #[cfg(feature = "postgres")]
            Exec::PgProxy(pool) => select_on!(PG_SELECT, pool, id),
        }
    }

    #[allow(unreachable_code, unused_variables)]
    async fn update(&self, id: i64) -> Result<(), sqlx::Error> {
        match self {
            Exec::Never(n) => match *n {},
            #[cfg(feature = "mysql")]
            Exec::MyDirect { primary, .. } => update_on!(MY_UPDATE, primary, id),
            #[cfg(feature = "mysql")]
            Exec::MyRouted(pool) => update_on!(MY_UPDATE, pool, id),
            #[cfg(feature = "mysql")]
            Exec::MyProxy(pool) => update_on!(MY_UPDATE, pool, id),
            #[cfg(feature = "postgres")]
            Exec::PgDirect { primary, .. } => update_on!(PG_UPDATE, primary, id),
            #[cfg(feature = "postgres")]
            Exec::PgRouted(pool) => update_on!(PG_UPDATE, pool, id),
            #[cfg(feature = "postgres")]
            Exec::PgProxy(pool) => update_on!(PG_UPDATE, pool, id),
        }
    }

    /// Diagnostics for the JSON line: is the routed pool's replica still eligible?
    #[allow(unreachable_patterns)]
    fn replica_eligible(&self) -> Option<bool> {
        match self {
            #[cfg(feature = "mysql")]
            Exec::MyRouted(pool) => Some(pool.status().replicas.iter().all(|r| r.eligible)),
            #[cfg(feature = "postgres")]
            Exec::PgRouted(pool) => Some(pool.status().replicas.iter().all(|r| r.eligible)),
            _ => None,
        }
    }

    async fn close(&self) {
        match self {
            Exec::Never(n) => match *n {},
            #[cfg(feature = "mysql")]
            Exec::MyDirect { primary, replica } => {
                primary.close().await;
                replica.close().await;
            }
            #[cfg(feature = "mysql")]
            Exec::MyRouted(pool) => pool.close().await,
            #[cfg(feature = "mysql")]
            Exec::MyProxy(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Exec::PgDirect { primary, replica } => {
                primary.close().await;
                replica.close().await;
            }
            #[cfg(feature = "postgres")]
            Exec::PgRouted(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Exec::PgProxy(pool) => pool.close().await,
        }
    }
}

#[allow(dead_code)]
fn need<'a>(v: &'a Option<String>, what: &str, mode: &str) -> Result<&'a str, String> {
    v.as_deref()
        .ok_or_else(|| format!("--mode {mode} needs {what}"))
}

#[allow(dead_code)]
/// Polls `count(*)` through `count` until it reaches `rows` (replication caught up).
async fn wait_rows<F, Fut>(rows: i64, mut count: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<i64, sqlx::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match count().await {
            Ok(n) if n >= rows => return Ok(()),
            Ok(n) if Instant::now() > deadline => {
                return Err(format!("replica sees {n} of {rows} rows after 60 s"))
            }
            Err(e) if Instant::now() > deadline => return Err(format!("waiting for rows: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates and fills `loadgen_kv` on the primary if needed and waits until the replica (or
/// the proxy) sees every row.
#[cfg(feature = "mysql")]
async fn mysql_setup(a: &Args, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    use sqlx::mysql::MySqlPool;
    let setup_url = match mode {
        "proxy" => a
            .primary
            .as_deref()
            .unwrap_or(need(&a.proxy, "--proxy", "proxy")?),
        m => need(&a.primary, "--primary", m)?,
    };
    let setup = MySqlPool::connect(setup_url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS loadgen_kv (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .execute(&setup)
        .await?;
    let have: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS SIGNED) FROM loadgen_kv")
        .fetch_one(&setup)
        .await?;
    if have < a.rows {
        fill(a.rows, |batch| {
            let setup = setup.clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT IGNORE INTO loadgen_kv (id, v) VALUES {batch}"
                )))
                .execute(&setup)
                .await
                .map(drop)
            }
        })
        .await?;
    }
    let wait_url = a
        .replica
        .as_deref()
        .or(a.proxy.as_deref())
        .unwrap_or(setup_url);
    let check = MySqlPool::connect(wait_url).await?;
    let rows = a.rows;
    wait_rows(rows, || {
        let check = check.clone();
        async move {
            sqlx::query_scalar("SELECT CAST(COUNT(*) AS SIGNED) FROM loadgen_kv WHERE id <= ?")
                .bind(rows)
                .fetch_one(&check)
                .await
        }
    })
    .await?;
    check.close().await;
    setup.close().await;
    Ok(())
}

#[cfg(feature = "mysql")]
async fn mysql_exec(a: &Args, mode: &str) -> Result<Exec, Box<dyn std::error::Error>> {
    use sqlx::mysql::MySqlPoolOptions;
    let opts = || {
        MySqlPoolOptions::new()
            .max_connections(a.concurrency as u32)
            .min_connections(a.concurrency as u32)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(a.test_before_acquire)
    };
    Ok(match mode {
        "proxy" => Exec::MyProxy(opts().connect(need(&a.proxy, "--proxy", "proxy")?).await?),
        m => {
            let primary = opts().connect(need(&a.primary, "--primary", m)?).await?;
            let replica = opts().connect(need(&a.replica, "--replica", m)?).await?;
            if m == "direct" {
                Exec::MyDirect { primary, replica }
            } else {
                Exec::MyRouted(
                    rwsplit::RoutingPool::builder(primary)
                        .replica("replica1", replica)
                        .build()?,
                )
            }
        }
    })
}

/// Creates and fills `loadgen_kv` on the primary if needed and waits until the replica (or
/// the proxy) sees every row.
#[cfg(feature = "postgres")]
async fn postgres_setup(a: &Args, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    use sqlx::postgres::PgPool;
    let setup_url = match mode {
        "proxy" => a
            .primary
            .as_deref()
            .unwrap_or(need(&a.proxy, "--proxy", "proxy")?),
        m => need(&a.primary, "--primary", m)?,
    };
    let setup = PgPool::connect(setup_url).await?;
    sqlx::query("SET client_min_messages = warning")
        .execute(&setup)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS loadgen_kv (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .execute(&setup)
        .await?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM loadgen_kv")
        .fetch_one(&setup)
        .await?;
    if have < a.rows {
        sqlx::query(
            "INSERT INTO loadgen_kv (id, v) SELECT g, 0 FROM generate_series(1, $1) g \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(a.rows)
        .execute(&setup)
        .await?;
        sqlx::query("ANALYZE loadgen_kv").execute(&setup).await?;
    }
    let wait_url = a
        .replica
        .as_deref()
        .or(a.proxy.as_deref())
        .unwrap_or(setup_url);
    let check = PgPool::connect(wait_url).await?;
    let rows = a.rows;
    wait_rows(rows, || {
        let check = check.clone();
        async move {
            sqlx::query_scalar("SELECT COUNT(*) FROM loadgen_kv WHERE id <= $1")
                .bind(rows)
                .fetch_one(&check)
                .await
        }
    })
    .await?;
    check.close().await;
    setup.close().await;
    Ok(())
}

#[cfg(feature = "postgres")]
async fn postgres_exec(a: &Args, mode: &str) -> Result<Exec, Box<dyn std::error::Error>> {
    use sqlx::postgres::PgPoolOptions;
    let opts = || {
        PgPoolOptions::new()
            .max_connections(a.concurrency as u32)
            .min_connections(a.concurrency as u32)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(a.test_before_acquire)
    };
    Ok(match mode {
        "proxy" => Exec::PgProxy(opts().connect(need(&a.proxy, "--proxy", "proxy")?).await?),
        m => {
            let primary = opts().connect(need(&a.primary, "--primary", m)?).await?;
            let replica = opts().connect(need(&a.replica, "--replica", m)?).await?;
            if m == "direct" {
                Exec::PgDirect { primary, replica }
            } else {
                Exec::PgRouted(
                    rwsplit::RoutingPool::builder(primary)
                        .replica("standby1", replica)
                        .build()?,
                )
            }
        }
    })
}

/// Inserts ids 1..=rows in batches of literal VALUES lists through `insert`.
#[allow(dead_code)]
async fn fill<F, Fut>(rows: i64, mut insert: F) -> Result<(), sqlx::Error>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>>,
{
    use std::fmt::Write;
    let mut start = 1;
    while start <= rows {
        let end = (start + 999).min(rows);
        let mut batch = String::with_capacity(16 * 1000);
        for id in start..=end {
            if id > start {
                batch.push(',');
            }
            let _ = write!(batch, "({id},0)");
        }
        insert(batch).await?;
        start = end + 1;
    }
    Ok(())
}

/// Prepares the table for `mode` (once per run, whatever the number of executors).
#[allow(unreachable_code, unused_variables)] // without mysql and postgres every backend is an error
async fn setup(a: &Args, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    match a.backend.as_str() {
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => mysql_setup(a, mode).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" | "pg" => postgres_setup(a, mode).await,
        other => Err(format!(
            "backend `{other}` is not available: build with --features mysql and/or postgres"
        )
        .into()),
    }
}

#[allow(unreachable_code, unused_variables)] // without mysql and postgres every backend is an error
async fn build_exec(a: &Args, mode: &str) -> Result<Exec, Box<dyn std::error::Error>> {
    Ok(match a.backend.as_str() {
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => mysql_exec(a, mode).await?,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" | "pg" => postgres_exec(a, mode).await?,
        other => {
            return Err(format!(
                "backend `{other}` is not available: build with --features mysql and/or postgres"
            )
            .into())
        }
    })
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    if a.mode != "interleaved" {
        setup(&a, &a.mode).await?;
        let exec = build_exec(&a, &a.mode).await?;
        let line = window(&a, &exec, &a.mode, a.warmup, None).await?;
        println!("{line}");
        exec.close().await;
        return Ok(());
    }
    let modes = [a.pair.0.as_str(), a.pair.1.as_str()];
    if modes.iter().any(|m| !matches!(*m, "routed" | "direct")) {
        return Err("--pair takes routed and/or direct".into());
    }
    // Both modes read and write the same table on the same servers.
    setup(&a, modes[0]).await?;
    let mut execs = Vec::with_capacity(modes.len());
    for mode in modes {
        execs.push(build_exec(&a, mode).await?);
    }
    // One warm-up of each (connections, prepared statements, caches), then short ramps only.
    let warm = Args {
        duration: a.warmup.max(0.1),
        ..a.clone()
    };
    for (mode, exec) in modes.iter().zip(&execs) {
        window(&warm, exec, mode, 0.0, None).await?;
    }
    // With the same mode on both sides (an A/A run), the second side is labelled `<mode>-b`.
    let labels = if modes[0] == modes[1] {
        [modes[0].to_string(), format!("{}-b", modes[1])]
    } else {
        [modes[0].to_string(), modes[1].to_string()]
    };
    let ramp = a.warmup.min(0.25);
    for round in 0..a.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let line = window(&a, &execs[i], &labels[i], ramp, Some(round + 1)).await?;
            println!("{line}");
        }
    }
    for exec in &execs {
        exec.close().await;
    }
    Ok(())
}

/// One measured window: `a.concurrency` tasks run the mix on `exec` for `warmup` (not counted)
/// plus `a.duration` seconds; returns the JSON line.
#[allow(unreachable_code, unused_variables, unused_mut)] // without mysql and postgres, no `Exec`
async fn window(
    a: &Args,
    exec: &Exec,
    mode: &str,
    warmup: f64,
    round: Option<u64>,
) -> Result<String, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(a.duration);
    let mut handles = Vec::with_capacity(a.concurrency);
    for t in 0..a.concurrency {
        let exec = exec.clone();
        let (rows, write_ratio) = (a.rows, a.write_ratio);
        let seed = a.seed ^ round.unwrap_or(0).wrapping_mul(0x9e37_79b9);
        let mut rng = Rng(seed ^ ((t as u64 + 1) * 0x2545_f491_4f6c_dd1d));
        handles.push(tokio::spawn(async move {
            let mut r = TaskResult {
                latencies_ns: Vec::with_capacity(1 << 16),
                ..TaskResult::default()
            };
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let id = (rng.next_u64() % rows as u64) as i64 + 1;
                let result = if rng.unit() < write_ratio {
                    exec.update(id).await
                } else {
                    exec.select(id).await
                };
                if t0 < measure_from {
                    continue;
                }
                match result {
                    Ok(()) => r.latencies_ns.push(t0.elapsed().as_nanos() as u64),
                    Err(e) => {
                        r.errors += 1;
                        if r.first_error.is_none() {
                            r.first_error = Some(e.to_string());
                        }
                    }
                }
            }
            r
        }));
    }
    // Client CPU (every thread of this process) over the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_start = process_cpu_s();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        let r = h.await?;
        all.extend_from_slice(&r.latencies_ns);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let cpu_used = match (cpu_start, process_cpu_s()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let replica_eligible = exec.replica_eligible();

    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * all.len() as f64).ceil() as usize;
        all[rank.clamp(1, all.len()) - 1] as f64 / 1000.0
    };
    let ops = all.len() as u64;
    let throughput = ops as f64 / a.duration;
    let mut line = format!(
        "{{\"mode\":{},\"backend\":{},\"concurrency\":{},\"duration_s\":{},\"ops\":{},\
         \"throughput\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"errors\":{},\
         \"p90_us\":{:.1},\"p999_us\":{:.1},\"write_ratio\":{}",
        json_str(mode),
        json_str(&a.backend),
        a.concurrency,
        a.duration,
        ops,
        throughput,
        pct(50.0),
        pct(99.0),
        errors,
        pct(90.0),
        pct(99.9),
        a.write_ratio,
    );
    if let Some(round) = round {
        line.push_str(&format!(",\"round\":{round}"));
    }
    if let (Some(cpu), true) = (cpu_used, ops > 0) {
        line.push_str(&format!(
            ",\"client_cpu_us_per_op\":{:.2}",
            cpu * 1e6 / ops as f64
        ));
    }
    if let Some(ok) = replica_eligible {
        line.push_str(&format!(",\"replica_eligible\":{ok}"));
    }
    if let Some(e) = first_error {
        line.push_str(&format!(",\"first_error\":{}", json_str(&e)));
    }
    line.push('}');
    Ok(line)
}
