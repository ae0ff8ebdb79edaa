//! Telemetry: one `tracing` span per statement following the OpenTelemetry database semantic
//! conventions, plus the routing attributes under `rwsplit.*`, and Prometheus metrics.
//! Telemetry only observes: it reads the routing decision and the classifier's analysis (no
//! second parse) and never changes a route.
//!
//! Layer: state (observes `topology`, `classify` and `route`; below the router that records into it).

pub(crate) mod metrics;
pub(crate) mod span;

use std::time::Instant;

pub(crate) use metrics::{CausalOutcome, FallbackCause, Metrics, RetryCause};
pub(crate) use span::{call_span, record_outcome};

/// Times one call and records it on drop (also when the caller cancels the future).
pub(crate) struct CallTimer<'a> {
    metrics: Option<&'a Metrics>,
    server: usize,
    operation: &'static str,
    start: Instant,
    ok: bool,
}

impl<'a> CallTimer<'a> {
    /// A timer that started at `start` (the call engine reads the clock once, when it routes).
    #[inline]
    pub fn start(
        metrics: Option<&'a Metrics>,
        server: usize,
        operation: &'static str,
        start: Instant,
    ) -> Self {
        CallTimer {
            metrics,
            server,
            operation,
            start,
            ok: true,
        }
    }

    /// Marks the call failed.
    pub fn fail(&mut self) {
        self.ok = false;
    }
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.metrics {
            m.observe(
                self.server,
                self.operation,
                self.ok,
                self.start.elapsed().as_secs_f64(),
            );
        }
    }
}
