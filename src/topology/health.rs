//! Live health of one server: the monitor's last verdict, replica lag with hysteresis, and a
//! circuit breaker that the data path opens on connection failures.
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
    /// Replica lag in microseconds, or `UNKNOWN`.
    lag_us: AtomicU64,
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
    pub fn succeeded(&self) {
        if self.opened_at.load(Ordering::Relaxed) != 0 {
            self.opened_at.store(0, Ordering::Relaxed);
        }
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

    /// Records replica lag and updates the hysteresis state for `bound`.
    pub fn set_lag(&self, lag: Option<Duration>, bound: Duration, hysteresis: f64) {
        let us = lag.map_or(UNKNOWN, |l| {
            l.as_micros().min(u128::from(UNKNOWN - 1)) as u64
        });
        self.lag_us.store(us, Ordering::Relaxed);
        let bound_us = bound.as_micros() as f64;
        let excluded = self.lag_excluded.load(Ordering::Relaxed);
        let now_excluded = if us == UNKNOWN {
            true
        } else if excluded {
            (us as f64) >= bound_us * hysteresis
        } else {
            (us as f64) > bound_us
        };
        self.lag_excluded.store(now_excluded, Ordering::Relaxed);
    }

    pub fn lag(&self) -> Option<Duration> {
        match self.lag_us.load(Ordering::Relaxed) {
            UNKNOWN => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn probe_ok(&self) -> bool {
        self.probe_ok.load(Ordering::Relaxed)
    }

    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Within the pool's lag bound (with hysteresis)?
    pub fn within_pool_bound(&self) -> bool {
        !self.lag_excluded.load(Ordering::Relaxed)
    }

    /// Within an explicit bound (no hysteresis: a per-call bound is a hard promise)?
    pub fn within(&self, bound: Duration) -> bool {
        self.lag().is_some_and(|l| l <= bound)
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
        h.set_lag(Some(Duration::from_secs(9)), bound, 0.8);
        assert!(h.within_pool_bound());
        h.set_lag(Some(Duration::from_secs(11)), bound, 0.8);
        assert!(!h.within_pool_bound());
        h.set_lag(Some(Duration::from_secs(9)), bound, 0.8);
        assert!(!h.within_pool_bound(), "9s is above 0.8 x 10s: still out");
        h.set_lag(Some(Duration::from_secs(7)), bound, 0.8);
        assert!(h.within_pool_bound());
        h.set_lag(None, bound, 0.8);
        assert!(
            !h.within_pool_bound(),
            "unknown lag is not within any bound"
        );
        assert!(!h.within(Duration::from_secs(100)));
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
