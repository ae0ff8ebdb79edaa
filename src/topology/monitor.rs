//! The health monitor: one task per server that probes role, replication and lag on an
//! interval. Tasks hold only a `Weak` reference, so they never keep a pool alive, and the pool
//! aborts them when its last handle drops.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Topology;
use crate::backend::{Backend, ReplicaProbe};
use crate::options::PoolOptions;

/// Spawns the monitor tasks. Needs a Tokio runtime.
pub(crate) fn spawn<DB: Backend>(
    topology: &Arc<Topology<DB>>,
    options: &PoolOptions,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(topology.replicas.len() + 1);
    let weak = Arc::downgrade(topology);
    tasks.push(tokio::spawn(watch_primary(weak.clone(), options.clone())));
    for index in 0..topology.replicas.len() {
        tasks.push(tokio::spawn(watch_replica(
            weak.clone(),
            index,
            options.clone(),
        )));
    }
    tasks
}

async fn watch_primary<DB: Backend>(topology: Weak<Topology<DB>>, options: PoolOptions) {
    let heartbeat = options.heartbeat_table.as_deref();
    loop {
        let Some(t) = topology.upgrade() else { return };
        let probe = tokio::time::timeout(
            options.probe_timeout,
            DB::probe_primary(&t.primary, heartbeat),
        )
        .await;
        if let Ok(Ok(p)) = &probe {
            if let Some(system) = p.system {
                let _ = t.system.set(system);
            }
        }
        let (ok, error) = match probe {
            Ok(Ok(p)) if p.writable => (true, None),
            Ok(Ok(_)) => (
                false,
                Some(
                    "primary is read-only (failed over?): writes fail until it is writable".into(),
                ),
            ),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (
                false,
                Some(format!("no answer within {:?}", options.probe_timeout)),
            ),
        };
        t.primary_health.probed(ok, error, options.breaker_cooldown);
        drop(t);
        tokio::time::sleep(options.monitor_interval).await;
    }
}

async fn watch_replica<DB: Backend>(
    topology: Weak<Topology<DB>>,
    index: usize,
    options: PoolOptions,
) {
    let heartbeat = options.heartbeat_table.as_deref();
    // When the replica stopped receiving while the primary was up, and its lag then.
    let mut lost: Option<(std::time::Instant, Duration)> = None;
    loop {
        let Some(t) = topology.upgrade() else { return };
        let replica = &t.replicas[index];
        let probe = tokio::time::timeout(
            options.probe_timeout,
            DB::probe_replica(&replica.pool, heartbeat),
        )
        .await;
        let primary_up = t.primary_health.probe_ok() && !t.primary_down();
        if let Ok(Ok(p)) = &probe {
            if let Ok(mut applied) = replica.applied.write() {
                applied.clone_from(&p.position);
            }
        }
        let (ok, error, lag) = match probe {
            Ok(Ok(p)) => {
                let last = replica.health.lag();
                if p.receiving || !primary_up {
                    lost = None;
                } else if lost.is_none() {
                    lost = Some((std::time::Instant::now(), last.unwrap_or_default()));
                }
                judge(
                    &p,
                    primary_up,
                    last,
                    lost.map(|(at, lag)| lag + at.elapsed()),
                )
            }
            Ok(Err(e)) => (false, Some(e.to_string()), None),
            Err(_) => (
                false,
                Some(format!("no answer within {:?}", options.probe_timeout)),
                None,
            ),
        };
        replica.health.probed(ok, error, options.breaker_cooldown);
        replica
            .health
            .set_lag(lag, options.max_replica_lag, options.lag_hysteresis);
        drop(t);
        tokio::time::sleep(options.monitor_interval).await;
    }
}

/// Decides whether a probed replica may serve reads, and its lag.
///
/// A replica that stopped applying is broken. One that stopped receiving keeps serving with
/// an honest lag estimate: while the primary is down, nothing new is written, so its last lag
/// holds; while the primary is up, its staleness grows with the time since it lost the stream
/// (`since_lost`), so the lag bound excludes it once that is too long.
fn judge(
    p: &ReplicaProbe,
    primary_up: bool,
    last_lag: Option<Duration>,
    since_lost: Option<Duration>,
) -> (bool, Option<String>, Option<Duration>) {
    if p.writable {
        let why = "replica is writable (read_only is off): not used for reads until fixed";
        return (false, Some(why.into()), p.lag);
    }
    if !p.applying {
        let why = "replication broken: the apply (SQL) thread is not running";
        return (false, Some(why.into()), None);
    }
    if !p.receiving {
        let lag = match since_lost {
            Some(estimate) if primary_up => Some(estimate),
            _ => last_lag.or(p.lag).or(Some(Duration::ZERO)),
        };
        let why = "not receiving from the primary; lag estimated from the time since";
        return (true, Some(why.into()), lag);
    }
    match p.lag {
        Some(lag) => (true, None, Some(lag)),
        None if !primary_up => (true, None, last_lag.or(Some(Duration::ZERO))),
        None => (false, Some("replication lag unknown".into()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(writable: bool, receiving: bool, applying: bool, lag: Option<u64>) -> ReplicaProbe {
        ReplicaProbe {
            writable,
            receiving,
            applying,
            lag: lag.map(Duration::from_secs),
            position: None,
        }
    }

    #[test]
    fn healthy_replica_reports_its_lag() {
        let (ok, err, lag) = judge(&probe(false, true, true, Some(3)), true, None, None);
        assert!(ok && err.is_none());
        assert_eq!(lag, Some(Duration::from_secs(3)));
    }

    #[test]
    fn writable_or_stopped_replicas_are_out() {
        assert!(!judge(&probe(true, true, true, Some(0)), true, None, None).0);
        assert!(!judge(&probe(false, true, false, Some(0)), true, None, None).0);
        assert!(!judge(&probe(false, true, true, None), true, None, None).0);
    }

    #[test]
    fn primary_down_keeps_replicas_serving_at_their_last_lag() {
        let last = Some(Duration::from_secs(1));
        let (ok, _, lag) = judge(&probe(false, false, true, None), false, last, None);
        assert!(ok);
        assert_eq!(lag, last);
    }

    #[test]
    fn a_replica_cut_off_from_a_live_primary_ages() {
        let since = Some(Duration::from_secs(40));
        let (ok, why, lag) = judge(&probe(false, false, true, None), true, None, since);
        assert!(ok, "eligibility is left to the lag bound");
        assert!(why.is_some());
        assert_eq!(lag, since);
    }
}
