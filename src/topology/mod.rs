//! The servers of a pool: the primary and the named replicas, their live health, and the
//! choice of one replica for a read. Knows nothing of SQL.

mod balance;
mod health;
pub(crate) mod monitor;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Database, Pool};

pub use balance::Balance;
pub use health::BreakerState;
pub(crate) use health::Health;

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
    pub fn new(name: Arc<str>, pool: Pool<DB>, weight: u32) -> Self {
        Replica {
            name,
            pool,
            weight,
            in_flight: AtomicUsize::new(0),
            in_rotation: AtomicBool::new(true),
            health: Health::new(),
        }
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
    pub replicas: Vec<Replica<DB>>,
    pub balance: Balance,
    pub cooldown: Duration,
    pub monitored: bool,
    cursor: AtomicUsize,
}

impl<DB: Database> Topology<DB> {
    pub fn new(
        primary: Pool<DB>,
        replicas: Vec<Replica<DB>>,
        balance: Balance,
        cooldown: Duration,
        monitored: bool,
    ) -> Self {
        Topology {
            primary,
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
        r.in_rotation.load(Ordering::Relaxed)
            && r.health.probe_ok()
            && r.health.breaker(self.cooldown, self.monitored) != BreakerState::Open
            && match bound {
                LagBound::Pool => r.health.within_pool_bound(),
                LagBound::At(d) => r.health.within(d),
            }
    }

    /// Chooses an eligible replica, skipping `exclude` (a replica that just failed).
    pub fn pick(&self, bound: LagBound, exclude: Option<&str>) -> Option<&Replica<DB>> {
        let ok = |r: &Replica<DB>| exclude != Some(&*r.name) && self.eligible(r, bound);
        balance::pick(self.balance, &self.replicas, &self.cursor, ok)
    }

    /// Is the primary known to be down (breaker open)?
    pub fn primary_down(&self) -> bool {
        self.primary_health.breaker(self.cooldown, self.monitored) == BreakerState::Open
    }
}
