//! Which server takes writes: the writer is elected from what each server says about itself
//! (its monitor's probes, and a write the data path saw refused as read-only), never from the
//! configuration alone. The configured primary is the writer until a probe says otherwise.
//!
//! The rule ([`elect`]): exactly one server claims to be writable, it is the writer; none does,
//! there is no writer (writes are held, see `call`); two or more do, the claims are suspect
//! until every one of them has been confirmed by a probe that started after the conflict was
//! seen (a switchover makes the old writer read-only before the new one writable, so a fresh
//! look usually settles it), and then it is a split brain: writes are refused with a typed
//! error, never sent to one of them on a guess.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

/// `current` when no server is the writer.
pub(crate) const NONE: usize = usize::MAX;

/// What a server last said about its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Not probed yet.
    Unknown,
    /// Accepts writes (`read_only` off; PostgreSQL: not in recovery).
    Writable,
    /// Refuses writes (a replica, or a demoted primary).
    ReadOnly,
    /// Cannot be reached (evidence: refused or reset, or silent probe after probe).
    Down,
}

impl Claim {
    /// How a message names it.
    pub fn label(self) -> &'static str {
        match self {
            Claim::Unknown => "not probed yet",
            Claim::Writable => "writable",
            Claim::ReadOnly => "read-only",
            Claim::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    claim: Claim,
    /// When the probe (or the refused write) that made the claim started.
    at: Instant,
}

/// The election's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elected {
    /// The writer's index, or [`NONE`].
    pub writer: usize,
    /// Two or more servers confirmed writable by fresh probes: the indexes.
    pub split: Vec<usize>,
    /// Two or more claim to be writable but not all claims are fresh yet: ask for probes and
    /// hold writes meanwhile.
    pub suspect: bool,
}

/// Elects the writer from the servers' claims (see the module docs). `current` is the writer
/// so far; it stays the writer while it has not been probed yet (the configured primary at
/// start); `suspect_since` is when a conflict was first seen.
pub(crate) fn elect_from(
    claims: &[(Claim, Instant)],
    current: usize,
    suspect_since: Option<Instant>,
) -> Elected {
    let writable: Vec<usize> = (0..claims.len())
        .filter(|&i| claims[i].0 == Claim::Writable)
        .collect();
    match writable.len() {
        0 => {
            let unprobed = claims
                .get(current)
                .is_some_and(|(claim, _)| *claim == Claim::Unknown);
            Elected {
                writer: if unprobed { current } else { NONE },
                split: Vec::new(),
                suspect: false,
            }
        }
        1 => Elected {
            writer: writable[0],
            split: Vec::new(),
            suspect: false,
        },
        _ => {
            let confirmed =
                suspect_since.is_some_and(|since| writable.iter().all(|&i| claims[i].1 > since));
            Elected {
                writer: NONE,
                split: if confirmed { writable } else { Vec::new() },
                suspect: !confirmed,
            }
        }
    }
}

/// The live writer and the claims it was elected from.
#[derive(Debug)]
pub(crate) struct Writer {
    current: AtomicUsize,
    state: Mutex<State>,
    /// Woken on every change of the writer (held writes look again).
    changed: Notify,
    /// Writer changes so far (`rwsplit_writer_changes_total`).
    pub changes: AtomicU64,
    /// Writes waiting for a writer now.
    pub held: AtomicUsize,
}

#[derive(Debug)]
struct State {
    seen: Vec<Seen>,
    suspect_since: Option<Instant>,
    split: Vec<usize>,
}

/// A change the caller reports (an event, a breaker reset, monitors to wake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The writer before and after ([`NONE`]: none).
    pub from: usize,
    pub to: usize,
    /// The servers in a confirmed split brain (empty otherwise).
    pub split: Vec<usize>,
    /// Probes are wanted now: a conflict to settle, or no writer to find.
    pub probe: bool,
}

impl Writer {
    /// `servers` servers; server 0 (the configured primary) is the writer until a probe says
    /// otherwise.
    pub fn new(servers: usize) -> Self {
        let now = Instant::now();
        Writer {
            current: AtomicUsize::new(0),
            state: Mutex::new(State {
                seen: vec![
                    Seen {
                        claim: Claim::Unknown,
                        at: now,
                    };
                    servers
                ],
                suspect_since: None,
                split: Vec::new(),
            }),
            changed: Notify::new(),
            changes: AtomicU64::new(0),
            held: AtomicUsize::new(0),
        }
    }

    /// The writer's index, or [`NONE`].
    #[inline]
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// What each server said last, by index.
    pub fn claims(&self) -> Vec<Claim> {
        self.state
            .lock()
            .map(|s| s.seen.iter().map(|s| s.claim).collect())
            .unwrap_or_default()
    }

    /// The servers of a confirmed split brain (empty when there is none).
    pub fn split(&self) -> Vec<usize> {
        self.state
            .lock()
            .map(|s| s.split.clone())
            .unwrap_or_default()
    }

    /// Records what server `index` said in a probe (or a write refused) that started at `at`,
    /// and elects again. Returns the change, if anything changed or probes are wanted.
    pub fn claim(&self, index: usize, claim: Claim, at: Instant) -> Option<Change> {
        let mut state = self.state.lock().ok()?;
        let seen = state.seen.get_mut(index)?;
        // A claim older than the one recorded (a probe that started before a refused write was
        // seen) does not overwrite it.
        if at < seen.at && seen.claim != Claim::Unknown {
            return None;
        }
        let news = seen.claim != claim;
        *seen = Seen { claim, at };
        let claims: Vec<(Claim, Instant)> = state.seen.iter().map(|s| (s.claim, s.at)).collect();
        let from = self.current();
        let elected = elect_from(&claims, from, state.suspect_since);
        // The conflict lasts while two or more claim to be writable, confirmed or not.
        if elected.suspect || !elected.split.is_empty() {
            state.suspect_since.get_or_insert_with(Instant::now);
        } else {
            state.suspect_since = None;
        }
        let split_changed = state.split != elected.split;
        state.split.clone_from(&elected.split);
        self.current.store(elected.writer, Ordering::Release);
        drop(state);
        let moved = from != elected.writer;
        if moved {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        if moved || split_changed {
            self.changed.notify_waiters();
        }
        // Probes of every server are wanted while a conflict is unsettled, and when the writer
        // is lost or a server says something new while none is known. Not for a claim that
        // repeats the last one: each probe would wake every monitor again, and with no writer
        // the monitors would probe each other in a loop as fast as the servers answer (seen:
        // about 10,000 probes a second per server during a switchover test).
        let probe = elected.suspect
            || (elected.writer == NONE && elected.split.is_empty() && (news || moved));
        (moved || split_changed || probe).then_some(Change {
            from,
            to: elected.writer,
            split: elected.split,
            probe,
        })
    }

    /// A future that is ready at the next change of the writer (create it before looking at
    /// [`Writer::current`], so a change in between is not missed).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64, base: Instant) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn the_configured_primary_writes_until_probed() {
        let t0 = Instant::now();
        let claims = [(Claim::Unknown, t0), (Claim::Unknown, t0)];
        assert_eq!(elect_from(&claims, 0, None).writer, 0);
        let claims = [(Claim::Unknown, t0), (Claim::ReadOnly, t0)];
        assert_eq!(elect_from(&claims, 0, None).writer, 0);
    }

    #[test]
    fn one_writable_server_is_the_writer() {
        let t0 = Instant::now();
        let claims = [
            (Claim::ReadOnly, t0),
            (Claim::Writable, t0),
            (Claim::Down, t0),
        ];
        let e = elect_from(&claims, 0, None);
        assert_eq!((e.writer, e.suspect), (1, false));
        assert!(e.split.is_empty());
    }

    #[test]
    fn no_writable_server_means_no_writer() {
        let t0 = Instant::now();
        let claims = [(Claim::ReadOnly, t0), (Claim::ReadOnly, t0)];
        assert_eq!(elect_from(&claims, 0, None).writer, NONE);
        let claims = [(Claim::Down, t0), (Claim::ReadOnly, t0)];
        assert_eq!(elect_from(&claims, 0, None).writer, NONE);
    }

    #[test]
    fn two_writable_servers_are_suspect_until_fresh_probes_confirm_them() {
        let t0 = Instant::now();
        let stale = [(Claim::Writable, t0), (Claim::Writable, at(5, t0))];
        let e = elect_from(&stale, 0, None);
        assert_eq!((e.writer, e.suspect), (NONE, true));
        assert!(e.split.is_empty(), "not confirmed without a fresh look");
        // One claim predates the suspicion: still suspect.
        let e = elect_from(&stale, 0, Some(at(2, t0)));
        assert!(e.suspect && e.split.is_empty());
        // Both confirmed after it: split brain.
        let fresh = [(Claim::Writable, at(10, t0)), (Claim::Writable, at(11, t0))];
        let e = elect_from(&fresh, 0, Some(at(2, t0)));
        assert_eq!((e.writer, e.suspect, e.split), (NONE, false, vec![0, 1]));
    }

    #[test]
    fn a_switchover_moves_the_writer_through_no_writer() {
        let w = Writer::new(3);
        let t0 = Instant::now();
        assert_eq!(w.current(), 0);
        assert!(w.claim(0, Claim::Writable, at(1, t0)).is_none());
        assert!(w.claim(1, Claim::ReadOnly, at(1, t0)).is_none());
        // The old writer is made read-only: no writer, probes wanted.
        let c = w.claim(0, Claim::ReadOnly, at(2, t0)).unwrap();
        assert_eq!((c.from, c.to, c.probe), (0, NONE, true));
        // The new one is writable.
        let c = w.claim(1, Claim::Writable, at(3, t0)).unwrap();
        assert_eq!((c.from, c.to), (NONE, 1));
        assert_eq!(w.changes.load(Ordering::Relaxed), 2);
        // A stale probe of server 0 that started before its read-only claim changes nothing.
        assert!(w.claim(0, Claim::Writable, at(1, t0)).is_none());
        assert_eq!(w.current(), 1);
    }

    #[test]
    fn with_no_writer_only_news_asks_for_probes() {
        let w = Writer::new(2);
        let t0 = Instant::now();
        w.claim(0, Claim::Writable, at(1, t0));
        w.claim(1, Claim::ReadOnly, at(1, t0));
        let c = w.claim(0, Claim::ReadOnly, at(2, t0)).unwrap();
        assert_eq!(
            (c.to, c.probe),
            (NONE, true),
            "the writer is lost: probe all"
        );
        // The same claims again, probe after probe: nothing new, no wake-up of every monitor
        // (they would wake each other in a loop).
        for k in 3..10 {
            assert!(w.claim(0, Claim::ReadOnly, at(k, t0)).is_none());
            assert!(w.claim(1, Claim::ReadOnly, at(k, t0)).is_none());
        }
        // Something new while no writer is known: probe all.
        let c = w.claim(1, Claim::Down, at(10, t0)).unwrap();
        assert_eq!((c.to, c.probe), (NONE, true));
    }

    #[test]
    fn a_stale_writable_claim_is_settled_by_a_fresh_probe() {
        let w = Writer::new(2);
        let t0 = Instant::now();
        w.claim(0, Claim::Writable, t0);
        w.claim(1, Claim::ReadOnly, t0);
        // Server 1 is promoted before server 0's next probe saw it demoted.
        let c = w.claim(1, Claim::Writable, Instant::now()).unwrap();
        assert_eq!(c.to, NONE);
        assert!(c.probe && c.split.is_empty());
        let c = w.claim(0, Claim::ReadOnly, Instant::now()).unwrap();
        assert_eq!(c.to, 1);
        assert!(w.split().is_empty());
    }

    #[test]
    fn a_confirmed_split_brain_is_reported_and_ends_when_one_is_demoted() {
        let w = Writer::new(2);
        w.claim(0, Claim::Writable, Instant::now());
        w.claim(1, Claim::Writable, Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        w.claim(0, Claim::Writable, Instant::now());
        let c = w.claim(1, Claim::Writable, Instant::now()).unwrap();
        assert_eq!(c.split, vec![0, 1]);
        assert_eq!(w.split(), vec![0, 1]);
        // Later probes that say the same keep it confirmed.
        w.claim(0, Claim::Writable, Instant::now());
        assert_eq!(w.split(), vec![0, 1]);
        let c = w.claim(1, Claim::ReadOnly, Instant::now()).unwrap();
        assert_eq!((c.to, c.split.len()), (0, 0));
    }
}
