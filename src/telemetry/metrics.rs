//! Prometheus metrics on a registry the user passes in. Per-call metrics (operation duration,
//! routed statements) use label handles bound once at build time, so recording allocates
//! nothing. Server state (lag, up, breaker, connections) and cache counters are read at scrape
//! time by a collector, so the hot path pays nothing for them.
//!
//! Without the `metrics` feature, `Metrics` is a type with no values: a pool never has one,
//! and every recording site compiles to nothing.

#[cfg(feature = "metrics")]
mod prom;

#[cfg(feature = "metrics")]
pub(crate) use prom::Metrics;

pub(crate) use crate::route::FallbackCause;

crate::route::labeled! {
    /// Why a read was retried elsewhere (the `cause` of `rwsplit_retries_total`).
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum RetryCause {
        /// The replica is down (or could not be verified after a lost connection).
        Error = "replica_error",
        /// The replica gave no answer within `replica_timeout`.
        Timeout = "replica_timeout",
        /// The replica refused the statement as a write; it ran on the primary.
        Refused = "replica_refused",
    }
}

crate::route::labeled! {
    /// How a read-your-writes read that found no replica already at its position ended (the
    /// `outcome` of `rwsplit_causal_waits_total`).
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum CausalOutcome {
        /// Waited on a replica, which reached the position in time.
        Served = "served_after_wait",
        /// Went to the primary at once: every eligible replica lagged more than the budget.
        SkippedForLag = "skipped_for_lag",
        /// Waited the whole budget, then went to the primary.
        TimedOut = "timed_out",
    }
}

/// Stands in for the Prometheus metrics without the `metrics` feature: no value of it exists.
#[cfg(not(feature = "metrics"))]
#[derive(Debug)]
pub(crate) enum Metrics {}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    pub(crate) fn observe(&self, _server: usize, _operation: &str, _ok: bool, _seconds: f64) {
        match *self {}
    }

    pub(crate) fn routed(&self, _decision: &crate::route::Decision) {
        match *self {}
    }

    pub(crate) fn retry(&self, _cause: RetryCause) {
        match *self {}
    }

    pub(crate) fn fallback(&self, _cause: FallbackCause) {
        match *self {}
    }

    pub(crate) fn causal_wait(&self, _seconds: f64) {
        match *self {}
    }

    pub(crate) fn causal(&self, _outcome: CausalOutcome) {
        match *self {}
    }
}
