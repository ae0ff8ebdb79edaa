//! Shared helpers of the integration tests: server URLs from the environment (written by
//! `scripts/mariadb.sh` / `scripts/postgres.sh` and exported by `scripts/test.sh`), and the
//! CI rule that a database test that cannot reach its server fails instead of skipping.

#![allow(dead_code)]

#[cfg(any(feature = "mysql", feature = "postgres"))]
pub mod cluster;
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub mod faults;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The value of `var`, or `None` when the servers are not started locally. Under `CI=true` a
/// missing server is a failure, never a skip.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{var} is not set under CI=true: run the suite with scripts/test.sh");
            }
            eprintln!("skipping: {var} not set (start the servers with scripts/test.sh)");
            None
        }
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A table name unique to this test run and call site.
pub fn unique_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One line of a labelled corpus: `CLASS<TAB>SQL`.
pub struct CorpusLine {
    pub class: String,
    pub sql: String,
    pub line: usize,
}

pub fn read_corpus(path: &str) -> Vec<CorpusLine> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let (class, sql) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("{path}:{}: expected CLASS<TAB>SQL", i + 1));
            CorpusLine {
                class: class.trim().to_string(),
                sql: sql.to_string(),
                line: i + 1,
            }
        })
        .collect()
}

/// The statements of a schema file: one per line, `;`-terminated, `-- ` comments skipped.
pub fn schema_statements(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// A fresh directory under the system temp dir, unique per process, test and call.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rwsplit-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pool options with the health monitor off (tests that drive health by hand, or SQLite).
pub fn no_monitor() -> rwsplit::PoolOptions {
    rwsplit::PoolOptions::new().monitor_interval(Duration::ZERO)
}
