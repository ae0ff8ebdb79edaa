//! Waiting for replicas to catch up with the primary: for tests that create a database (or a
//! schema, or fixtures) on the primary and then read through replicas, and for deployments that
//! run migrations and then serve reads. A position wait with the server's own primitive, never
//! a sleep.

use std::time::Duration;

use crate::backend::Backend;
use crate::error::Error;
use crate::router::RoutingPool;

impl<DB: Backend> RoutingPool<DB> {
    /// Waits until every replica of the pool has applied everything the primary committed
    /// before this call (its current GTID position or WAL LSN), up to `timeout` in all. Returns
    /// at once on SQLite, whose readers share the writer's file.
    ///
    /// For example after `sqlx::migrate!().run(&pool)`, or in a test on a replicated cluster
    /// that created its database on the primary: the replicas then have the database, its
    /// tables and its rows, and reads routed to them see them.
    ///
    /// Errors: [`Error::ReplicaBehind`] naming the first replica that did not get there in
    /// time (as a `sqlx::Error` it is `Io` with kind `TimedOut`), the primary's or a replica's
    /// own error when one cannot be asked.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-wait-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = rwsplit::sqlite::open(dir.join("wait.db"), 2).await?.build()?;
    /// sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await?;
    /// pool.wait_for_replicas(std::time::Duration::from_secs(10)).await?;
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await?;
    /// assert_eq!(n, 0);
    /// # pool.close().await;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_replicas(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let system = self.on_primary(|_| self.system()).await?;
        let position = self
            .on_primary(|writer| DB::capture_position(writer, system))
            .await?;
        let Some(position) = position else {
            if DB::SYSTEM == "sqlite" || self.0.topology.replicas().is_empty() {
                return Ok(());
            }
            // MySQL without GTIDs, MariaDB without a binary log: nothing to wait for, and no
            // way to know that the replicas have the data.
            return Err(Error::InvalidOption {
                option: "wait_for_replicas",
                why:
                    "the primary reports no replication position (GTIDs or the binary log are off)",
            });
        };
        // Every server but the writer: after a switchover, the configured primary is a replica.
        let writer = self.0.topology.writer.current();
        for replica in self.0.topology.servers.iter().filter(|s| s.index != writer) {
            // At least a millisecond: some servers read a zero timeout as "wait forever".
            let left = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(1));
            let wait = DB::wait_for_position(&replica.pool, system, &position, left);
            let reached = tokio::time::timeout(left + Duration::from_secs(1), wait)
                .await
                .unwrap_or(Ok(false))?;
            if !reached {
                return Err(Error::ReplicaBehind {
                    replica: replica.name.to_string(),
                    after: timeout,
                });
            }
        }
        Ok(())
    }
}

impl<DB: Backend> RoutingPool<DB> {
    /// A routing pool for one test, in one line, around the pool `#[sqlx::test]` hands the
    /// test (or any pool on a database the test created on the primary): with no
    /// `replica_urls`, every statement goes to that pool; with some, each replica URL is
    /// pointed at the same database, after the replicas have it (a position wait, see
    /// [`RoutingPool::wait_for_replicas`], up to 30 s), so reads routed to replicas see the
    /// test's schema and fixtures.
    ///
    /// `replica_urls` name each replica with a database that exists there already (the
    /// application's own, for example); only the database part is replaced. Replicas are named
    /// `replica1`, `replica2`, ... and each gets a pool of at most 4 connections.
    ///
    /// ```ignore
    /// #[sqlx::test]
    /// async fn creates_an_order(pool: sqlx::PgPool) -> sqlx::Result<()> {
    ///     let pool = rwsplit::RoutingPool::for_test(pool, &[&std::env::var("REPLICA_URL")?]).await?;
    ///     app::create_order(&pool, 42).await?; // the code under test takes &RoutingPool
    ///     Ok(())
    /// }
    /// ```
    pub async fn for_test(primary: sqlx::Pool<DB>, replica_urls: &[&str]) -> Result<Self, Error> {
        let database = DB::server_info(&primary).namespace;
        let mut builder = RoutingPool::builder(primary.clone());
        if replica_urls.is_empty() {
            return builder.build();
        }
        let refuse = |why: &'static str| Error::InvalidOption {
            option: "replica_urls",
            why,
        };
        if DB::SYSTEM == "sqlite" {
            return Err(refuse("SQLite's readers are opened on the test's file by rwsplit::sqlite::open, not by URL"));
        }
        let Some(database) = database else {
            return Err(refuse(
                "the test's pool names no database to point the replicas at",
            ));
        };
        if replica_urls.iter().any(|u| u.contains("dbname=")) {
            return Err(refuse("a dbname= parameter would override the test's database; name the database in the URL's path"));
        }
        // Wait on the replicas' existing databases: the test's may not be there yet.
        let mut waiting = RoutingPool::builder(primary);
        for (i, url) in replica_urls.iter().enumerate() {
            let pool = sqlx::pool::PoolOptions::<DB>::new()
                .max_connections(1)
                .connect_lazy(url)?;
            waiting = waiting.replica(format!("replica{}", i + 1), pool);
        }
        let waiting = waiting
            .options(crate::options::PoolOptions::new().monitor_interval(Duration::ZERO))
            .build()?;
        let waited = waiting.wait_for_replicas(Duration::from_secs(30)).await;
        for name in waiting.replica_names() {
            if let Some(pool) = waiting.replica_pool(name) {
                pool.close().await;
            }
        }
        waited?;
        for (i, url) in replica_urls.iter().enumerate() {
            let url = with_database(url, &database);
            let pool = sqlx::pool::PoolOptions::<DB>::new()
                .max_connections(4)
                .connect_lazy(&url)?;
            builder = builder.replica(format!("replica{}", i + 1), pool);
        }
        builder.build()
    }
}

/// `url` with its database (the path after the authority) replaced by `database`; query
/// parameters are kept.
fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (head, tail) = url.split_at(scheme_end + 3 + authority_end);
    let query = tail.find('?').map_or("", |q| &tail[q..]);
    format!("{head}/{database}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn only_the_database_of_a_url_changes() {
        let cases = [
            (
                "mysql://u:p@127.0.0.1:3307/app",
                "mysql://u:p@127.0.0.1:3307/t_1",
            ),
            (
                "mysql://u:p@h:1/app?ssl-mode=disabled",
                "mysql://u:p@h:1/t_1?ssl-mode=disabled",
            ),
            (
                "postgres://u@h:5/app?sslmode=disable&x=/y",
                "postgres://u@h:5/t_1?sslmode=disable&x=/y",
            ),
            ("postgres://u@h:5", "postgres://u@h:5/t_1"),
            (
                "postgres://u@h:5?sslmode=disable",
                "postgres://u@h:5/t_1?sslmode=disable",
            ),
            ("no scheme", "no scheme"),
        ];
        for (url, want) in cases {
            assert_eq!(with_database(url, "t_1"), want, "{url}");
        }
    }
}
