//! The servers of a pool: the primary and the named replicas, their live health, and the
//! choice of one replica for a read. Knows nothing of SQL.
//!
//! Layer: state (above `backend`, `position` and `options`).

mod balance;
mod health;
pub(crate) mod monitor;
mod watchdog;
pub(crate) mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use sqlx::{Database, Pool};

pub use balance::Balance;
pub use health::BreakerState;
pub(crate) use health::{Health, Observation};
pub(crate) use watchdog::{Watch, Watchdog};
pub(crate) use writer::{Claim, Writer};

use crate::backend::ServerInfo;
use crate::position::Position;

/// One server (the configured primary or a replica): its pool and its live state. Which one
/// takes writes is decided by [`Writer`], from what the servers say about themselves.
#[derive(Debug)]
pub(crate) struct Server<DB: Database> {
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
    /// Every call on the writer, ended when its breaker opens (replica calls are all on the
    /// watchdog, which the breaker opening ends too).
    pub writes: Watchdog,
    /// Routed calls this server has given a first answer to: a call that waited a whole
    /// `replica_timeout` in a full pool while this moved may be queueing; one that waited while
    /// it did not faces a server that answers nobody.
    pub answers: AtomicU64,
}

/// Which lag bound a read must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LagBound {
    /// The pool's `max_replica_lag`, with hysteresis.
    Pool,
    /// A per-call or per-scope bound, without hysteresis.
    At(Duration),
}

impl<DB: Database> Server<DB> {
    pub fn new(
        name: Arc<str>,
        pool: Pool<DB>,
        weight: u32,
        index: usize,
        info: ServerInfo,
        timeout: Duration,
    ) -> Self {
        Server {
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
            writes: Watchdog::unbounded(),
            answers: AtomicU64::new(0),
        }
    }

    /// Opens the breaker on evidence from the data path and ends the calls queueing for a
    /// connection to this replica (they move elsewhere).
    pub fn trip(&self, error: &dyn std::fmt::Display) {
        self.health.trip(error);
        self.down();
    }

    /// Records a probe. When it opens the breaker on evidence that the server is down, the
    /// calls waiting here move elsewhere; a server that answered but is unfit for reads (not
    /// applying, writable, demoted) finishes the calls it has.
    pub fn observed(&self, observation: Observation, cooldown: Duration) {
        let evidence = !matches!(observation, Observation::Answered { .. });
        if self.health.observe(observation, cooldown) && evidence {
            self.down();
        }
    }

    /// The server is down: every call still waiting on it (for a connection, or for the
    /// server's first answer) ends now and moves elsewhere.
    fn down(&self) {
        self.writes.expire_all();
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
    #[inline]
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The servers (the configured primary first, then the replicas), the writer among them, and
/// the balancing policy.
#[derive(Debug)]
pub(crate) struct Topology<DB: Database> {
    /// Every server: `[0]` the configured primary, `[i + 1]` replica `i` (as `Server::index`).
    pub servers: Vec<Server<DB>>,
    /// Which server takes writes now.
    pub writer: Writer,
    /// `db.system.name`, refined by the primary's probe (`mariadb`).
    pub system: OnceLock<&'static str>,
    /// The cluster id carried in causal tokens: set at build from `cluster_name` or the
    /// backend's static identity, else learned from the primary (PostgreSQL's
    /// `system_identifier`) by its probe or the first token that needs it.
    pub cluster: OnceLock<u64>,
    pub balance: Balance,
    pub cooldown: Duration,
    pub monitored: bool,
    cursor: AtomicUsize,
}

impl<DB: Database> Topology<DB> {
    /// `servers[0]` is the configured primary (the writer until a probe says otherwise).
    pub fn new(
        servers: Vec<Server<DB>>,
        balance: Balance,
        cooldown: Duration,
        monitored: bool,
    ) -> Self {
        Topology {
            writer: Writer::new(servers.len()),
            servers,
            system: OnceLock::new(),
            cluster: OnceLock::new(),
            balance,
            cooldown,
            monitored,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The configured primary (the writer unless a switchover moved it).
    pub fn primary(&self) -> &Server<DB> {
        &self.servers[0]
    }

    /// The configured replicas.
    pub fn replicas(&self) -> &[Server<DB>] {
        &self.servers[1..]
    }

    /// The server that takes writes now, if one is known.
    pub fn writer(&self) -> Option<&Server<DB>> {
        self.servers.get(self.writer.current())
    }

    /// The writer, or the configured primary while none is known: for work that cannot wait
    /// for one (describing a statement, asking the catalog).
    pub fn writer_or_primary(&self) -> &Server<DB> {
        self.writer().unwrap_or(&self.servers[0])
    }

    /// Is this server's breaker open (with the pool's cooldown and monitoring)?
    pub fn breaker_open(&self, s: &Server<DB>) -> bool {
        s.health.breaker(self.cooldown, self.monitored) == BreakerState::Open
    }

    /// The writer, if one is known and its breaker is not open.
    pub fn usable_writer(&self) -> Option<&Server<DB>> {
        self.writer().filter(|w| !self.breaker_open(w))
    }

    /// May writes go to the writer now (one is known and its breaker is not open)?
    pub fn writer_ready(&self) -> bool {
        self.usable_writer().is_some()
    }

    /// The servers a read may use: the replicas, and the configured primary too once it is no
    /// longer the writer (a demoted primary that replicates serves reads like any replica).
    fn readers(&self) -> &[Server<DB>] {
        if self.writer.current() == 0 {
            self.replicas()
        } else {
            &self.servers
        }
    }

    pub fn get(&self, name: &str) -> Option<&Server<DB>> {
        self.replicas().iter().find(|r| &*r.name == name)
    }

    /// May this server serve a read now?
    pub fn eligible(&self, r: &Server<DB>, bound: LagBound) -> bool {
        self.eligible_at(r, bound, Instant::now())
    }

    /// May this server serve a read at `now` (one clock read per decision, taken by the
    /// caller)? The writer never does; the lag bound is checked against an upper bound on the
    /// replica's staleness at `now`, which grows with the time since its last probe.
    #[inline]
    pub fn eligible_at(&self, r: &Server<DB>, bound: LagBound, now: Instant) -> bool {
        r.in_rotation.load(Ordering::Relaxed)
            && r.health.probe_ok()
            && r.index != self.writer.current()
            && !self.breaker_open(r)
            && match bound {
                LagBound::Pool => r.health.within_pool_bound(now, self.monitored),
                LagBound::At(d) => r.health.within(d, now, self.monitored),
            }
    }

    /// Chooses an eligible replica that the monitor already saw at or past `position`.
    pub fn pick_at(&self, bound: LagBound, position: &Position) -> Option<&Server<DB>> {
        let now = Instant::now();
        let ok = |r: &Server<DB>| self.eligible_at(r, bound, now) && r.known_at(position);
        balance::pick(self.balance, self.readers(), &self.cursor, ok)
    }

    /// The eligible replica whose last seen applied position is the furthest along, among
    /// those whose lag at their last probe was at most `max_lag`: the one most likely to reach
    /// a causal position first. `Err(())` when replicas are eligible but every one lags more
    /// than `max_lag` (waiting on them would only spend the budget).
    pub fn pick_freshest(
        &self,
        bound: LagBound,
        max_lag: Duration,
    ) -> Result<Option<&Server<DB>>, ()> {
        let now = Instant::now();
        let rank = |r: &Server<DB>| {
            r.applied
                .read()
                .ok()
                .and_then(|a| a.as_ref().and_then(Position::rank))
        };
        let mut eligible = self
            .readers()
            .iter()
            .filter(|r| self.eligible_at(r, bound, now))
            .peekable();
        if eligible.peek().is_none() {
            return Ok(None);
        }
        let within = |r: &&Server<DB>| r.health.lag().is_some_and(|l| l <= max_lag);
        match eligible.filter(within).max_by_key(|r| rank(r)) {
            Some(r) => Ok(Some(r)),
            None => Err(()),
        }
    }

    /// Chooses an eligible replica, skipping those in `tried` (bit `index` for the replica of
    /// that index: the ones a call already tried), judging staleness at `now`.
    #[inline]
    pub fn pick(&self, bound: LagBound, tried: u64, now: Instant) -> Option<&Server<DB>> {
        let ok = |r: &Server<DB>| !r.tried_in(tried) && self.eligible_at(r, bound, now);
        balance::pick(self.balance, self.readers(), &self.cursor, ok)
    }

    /// Is no writer usable now (none known, or its breaker open)?
    pub fn writer_down(&self) -> bool {
        !self.writer_ready()
    }

    /// Records what server `index` said about its role (a probe that started at `at`, or a
    /// write it refused as read-only) and acts on a change of writer: the new writer's breaker
    /// closes (it just answered), an event says what changed, and when the writer is lost or
    /// in doubt every monitor probes at once.
    pub fn claim(&self, index: usize, claim: Claim, at: Instant) {
        let Some(change) = self.writer.claim(index, claim, at) else {
            return;
        };
        let name = |i: usize| {
            self.servers
                .get(i)
                .map_or_else(|| "none".to_string(), |s| s.name.to_string())
        };
        if change.from != change.to {
            if let Some(new) = self.servers.get(change.to) {
                new.health.reset();
            }
            tracing::warn!(
                target: "rwsplit",
                from = %name(change.from),
                to = %name(change.to),
                "writer changed"
            );
        }
        if !change.split.is_empty() {
            let servers: Vec<String> = change.split.iter().map(|&i| name(i)).collect();
            tracing::error!(
                target: "rwsplit",
                servers = %servers.join(","),
                "split brain: more than one server accepts writes; writes are refused"
            );
        }
        if change.probe {
            for s in &self.servers {
                s.health.wake_monitor.notify_one();
            }
        }
    }

    /// Each server's role as last seen, for messages: `primary read-only, replica1 down`.
    pub fn roles(&self) -> String {
        let claims = self.writer.claims();
        self.servers
            .iter()
            .zip(claims)
            .map(|(s, c)| format!("{} {}", s.name, c.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of the servers in a confirmed split brain (empty when there is none).
    pub fn split_brain(&self) -> Vec<String> {
        let split = self.writer.split();
        split
            .iter()
            .filter_map(|&i| self.servers.get(i).map(|s| s.name.to_string()))
            .collect()
    }
}
