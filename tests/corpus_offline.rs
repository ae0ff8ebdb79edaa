//! The labelled corpora, checked offline (no server): every statement that is not a pure read
//! goes to the primary, and enough pure reads go to a replica. The real-server checks of the
//! same labels are in `tests/routing.rs` and `tests/adversarial.rs`.

mod common;

use rwsplit::{Classifier, Dialect, Target};

struct Rates {
    misroutes: Vec<String>,
    reads: usize,
    reads_on_replica: usize,
    kept: Vec<String>,
}

fn rates(dialect: Dialect, file: &str) -> Rates {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    let c = Classifier::new(dialect);
    let mut r = Rates {
        misroutes: Vec::new(),
        reads: 0,
        reads_on_replica: 0,
        kept: Vec::new(),
    };
    for line in common::read_corpus(&path) {
        let d = c.decide(&line.sql);
        if line.class == "read" {
            r.reads += 1;
            if d.target == Target::Replica {
                r.reads_on_replica += 1;
            } else {
                r.kept
                    .push(format!("{}: {} ({})", line.line, line.sql, d.reason));
            }
        } else if d.target != Target::Primary {
            r.misroutes.push(format!(
                "{}: {} `{}` -> {}",
                line.line, line.class, line.sql, d.reason
            ));
        }
    }
    eprintln!(
        "{file}: {} misroutes, {}/{} pure reads to a replica ({:.1}%)",
        r.misroutes.len(),
        r.reads_on_replica,
        r.reads,
        100.0 * r.reads_on_replica as f64 / r.reads.max(1) as f64
    );
    for k in &r.kept {
        eprintln!("  kept on primary: {k}");
    }
    r
}

fn check(dialect: Dialect, file: &str, min_share: f64) {
    let r = rates(dialect, file);
    assert!(
        r.misroutes.is_empty(),
        "{file} misroutes:\n{}",
        r.misroutes.join("\n")
    );
    let share = r.reads_on_replica as f64 / r.reads as f64;
    assert!(
        share >= min_share,
        "{file}: only {}/{} reads on a replica",
        r.reads_on_replica,
        r.reads
    );
}

#[test]
fn mysql_corpus() {
    check(Dialect::MySql, "mysql.tsv", 0.97);
}

#[test]
fn postgres_corpus() {
    // Offline the classifier cannot ask the server about the corpus' user functions.
    check(Dialect::Postgres, "postgres.tsv", 0.95);
}

#[test]
fn adversarial_mysql_corpus() {
    check(Dialect::MySql, "adversarial_mysql.tsv", 0.90);
}

#[test]
fn adversarial_postgres_corpus() {
    check(Dialect::Postgres, "adversarial_postgres.tsv", 0.90);
}
