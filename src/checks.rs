//! Configuration checks against the live servers: mistakes that otherwise show up only in
//! production (a "replica" that is the primary, a writable replica, pools larger than the
//! server allows, idle timeouts that never fire).
//!
//! Layer: surface (above `pool`).

use std::fmt;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::Error;
use crate::pool::RoutingPoolBuilder;
use crate::router::RoutingPool;

/// A configuration problem found by [`RoutingPool::check_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigIssue {
    /// A replica pool reaches the primary itself: its reads would not scale anything and its
    /// "replica" role is a lie. [`RoutingPoolBuilder::build_checked`] refuses this.
    ReplicaIsPrimary {
        /// The replica's name.
        replica: String,
    },
    /// A replica accepts writes (`read_only` off, or not in recovery). The monitor keeps it
    /// out of rotation until fixed.
    WritableReplica {
        /// The replica's name.
        replica: String,
    },
    /// A replica's login can write although the replica is read-only, so a statement that
    /// writes and reaches it would succeed on the wrong server instead of failing loudly. The
    /// classifier keeps writes off replicas, but side effects that a read-only server does not
    /// refuse anyway (`GET_LOCK`, user variables) are caught only by the classifier; a
    /// read-only refusal, the last line of defence behind it, needs a login without this
    /// privilege. Give replica pools a login with rights on the application's database only.
    ReplicaLoginBypassesReadOnly {
        /// The replica's name.
        replica: String,
        /// The privilege that bypasses read-only.
        privilege: &'static str,
    },
    /// The primary does not accept writes (a failover happened?).
    ReadOnlyPrimary,
    /// A pool's `idle_timeout` is not below its `max_lifetime`, so idle connections are never
    /// closed for idleness.
    IdleTimeoutNotBelowMaxLifetime {
        /// `primary` or the replica's name.
        server: String,
        /// The pool's idle timeout.
        idle_timeout: Duration,
        /// The pool's maximum lifetime.
        max_lifetime: Duration,
    },
    /// A pool may open more connections than its server allows in total.
    PoolLargerThanServer {
        /// `primary` or the replica's name.
        server: String,
        /// The pool's `max_connections`.
        pool_max: u32,
        /// The server's `max_connections`.
        server_max: u32,
    },
    /// The server could not be asked.
    Unreachable {
        /// `primary` or the replica's name.
        server: String,
        /// The error, without credentials.
        error: String,
    },
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigIssue::ReplicaIsPrimary { replica } => write!(
                f,
                "replica `{replica}` reaches the primary itself; point it at a replica"
            ),
            ConfigIssue::WritableReplica { replica } => write!(
                f,
                "replica `{replica}` accepts writes; set read_only (MySQL) or check it is a standby"
            ),
            ConfigIssue::ReplicaLoginBypassesReadOnly { replica, privilege } => write!(
                f,
                "replica `{replica}`: the pool's login has {privilege}, which bypasses read_only; a write reaching this replica would succeed instead of failing. Use a login with rights on the application's database only"
            ),
            ConfigIssue::ReadOnlyPrimary => f.write_str("the primary is read-only; was there a failover?"),
            ConfigIssue::IdleTimeoutNotBelowMaxLifetime { server, idle_timeout, max_lifetime } => write!(
                f,
                "`{server}` pool: idle_timeout {idle_timeout:?} is not below max_lifetime {max_lifetime:?}, so it never applies"
            ),
            ConfigIssue::PoolLargerThanServer { server, pool_max, server_max } => write!(
                f,
                "`{server}` pool may open {pool_max} connections but the server allows {server_max} in total"
            ),
            ConfigIssue::Unreachable { server, error } => write!(f, "`{server}` could not be checked: {error}"),
        }
    }
}

impl<DB: Backend> RoutingPool<DB> {
    /// Checks the configuration against the live servers; an empty list means nothing was
    /// found. One short query per server.
    pub async fn check_config(&self) -> Vec<ConfigIssue> {
        let t = &self.0.topology;
        let mut issues = Vec::new();
        let servers: Vec<(String, &sqlx::Pool<DB>)> = t
            .servers
            .iter()
            .map(|s| (s.name.to_string(), &s.pool))
            .collect();
        let mut primary_identity = None;
        for (i, (name, pool)) in servers.iter().enumerate() {
            let opts = pool.options();
            if let (Some(idle), Some(life)) = (opts.get_idle_timeout(), opts.get_max_lifetime()) {
                if idle >= life {
                    issues.push(ConfigIssue::IdleTimeoutNotBelowMaxLifetime {
                        server: name.clone(),
                        idle_timeout: idle,
                        max_lifetime: life,
                    });
                }
            }
            let facts = match DB::server_facts(pool).await {
                Ok(Some(facts)) => facts,
                Ok(None) => continue,
                Err(e) => {
                    issues.push(ConfigIssue::Unreachable {
                        server: name.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            if let Some(server_max) = facts.max_connections {
                if opts.get_max_connections() > server_max {
                    issues.push(ConfigIssue::PoolLargerThanServer {
                        server: name.clone(),
                        pool_max: opts.get_max_connections(),
                        server_max,
                    });
                }
            }
            if i == 0 {
                if !facts.writable {
                    issues.push(ConfigIssue::ReadOnlyPrimary);
                }
                primary_identity = Some(facts.identity);
            } else if primary_identity.as_deref() == Some(facts.identity.as_str()) {
                issues.push(ConfigIssue::ReplicaIsPrimary {
                    replica: name.clone(),
                });
            } else if facts.writable {
                issues.push(ConfigIssue::WritableReplica {
                    replica: name.clone(),
                });
            } else if let Some(privilege) = facts.bypasses_read_only {
                issues.push(ConfigIssue::ReplicaLoginBypassesReadOnly {
                    replica: name.clone(),
                    privilege,
                });
            }
        }
        issues
    }
}

impl<DB: Backend> RoutingPoolBuilder<DB> {
    /// Builds the pool, then checks the configuration against the servers: a replica that is
    /// the primary is an error; every other issue is logged as a warning (`tracing`) and
    /// returned with the pool.
    pub async fn build_checked(self) -> Result<(RoutingPool<DB>, Vec<ConfigIssue>), Error> {
        let pool = self.build()?;
        let issues = pool.check_config().await;
        if let Some(ConfigIssue::ReplicaIsPrimary { replica }) = issues
            .iter()
            .find(|i| matches!(i, ConfigIssue::ReplicaIsPrimary { .. }))
        {
            return Err(Error::ReplicaIsPrimary(replica.clone()));
        }
        for issue in &issues {
            tracing::warn!(target: "rwsplit", %issue, "configuration");
        }
        Ok((pool, issues))
    }
}
