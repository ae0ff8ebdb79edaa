//! rwsplit's per-call cost, measured against an in-process executor so no network I/O is
//! timed: a `RoutingPool<Sqlite>` over a temp-file WAL database (one writer, reader pool).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p rwsplit-tools --bench overhead
//! ```
//!
//! Groups:
//! * `explain/*` `RoutingPool::explain`: classification (cache hit) + task-scope lookup +
//!   decision + replica pick, i.e. everything the executor does before it hands the query
//!   to a sqlx pool.
//! * `fetch/*`  a whole `fetch_one` through `&RoutingPool` (`routed/...`) and the same query on
//!   the raw reader `SqlitePool` it routes to (`raw/...`). The difference of the two medians is
//!   rwsplit's cost per call: routing, query take-apart, the replica in-flight guard and
//!   timeout, health bookkeeping and instrumentation (span + metrics, no tracing subscriber).
//!   Each side is timed in chunks of 32 calls interleaved with 32 untimed calls of the other
//!   side, so both see the same machine state.
//! * `paired/point-select` (printed, not a criterion group): routed and raw batches timed
//!   alternately; the median per-call difference is the most robust estimate of rwsplit's cost
//!   on a noisy machine.
//!
//! The timing defaults are short (1 s warm-up, 3 s measurement) because the benchmark machine
//! is shared; pass `--warm-up-time`/`--measurement-time` to override.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rwsplit::{PoolOptions, RoutingPool, Target};
use sqlx::{Sqlite, SqlitePool};

const ROWS: i64 = 1000;

struct Fixture {
    rt: tokio::runtime::Runtime,
    pool: RoutingPool<Sqlite>,
    reader: SqlitePool,
    dir: PathBuf,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = std::env::temp_dir().join(format!("rwsplit-bench-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (pool, reader) = rt.block_on(async {
        let pool = rwsplit::sqlite::open(dir.join("bench.db"), 2)
            .await
            .expect("open sqlite")
            .options(PoolOptions::new().monitor_interval(Duration::ZERO))
            .build()
            .expect("build pool");
        sqlx::query("CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .expect("create table");
        sqlx::query(
            "INSERT OR IGNORE INTO kv (id, v) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             SELECT i, i * 10 FROM n",
        )
        .bind(ROWS)
        .execute(&pool)
        .await
        .expect("fill table");
        let reader = pool
            .replica_pool(rwsplit::sqlite::READER_NAME)
            .expect("reader pool")
            .clone();
        (pool, reader)
    });
    Fixture {
        rt,
        pool,
        reader,
        dir,
    }
}

const POINT: &str = "SELECT v FROM kv WHERE id = ?";

fn explain(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("explain");
    let cases = [
        ("point-select", POINT, Target::Replica),
        (
            "update",
            "UPDATE kv SET v = v + 1 WHERE id = ?",
            Target::Primary,
        ),
        (
            "hint-primary",
            "/* rwsplit:primary */ SELECT v FROM kv WHERE id = ?",
            Target::Primary,
        ),
        (
            "join-select",
            "SELECT a.id, a.v, b.v FROM kv a JOIN kv b ON b.id = a.id + 1 \
             WHERE a.id BETWEEN ? AND ? ORDER BY a.id DESC LIMIT 10",
            Target::Replica,
        ),
    ];
    for (name, sql, target) in cases {
        assert_eq!(f.pool.explain(sql).target, target, "{name}");
        g.bench_function(name, |b| b.iter(|| f.pool.explain(black_box(sql))));
    }
    g.finish();
}

/// One query on the routing pool (`routed`) or on the raw reader pool it routes to.
async fn call(f: &Fixture, routed: bool, point: bool, id: i64) -> i64 {
    let q = if point {
        sqlx::query_scalar::<_, i64>(POINT).bind(id)
    } else {
        sqlx::query_scalar::<_, i64>("SELECT 1")
    };
    let v = if routed {
        q.fetch_one(&f.pool).await
    } else {
        q.fetch_one(&f.reader).await
    };
    v.expect("query")
}

/// Calls are timed in chunks of this many, each chunk preceded by as many untimed calls on
/// the other side (routed vs raw), so both benchmarks of a pair run under the same conditions.
const CHUNK: u64 = 32;

fn fetch(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("fetch");
    // Warm both paths (prepared-statement caches, reader connections) before timing.
    f.rt.block_on(async {
        for id in 1..=8 {
            for routed in [false, true] {
                call(f, routed, true, id).await;
                call(f, routed, false, id).await;
            }
        }
    });
    // A SQLite call is a hand-off to the connection's worker thread and back; on a small,
    // shared machine its cost moves between modes (about 20 and 40 µs here) with thread
    // scheduling. Interleaving the two sides keeps the routed-minus-raw difference meaningful.
    for (name, point) in [("select-1", false), ("point-select", true)] {
        for (side, routed) in [("raw", false), ("routed", true)] {
            g.bench_function(format!("{side}/{name}"), |b| {
                b.to_async(&f.rt).iter_custom(|iters| async move {
                    let mut timed = Duration::ZERO;
                    let mut done = 0u64;
                    let mut id = 0i64;
                    while done < iters {
                        let n = (iters - done).min(CHUNK);
                        for _ in 0..n {
                            id = id % ROWS + 1;
                            black_box(call(f, !routed, point, id).await);
                        }
                        let t0 = Instant::now();
                        for _ in 0..n {
                            id = id % ROWS + 1;
                            black_box(call(f, routed, point, id).await);
                        }
                        timed += t0.elapsed();
                        done += n;
                    }
                    timed
                })
            });
        }
    }
    g.finish();
    // Every read above ran on the reader, which stayed eligible.
    assert!(
        f.pool.status().replicas[0].eligible,
        "the reader stayed eligible"
    );
}

/// On-CPU time of the calling thread in ns (`/proc/thread-self/schedstat`, Linux), if known.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Routed and raw point selects in alternating batches, so that load from other processes (a
/// shared machine) hits both sides alike. Prints the median per-call difference in wall time,
/// and in on-CPU time of the calling thread, which excludes the hand-off to SQLite's worker
/// thread and scheduling delays: rwsplit's own work (routing, instrumentation, future
/// plumbing) runs on the calling thread, so the CPU difference is its cost.
fn paired(f: &Fixture) {
    const BATCH: u32 = 100;
    const PAIRS: usize = 300;
    let mut wall = [Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS)];
    let mut cpu = [Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS)];
    let mut wall_diff = Vec::with_capacity(PAIRS);
    let mut cpu_diff = Vec::with_capacity(PAIRS);
    f.rt.block_on(async {
        let mut id = 0i64;
        for pair in 0..PAIRS {
            let mut w = [0f64; 2];
            let mut c = [0f64; 2];
            // alternate which side goes first; side 0 = routed, 1 = raw
            for side in [pair % 2, 1 - pair % 2] {
                let c0 = thread_cpu_ns();
                let t0 = Instant::now();
                for _ in 0..BATCH {
                    id = id % ROWS + 1;
                    black_box(call(f, side == 0, true, id).await);
                }
                w[side] = t0.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH);
                if let (Some(c0), Some(c1)) = (c0, thread_cpu_ns()) {
                    c[side] = (c1 - c0) as f64 / 1e3 / f64::from(BATCH);
                }
            }
            for side in 0..2 {
                wall[side].push(w[side]);
                cpu[side].push(c[side]);
            }
            wall_diff.push(w[0] - w[1]);
            cpu_diff.push(c[0] - c[1]);
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut wr, mut wraw] = wall;
    let [mut cr, mut craw] = cpu;
    println!(
        "paired/point-select wall: {PAIRS} alternating batches of {BATCH}: routed {:.2} us, \
         raw {:.2} us, median per-call difference {:.2} us",
        median(&mut wr),
        median(&mut wraw),
        median(&mut wall_diff)
    );
    if thread_cpu_ns().is_some() {
        println!(
            "paired/point-select cpu:  calling thread on-CPU per call: routed {:.2} us, \
             raw {:.2} us, median per-call difference {:.2} us",
            median(&mut cr),
            median(&mut craw),
            median(&mut cpu_diff)
        );
    }
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    explain(c, &f);
    fetch(c, &f);
    // Only in a real benchmark run: not in criterion's test mode (`cargo test --benches`,
    // which passes no `--bench`), nor for `--list`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        paired(&f);
    }
    let Fixture {
        rt,
        pool,
        reader,
        dir,
    } = f;
    rt.block_on(async {
        drop(reader);
        pool.close().await;
    });
    let _ = std::fs::remove_dir_all(dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = overhead;
    config = config();
    targets = benches
}
criterion_main!(overhead);
