//! [`Status`]: a snapshot of every server of a pool, for dashboards, health endpoints and
//! incident response.
//!
//! Layer: state (plain snapshots of `topology`).

use std::time::Duration;

pub use crate::topology::BreakerState;

/// The role a server has in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The writable primary.
    Primary,
    /// A read replica.
    Replica,
}

/// One server's state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerStatus {
    /// `primary` or the replica's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The last probe found it usable in its role (always true without a monitor).
    pub healthy: bool,
    /// Serving reads now (replicas: in rotation, healthy, breaker not open, within the lag
    /// bound; primary: breaker not open).
    pub eligible: bool,
    /// Taken out of rotation by an operator?
    pub in_rotation: bool,
    /// Replication lag (replicas), when known.
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
    /// The primary.
    pub primary: ServerStatus,
    /// The replicas, in configuration order.
    pub replicas: Vec<ServerStatus>,
    /// The degrade switch: all reads forced to the primary.
    pub force_primary: bool,
    /// Monitor tasks running.
    pub monitor_tasks: usize,
}
