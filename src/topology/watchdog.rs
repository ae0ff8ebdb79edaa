//! Abandons replica calls that get no answer within `replica_timeout`, without arming a timer
//! per call.
//!
//! A per-call `tokio::time::timeout` costs a timer-wheel insertion and removal (a lock on the
//! runtime's timer shard each) plus a large `Sleep` inside every call's future, on every read,
//! to catch a replica that hangs perhaps once a year. Instead each replica keeps one
//! [`Watchdog`]: a call that is still waiting after its first poll registers its waker and its
//! start time (one short lock, on the shard of the replica's list that belongs to its thread),
//! and one ticker task per replica, running only while calls are registered, wakes the calls
//! that have waited past the bound. A woken call sees that it expired and gives up. A call is
//! therefore abandoned between the bound and the bound plus one tick ([`tick_period`]: an
//! eighth of the bound, at most one second), never before the bound. [`Watchdog::expire_all`]
//! (the server's breaker opened) ends the calls registered then and those that register later
//! but were set up before it ran.
//!
//! The ticker runs on the runtime of the call that started it; a runtime that stops being
//! driven (kept alive but no longer polled) stops the ticker, and its calls then age no further
//! (the watchdog measures time it saw pass, see `observed_us`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Waker};
use std::time::Duration;

// Tokio's clock (the same as std's unless a test pauses time), so tests run in virtual time.
use tokio::time::Instant;

/// How often the ticker looks for expired calls: an eighth of the bound, between 1 ms and 1 s.
pub(crate) fn tick_period(limit: Duration) -> Duration {
    (limit / 8).clamp(Duration::from_millis(1), Duration::from_secs(1))
}

/// `d` in whole microseconds, saturating (the unit of `observed_us`).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Ticks without any registered call after which the ticker stops (the next registration
/// starts a new one).
const IDLE_TICKS: u32 = 16;

/// The registered calls of one replica, sharded by the registering thread so that worker
/// threads never wait for each other (a lock holder preempted on a busy machine would
/// otherwise stall every other worker thread).
#[derive(Debug)]
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: Duration,
    period: Duration,
    shards: Box<[Shard]>,
    /// Bumped whenever the ticker expires calls, so a call polled again only takes the lock to
    /// ask whether it expired when something expired since it last looked.
    fired: AtomicU64,
    /// Bumped by [`Watchdog::expire_all`] before it looks at the lists, so a call that
    /// registers after it looked (it was routed while the server seemed fine, and first waited
    /// once the server was known down) still ends: it compares the count with the one it saw
    /// when it was set up.
    downs: AtomicU64,
    /// A ticker task is running (or was spawned and has not yet stopped).
    ticking: AtomicBool,
    /// The time the ticker has seen pass, in microseconds: each tick adds the time since the
    /// last one, but never more than two periods. A runtime that did not poll at all (a
    /// blocked current-thread runtime) therefore ages no call: a server's answer that sat
    /// unread in a socket meanwhile is not mistaken for silence.
    observed_us: AtomicU64,
}

/// One shard, alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Waiters>);

#[derive(Debug, Default)]
struct Waiters {
    slots: Vec<Option<Waiter>>,
    /// Indexes of the empty slots.
    free: Vec<usize>,
}

impl Waiters {
    /// Calls registered in this shard.
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[derive(Debug)]
struct Waiter {
    /// `observed_us` when the call registered.
    since_us: u64,
    waker: Waker,
    expired: bool,
}

/// The shard a thread registers in: threads are numbered in the order they first register.
fn shard_of_this_thread(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static THREAD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    // `try_with`: a thread tearing down its thread-locals still gets a shard.
    THREAD.try_with(|t| *t).unwrap_or(0) % shards
}

impl Watchdog {
    pub fn new(limit: Duration) -> Self {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (threads * 2).clamp(4, 64);
        Watchdog {
            shared: Arc::new(Shared {
                limit,
                period: tick_period(limit),
                shards: (0..shards).map(|_| Shard::default()).collect(),
                fired: AtomicU64::new(0),
                observed_us: AtomicU64::new(0),
                downs: AtomicU64::new(0),
                ticking: AtomicBool::new(false),
            }),
        }
    }

    /// A watchdog without a bound: nothing expires with time, only [`Watchdog::expire_all`]
    /// ends the watched calls (the primary's calls when its breaker opens). No ticker runs.
    pub fn unbounded() -> Self {
        Self::new(Duration::MAX)
    }

    /// Expires every call registered now and wakes it (its server is known to be down).
    pub fn expire_all(&self) {
        self.shared.downs.fetch_add(1, Ordering::SeqCst);
        for i in 0..self.shared.shards.len() {
            let mut w = self.shared.lock(i);
            for waiter in w.slots.iter_mut().flatten() {
                if !waiter.expired {
                    self.shared.expire_one(waiter);
                }
            }
        }
    }

    /// Starts watching one call. Nothing is registered until [`Watch::pending`] is first
    /// called, so a call that completes on its first poll costs nothing here.
    #[inline]
    pub fn watch(&self) -> Watch<'_> {
        Watch::unregistered(&self.shared, self.shared.downs.load(Ordering::SeqCst))
    }

    /// Calls registered now (for tests).
    #[cfg(test)]
    pub fn registered(&self) -> usize {
        self.shared.live()
    }
}

impl Shared {
    fn lock(&self, shard: usize) -> MutexGuard<'_, Waiters> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Calls registered now, over all shards.
    fn live(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).live()).sum()
    }

    /// Wakes the calls registered for longer than the bound, by the time the ticker has seen
    /// pass (`observed_us`). Returns whether any call is still registered.
    fn expire(&self) -> bool {
        let now = self.observed_us.load(Ordering::Acquire);
        let limit = micros(self.limit);
        let mut live = false;
        for i in 0..self.shards.len() {
            let mut w = self.lock(i);
            live |= w.live() > 0;
            for waiter in w.slots.iter_mut().flatten() {
                if !waiter.expired && now.saturating_sub(waiter.since_us) >= limit {
                    self.expire_one(waiter);
                }
            }
        }
        live
    }

    /// Marks one waiter expired (its shard is locked) and wakes it. `fired` moves *before* the
    /// wake: the woken call may be polled at once on another worker thread, and a poll that
    /// still saw the old `fired` would take [`Watch::pending`]'s fast path, return `Pending`,
    /// and never be woken again (the waiter is already marked expired), leaving a call on a
    /// hung server waiting for sqlx's own timeout.
    fn expire_one(&self, waiter: &mut Waiter) {
        waiter.expired = true;
        self.fired.fetch_add(1, Ordering::Release);
        waiter.waker.wake_by_ref();
    }

    /// Starts the ticker unless one runs.
    fn ensure_ticker(self: &Arc<Self>) {
        if self.limit == Duration::MAX
            || self.ticking.load(Ordering::SeqCst)
            || self
                .ticking
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        if !spawn_ticker(self) {
            // No Tokio runtime to run the ticker on: the bound cannot be enforced here.
            self.ticking.store(false, Ordering::SeqCst);
        }
    }
}

/// Identifies a waker without cloning it (the same test as [`Waker::will_wake`]).
fn waker_id(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

/// One watched call; deregisters on drop (also when the caller cancels it).
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    shared: &'a Arc<Shared>,
    /// `downs` when the watch was set up.
    downs: u64,
    /// (shard, key) once registered.
    slot: Option<(usize, usize)>,
    seen: u64,
    waker_id: (usize, usize),
}

impl<'a> Watch<'a> {
    /// A new watch on the same watchdog, for the same call, with a new bound counted from its
    /// first `pending`. It keeps this watch's view of [`Watchdog::expire_all`]: one that ran
    /// since this watch was set up ends the new one too (it may have passed the lists while
    /// neither was registered).
    pub fn renew(&self) -> Watch<'a> {
        Watch::unregistered(self.shared, self.downs)
    }

    /// A watch on `shared` that registers at its first `pending`, having seen `downs`.
    fn unregistered(shared: &'a Arc<Shared>, downs: u64) -> Watch<'a> {
        Watch {
            shared,
            downs,
            slot: None,
            seen: 0,
            waker_id: (0, 0),
        }
    }

    /// The watched future returned `Pending`: registers the call (first time) or refreshes its
    /// waker, and says whether the call has waited past the bound.
    pub fn pending(&mut self, cx: &Context<'_>) -> bool {
        let id = waker_id(cx.waker());
        let Some((shard, key)) = self.slot else {
            return self.register(cx.waker(), id);
        };
        let fired = self.shared.fired.load(Ordering::Acquire);
        if fired == self.seen && id == self.waker_id {
            return false;
        }
        self.seen = fired;
        self.waker_id = id;
        let mut w = self.shared.lock(shard);
        match w.slots.get_mut(key).and_then(Option::as_mut) {
            Some(waiter) => {
                if !waiter.waker.will_wake(cx.waker()) {
                    waiter.waker = cx.waker().clone();
                }
                waiter.expired
            }
            None => false,
        }
    }

    /// Registers the call; returns whether it already ended (an [`Watchdog::expire_all`] ran
    /// since the watch was set up).
    fn register(&mut self, waker: &Waker, id: (usize, usize)) -> bool {
        // `observed_us` only moves at ticks: a call registering between two ticks counts from
        // the next one, so it is never abandoned before the bound (at most one tick after).
        let since_us = self
            .shared
            .observed_us
            .load(Ordering::Acquire)
            .saturating_add(micros(self.shared.period));
        let waiter = Waiter {
            since_us,
            waker: waker.clone(),
            expired: false,
        };
        self.seen = self.shared.fired.load(Ordering::Acquire);
        self.waker_id = id;
        let shard = shard_of_this_thread(self.shared.shards.len());
        {
            let mut w = self.shared.lock(shard);
            let key = match w.free.pop() {
                Some(key) => {
                    w.slots[key] = Some(waiter);
                    key
                }
                None => {
                    w.slots.push(Some(waiter));
                    w.slots.len() - 1
                }
            };
            self.slot = Some((shard, key));
        }
        // `expire_all` bumps `downs` before it locks a shard: either it locked this shard after
        // the insert above (and expired this call), or its bump is visible here.
        if self.shared.downs.load(Ordering::SeqCst) != self.downs {
            let mut w = self.shared.lock(shard);
            if let Some(Some(waiter)) = self.slot.and_then(|(_, key)| w.slots.get_mut(key)) {
                waiter.expired = true;
            }
            // The next `pending` looks at the slot instead of taking the fast path.
            self.waker_id = (0, 0);
            return true;
        }
        self.shared.ensure_ticker();
        false
    }
}

impl Drop for Watch<'_> {
    #[inline]
    fn drop(&mut self) {
        // Most calls answer at their first poll and never register.
        if let Some((shard, key)) = self.slot {
            self.unregister(shard, key);
        }
    }
}

impl Watch<'_> {
    #[cold]
    fn unregister(&self, shard: usize, key: usize) {
        let mut w = self.shared.lock(shard);
        if let Some(slot) = w.slots.get_mut(key) {
            if slot.take().is_some() {
                w.free.push(key);
            }
        }
    }
}

fn spawn_ticker(shared: &Arc<Shared>) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let weak = Arc::downgrade(shared);
    let period = shared.period;
    // Made before the task: a task dropped before its first poll (its runtime shutting down)
    // still clears the flag, or no ticker would ever start again for this server.
    let stopped = TickerStopped(weak.clone());
    runtime.spawn(async move {
        let mut stopped = stopped;
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        let mut idle = 0;
        let mut last = Instant::now();
        let cap = micros(period * 2);
        loop {
            interval.tick().await;
            let Some(shared) = weak.upgrade() else { return };
            let now = Instant::now();
            let seen = micros(now.saturating_duration_since(last)).min(cap);
            last = now;
            shared.observed_us.fetch_add(seen, Ordering::AcqRel);
            if shared.expire() {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle >= IDLE_TICKS {
                // Stop, unless a call registered meanwhile: a registration inserts first and
                // then starts a ticker if none runs, so after clearing the flag, either it
                // sees the flag clear or this sees its entry.
                shared.ticking.store(false, Ordering::SeqCst);
                if shared.live() == 0
                    || shared
                        .ticking
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                {
                    // The flag is already clear, and may already belong to a new ticker:
                    // leaving must not clear it again.
                    stopped.disarm();
                    return;
                }
                idle = 0;
            }
        }
    });
    true
}

/// Marks the ticker stopped when its task is dropped early (runtime shutdown, or the pool
/// dropped), so the next registration starts a new one.
struct TickerStopped(Weak<Shared>);

impl TickerStopped {
    /// The ticker stops on its own and has cleared the flag itself.
    fn disarm(&mut self) {
        self.0 = Weak::new();
    }
}

impl Drop for TickerStopped {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(shared) = self.0.upgrade() {
            shared.ticking.store(false, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::{pending, poll_fn, Future};
    use std::task::Poll;

    use super::*;

    /// Runs `fut` watched: `true` when the watchdog expired it first.
    async fn watched<F: Future>(wd: &Watchdog, fut: F) -> bool {
        let mut watch = wd.watch();
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| {
            if fut.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            if watch.pending(cx) {
                Poll::Ready(true)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_is_abandoned_between_the_bound_and_one_tick_later() {
        let limit = Duration::from_millis(800);
        let wd = Watchdog::new(limit);
        let start = Instant::now();
        assert!(watched(&wd, pending::<()>()).await);
        let waited = start.elapsed();
        assert!(waited >= limit, "gave up after {waited:?}");
        assert!(waited <= limit + tick_period(limit) * 2, "{waited:?}");
        assert_eq!(wd.registered(), 0, "deregistered on completion");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_call_deregisters_and_the_ticker_stops_when_idle() {
        let limit = Duration::from_secs(5);
        let wd = Watchdog::new(limit);
        let cancelled =
            tokio::time::timeout(Duration::from_millis(10), watched(&wd, pending::<()>())).await;
        assert!(cancelled.is_err());
        assert_eq!(wd.registered(), 0);
        assert!(
            wd.shared.ticking.load(Ordering::SeqCst),
            "ticker started by the registration"
        );
        tokio::time::sleep(tick_period(limit) * (IDLE_TICKS + 2)).await;
        assert!(
            !wd.shared.ticking.load(Ordering::SeqCst),
            "ticker stopped after idling"
        );
        // a new registration starts it again, and it expires the call
        assert!(watched(&wd, pending::<()>()).await);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_answer_in_time_are_not_expired() {
        let limit = Duration::from_millis(400);
        let wd = Watchdog::new(limit);
        for _ in 0..3 {
            assert!(!watched(&wd, tokio::time::sleep(limit * 3 / 4)).await);
        }
        // many at once, alongside one that hangs
        let (hung, fine) = tokio::join!(
            watched(&wd, pending::<()>()),
            watched(&wd, tokio::time::sleep(limit / 2))
        );
        assert!(hung && !fine);
        assert_eq!(wd.registered(), 0);
    }

    /// Records what a poll made at the moment of the wake would see of `fired`.
    struct SeesFired {
        shared: Arc<Shared>,
        at_wake: Mutex<Vec<u64>>,
    }

    impl std::task::Wake for SeesFired {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let fired = self.shared.fired.load(Ordering::Acquire);
            self.at_wake.lock().unwrap().push(fired);
        }
    }

    /// The woken call may be polled on another thread before the waker returns: by then
    /// `fired` must already have moved, or that poll takes the fast path, stays pending and is
    /// never woken again (a read on a hung replica then waited for sqlx's acquire timeout).
    #[test]
    fn an_expired_call_is_woken_only_after_the_expiry_is_visible() {
        for by_time in [true, false] {
            let wd = Watchdog::new(Duration::from_millis(100));
            let seer = Arc::new(SeesFired {
                shared: wd.shared.clone(),
                at_wake: Mutex::new(Vec::new()),
            });
            let waker = Waker::from(seer.clone());
            let cx = Context::from_waker(&waker);
            let mut watch = wd.watch();
            assert!(!watch.pending(&cx), "registered, not expired");
            let seen = watch.seen;
            if by_time {
                wd.shared.observed_us.store(200_000, Ordering::Release);
                wd.shared.expire();
            } else {
                wd.expire_all();
            }
            let at_wake = seer.at_wake.lock().unwrap().clone();
            assert_eq!(at_wake.len(), 1, "woken once");
            assert_ne!(
                at_wake[0], seen,
                "a poll at the wake would see no expiry (by time: {by_time})"
            );
            assert!(
                watch.pending(&cx),
                "the poll after the wake sees the expiry"
            );
        }
    }

    /// `observed_us` moves only at ticks: a call registering between two ticks must still get
    /// the whole bound (it used to be stamped with the last tick's time, and an answer at 7/8
    /// of the bound could be abandoned, opening a healthy replica's breaker).
    #[tokio::test(start_paused = true)]
    async fn a_call_registering_between_ticks_gets_the_whole_bound() {
        let limit = Duration::from_millis(800);
        let wd = Watchdog::new(limit);
        let keep_ticking = watched(&wd, pending::<()>());
        let late = async {
            // Just before the ticker's second tick.
            tokio::time::sleep(tick_period(limit) * 95 / 100).await;
            watched(&wd, tokio::time::sleep(limit * 95 / 100)).await
        };
        let (hung, late) = tokio::join!(keep_ticking, late);
        assert!(hung, "the hung call is abandoned");
        assert!(!late, "an answer within the bound is never abandoned");
    }

    /// A call set up before `expire_all` ran but first waiting after it (routed while the
    /// server seemed fine) ends too, instead of waiting for the next breaker event.
    #[test]
    fn a_call_registering_after_expire_all_ends() {
        for wd in [
            Watchdog::new(Duration::from_secs(60)),
            Watchdog::unbounded(),
        ] {
            let waker = Waker::noop();
            let cx = Context::from_waker(waker);
            let mut before = wd.watch();
            wd.expire_all();
            assert!(before.pending(&cx), "set up before expire_all: ends");
            assert!(before.pending(&cx), "and stays ended");
            let mut after = wd.watch();
            assert!(!after.pending(&cx), "set up after expire_all: waits");
        }
    }

    /// A renewed watch ends at once when `expire_all` ran since the first was set up.
    #[test]
    fn a_renewed_watch_keeps_the_view_of_expire_all() {
        let wd = Watchdog::new(Duration::from_secs(60));
        let cx = Context::from_waker(Waker::noop());
        let mut first = wd.watch();
        assert!(!first.pending(&cx));
        wd.expire_all();
        let mut renewed = first.renew();
        drop(first);
        assert!(
            renewed.pending(&cx),
            "expire_all ran before the renewal registered"
        );
        let mut calm = wd.watch();
        assert!(!calm.pending(&cx));
        let mut renewed = calm.renew();
        assert!(!renewed.pending(&cx), "no expire_all since: waits");
    }

    /// The ticker's task dropped before its first poll (its runtime shut down) must not leave
    /// the watchdog believing a ticker runs: no call would ever expire by time again.
    #[test]
    fn a_ticker_dropped_before_its_first_poll_can_be_started_again() {
        let wd = Watchdog::new(Duration::from_millis(100));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cx = Context::from_waker(Waker::noop());
            let mut watch = wd.watch();
            // Registers and spawns the ticker, which never gets polled.
            assert!(!watch.pending(&cx));
        });
        drop(rt);
        assert!(!wd.shared.ticking.load(Ordering::SeqCst), "flag cleared");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        assert!(
            rt.block_on(watched(&wd, pending::<()>())),
            "a new ticker runs"
        );
    }

    #[test]
    fn tick_period_is_an_eighth_clamped() {
        assert_eq!(
            tick_period(Duration::from_millis(800)),
            Duration::from_millis(100)
        );
        assert_eq!(tick_period(Duration::from_secs(30)), Duration::from_secs(1));
        assert_eq!(
            tick_period(Duration::from_micros(10)),
            Duration::from_millis(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expire_all_ends_the_registered_calls_of_an_unbounded_watchdog() {
        let wd = Watchdog::unbounded();
        let call = tokio::spawn({
            let wd = std::sync::Arc::new(wd);
            let wd2 = wd.clone();
            let task = async move { watched(&wd2, std::future::pending::<()>()).await };
            let expire = async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                assert_eq!(wd.registered(), 1, "nothing expires with time");
                wd.expire_all();
            };
            async move { tokio::join!(task, expire).0 }
        });
        assert!(call.await.unwrap(), "expired by expire_all");
    }

    /// A runtime blocked past the bound (CPU-bound work on a current-thread runtime) while the
    /// answer was already there ages no call: only time the ticker saw pass counts.
    #[test]
    fn a_blocked_runtime_does_not_expire_a_call_that_was_answered_meanwhile() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let wd = std::sync::Arc::new(Watchdog::new(Duration::from_millis(100)));
            // Warm the ticker up with one call, so it runs when the block starts.
            assert!(!watched(&wd, tokio::time::sleep(Duration::from_millis(30))).await);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let call = tokio::spawn({
                let wd = wd.clone();
                async move { watched(&wd, rx).await }
            });
            tokio::task::yield_now().await;
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let _ = tx.send(());
            });
            // The only worker thread is blocked for ten times the bound.
            std::thread::sleep(Duration::from_secs(1));
            assert!(
                !call.await.unwrap(),
                "answered during the block: not expired"
            );
        });
    }
}
