//! Classifier cost: the routing decision for a repeated statement (cache hit) and the cold
//! parse of a statement never seen before (cache disabled, so every call parses).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p rwsplit-tools --bench classify
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p rwsplit-tools --bench classify -- cached/decide
//! ```
//!
//! Groups (benchmark ids are `group/function/dialect-size`):
//! * `cached/decide/*`  `Classifier::decide` on the same text: cache lookup (hash of the text,
//!   the hint stored with the entry) plus the routing decision. Target: <= 1 µs.
//! * `cached/analyze/*` `Classifier::analyze` alone on the same text (the cache hit only).
//! * `cached/decide/*-hint` a `/* rwsplit:primary */ SELECT ...` statement, cached.
//! * `cold/analyze/*`   `Classifier::analyze` with `cache_bytes(0)`: tokenize, token scan,
//!   parse and AST walk on every call. Target for a typical OLTP point select: <= 20 µs.
//!
//! The timing defaults are short (1 s warm-up, 3 s measurement) because the benchmark machine
//! is shared; pass `--warm-up-time`/`--measurement-time` to override.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rwsplit::{Classifier, ClassifierOptions, Dialect};

/// One statement per size class, in each dialect's placeholder syntax.
struct Case {
    size: &'static str,
    mysql: &'static str,
    postgres: &'static str,
}

const CASES: &[Case] = &[
    // A point select by primary key: the bulk of an OLTP read workload.
    Case {
        size: "short",
        mysql: "SELECT v FROM loadgen_kv WHERE id = ?",
        postgres: "SELECT v FROM loadgen_kv WHERE id = $1",
    },
    // A typical ORM-generated read: a join, a few predicates, ordering and a limit.
    Case {
        size: "medium",
        mysql: "SELECT o.id, o.status, o.total_cents, o.created_at, c.name, c.email \
                FROM orders o JOIN customers c ON c.id = o.customer_id \
                WHERE o.customer_id = ? AND o.status IN (?, ?, ?) AND o.created_at >= ? \
                ORDER BY o.created_at DESC LIMIT 20",
        postgres: "SELECT o.id, o.status, o.total_cents, o.created_at, c.name, c.email \
                FROM orders o JOIN customers c ON c.id = o.customer_id \
                WHERE o.customer_id = $1 AND o.status IN ($2, $3, $4) AND o.created_at >= $5 \
                ORDER BY o.created_at DESC LIMIT 20",
    },
    // A reporting-style read: CTE, several joins, aggregates, functions, a correlated
    // subquery, CASE, GROUP BY/HAVING (about 1 KB of SQL).
    Case {
        size: "long",
        mysql: "WITH recent AS (SELECT o.id, o.customer_id, o.total_cents, o.created_at \
                FROM orders o WHERE o.created_at >= ? AND o.status <> 'cancelled') \
                SELECT c.id, c.name, COALESCE(c.email, '') AS email, COUNT(r.id) AS orders, \
                SUM(r.total_cents) AS revenue, MAX(r.created_at) AS last_order, \
                AVG(li.quantity * li.unit_price_cents) AS avg_line, \
                CASE WHEN SUM(r.total_cents) > 100000 THEN 'gold' \
                     WHEN SUM(r.total_cents) > 10000 THEN 'silver' ELSE 'bronze' END AS tier, \
                (SELECT COUNT(*) FROM support_tickets t WHERE t.customer_id = c.id \
                 AND t.closed_at IS NULL) AS open_tickets, \
                CONCAT(UPPER(SUBSTRING(c.country, 1, 2)), '-', LOWER(c.region)) AS market \
                FROM customers c \
                JOIN recent r ON r.customer_id = c.id \
                LEFT JOIN line_items li ON li.order_id = r.id \
                LEFT JOIN products p ON p.id = li.product_id AND p.active = 1 \
                WHERE c.created_at < ? AND c.id IN (SELECT customer_id FROM segments \
                WHERE segment_name IN (?, ?, ?) AND valid_to IS NULL) \
                AND (p.category_id = ? OR p.category_id IS NULL) \
                GROUP BY c.id, c.name, c.email, c.country, c.region \
                HAVING COUNT(r.id) >= ? \
                ORDER BY revenue DESC, c.id ASC LIMIT 100 OFFSET 0",
        postgres: "WITH recent AS (SELECT o.id, o.customer_id, o.total_cents, o.created_at \
                FROM orders o WHERE o.created_at >= $1 AND o.status <> 'cancelled') \
                SELECT c.id, c.name, COALESCE(c.email, '') AS email, COUNT(r.id) AS orders, \
                SUM(r.total_cents) AS revenue, MAX(r.created_at) AS last_order, \
                AVG(li.quantity * li.unit_price_cents) AS avg_line, \
                CASE WHEN SUM(r.total_cents) > 100000 THEN 'gold' \
                     WHEN SUM(r.total_cents) > 10000 THEN 'silver' ELSE 'bronze' END AS tier, \
                (SELECT COUNT(*) FROM support_tickets t WHERE t.customer_id = c.id \
                 AND t.closed_at IS NULL) AS open_tickets, \
                CONCAT(UPPER(SUBSTRING(c.country, 1, 2)), '-', LOWER(c.region)) AS market \
                FROM customers c \
                JOIN recent r ON r.customer_id = c.id \
                LEFT JOIN line_items li ON li.order_id = r.id \
                LEFT JOIN products p ON p.id = li.product_id AND p.active = true \
                WHERE c.created_at < $2 AND c.id IN (SELECT customer_id FROM segments \
                WHERE segment_name IN ($3, $4, $5) AND valid_to IS NULL) \
                AND (p.category_id = $6 OR p.category_id IS NULL) \
                GROUP BY c.id, c.name, c.email, c.country, c.region \
                HAVING COUNT(r.id) >= $7 \
                ORDER BY revenue DESC, c.id ASC LIMIT 100 OFFSET 0",
    },
    // The write half of the OLTP mix.
    Case {
        size: "update",
        mysql: "UPDATE loadgen_kv SET v = v + 1 WHERE id = ?",
        postgres: "UPDATE loadgen_kv SET v = v + 1 WHERE id = $1",
    },
];

const HINT_MYSQL: &str = "/* rwsplit:primary */ SELECT v FROM loadgen_kv WHERE id = ?";
const HINT_POSTGRES: &str = "/* rwsplit:primary */ SELECT v FROM loadgen_kv WHERE id = $1";

const DIALECTS: &[(Dialect, &str)] = &[(Dialect::MySql, "mysql"), (Dialect::Postgres, "postgres")];

fn sql_for(case: &Case, dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => case.postgres,
        _ => case.mysql,
    }
}

fn cached(c: &mut Criterion) {
    let mut g = c.benchmark_group("cached");
    for &(dialect, dname) in DIALECTS {
        let classifier = Classifier::new(dialect);
        for case in CASES {
            let sql = sql_for(case, dialect);
            // Sanity: every read here routes to a replica, the update to the primary.
            let d = classifier.decide(sql);
            assert_eq!(
                d.target.as_str(),
                if case.size == "update" {
                    "primary"
                } else {
                    "replica"
                },
                "{dname}/{}: {d}",
                case.size
            );
            // ... and the second call is a cache hit.
            let hits = classifier.cache_stats().hits;
            classifier.decide(sql);
            assert_eq!(
                classifier.cache_stats().hits,
                hits + 1,
                "{dname}/{}: no cache hit",
                case.size
            );
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("decide/{dname}-{}", case.size), |b| {
                b.iter(|| classifier.decide(black_box(sql)))
            });
            if case.size == "short" {
                g.bench_function(format!("analyze/{dname}-{}", case.size), |b| {
                    b.iter(|| classifier.analyze(black_box(sql)))
                });
            }
        }
        let hint = match dialect {
            Dialect::Postgres => HINT_POSTGRES,
            _ => HINT_MYSQL,
        };
        let d = classifier.decide(hint);
        assert_eq!(d.target.as_str(), "primary", "{dname}/hint: {d}");
        g.bench_function(format!("decide/{dname}-hint"), |b| {
            b.iter(|| classifier.decide(black_box(hint)))
        });
    }
    g.finish();
}

fn cold(c: &mut Criterion) {
    let mut g = c.benchmark_group("cold");
    for &(dialect, dname) in DIALECTS {
        let classifier = ClassifierOptions::new(dialect).cache_bytes(0).build();
        for case in CASES {
            let sql = sql_for(case, dialect);
            g.throughput(Throughput::Bytes(sql.len() as u64));
            g.bench_function(format!("analyze/{dname}-{}", case.size), |b| {
                b.iter(|| classifier.analyze(black_box(sql)))
            });
        }
        let hint = match dialect {
            Dialect::Postgres => HINT_POSTGRES,
            _ => HINT_MYSQL,
        };
        g.throughput(Throughput::Bytes(hint.len() as u64));
        g.bench_function(format!("analyze/{dname}-hint"), |b| {
            b.iter(|| classifier.analyze(black_box(hint)))
        });
        let stats = classifier.cache_stats();
        assert_eq!(
            stats.hits, 0,
            "{dname}: the cold group must never hit a cache"
        );
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = cached, cold
}
criterion_main!(benches);
