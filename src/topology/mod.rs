//! The servers of a pool: the primary and the named replicas, their live health, and the
//! choice of one replica for a read. Knows nothing of SQL.
//!
//! Layer: state (above `backend`, `position` and `options`).

mod balance;
mod health;
pub(crate) mod monitor;
mod watchdog;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use sqlx::{Database, Pool};

pub use balance::Balance;
pub use health::BreakerState;
pub(crate) use health::{Health, Observation};
pub(crate) use watchdog::{Watch, Watchdog};

use crate::backend::ServerInfo;
use crate::position::Position;

/// One replica: its pool and its live state.
#[derive(Debug)]
pub(crate) struct Replica<DB: Database> {
    pub name: Arc<str>,
    pub pool: Pool<DB>,
    pub weight: u32,
    pub in_flight: AtomicUsize,
    /// Operators can take a replica out of rotation at run time.
    pub in_rotation: AtomicBool,
    pub health: Health,
    /// Position in the pool (the primary is 0, replica `i` is `i + 1`) for metric handles.
    pub index: usize,
    pub info: ServerInfo,
    /// The replication position the monitor last saw applied.
    pub applied: RwLock<Option<Position>>,
    /// Abandons calls that get no answer within `replica_timeout`.
    pub watchdog: Watchdog,
    /// Calls waiting for a connection in the replica's saturated pool (not yet watched by the
    /// watchdog), ended when its breaker opens.
    pub queue: Watchdog,
}

/// Which lag bound a read must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LagBound {
    /// The pool's `max_replica_lag`, with hysteresis.
    Pool,
    /// A per-call or per-scope bound, without hysteresis.
    At(Duration),
}

impl<DB: Database> Replica<DB> {
    pub fn new(
        name: Arc<str>,
        pool: Pool<DB>,
        weight: u32,
        index: usize,
        info: ServerInfo,
        timeout: Duration,
    ) -> Self {
        Replica {
            name,
            pool,
            weight,
            in_flight: AtomicUsize::new(0),
            in_rotation: AtomicBool::new(true),
            health: Health::new(),
            index,
            info,
            applied: RwLock::new(None),
            watchdog: Watchdog::new(timeout),
            queue: Watchdog::unbounded(),
        }
    }

    /// Opens the breaker on evidence from the data path and ends the calls queueing for a
    /// connection to this replica (they move elsewhere).
    pub fn trip(&self, error: &dyn std::fmt::Display) {
        self.health.trip(error);
        self.down();
    }

    /// Records a probe; when it opens the breaker, the calls waiting here move elsewhere.
    pub fn observed(&self, observation: Observation, cooldown: Duration) {
        if self.health.observe(observation, cooldown) {
            self.down();
        }
    }

    /// The server is down: every call still waiting on it (for a connection, or for the
    /// server's first answer) ends now and moves elsewhere.
    fn down(&self) {
        self.queue.expire_all();
        self.watchdog.expire_all();
    }

    /// Has this replica (as of the monitor's last probe) applied `position`?
    pub fn known_at(&self, position: &Position) -> bool {
        self.applied
            .read()
            .ok()
            .and_then(|a| a.as_ref().and_then(|a| a.covers(position)))
            .unwrap_or(false)
    }

    /// The bit of this replica in a call's set of tried servers.
    pub fn bit(&self) -> u64 {
        1u64.checked_shl(self.index as u32).unwrap_or(0)
    }

    /// Is this replica in `tried`?
    pub fn tried_in(&self, tried: u64) -> bool {
        tried & self.bit() != 0
    }

    /// Counts a request as outstanding until the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }
}

/// An outstanding request on a replica; decrements the count on drop, so cancelled futures
/// keep the accounting right.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The primary, the replicas, and the balancing policy.
#[derive(Debug)]
pub(crate) struct Topology<DB: Database> {
    pub primary: Pool<DB>,
    pub primary_health: Health,
    pub primary_info: ServerInfo,
    /// The primary's calls still waiting, cut short when its breaker opens.
    pub primary_watch: Watchdog,
    /// `db.system.name`, refined by the primary's probe (`mariadb`).
    pub system: OnceLock<&'static str>,
    /// The cluster id carried in causal tokens: set at build from `cluster_name` or the
    /// backend's static identity, else learned from the primary (PostgreSQL's
    /// `system_identifier`) by its probe or the first token that needs it.
    pub cluster: OnceLock<u64>,
    pub replicas: Vec<Replica<DB>>,
    pub balance: Balance,
    pub cooldown: Duration,
    pub monitored: bool,
    cursor: AtomicUsize,
}

impl<DB: Database> Topology<DB> {
    pub fn new(
        primary: (Pool<DB>, ServerInfo),
        replicas: Vec<Replica<DB>>,
        balance: Balance,
        cooldown: Duration,
        monitored: bool,
    ) -> Self {
        Topology {
            primary: primary.0,
            primary_info: primary.1,
            primary_watch: Watchdog::unbounded(),
            system: OnceLock::new(),
            cluster: OnceLock::new(),
            primary_health: Health::new(),
            replicas,
            balance,
            cooldown,
            monitored,
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Replica<DB>> {
        self.replicas.iter().find(|r| &*r.name == name)
    }

    /// May this replica serve a read now?
    pub fn eligible(&self, r: &Replica<DB>, bound: LagBound) -> bool {
        self.eligible_at(r, bound, Instant::now())
    }

    /// May this replica serve a read at `now` (one clock read per decision, taken by the
    /// caller)? The lag bound is checked against an upper bound on the replica's staleness at
    /// `now`, which grows with the time since its last probe.
    pub fn eligible_at(&self, r: &Replica<DB>, bound: LagBound, now: Instant) -> bool {
        r.in_rotation.load(Ordering::Relaxed)
            && r.health.probe_ok()
            && r.health.breaker(self.cooldown, self.monitored) != BreakerState::Open
            && match bound {
                LagBound::Pool => r.health.within_pool_bound(now, self.monitored),
                LagBound::At(d) => r.health.within(d, now, self.monitored),
            }
    }

    /// Chooses an eligible replica that the monitor already saw at or past `position`.
    pub fn pick_at(&self, bound: LagBound, position: &Position) -> Option<&Replica<DB>> {
        let now = Instant::now();
        let ok = |r: &Replica<DB>| self.eligible_at(r, bound, now) && r.known_at(position);
        balance::pick(self.balance, &self.replicas, &self.cursor, ok)
    }

    /// The eligible replica whose last seen applied position is the furthest along, among
    /// those whose lag at their last probe was at most `max_lag`: the one most likely to reach
    /// a causal position first. `Err(())` when replicas are eligible but every one lags more
    /// than `max_lag` (waiting on them would only spend the budget).
    pub fn pick_freshest(
        &self,
        bound: LagBound,
        max_lag: Duration,
    ) -> Result<Option<&Replica<DB>>, ()> {
        let now = Instant::now();
        let rank = |r: &Replica<DB>| {
            r.applied
                .read()
                .ok()
                .and_then(|a| a.as_ref().and_then(Position::rank))
        };
        let mut eligible = self
            .replicas
            .iter()
            .filter(|r| self.eligible_at(r, bound, now))
            .peekable();
        if eligible.peek().is_none() {
            return Ok(None);
        }
        let within = |r: &&Replica<DB>| r.health.lag().is_some_and(|l| l <= max_lag);
        match eligible.filter(within).max_by_key(|r| rank(r)) {
            Some(r) => Ok(Some(r)),
            None => Err(()),
        }
    }

    /// Chooses an eligible replica, skipping those in `tried` (bit `index` for the replica of
    /// that index: the ones a call already tried).
    pub fn pick(&self, bound: LagBound, tried: u64) -> Option<&Replica<DB>> {
        let now = Instant::now();
        let ok = |r: &Replica<DB>| !r.tried_in(tried) && self.eligible_at(r, bound, now);
        balance::pick(self.balance, &self.replicas, &self.cursor, ok)
    }

    /// Opens the primary's breaker on evidence from the data path, and ends the calls waiting
    /// on it.
    pub fn trip_primary(&self, error: &dyn std::fmt::Display) {
        self.primary_health.trip(error);
        self.primary_watch.expire_all();
    }

    /// Records a probe of the primary; when it opens the breaker, the calls waiting on the
    /// primary end with the typed error instead of waiting for sqlx's acquire timeout.
    pub fn primary_observed(&self, observation: Observation, cooldown: Duration) {
        if self.primary_health.observe(observation, cooldown) {
            self.primary_watch.expire_all();
        }
    }

    /// Is the primary known to be down (breaker open)?
    pub fn primary_down(&self) -> bool {
        self.primary_health.breaker(self.cooldown, self.monitored) == BreakerState::Open
    }
}
