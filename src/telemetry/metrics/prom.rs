//! The Prometheus side of the metrics (feature `metrics`).

use std::sync::Weak;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use sqlx::Database;

use crate::classify::Classifier;
use crate::route::{Decision, Target, REASON_LABELS};
use crate::topology::{BreakerState, Topology};

use super::{CausalOutcome, FallbackCause, RetryCause};

/// OpenTelemetry's advisory buckets for `db.client.operation.duration`.
pub(crate) const DURATION_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Operation label values; anything else is `OTHER`.
const OPERATIONS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "OTHER"];

/// The index of `op` in [`OPERATIONS`] (a `match`: compared as short integers, not by a
/// search of the table; `operations_are_indexed_as_listed` keeps the two in step).
#[inline]
fn operation_index(op: &str) -> usize {
    match op {
        "SELECT" => 0,
        "INSERT" => 1,
        "UPDATE" => 2,
        "DELETE" => 3,
        _ => 4,
    }
}

/// Handles bound for one server: duration by operation and outcome (ok, error).
#[derive(Debug)]
struct ServerHandles {
    duration: Vec<[Histogram; 2]>,
}

/// The per-call metrics of one pool.
#[derive(Debug)]
pub(crate) struct Metrics {
    servers: Vec<ServerHandles>,
    /// By [`Target`], then by [`crate::route::Reason::ordinal`].
    routed: Vec<Vec<IntCounter>>,
    /// By [`RetryCause`].
    retries: Vec<IntCounter>,
    /// By [`FallbackCause`].
    fallbacks: Vec<IntCounter>,
    no_eligible: IntCounter,
    causal_wait: Histogram,
    /// By [`CausalOutcome`].
    causal: Vec<IntCounter>,
}

fn opts(name: &str, help: &str, pool: Option<&str>) -> Opts {
    let o = Opts::new(name, help);
    match pool {
        Some(p) => o.const_label("pool", p),
        None => o,
    }
}

fn hopts(name: &str, help: &str, pool: Option<&str>) -> HistogramOpts {
    HistogramOpts {
        common_opts: opts(name, help, pool),
        buckets: DURATION_BUCKETS.to_vec(),
    }
}

impl Metrics {
    /// Registers the metrics. `servers` are (role, replica name) pairs, the primary first.
    pub(crate) fn register<DB: Database>(
        registry: &Registry,
        pool: Option<&str>,
        system: &'static str,
        servers: &[(&'static str, &str)],
        topology: Weak<Topology<DB>>,
        classifier: Classifier,
    ) -> Result<Metrics, prometheus::Error> {
        let duration = HistogramVec::new(
            hopts(
                "db_client_operation_duration_seconds",
                "Duration of database client operations (OpenTelemetry db.client.operation.duration).",
                pool,
            ),
            &["db_system", "role", "replica", "operation", "outcome"],
        )?;
        let routed = IntCounterVec::new(
            opts(
                "rwsplit_routed_statements_total",
                "Statements routed, by target and reason.",
                pool,
            ),
            &["target", "reason"],
        )?;
        let retries = IntCounterVec::new(
            opts(
                "rwsplit_retries_total",
                "Reads retried elsewhere after a replica failed.",
                pool,
            ),
            &["cause"],
        )?;
        let fallbacks = IntCounterVec::new(
            opts(
                "rwsplit_fallbacks_total",
                "Reads sent to the primary instead of a replica.",
                pool,
            ),
            &["cause"],
        )?;
        let no_eligible = IntCounter::with_opts(opts(
            "rwsplit_no_eligible_replica_total",
            "Reads that found no eligible replica.",
            pool,
        ))?;
        let causal_wait = Histogram::with_opts(hopts(
            "rwsplit_causal_wait_seconds",
            "Time read-your-writes reads waited for a replica to reach the session's position.",
            pool,
        ))?;
        let causal = IntCounterVec::new(
            opts(
                "rwsplit_causal_waits_total",
                "Read-your-writes reads that found no replica at the session's position, by \
                 outcome: served by a replica after waiting, sent to the primary at once because \
                 every replica lagged more than causal_wait_timeout, or sent there after waiting \
                 the whole timeout.",
                pool,
            ),
            &["outcome"],
        )?;
        let state = StateCollector::new(pool, topology, classifier)?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(routed.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(fallbacks.clone()))?;
        registry.register(Box::new(no_eligible.clone()))?;
        registry.register(Box::new(causal_wait.clone()))?;
        registry.register(Box::new(causal.clone()))?;
        registry.register(Box::new(state))?;

        let servers = servers
            .iter()
            .map(|(role, name)| ServerHandles {
                duration: OPERATIONS
                    .iter()
                    .map(|op| {
                        ["ok", "error"].map(|outcome| {
                            duration.with_label_values(&[system, role, name, op, outcome])
                        })
                    })
                    .collect(),
            })
            .collect();
        let routed = Target::ALL
            .iter()
            .map(|t| {
                REASON_LABELS
                    .iter()
                    .map(|r| routed.with_label_values(&[t.as_str(), r]))
                    .collect()
            })
            .collect();
        Ok(Metrics {
            servers,
            routed,
            retries: RetryCause::ALL
                .iter()
                .map(|c| retries.with_label_values(&[c.label()]))
                .collect(),
            fallbacks: FallbackCause::ALL
                .iter()
                .map(|c| fallbacks.with_label_values(&[c.label()]))
                .collect(),
            no_eligible,
            causal_wait,
            causal: CausalOutcome::ALL
                .iter()
                .map(|o| causal.with_label_values(&[o.label()]))
                .collect(),
        })
    }

    /// Records one call: `server` 0 is the primary, `i + 1` replica `i`.
    #[inline]
    pub(crate) fn observe(&self, server: usize, operation: &str, ok: bool, seconds: f64) {
        if let Some(s) = self.servers.get(server) {
            s.duration[operation_index(operation)][usize::from(!ok)].observe(seconds);
        }
    }

    #[inline]
    pub(crate) fn routed(&self, decision: &Decision) {
        self.routed[decision.target as usize][decision.reason.ordinal()].inc();
    }

    pub(crate) fn retry(&self, cause: RetryCause) {
        self.retries[cause as usize].inc();
    }

    pub(crate) fn fallback(&self, cause: FallbackCause) {
        if matches!(cause, FallbackCause::NoEligibleReplica) {
            self.no_eligible.inc();
        }
        self.fallbacks[cause as usize].inc();
    }

    pub(crate) fn causal_wait(&self, seconds: f64) {
        self.causal_wait.observe(seconds);
    }

    pub(crate) fn causal(&self, outcome: CausalOutcome) {
        self.causal[outcome as usize].inc();
    }
}

/// Reads server state and cache counters at scrape time.
struct StateCollector<DB: Database> {
    topology: Weak<Topology<DB>>,
    classifier: Classifier,
    lag: GaugeVec,
    up: IntGaugeVec,
    breaker: IntGaugeVec,
    connections: IntGaugeVec,
    cache: IntCounterVec,
    writer: IntGaugeVec,
    writer_changes: IntCounter,
    held_writes: IntGauge,
    descs: Vec<Desc>,
}

impl<DB: Database> StateCollector<DB> {
    fn new(
        pool: Option<&str>,
        topology: Weak<Topology<DB>>,
        classifier: Classifier,
    ) -> Result<Self, prometheus::Error> {
        let lag = GaugeVec::new(
            opts(
                "rwsplit_replica_lag_seconds",
                "Replication lag measured by the monitor.",
                pool,
            ),
            &["replica"],
        )?;
        let up = IntGaugeVec::new(
            opts(
                "rwsplit_server_up",
                "1 when the last probe found the server usable in its role.",
                pool,
            ),
            &["role", "replica"],
        )?;
        let breaker = IntGaugeVec::new(
            opts(
                "rwsplit_circuit_breaker_state",
                "Circuit breaker: 0 closed, 1 half-open, 2 open.",
                pool,
            ),
            &["role", "replica"],
        )?;
        let connections = IntGaugeVec::new(
            opts(
                "rwsplit_pool_connections",
                "Connections of each server's sqlx pool.",
                pool,
            ),
            &["role", "replica", "state"],
        )?;
        let cache = IntCounterVec::new(
            opts(
                "rwsplit_classifier_cache_total",
                "Classification cache lookups.",
                pool,
            ),
            &["result"],
        )?;
        let writer = IntGaugeVec::new(
            opts(
                "rwsplit_writer",
                "1 for the server writes go to now (it can change on a switchover), else 0.",
                pool,
            ),
            &["role", "replica"],
        )?;
        let writer_changes = IntCounter::with_opts(opts(
            "rwsplit_writer_changes_total",
            "Changes of the server writes go to (to none counts too).",
            pool,
        ))?;
        let held_writes = IntGauge::with_opts(opts(
            "rwsplit_held_writes",
            "Writes waiting for a writer now (write_hold).",
            pool,
        ))?;
        let descs = [
            lag.desc(),
            up.desc(),
            breaker.desc(),
            connections.desc(),
            cache.desc(),
            writer.desc(),
            writer_changes.desc(),
            held_writes.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(StateCollector {
            topology,
            classifier,
            lag,
            up,
            breaker,
            connections,
            cache,
            writer,
            writer_changes,
            held_writes,
            descs,
        })
    }
}

impl<DB: Database> Collector for StateCollector<DB> {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.classifier.cache_stats();
        let hit = self.cache.with_label_values(&["hit"]);
        hit.inc_by(stats.hits.saturating_sub(hit.get()));
        let miss = self.cache.with_label_values(&["miss"]);
        miss.inc_by(stats.misses.saturating_sub(miss.get()));
        let mut out = self.cache.collect();
        let Some(t) = self.topology.upgrade() else {
            return out;
        };
        let breaker_value = |b: BreakerState| match b {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        let server =
            |role: &str, name: &str, pool: &sqlx::Pool<DB>, health: &crate::topology::Health| {
                self.up
                    .with_label_values(&[role, name])
                    .set(i64::from(health.probe_ok()));
                self.breaker
                    .with_label_values(&[role, name])
                    .set(breaker_value(health.breaker(t.cooldown, t.monitored)));
                let size = i64::from(pool.size());
                let idle = pool.num_idle() as i64;
                let max = i64::from(pool.options().get_max_connections());
                for (state, v) in [("in_use", size - idle), ("idle", idle), ("max", max)] {
                    self.connections
                        .with_label_values(&[role, name, state])
                        .set(v);
                }
            };
        let writer = t.writer.current();
        for s in &t.servers {
            let (role, name) = if s.index == 0 {
                ("primary", "")
            } else {
                ("replica", &*s.name)
            };
            server(role, name, &s.pool, &s.health);
            self.writer
                .with_label_values(&[role, name])
                .set(i64::from(s.index == writer));
        }
        let changes = t.writer.changes.load(std::sync::atomic::Ordering::Relaxed);
        self.writer_changes
            .inc_by(changes.saturating_sub(self.writer_changes.get()));
        self.held_writes
            .set(t.writer.held.load(std::sync::atomic::Ordering::Relaxed) as i64);
        for r in t.replicas() {
            let lag = r.health.lag().map_or(f64::NAN, |l| l.as_secs_f64());
            self.lag.with_label_values(&[&r.name]).set(lag);
        }
        out.extend(self.lag.collect());
        out.extend(self.up.collect());
        out.extend(self.breaker.collect());
        out.extend(self.connections.collect());
        out.extend(self.writer.collect());
        out.extend(self.writer_changes.collect());
        out.extend(self.held_writes.collect());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_indexed_as_listed() {
        for (i, op) in OPERATIONS.iter().enumerate() {
            assert_eq!(operation_index(op), i, "{op}");
        }
        assert_eq!(operation_index("MERGE"), 4);
        assert_eq!(operation_index("select"), 4, "labels are upper case");
    }
}
