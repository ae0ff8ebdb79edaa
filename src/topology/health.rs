//! Live health of one server: the monitor's last verdict, replica lag with hysteresis, and a
//! circuit breaker that the data path opens on connection failures.
//!
//! Lag bounds are checked at decision time against an upper bound on the replica's staleness
//! that grows with the time since it was measured: the bound the probe found (the server's lag
//! plus its rounding) plus the time since the probe started. A replica can fall behind by at
//! most the time that passed, so the bound holds between probes; a probe that hangs makes the
//! bound grow until the replica is excluded. The check costs one read of the monotonic clock
//! per decision (taken by the caller) and a few relaxed loads.
//!
//! The breaker is open from a failure until either the monitor's next successful probe after
//! the cooldown closes it (monitor running), or, without a monitor, the cooldown passes and the
//! next request is let through as a trial (half-open).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Lag value meaning "unknown".
const UNKNOWN: u64 = u64::MAX;

/// The state of a server's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are not sent; the server failed recently.
    Open,
    /// The cooldown passed; the next request (or probe) decides.
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Health {
    epoch: Instant,
    /// The last probe found the server usable in its role.
    probe_ok: AtomicBool,
    /// Replica lag in microseconds as the last probe measured it, or `UNKNOWN`.
    lag_us: AtomicU64,
    /// Upper bound on the replica's staleness when the last probe started (lag plus the
    /// server's rounding), in microseconds, or `UNKNOWN`. Written before `measured_us`.
    bound_us: AtomicU64,
    /// Microseconds since `epoch` at which the probe that set `bound_us` started. Written
    /// (release) after `bound_us` and read (acquire) before it, so a reader never pairs a bound
    /// with a later measurement time than its own (which would understate the bound).
    measured_us: AtomicU64,
    /// The pool's `max_replica_lag` in microseconds (`u64::MAX` until the first probe).
    pool_bound_us: AtomicU64,
    /// Excluded for lag under the pool's bound (with hysteresis).
    lag_excluded: AtomicBool,
    /// Milliseconds since `epoch` + 1 at which the breaker opened; 0 when closed.
    opened_at: AtomicU64,
    probes: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Consecutive probes that got no answer in time.
    silent: AtomicU32,
    /// Verification tickets handed out, and the highest ticket a finished probe answered.
    verify_asked: AtomicU64,
    verify_answered: AtomicU64,
    /// Wakes this server's monitor loop for a probe now.
    pub wake_monitor: Notify,
    /// Woken after every probe.
    probe_done: Notify,
}

/// What the monitor learned from one probe on its own connection.
#[derive(Debug)]
pub(crate) enum Observation {
    /// The server answered; `ok` says whether it is fit for its role (`error` why not).
    Answered { ok: bool, error: Option<String> },
    /// Evidence that the server is down: the connection or the login was refused or reset.
    Down(String),
    /// No answer within the probe timeout.
    Silent(String),
}

/// Consecutive probes without an answer that count as evidence that a server is down. One
/// late answer proves nothing (a loaded machine, a long lock, a slow fork of a new backend);
/// three in a row, each given `probe_timeout` on the monitor's own thread and connection (so
/// at least three probe timeouts of silence), do.
pub(crate) const SILENT_PROBES: u32 = 3;

impl Health {
    pub fn new() -> Self {
        Health {
            epoch: Instant::now(),
            probe_ok: AtomicBool::new(true),
            lag_us: AtomicU64::new(0),
            bound_us: AtomicU64::new(0),
            measured_us: AtomicU64::new(0),
            pool_bound_us: AtomicU64::new(u64::MAX),
            lag_excluded: AtomicBool::new(false),
            opened_at: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            last_error: Mutex::new(None),
            silent: AtomicU32::new(0),
            verify_asked: AtomicU64::new(0),
            verify_answered: AtomicU64::new(0),
            wake_monitor: Notify::new(),
            probe_done: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    #[inline]
    pub fn breaker(&self, cooldown: Duration, monitored: bool) -> BreakerState {
        let opened = self.opened_at.load(Ordering::Relaxed);
        if opened == 0 {
            BreakerState::Closed
        } else if self.now_ms().saturating_sub(opened) >= cooldown.as_millis() as u64 {
            if monitored {
                // The monitor's next successful probe closes it.
                BreakerState::Open
            } else {
                BreakerState::HalfOpen
            }
        } else {
            BreakerState::Open
        }
    }

    /// Opens the breaker (a request or probe failed).
    pub fn trip(&self, error: &dyn std::fmt::Display) {
        self.opened_at.store(self.now_ms(), Ordering::Relaxed);
        self.set_error(Some(error.to_string()));
    }

    /// A request succeeded: closes a half-open breaker.
    #[inline]
    pub fn succeeded(&self) {
        if self.opened_at.load(Ordering::Relaxed) != 0 {
            self.opened_at.store(0, Ordering::Relaxed);
        }
    }

    /// The server was just elected writer on its own answer: its breaker closes and it counts
    /// as healthy, whatever it was as a replica (a writable replica's probe opens its breaker).
    pub fn reset(&self) {
        self.probe_ok.store(true, Ordering::Relaxed);
        self.opened_at.store(0, Ordering::Relaxed);
        self.silent.store(0, Ordering::Relaxed);
        self.set_error(None);
    }

    /// Records a probe result. A successful probe closes the breaker once the cooldown passed.
    pub fn probed(&self, ok: bool, error: Option<String>, cooldown: Duration) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        self.probe_ok.store(ok, Ordering::Relaxed);
        if ok {
            let opened = self.opened_at.load(Ordering::Relaxed);
            if opened != 0 && self.now_ms().saturating_sub(opened) >= cooldown.as_millis() as u64 {
                self.opened_at.store(0, Ordering::Relaxed);
            }
            if opened == 0 {
                self.set_error(None);
            }
        } else {
            self.opened_at.store(self.now_ms(), Ordering::Relaxed);
            self.set_error(error);
        }
    }

    /// Records what one probe observed; returns whether the breaker is open afterwards.
    /// Only an answer or evidence changes the state: a single silent probe does not.
    pub fn observe(&self, observation: Observation, cooldown: Duration) -> bool {
        match observation {
            Observation::Answered { ok, error } => {
                self.silent.store(0, Ordering::Relaxed);
                self.probed(ok, error, cooldown);
            }
            Observation::Down(error) => {
                self.silent.store(0, Ordering::Relaxed);
                self.probed(false, Some(error), cooldown);
            }
            Observation::Silent(error) => {
                if self.silent.fetch_add(1, Ordering::Relaxed) + 1 >= SILENT_PROBES {
                    self.probed(false, Some(error), cooldown);
                } else {
                    self.probes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.is_open()
    }

    /// Is the breaker open (whatever the cooldown)?
    #[inline]
    pub fn is_open(&self) -> bool {
        self.opened_at.load(Ordering::Relaxed) != 0
    }

    /// The verification ticket a probe starting now answers.
    pub fn probe_starts(&self) -> u64 {
        self.verify_asked.load(Ordering::SeqCst)
    }

    /// A probe that started with `ticket` finished (after [`Health::observe`]).
    pub fn probe_finished(&self, ticket: u64) {
        self.verify_answered.fetch_max(ticket, Ordering::SeqCst);
        self.probe_done.notify_waiters();
    }

    /// Asks the monitor to probe this server now, on its own connection, and waits up to `wait`
    /// for a probe that started after the request. `Some(true)`: the server is down (its
    /// breaker is open); `Some(false)`: it answered; `None`: no verdict in time.
    pub async fn verify(&self, wait: Duration) -> Option<bool> {
        let ticket = self.verify_asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake_monitor.notify_one();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let done = self.probe_done.notified();
            let mut done = std::pin::pin!(done);
            done.as_mut().enable();
            if self.verify_answered.load(Ordering::SeqCst) >= ticket {
                return Some(self.is_open());
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return None;
            }
        }
    }

    /// Records replica lag measured by a probe that started at `measured`, where the true lag
    /// may exceed `lag` by up to `rounding` (the server's precision), and updates the
    /// hysteresis state for the pool's `bound`: a replica whose bound exceeds it is excluded,
    /// and comes back once the bound is below `hysteresis` times it.
    pub fn set_lag(
        &self,
        lag: Option<Duration>,
        rounding: Duration,
        measured: Instant,
        bound: Duration,
        hysteresis: f64,
    ) {
        let micros = |d: Duration| d.as_micros().min(u128::from(UNKNOWN - 1)) as u64;
        let us = lag.map_or(UNKNOWN, micros);
        let upper = lag.map_or(UNKNOWN, |l| micros(l.saturating_add(rounding)));
        self.lag_us.store(us, Ordering::Relaxed);
        self.bound_us.store(upper, Ordering::Relaxed);
        self.pool_bound_us.store(micros(bound), Ordering::Relaxed);
        let at = micros(measured.saturating_duration_since(self.epoch));
        self.measured_us.store(at, Ordering::Release);
        let bound_us = bound.as_micros() as f64;
        let excluded = self.lag_excluded.load(Ordering::Relaxed);
        let now_excluded = if upper == UNKNOWN {
            true
        } else if excluded {
            (upper as f64) >= bound_us * hysteresis
        } else {
            (upper as f64) > bound_us
        };
        self.lag_excluded.store(now_excluded, Ordering::Relaxed);
    }

    /// An upper bound on the replica's staleness at `now`: the bound its last probe found plus
    /// the time since that probe started (`grows`: a monitor measures lag; without one, lag is
    /// never measured and stays at its initial zero). `None` when unknown.
    #[inline]
    pub fn staleness_bound(&self, now: Instant, grows: bool) -> Option<Duration> {
        let measured = self.measured_us.load(Ordering::Acquire);
        let bound = self.bound_us.load(Ordering::Relaxed);
        if bound == UNKNOWN {
            return None;
        }
        let elapsed = if grows {
            let now = now.saturating_duration_since(self.epoch).as_micros();
            (now.min(u128::from(u64::MAX)) as u64).saturating_sub(measured)
        } else {
            0
        };
        Some(Duration::from_micros(bound.saturating_add(elapsed)))
    }

    #[inline]
    pub fn lag(&self) -> Option<Duration> {
        match self.lag_us.load(Ordering::Relaxed) {
            UNKNOWN => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    #[inline]
    pub fn probe_ok(&self) -> bool {
        self.probe_ok.load(Ordering::Relaxed)
    }

    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Within the pool's lag bound at `now` (with hysteresis at each probe, and the bound
    /// growing between probes)? Strict: the bound must not exceed `max_replica_lag`.
    #[inline]
    pub fn within_pool_bound(&self, now: Instant, grows: bool) -> bool {
        if self.lag_excluded.load(Ordering::Relaxed) {
            return false;
        }
        let limit = self.pool_bound_us.load(Ordering::Relaxed);
        self.staleness_bound(now, grows)
            .is_some_and(|b| b.as_micros() <= u128::from(limit))
    }

    /// Within an explicit bound at `now` (no hysteresis: a per-call bound is a hard promise)?
    pub fn within(&self, bound: Duration, now: Instant, grows: bool) -> bool {
        self.staleness_bound(now, grows).is_some_and(|b| b <= bound)
    }

    pub fn set_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = error;
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_keeps_a_hovering_replica_out_until_well_below_the_bound() {
        let h = Health::new();
        let bound = Duration::from_secs(10);
        let now = Instant::now();
        let set = |lag: Option<u64>| {
            h.set_lag(
                lag.map(Duration::from_secs),
                Duration::ZERO,
                now,
                bound,
                0.8,
            )
        };
        set(Some(9));
        assert!(h.within_pool_bound(now, true));
        set(Some(11));
        assert!(!h.within_pool_bound(now, true));
        set(Some(9));
        assert!(
            !h.within_pool_bound(now, true),
            "9s is above 0.8 x 10s: still out"
        );
        set(Some(7));
        assert!(h.within_pool_bound(now, true));
        set(None);
        assert!(
            !h.within_pool_bound(now, true),
            "unknown lag is not within any bound"
        );
        assert!(!h.within(Duration::from_secs(100), now, true));
    }

    #[test]
    fn the_bound_grows_with_the_time_since_the_probe_and_includes_the_rounding() {
        let h = Health::new();
        let probe = Instant::now();
        let limit = Duration::from_secs(2);
        // A whole-second server said 1 s: up to 2 s, exactly at the limit (eligible).
        h.set_lag(
            Some(Duration::from_secs(1)),
            Duration::from_secs(1),
            probe,
            limit,
            0.8,
        );
        assert_eq!(h.staleness_bound(probe, true), Some(limit));
        assert!(h.within_pool_bound(probe, true));
        assert!(h.within(limit, probe, true));
        assert!(!h.within(limit - Duration::from_micros(1), probe, true));
        // A millisecond later the bound is over the limit: excluded until the next probe.
        let later = probe + Duration::from_millis(1);
        assert_eq!(
            h.staleness_bound(later, true),
            Some(limit + Duration::from_millis(1))
        );
        assert!(!h.within_pool_bound(later, true));
        assert!(!h.within(limit, later, true));
        // Without a monitor nothing is measured, and nothing grows.
        assert_eq!(h.staleness_bound(later, false), Some(limit));
        // Until its first probe a replica counts as caught up when it was created.
        let fresh = Health::new();
        assert_eq!(
            fresh.staleness_bound(Instant::now(), false),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn breaker_opens_on_failure_and_closes_after_cooldown() {
        let h = Health::new();
        assert_eq!(h.breaker(Duration::ZERO, true), BreakerState::Closed);
        h.trip(&"boom");
        assert_eq!(
            h.breaker(Duration::from_secs(60), false),
            BreakerState::Open
        );
        assert_eq!(h.breaker(Duration::ZERO, false), BreakerState::HalfOpen);
        assert_eq!(h.breaker(Duration::ZERO, true), BreakerState::Open);
        h.probed(true, None, Duration::from_secs(60));
        assert_eq!(
            h.breaker(Duration::from_secs(60), true),
            BreakerState::Open,
            "cooldown"
        );
        h.probed(true, None, Duration::ZERO);
        assert_eq!(h.breaker(Duration::ZERO, true), BreakerState::Closed);
        h.trip(&"again");
        h.succeeded();
        assert_eq!(
            h.breaker(Duration::from_secs(60), false),
            BreakerState::Closed
        );
        assert_eq!(h.last_error().as_deref(), Some("again"));
    }
}
