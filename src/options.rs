//! Pool options: health monitoring, lag bounds, timeouts and fallback. Every default is
//! documented with its reason.
//!
//! Layer: plain types (above `error` and `position`).

use std::time::Duration;

/// What a read does when no replica is eligible (all down, lagging or out of rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

/// Options of a [`crate::RoutingPool`] beyond its pools, set through the builder's
/// [`crate::RoutingPoolBuilder::options`], in the style of sqlx's own pool options: start from
/// [`PoolOptions::new`] (every default explained on its setter), chain setters, read values
/// back with the `get_` methods. The fields are private, so a new option never breaks a caller.
///
/// ```
/// use std::time::Duration;
/// let options = rwsplit::PoolOptions::new()
///     .max_replica_lag(Duration::from_secs(5))
///     .write_hold(Duration::from_secs(2));
/// assert_eq!(options.get_max_replica_lag(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub(crate) monitor_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) max_replica_lag: Duration,
    pub(crate) lag_hysteresis: f64,
    pub(crate) replica_timeout: Duration,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) fallback: Fallback,
    pub(crate) consistency: Consistency,
    pub(crate) causal_wait_timeout: Duration,
    pub(crate) heartbeat_table: Option<String>,
    pub(crate) causal_window: Option<Duration>,
    pub(crate) cluster_name: Option<String>,
    pub(crate) token_key: Option<crate::position::TokenKey>,
    pub(crate) function_volatility: bool,
    pub(crate) query_text: QueryText,
    pub(crate) write_hold: Duration,
    pub(crate) max_held_writes: usize,
}

impl PoolOptions {
    /// The defaults: see each setter for the value and why.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often each server is probed (health, role, lag). Default 1 s: lag is reported in
    /// whole seconds by MySQL, so probing faster buys little. `Duration::ZERO` disables the
    /// monitor (replicas are then always considered healthy unless a read fails on them).
    pub fn monitor_interval(mut self, value: Duration) -> Self {
        self.monitor_interval = value;
        self
    }

    /// The value set by [`PoolOptions::monitor_interval`].
    pub fn get_monitor_interval(&self) -> Duration {
        self.monitor_interval
    }

    /// Bound on one probe; a server that does not answer in time is unhealthy. Default 2 s.
    pub fn probe_timeout(mut self, value: Duration) -> Self {
        self.probe_timeout = value;
        self
    }

    /// The value set by [`PoolOptions::probe_timeout`].
    pub fn get_probe_timeout(&self) -> Duration {
        self.probe_timeout
    }

    /// Replicas further behind than this are skipped: checked when the read is routed against
    /// an upper bound on the replica's staleness (the lag its last probe found, plus the
    /// server's rounding, plus the time since that probe). Default 30 s, a bound most
    /// applications accept for background reads; tighten it, or use
    /// `Consistency::BoundedStaleness` per call.
    pub fn max_replica_lag(mut self, value: Duration) -> Self {
        self.max_replica_lag = value;
        self
    }

    /// The value set by [`PoolOptions::max_replica_lag`].
    pub fn get_max_replica_lag(&self) -> Duration {
        self.max_replica_lag
    }

    /// A replica excluded for lag comes back only once its lag is below this fraction of the
    /// bound, so a replica hovering at the bound does not flap. Default 0.8.
    pub fn lag_hysteresis(mut self, value: f64) -> Self {
        self.lag_hysteresis = value;
        self
    }

    /// The value set by [`PoolOptions::lag_hysteresis`].
    pub fn get_lag_hysteresis(&self) -> f64 {
        self.lag_hysteresis
    }

    /// A read on a replica that gives no first answer within this is abandoned (the replica's
    /// breaker opens) and retried elsewhere. Default 30 s, above most legitimate reads; lower it
    /// to detect hung replicas sooner. Enforced by one watchdog per replica rather than a timer
    /// per call, so a hung read is abandoned between this bound and the bound plus an eighth of
    /// it (at most one second more).
    pub fn replica_timeout(mut self, value: Duration) -> Self {
        self.replica_timeout = value;
        self
    }

    /// The value set by [`PoolOptions::replica_timeout`].
    pub fn get_replica_timeout(&self) -> Duration {
        self.replica_timeout
    }

    /// After a failure, a replica stays out for at least this long before a successful probe
    /// brings it back. Default 1 s.
    pub fn breaker_cooldown(mut self, value: Duration) -> Self {
        self.breaker_cooldown = value;
        self
    }

    /// The value set by [`PoolOptions::breaker_cooldown`].
    pub fn get_breaker_cooldown(&self) -> Duration {
        self.breaker_cooldown
    }

    /// What reads do when no replica is eligible. Default [`Fallback::Primary`].
    pub fn fallback(mut self, value: Fallback) -> Self {
        self.fallback = value;
        self
    }

    /// The value set by [`PoolOptions::fallback`].
    pub fn get_fallback(&self) -> Fallback {
        self.fallback
    }

    /// Default consistency of reads. Default [`Consistency::Eventual`]. `ReadYourWrites` is
    /// refused here by `build()`: it needs to know whose writes, so it comes from a session,
    /// [`crate::with_session`], or a [`crate::with_consistency`] scope.
    pub fn consistency(mut self, value: Consistency) -> Self {
        self.consistency = value;
        self
    }

    /// The value set by [`PoolOptions::consistency`].
    pub fn get_consistency(&self) -> Consistency {
        self.consistency
    }

    /// Bound on a causal wait on a replica before the read goes to the primary. A replica whose
    /// lag at its last probe exceeds it is not waited on: when every eligible replica lags that
    /// much, the read goes to the primary at once. Default 200 ms.
    pub fn causal_wait_timeout(mut self, value: Duration) -> Self {
        self.causal_wait_timeout = value;
        self
    }

    /// The value set by [`PoolOptions::causal_wait_timeout`].
    pub fn get_causal_wait_timeout(&self) -> Duration {
        self.causal_wait_timeout
    }

    /// Optional heartbeat table for sub-second lag (pt-heartbeat style): the monitor updates a
    /// timestamp row on the primary each interval and replicas report `now - ts` (an upper
    /// bound on their staleness, up to one interval coarse, assuming synchronized clocks).
    /// Default none.
    pub fn heartbeat_table(mut self, value: impl Into<String>) -> Self {
        self.heartbeat_table = Some(value.into());
        self
    }

    /// The value set by [`PoolOptions::heartbeat_table`], if any.
    pub fn get_heartbeat_table(&self) -> Option<&str> {
        self.heartbeat_table.as_deref()
    }

    /// Read-your-writes by time instead of position, the weaker mode for servers without
    /// GTIDs: a session reads from the primary for this long after each write. Default `None`
    /// (exact, position-based).
    pub fn causal_window(mut self, value: Duration) -> Self {
        self.causal_window = Some(value);
        self
    }

    /// The value set by [`PoolOptions::causal_window`], if any.
    pub fn get_causal_window(&self) -> Option<Duration> {
        self.causal_window
    }

    /// Identifies the cluster in causal tokens, so a token is only accepted by pools of the same
    /// cluster. Default `None`: derived from the cluster itself, never from an address, so
    /// tokens survive the primary moving (a switchover, a new DNS name or port): PostgreSQL's
    /// `system_identifier` (shared by the primary and its standbys, kept by a promotion);
    /// on MySQL and MariaDB, which have no identity of the replication set that survives a
    /// switchover, the database name, so set a name to keep apart clusters that use the same
    /// database name.
    pub fn cluster_name(mut self, value: impl Into<String>) -> Self {
        self.cluster_name = Some(value.into());
        self
    }

    /// The value set by [`PoolOptions::cluster_name`], if any.
    pub fn get_cluster_name(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }

    /// Authenticates causal tokens: [`crate::Session::token`] signs them, and
    /// [`crate::RoutingPool::resume`] and [`crate::Session::merge`] refuse a token that is
    /// unsigned, tampered with or signed with another key ([`crate::error::Error::TokenNotAuthentic`]).
    /// Default `None`: tokens are not authenticated, so a client can edit the position its
    /// token carries (which can only make its reads wait and go to the primary, never read
    /// stale data). Set it whenever tokens travel through clients (cookies, headers).
    pub fn token_key(mut self, value: crate::position::TokenKey) -> Self {
        self.token_key = Some(value);
        self
    }

    /// The value set by [`PoolOptions::token_key`], if any.
    pub fn get_token_key(&self) -> Option<&crate::position::TokenKey> {
        self.token_key.as_ref()
    }

    /// Ask the primary's catalog about what the classifier cannot see, and route accordingly:
    /// user functions and operators the classifier does not know (PostgreSQL `pg_proc`
    /// volatility, by schema and over every overload, operators by the function behind them;
    /// MySQL/MariaDB `information_schema.ROUTINES`: not deterministic or `MODIFIES SQL DATA`,
    /// bodies that write or lock, and bodies this login may not read), views and tables whose
    /// reads run such functions, casts to PostgreSQL types and domains whose conversion runs
    /// one, and built-in names shadowed by unsafe user functions. Unsafe ones go to the primary, the rest may go
    /// to replicas. The first statement naming something new goes to the primary while the
    /// answer is fetched in the background (one query per batch of names; a snapshot of views
    /// every 30 s and after DDL through the pool). Default off: it trusts declarations the
    /// servers do not enforce (`STABLE`, `DETERMINISTIC`), and it needs catalog rights. See the
    /// README's "Asking the catalog".
    pub fn function_volatility(mut self, value: bool) -> Self {
        self.function_volatility = value;
        self
    }

    /// The value set by [`PoolOptions::function_volatility`].
    pub fn get_function_volatility(&self) -> bool {
        self.function_volatility
    }

    /// What spans record as `db.query.text`. Default [`QueryText::Sanitized`]: parameterized
    /// statements as written, inline literals replaced by `?`.
    pub fn query_text(mut self, value: QueryText) -> Self {
        self.query_text = value;
        self
    }

    /// The value set by [`PoolOptions::query_text`].
    pub fn get_query_text(&self) -> QueryText {
        self.query_text
    }

    /// How long a write (or `begin()`, `acquire()`) waits for a writer while none is usable: a
    /// switchover or failover under way (the writer turned read-only or went down and no other
    /// server has become writable yet), or two servers claiming to be writable until fresh
    /// probes settle it. The monitor looks every 100 ms meanwhile. After this, the write fails
    /// with [`crate::Error::PrimaryUnavailable`] (retriable). Default 5 s; `Duration::ZERO`
    /// fails at once, as does a pool without a monitor (nothing would find the new writer).
    pub fn write_hold(mut self, value: Duration) -> Self {
        self.write_hold = value;
        self
    }

    /// The value set by [`PoolOptions::write_hold`].
    pub fn get_write_hold(&self) -> Duration {
        self.write_hold
    }

    /// How many writes may wait for a writer at once ([`PoolOptions::write_hold`]); more fail
    /// at once with [`crate::Error::PrimaryUnavailable`]. Default 1,024.
    pub fn max_held_writes(mut self, value: usize) -> Self {
        self.max_held_writes = value;
        self
    }

    /// The value set by [`PoolOptions::max_held_writes`].
    pub fn get_max_held_writes(&self) -> usize {
        self.max_held_writes
    }
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
