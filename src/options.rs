//! Pool options: health monitoring, lag bounds, timeouts and fallback. Every default is
//! documented with its reason.
//!
//! Layer: plain types (above `error` and `position`).

use std::time::Duration;

/// What a read does when no replica is eligible (all down, lagging or out of rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Read from the primary (default: a read should not fail because replicas are unhealthy).
    #[default]
    Primary,
    /// Fail with [`crate::error::Error::NoEligibleReplica`] (protects an overloaded primary).
    Error,
}

/// Consistency a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Consistency {
    /// Any eligible replica (default).
    #[default]
    Eventual,
    /// Causal: never older than the session's own writes.
    ReadYourWrites,
    /// The primary.
    Strong,
    /// A replica at most this far behind, else the fallback: checked when the read is routed
    /// against an upper bound on the replica's staleness (the bound its last probe found plus
    /// the time since), so a read never returns data older than this while the monitor runs.
    BoundedStaleness(Duration),
}

impl Consistency {
    /// Lower-case label for spans and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::ReadYourWrites => "read_your_writes",
            Consistency::Strong => "strong",
            Consistency::BoundedStaleness(_) => "bounded_staleness",
        }
    }
}

/// Options of a [`crate::RoutingPool`] beyond its pools; set through the builder.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How often each server is probed (health, role, lag). Default 1 s: lag is reported in
    /// whole seconds by MySQL, so probing faster buys little. `Duration::ZERO` disables the
    /// monitor (replicas are then always considered healthy unless a read fails on them).
    pub monitor_interval: Duration,
    /// Bound on one probe; a server that does not answer in time is unhealthy. Default 2 s.
    pub probe_timeout: Duration,
    /// Replicas further behind than this are skipped: checked when the read is routed against
    /// an upper bound on the replica's staleness (the lag its last probe found, plus the
    /// server's rounding, plus the time since that probe). Default 30 s, a bound most
    /// applications accept for background reads; tighten it, or use
    /// `Consistency::BoundedStaleness` per call.
    pub max_replica_lag: Duration,
    /// A replica excluded for lag comes back only once its lag is below this fraction of the
    /// bound, so a replica hovering at the bound does not flap. Default 0.8.
    pub lag_hysteresis: f64,
    /// A read on a replica that gives no first answer within this is abandoned (the replica's
    /// breaker opens) and retried elsewhere. Default 30 s, above most legitimate reads; lower it
    /// to detect hung replicas sooner. Enforced by one watchdog per replica rather than a timer
    /// per call, so a hung read is abandoned between this bound and the bound plus an eighth of
    /// it (at most one second more).
    pub replica_timeout: Duration,
    /// After a failure, a replica stays out for at least this long before a successful probe
    /// brings it back. Default 1 s.
    pub breaker_cooldown: Duration,
    /// What reads do when no replica is eligible. Default [`Fallback::Primary`].
    pub fallback: Fallback,
    /// Default consistency of reads. Default [`Consistency::Eventual`]. `ReadYourWrites` is
    /// refused here by `build()`: it needs to know whose writes, so it comes from a session,
    /// [`crate::with_session`], or a [`crate::with_consistency`] scope.
    pub consistency: Consistency,
    /// Bound on a causal wait on a replica before the read goes to the primary. A replica whose
    /// lag at its last probe exceeds it is not waited on: when every eligible replica lags that
    /// much, the read goes to the primary at once. Default 200 ms.
    pub causal_wait_timeout: Duration,
    /// Optional heartbeat table for sub-second lag (pt-heartbeat style): the monitor updates a
    /// timestamp row on the primary each interval and replicas report `now - ts` (an upper
    /// bound on their staleness, up to one interval coarse, assuming synchronized clocks).
    /// Default none.
    pub heartbeat_table: Option<String>,
    /// Read-your-writes by time instead of position, the weaker mode for servers without
    /// GTIDs: a session reads from the primary for this long after each write. Default `None`
    /// (exact, position-based).
    pub causal_window: Option<Duration>,
    /// Identifies the cluster in causal tokens, so a token is only accepted by pools of the same
    /// cluster. Default `None`: derived from the cluster itself, never from an address, so
    /// tokens survive the primary moving (a switchover, a new DNS name or port): PostgreSQL's
    /// `system_identifier` (shared by the primary and its standbys, kept by a promotion);
    /// on MySQL and MariaDB, which have no identity of the replication set that survives a
    /// switchover, the database name, so set a name to keep apart clusters that use the same
    /// database name.
    pub cluster_name: Option<String>,
    /// Authenticates causal tokens: [`crate::Session::token`] signs them, and
    /// [`crate::RoutingPool::resume`] and [`crate::Session::merge`] refuse a token that is
    /// unsigned, tampered with or signed with another key ([`crate::error::Error::TokenNotAuthentic`]).
    /// Default `None`: tokens are not authenticated, so a client can edit the position its
    /// token carries (which can only make its reads wait and go to the primary, never read
    /// stale data). Set it whenever tokens travel through clients (cookies, headers).
    pub token_key: Option<crate::position::TokenKey>,
    /// Ask the server whether user-defined functions the classifier does not know may write
    /// (PostgreSQL `pg_proc.provolatile`), once per name, and route accordingly: `VOLATILE`
    /// to the primary, `STABLE`/`IMMUTABLE` to replicas. The first statement calling a new
    /// function goes to the primary while the answer is fetched in the background. Default
    /// off; no effect on backends without such metadata.
    pub function_volatility: bool,
    /// What spans record as `db.query.text`. Default [`QueryText::Sanitized`]: parameterized
    /// statements as written, inline literals replaced by `?`.
    pub query_text: QueryText,
    /// How long a write (or `begin()`, `acquire()`) waits for a writer while none is usable: a
    /// switchover or failover under way (the writer turned read-only or went down and no other
    /// server has become writable yet), or two servers claiming to be writable until fresh
    /// probes settle it. The monitor looks every 100 ms meanwhile. After this, the write fails
    /// with [`crate::Error::PrimaryUnavailable`] (retriable). Default 5 s; `Duration::ZERO`
    /// fails at once, as does a pool without a monitor (nothing would find the new writer).
    pub write_hold: Duration,
    /// How many writes may wait for a writer at once ([`PoolOptions::write_hold`]); more fail
    /// at once with [`crate::Error::PrimaryUnavailable`]. Default 1,024.
    pub max_held_writes: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            monitor_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            max_replica_lag: Duration::from_secs(30),
            lag_hysteresis: 0.8,
            replica_timeout: Duration::from_secs(30),
            breaker_cooldown: Duration::from_secs(1),
            fallback: Fallback::Primary,
            consistency: Consistency::Eventual,
            causal_wait_timeout: Duration::from_millis(200),
            heartbeat_table: None,
            query_text: QueryText::Sanitized,
            causal_window: None,
            function_volatility: false,
            cluster_name: None,
            token_key: None,
            write_hold: Duration::from_secs(5),
            max_held_writes: 1024,
        }
    }
}

impl PoolOptions {
    pub(crate) fn validate(&self) -> Result<(), crate::error::Error> {
        let bad = |option, why| Err(crate::error::Error::InvalidOption { option, why });
        if !(0.0..=1.0).contains(&self.lag_hysteresis) {
            return bad("lag_hysteresis", "must be between 0 and 1");
        }
        if self.replica_timeout.is_zero() {
            return bad("replica_timeout", "must be above zero");
        }
        if !self.monitor_interval.is_zero() && self.probe_timeout.is_zero() {
            return bad("probe_timeout", "must be above zero when the monitor runs");
        }
        if self.consistency == Consistency::ReadYourWrites {
            return bad(
                "consistency",
                "ReadYourWrites needs to know whose writes: use a session (pool.session(), \
                 rwsplit::with_session(session, fut) for code that takes &pool), or \
                 rwsplit::with_consistency(Consistency::ReadYourWrites, fut) for a scope",
            );
        }
        if let Some(t) = &self.heartbeat_table {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !ok {
                return bad(
                    "heartbeat_table",
                    "use a plain table name: letters, digits, `_` and `.`",
                );
            }
        }
        Ok(())
    }
}

/// What `db.query.text` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryText {
    /// Not recorded.
    Off,
    /// Parameterized statements as written; statements with inline values with every literal
    /// replaced by `?` (the default: values may be personal data or secrets).
    #[default]
    Sanitized,
    /// Every statement as written, literals included.
    Full,
}
