//! The replica set: named replica pools, their runtime state, and the choice of one replica
//! for a read. Knows nothing of SQL.

mod balance;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::{Database, Pool};

pub use balance::Balance;

/// One replica: its pool and its live state.
#[derive(Debug)]
pub(crate) struct Replica<DB: Database> {
    pub name: Arc<str>,
    pub pool: Pool<DB>,
    pub weight: u32,
    pub in_flight: AtomicUsize,
    /// Operators can take a replica out of rotation at run time.
    pub in_rotation: AtomicBool,
}

impl<DB: Database> Replica<DB> {
    pub fn new(name: Arc<str>, pool: Pool<DB>, weight: u32) -> Self {
        Replica {
            name,
            pool,
            weight,
            in_flight: AtomicUsize::new(0),
            in_rotation: AtomicBool::new(true),
        }
    }

    /// May this replica serve a read now?
    pub fn eligible(&self) -> bool {
        self.in_rotation.load(Ordering::Relaxed)
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

/// The replicas of a pool and the balancing policy.
#[derive(Debug)]
pub(crate) struct ReplicaSet<DB: Database> {
    pub replicas: Vec<Replica<DB>>,
    pub balance: Balance,
    cursor: AtomicUsize,
}

impl<DB: Database> ReplicaSet<DB> {
    pub fn new(replicas: Vec<Replica<DB>>, balance: Balance) -> Self {
        ReplicaSet {
            replicas,
            balance,
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Replica<DB>> {
        self.replicas.iter().find(|r| &*r.name == name)
    }

    /// Chooses an eligible replica, skipping `exclude` (a replica that just failed).
    pub fn pick(&self, exclude: Option<&str>) -> Option<&Replica<DB>> {
        let ok = |r: &Replica<DB>| r.eligible() && exclude != Some(&*r.name);
        balance::pick(self.balance, &self.replicas, &self.cursor, ok)
    }
}
