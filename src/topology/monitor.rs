//! The health monitor: one loop per server that probes role, replication and lag on an
//! interval, and at once when the data path asks for a verdict on a lost connection.
//!
//! Each loop runs on a thread of its own, on a current-thread Tokio runtime of its own, with
//! its own connection to its server (opened from the pool's connect options, never
//! taken from the pool). So a probe never queues behind application traffic in a saturated
//! pool, and never runs late because the application's runtime is busy (CPU-bound work on a
//! current-thread runtime, say): what a probe observes is the server, and only evidence about
//! the server (a refused or reset connection, a refused login, or
//! [`SILENT_PROBES`](super::health::SILENT_PROBES) probes in a row without an answer) opens its breaker. Loops hold only a `Weak` reference, so they
//! never keep a pool alive; they stop when the pool is closed or its last handle drops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_core::future::BoxFuture;
use sqlx::{ConnectOptions, Connection, Pool};
use tokio::sync::watch;

use super::health::Observation;
use super::writer::{self, Claim};
use super::{Health, Topology};
use crate::backend::{judge, Backend, ErrorClass, ReplicaProbe};
use crate::options::PoolOptions;

/// The running monitor: stops its loops when dropped or [`Monitor::stop`]ped.
#[derive(Debug)]
pub(crate) struct Monitor {
    stop: watch::Sender<bool>,
    alive: Arc<Running>,
}

/// The loops still running, and a signal when the last one ended.
#[derive(Debug, Default)]
struct Running {
    count: AtomicUsize,
    ended: tokio::sync::Notify,
}

impl Monitor {
    /// Loops still running.
    pub fn running(&self) -> usize {
        self.alive.count.load(Ordering::SeqCst)
    }

    /// Stops every loop (at its next wait).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every loop has ended and closed its connection, for at most `limit` (a loop
    /// in the middle of a probe of a server that does not answer ends when the probe times
    /// out). Whether they all ended.
    pub async fn ended(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let ended = self.alive.ended.notified();
                let mut ended = std::pin::pin!(ended);
                ended.as_mut().enable();
                if self.running() == 0 {
                    return;
                }
                ended.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// Counts a running loop until dropped.
struct Alive(Arc<Running>);

impl Alive {
    fn new(running: &Arc<Running>) -> Self {
        running.count.fetch_add(1, Ordering::SeqCst);
        Alive(running.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.ended.notify_waiters();
        }
    }
}

/// Starts the monitor: one thread per server, each with a current-thread runtime of its own,
/// so a server that hangs (or a slow connection handshake's CPU work) never delays the probes
/// of another.
pub(crate) fn spawn<DB: Backend>(
    topology: &Arc<Topology<DB>>,
    options: &PoolOptions,
) -> std::io::Result<Monitor> {
    let (stop, stopped) = watch::channel(false);
    let alive = Arc::new(Running::default());
    let weak = Arc::downgrade(topology);
    for server in 0..topology.servers.len() {
        // Counted before the thread starts, so `status()` sees the loop at once.
        let ctx = Loop {
            topology: weak.clone(),
            server,
            options: options.clone(),
            stopped: stopped.clone(),
            _alive: Alive::new(&alive),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("rwsplit-monitor-{server}"))
            .spawn(move || runtime.block_on(ctx.run()))?;
    }
    Ok(Monitor { stop, alive })
}

/// How often servers are probed while no writer is known (writes are held meanwhile), when
/// `monitor_interval` is longer.
const NO_WRITER_INTERVAL: Duration = Duration::from_millis(100);

/// One server's loop.
struct Loop<DB: Backend> {
    topology: Weak<Topology<DB>>,
    /// 0 for the configured primary, `i + 1` for replica `i`.
    server: usize,
    options: PoolOptions,
    stopped: watch::Receiver<bool>,
    _alive: Alive,
}

impl<DB: Backend> Loop<DB> {
    /// Probes until stopped, then closes its connection (so that once every loop has ended,
    /// none of the monitor's connections is open: `RoutingPool::close` waits for that).
    async fn run(mut self) {
        let mut conn: Option<DB::Connection> = None;
        self.probe_until_stopped(&mut conn).await;
        if let Some(conn) = conn {
            let _ = tokio::time::timeout(self.options.probe_timeout, conn.close()).await;
        }
    }

    async fn probe_until_stopped(&mut self, conn: &mut Option<DB::Connection>) {
        // When a replica stopped receiving while the primary was up, and its lag then.
        let mut lost: Option<(std::time::Instant, Duration)> = None;
        loop {
            if *self.stopped.borrow() {
                return;
            }
            let Some(t) = self.topology.upgrade() else {
                return;
            };
            // The writer is probed as a primary, every other server as a replica: roles
            // follow what the servers say, not the configuration.
            if t.writer.current() == self.server {
                lost = None;
                self.probe_writer(&t, conn).await;
            } else {
                self.probe_replica(&t, conn, &mut lost).await;
            }
            let health = t.health(self.server);
            // Wait for the next interval, a verification request, or the end. While no writer
            // is known, look again soon: held writes wait for the new one.
            let interval = if t.writer.current() == writer::NONE {
                self.options.monitor_interval.min(NO_WRITER_INTERVAL)
            } else {
                self.options.monitor_interval
            };
            let wake = health.wake_monitor.notified();
            let t = Arc::downgrade(&t);
            let stopped = &mut self.stopped;
            tokio::select! {
                biased;
                _ = stopped.changed() => return,
                _ = wake => {}
                _ = tokio::time::sleep(interval) => {}
            }
            drop(t);
        }
    }

    async fn probe_writer(&self, t: &Topology<DB>, conn: &mut Option<DB::Connection>) {
        let heartbeat = self.options.heartbeat_table.as_deref();
        let server = &t.servers[self.server];
        let ticket = server.health.probe_starts();
        let started = std::time::Instant::now();
        let observed = probe(
            &server.pool,
            conn,
            self.options.probe_timeout,
            heartbeat,
            DB::probe_primary,
        )
        .await;
        let (observation, claim) = match observed {
            Ok((p, at)) => {
                if let Some(system) = p.system {
                    let _ = t.system.set(system);
                }
                if let (Some(identity), None) = (&p.cluster, t.cluster.get()) {
                    let _ = t
                        .cluster
                        .set(crate::position::cluster_id(&[DB::NAME, identity]));
                }
                // A writer that turned read-only answered: it is demoted (the election moves
                // writes away from it), not down. Its breaker stays closed, so writes in
                // flight there finish where the server decides (commit, or refuse them as
                // read-only, and they move to the new writer).
                let claim = if p.writable {
                    Claim::Writable
                } else {
                    Claim::ReadOnly
                };
                (
                    Observation::Answered {
                        ok: true,
                        error: None,
                    },
                    Some((claim, at)),
                )
            }
            Err(o) => (o, None),
        };
        self.observed(t, observation, claim, started);
        server.health.probe_finished(ticket);
    }

    /// Records a probe's observation on server `self.server` and what it says about the
    /// server's role (evidence that it is down makes it `Down`).
    fn observed(
        &self,
        t: &Topology<DB>,
        observation: Observation,
        claim: Option<(Claim, std::time::Instant)>,
        started: std::time::Instant,
    ) {
        let server = &t.servers[self.server];
        let evidence = matches!(observation, Observation::Down(_));
        let open = {
            server.observed(observation, self.options.breaker_cooldown);
            server.health.is_open()
        };
        match claim {
            Some((claim, at)) => t.claim(self.server, claim, at),
            None if evidence || (open && !server.health.probe_ok()) => {
                t.claim(self.server, Claim::Down, started)
            }
            None => {}
        }
    }

    async fn probe_replica(
        &self,
        t: &Topology<DB>,
        conn: &mut Option<DB::Connection>,
        lost: &mut Option<(std::time::Instant, Duration)>,
    ) {
        let options = &self.options;
        let heartbeat = options.heartbeat_table.as_deref();
        let replica = &t.servers[self.server];
        let ticket = replica.health.probe_starts();
        let started = std::time::Instant::now();
        let observed = probe(
            &replica.pool,
            conn,
            options.probe_timeout,
            heartbeat,
            DB::probe_replica,
        )
        .await;
        let primary_up = t.writer().is_some_and(|w| w.health.probe_ok()) && t.writer_ready();
        let mut measured = (Duration::ZERO, std::time::Instant::now());
        let mut claim = None;
        let (observation, lag) = match observed {
            Ok((p, started)) => {
                measured = (p.lag_rounding, started);
                let role = if p.writable {
                    Claim::Writable
                } else {
                    Claim::ReadOnly
                };
                claim = Some((role, started));
                if let Ok(mut applied) = replica.applied.write() {
                    applied.clone_from(&p.position);
                }
                let last = replica.health.lag();
                if p.receiving || !primary_up {
                    *lost = None;
                } else if lost.is_none() {
                    *lost = Some((std::time::Instant::now(), last.unwrap_or_default()));
                }
                let since = lost.map(|(at, lag)| lag + at.elapsed());
                let (ok, error, lag) = judge_replica(&p, primary_up, last, since);
                (Observation::Answered { ok, error }, Some(lag))
            }
            Err(o) => (o, None),
        };
        // An answer sets the lag; evidence of an outage makes it unknown; a silent probe
        // leaves it as it was.
        let lag = match (&observation, lag) {
            (_, Some(lag)) => Some(lag),
            (Observation::Silent(_), None) => None,
            _ => Some(None),
        };
        self.observed(t, observation, claim, started);
        if let Some(lag) = lag {
            let (rounding, started) = measured;
            replica.health.set_lag(
                lag,
                rounding,
                started,
                options.max_replica_lag,
                options.lag_hysteresis,
            );
        }
        replica.health.probe_finished(ticket);
    }
}

/// One probe on the monitor's own connection, opening it first when needed, with the instant
/// its statements started (after the connection was open: lag bounds count from there). A
/// connection that broke is opened again and the probe tried once more before anything is
/// concluded, so a monitor connection killed by an administrator is not mistaken for a dead
/// server.
async fn probe<DB, T, F>(
    pool: &Pool<DB>,
    conn: &mut Option<DB::Connection>,
    timeout: Duration,
    heartbeat: Option<&str>,
    run: F,
) -> Result<(T, std::time::Instant), Observation>
where
    DB: Backend,
    F: for<'c> Fn(&'c mut DB::Connection, Option<&'c str>) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    let silent = || Observation::Silent(format!("no answer within {timeout:?}"));
    for attempt in 0..2 {
        let c = match conn {
            Some(c) => c,
            None => {
                let options = pool.connect_options();
                match tokio::time::timeout(timeout, options.connect()).await {
                    Ok(Ok(c)) => conn.insert(c),
                    Ok(Err(e)) => return Err(Observation::Down(e.to_string())),
                    Err(_) => return Err(silent()),
                }
            }
        };
        let started = std::time::Instant::now();
        match tokio::time::timeout(timeout, run(c, heartbeat)).await {
            Ok(Ok(v)) => return Ok((v, started)),
            Ok(Err(e)) => {
                *conn = None;
                match judge::<DB>(&e) {
                    ErrorClass::ConnectionLost if attempt == 0 => continue,
                    ErrorClass::ConnectionLost | ErrorClass::ServerDown => {
                        return Err(Observation::Down(e.to_string()))
                    }
                    // The server answered, but not as a healthy server of its role does.
                    _ => {
                        return Err(Observation::Answered {
                            ok: false,
                            error: Some(e.to_string()),
                        })
                    }
                }
            }
            // The connection is kept: sqlx waits for it to be ready before its next use, so
            // a slow server is asked again without the cost of a new connection (which on a
            // loaded machine could make every following probe late too); a hung one stays
            // silent and is judged by the count of silent probes.
            Err(_) => return Err(silent()),
        }
    }
    Err(silent())
}

impl<DB: Backend> Topology<DB> {
    /// The health of server `index` (0: the configured primary, `i + 1`: replica `i`).
    pub fn health(&self, index: usize) -> &Health {
        &self.servers[index].health
    }
}

/// Decides whether a probed replica may serve reads, and its lag.
///
/// A replica that stopped applying is broken. One that stopped receiving keeps serving with
/// an honest lag estimate: while the primary is down, nothing new is written, so its last lag
/// holds; while the primary is up, its staleness grows with the time since it lost the stream
/// (`since_lost`), so the lag bound excludes it once that is too long.
fn judge_replica(
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
            lag_rounding: Duration::ZERO,
            position: None,
        }
    }

    #[test]
    fn healthy_replica_reports_its_lag() {
        let (ok, err, lag) = judge_replica(&probe(false, true, true, Some(3)), true, None, None);
        assert!(ok && err.is_none());
        assert_eq!(lag, Some(Duration::from_secs(3)));
    }

    #[test]
    fn writable_or_stopped_replicas_are_out() {
        assert!(!judge_replica(&probe(true, true, true, Some(0)), true, None, None).0);
        assert!(!judge_replica(&probe(false, true, false, Some(0)), true, None, None).0);
        assert!(!judge_replica(&probe(false, true, true, None), true, None, None).0);
    }

    #[test]
    fn primary_down_keeps_replicas_serving_at_their_last_lag() {
        let last = Some(Duration::from_secs(1));
        let (ok, _, lag) = judge_replica(&probe(false, false, true, None), false, last, None);
        assert!(ok);
        assert_eq!(lag, last);
    }

    #[test]
    fn a_replica_cut_off_from_a_live_primary_ages() {
        let since = Some(Duration::from_secs(40));
        let (ok, why, lag) = judge_replica(&probe(false, false, true, None), true, None, since);
        assert!(ok, "eligibility is left to the lag bound");
        assert!(why.is_some());
        assert_eq!(lag, since);
    }
}
