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
    /// Only read when there are metrics to record.
    start: Option<Instant>,
    ok: bool,
}

impl<'a> CallTimer<'a> {
    pub fn start(metrics: Option<&'a Metrics>, server: usize, operation: &'static str) -> Self {
        CallTimer {
            metrics,
            server,
            operation,
            start: metrics.map(|_| Instant::now()),
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
        if let (Some(m), Some(start)) = (self.metrics, self.start) {
            m.observe(
                self.server,
                self.operation,
                self.ok,
                start.elapsed().as_secs_f64(),
            );
        }
    }
}
