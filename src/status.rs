//! [`Status`]: a snapshot of every server of a pool, for dashboards, health endpoints and
//! incident response.
//!
//! Layer: state (plain snapshots of `topology`).

use std::time::Duration;

pub use crate::topology::BreakerState;

/// The role a server has in the pool now (not as configured: after a switchover a configured
/// replica can be the primary, and the configured primary a replica).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The writer: the one server writes go to.
    Primary,
    /// Any other server (a read replica, or a server that is down or read-only).
    Replica,
}

/// One server's state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerStatus {
    /// `primary` (the configured primary) or the replica's name.
    pub name: String,
    /// Its role now ([`Role::Primary`] for the writer).
    pub role: Role,
    /// The last probe found it usable in its role (always true without a monitor).
    pub healthy: bool,
    /// Serving now (the writer: its breaker is not open; any other server: serving reads,
    /// that is in rotation, healthy, breaker not open, within the lag bound).
    pub eligible: bool,
    /// Taken out of rotation by an operator?
    pub in_rotation: bool,
    /// Replication lag (servers other than the writer), when known.
    pub lag: Option<Duration>,
    /// Requests in flight on it through this pool.
    pub in_flight: usize,
    /// Its circuit breaker.
    pub breaker: BreakerState,
    /// The last error seen, without credentials.
    pub last_error: Option<String>,
    /// Probes run so far.
    pub probes: u64,
    /// Connections open in its sqlx pool.
    pub connections: u32,
    /// Idle connections in its sqlx pool.
    pub idle_connections: usize,
}

/// A snapshot of a pool: see [`crate::RoutingPool::status`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The configured primary (whatever its role now).
    pub primary: ServerStatus,
    /// The configured replicas, in configuration order.
    pub replicas: Vec<ServerStatus>,
    /// The server writes go to now (`primary` or a replica's name); `None` while no server
    /// accepts writes (a switchover or failover under way, or a split brain).
    pub writer: Option<String>,
    /// The servers that all accept writes, when more than one does (writes are refused then
    /// with [`crate::Error::SplitBrain`]); empty otherwise.
    pub split_brain: Vec<String>,
    /// Writes waiting for a writer now (`PoolOptions::write_hold`).
    pub held_writes: usize,
    /// How many times the writer changed since the pool was built.
    pub writer_changes: u64,
    /// The degrade switch: all reads forced to the primary.
    pub force_primary: bool,
    /// Monitor tasks running.
    pub monitor_tasks: usize,
}
