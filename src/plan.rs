//! The router's one decision: [`plan`], a pure function from what the statement is
//! ([`Statement`]), what the call asks ([`Ask`]) and what the pool looks like now ([`View`]) to
//! where the statement runs and why ([`Plan`]); and [`admit`], whether a planned call may start.
//! Every precedence rule of routing is in these two functions, in order, and the table test
//! below has a row per rule. `router.rs` gathers the inputs (the classifier's analysis, the
//! learned function volatility, the task scopes, the topology) and the call engine acts on the
//! plan.
//!
//! Precedence, highest first (a primary verdict is never overridden by a replica request):
//! 1. the classifier's verdict when it needs the primary (a write, a locking read, ...), unless
//!    a primary hint names its own source; then the hints, call > scope > comment
//!    ([`decide`]); then strong consistency and a pool without replicas;
//! 2. for a replica-bound read: read-your-writes without a session, a replica's earlier
//!    refusal, the degrade switch, a causal fallback (all to the primary), a causal pin;
//! 3. an eligible replica, else the primary (`NoEligibleReplica`);
//! 4. [`admit`]: `Fallback::Error` refuses a read that found no replica, and a primary-bound
//!    call is refused while the primary's breaker is open.
//!
//! Layer: decision (above `route`, `options` and `topology`; below `router`).

use crate::options::{Consistency, Fallback};
use crate::route::Verdict;
use crate::route::{decide, Decision, PoolState, Reason, Route, Target, UnknownFunctionPolicy};
use crate::topology::LagBound;

/// What the statement is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Statement<'a> {
    /// The classifier's verdict, with learned function volatility applied.
    pub verdict: &'a Verdict,
    /// A `/* rwsplit:... */` comment in the statement.
    pub comment_hint: Option<Route>,
    /// A replica refused this statement as a write before (learned on its analysis).
    pub refused_before: bool,
}

/// What the call asks (its handle, the task scopes, a causal session's plan).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    /// A per-call handle's hint.
    pub call_hint: Option<Route>,
    /// The innermost task scope's hint.
    pub scope_hint: Option<Route>,
    /// The consistency the read asks for (call > scope > pool default).
    pub consistency: Consistency,
    /// A causal session planned the call.
    pub session: bool,
    /// A replica refused this call's statement as a write: it runs on the primary.
    pub refused: bool,
    /// The causal wait timed out (or the time window is open): read from the primary.
    pub causal_fallback: bool,
    /// The replica (by `Replica::index`) a causal read must use.
    pub pin: Option<usize>,
}

/// What the pool looks like now. Asked only when a rule needs it (choosing a replica moves the
/// balancer), in the order of the rules.
pub(crate) trait View {
    /// A replica as the plan hands it back.
    type Replica: Copy;
    /// At least one replica is configured.
    fn has_replicas(&self) -> bool;
    /// The unknown-function policy.
    fn unknown_functions(&self) -> UnknownFunctionPolicy;
    /// The degrade switch is on.
    fn force_primary(&self) -> bool;
    /// The replica of this index, unless the call already tried it.
    fn pinned(&self, index: usize) -> Option<Self::Replica>;
    /// An eligible replica within `bound` that the call has not tried yet.
    fn pick(&self, bound: LagBound) -> Option<Self::Replica>;
}

/// Where a statement runs and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan<R> {
    /// The decision (target and reason).
    pub decision: Decision,
    /// The replica when the target is a replica.
    pub replica: Option<R>,
}

/// Routes one statement (see the module docs for the order of the rules).
#[inline]
pub(crate) fn plan<V: View>(statement: &Statement<'_>, ask: &Ask, view: &V) -> Plan<V::Replica> {
    let state = PoolState {
        has_replicas: view.has_replicas(),
        unknown_functions: view.unknown_functions(),
        consistency: ask.consistency,
    };
    let mut decision = decide(
        statement.verdict,
        statement.comment_hint,
        ask.call_hint,
        ask.scope_hint,
        state,
    );
    let mut replica = None;
    if decision.target == Target::Replica {
        if ask.consistency == Consistency::ReadYourWrites && !ask.session {
            // No session knows this caller's writes: only the primary is never older.
            decision = Decision::primary(Reason::Consistency);
        } else if ask.refused || statement.refused_before {
            decision = Decision::primary(Reason::ReplicaRefused);
        } else if view.force_primary() {
            decision = Decision::primary(Reason::ForcedToPrimary);
        } else if ask.causal_fallback {
            decision = Decision::primary(Reason::Consistency);
        } else if let Some(pinned) = ask.pin.and_then(|i| view.pinned(i)) {
            replica = Some(pinned);
        } else {
            let bound = match ask.consistency {
                Consistency::BoundedStaleness(d) => LagBound::At(d),
                _ => LagBound::Pool,
            };
            replica = view.pick(bound);
            if replica.is_none() {
                decision = Decision::primary(Reason::NoEligibleReplica);
            }
        }
    }
    Plan { decision, replica }
}

/// Why a planned call does not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No replica was eligible and the pool's fallback is [`Fallback::Error`].
    NoEligibleReplica,
    /// The call is for the primary, whose breaker is open.
    PrimaryDown,
}

/// May a planned call start? `primary_down` is asked only for a primary-bound call.
pub(crate) fn admit(
    decision: &Decision,
    fallback: Fallback,
    primary_down: impl FnOnce() -> bool,
) -> Result<(), Refusal> {
    if decision.target == Target::Primary {
        if decision.reason == Reason::NoEligibleReplica && fallback == Fallback::Error {
            return Err(Refusal::NoEligibleReplica);
        }
        if primary_down() {
            return Err(Refusal::PrimaryDown);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::route::HintSource;

    /// A pool of two replicas (indexes 1 and 2) whose eligibility a row sets.
    #[derive(Default)]
    struct Pool {
        no_replicas: bool,
        lenient: bool,
        forced: bool,
        /// Replica 1 eligible (else none is).
        down: bool,
        /// Replicas the call already tried.
        tried: Vec<usize>,
        /// The bound the last pick asked for.
        asked: Cell<Option<LagBound>>,
    }

    impl View for Pool {
        type Replica = usize;
        fn has_replicas(&self) -> bool {
            !self.no_replicas
        }
        fn unknown_functions(&self) -> UnknownFunctionPolicy {
            match self.lenient {
                true => UnknownFunctionPolicy::Replica,
                false => UnknownFunctionPolicy::Primary,
            }
        }
        fn force_primary(&self) -> bool {
            self.forced
        }
        fn pinned(&self, index: usize) -> Option<usize> {
            (1..=2)
                .contains(&index)
                .then_some(index)
                .filter(|i| !self.tried.contains(i))
        }
        fn pick(&self, bound: LagBound) -> Option<usize> {
            self.asked.set(Some(bound));
            (!self.down)
                .then_some(1)
                .filter(|i| !self.tried.contains(i))
        }
    }

    const ASK: Ask = Ask {
        call_hint: None,
        scope_hint: None,
        consistency: Consistency::Eventual,
        session: false,
        refused: false,
        causal_fallback: false,
        pin: None,
    };

    fn read(verdict: &Verdict) -> Statement<'_> {
        Statement {
            verdict,
            comment_hint: None,
            refused_before: false,
        }
    }

    fn primary(reason: Reason) -> (Target, Reason, Option<usize>) {
        (Target::Primary, reason, None)
    }

    fn replica(reason: Reason, index: usize) -> (Target, Reason, Option<usize>) {
        (Target::Replica, reason, Some(index))
    }

    /// A rule, the statement and the call, the pool, and where the rule sends the statement.
    type Row<'a> = (
        &'static str,
        Statement<'a>,
        Ask,
        Pool,
        (Target, Reason, Option<usize>),
    );

    #[test]
    fn every_rule_in_order() {
        let pure = Verdict::Read;
        let write = Verdict::Primary(Reason::Write("UPDATE"));
        let unknown = Verdict::ReadUnknownFunction(vec![Arc::from("f")].into());
        let rows: Vec<Row> = vec![
            (
                "a pure read goes to a replica",
                read(&pure),
                ASK,
                Pool::default(),
                replica(Reason::PureRead, 1),
            ),
            (
                "a write stays on the primary",
                read(&write),
                ASK,
                Pool::default(),
                primary(Reason::Write("UPDATE")),
            ),
            (
                "a replica hint never moves a write",
                read(&write),
                Ask {
                    call_hint: Some(Route::Replica),
                    ..ASK
                },
                Pool::default(),
                primary(Reason::Write("UPDATE")),
            ),
            (
                "a primary hint on a write names its source",
                read(&write),
                Ask {
                    scope_hint: Some(Route::Primary),
                    ..ASK
                },
                Pool::default(),
                primary(Reason::Hint(HintSource::Scope)),
            ),
            (
                "call beats scope beats comment",
                Statement {
                    comment_hint: Some(Route::Primary),
                    ..read(&pure)
                },
                Ask {
                    call_hint: Some(Route::Replica),
                    scope_hint: Some(Route::Primary),
                    ..ASK
                },
                Pool::default(),
                replica(Reason::Hint(HintSource::Call), 1),
            ),
            (
                "an unknown function stays on the primary by default",
                read(&unknown),
                ASK,
                Pool::default(),
                primary(Reason::UnknownFunction("f".into())),
            ),
            (
                "the lenient policy sends it to a replica",
                read(&unknown),
                ASK,
                Pool {
                    lenient: true,
                    ..Pool::default()
                },
                replica(Reason::UnknownFunction("f".into()), 1),
            ),
            (
                "no replica configured",
                read(&pure),
                ASK,
                Pool {
                    no_replicas: true,
                    ..Pool::default()
                },
                primary(Reason::NoReplica),
            ),
            (
                "strong consistency",
                read(&pure),
                Ask {
                    consistency: Consistency::Strong,
                    call_hint: Some(Route::Replica),
                    ..ASK
                },
                Pool::default(),
                primary(Reason::Consistency),
            ),
            (
                "read-your-writes without a session",
                read(&pure),
                Ask {
                    consistency: Consistency::ReadYourWrites,
                    ..ASK
                },
                Pool::default(),
                primary(Reason::Consistency),
            ),
            (
                "read-your-writes in a session",
                read(&pure),
                Ask {
                    consistency: Consistency::ReadYourWrites,
                    session: true,
                    ..ASK
                },
                Pool::default(),
                replica(Reason::PureRead, 1),
            ),
            (
                "refused by a replica on this call",
                read(&pure),
                Ask {
                    refused: true,
                    ..ASK
                },
                Pool {
                    forced: true,
                    ..Pool::default()
                },
                primary(Reason::ReplicaRefused),
            ),
            (
                "refused by a replica before",
                Statement {
                    refused_before: true,
                    ..read(&pure)
                },
                ASK,
                Pool::default(),
                primary(Reason::ReplicaRefused),
            ),
            (
                "the degrade switch",
                read(&pure),
                Ask {
                    causal_fallback: true,
                    ..ASK
                },
                Pool {
                    forced: true,
                    ..Pool::default()
                },
                primary(Reason::ForcedToPrimary),
            ),
            (
                "a causal fallback",
                read(&pure),
                Ask {
                    causal_fallback: true,
                    pin: Some(2),
                    ..ASK
                },
                Pool::default(),
                primary(Reason::Consistency),
            ),
            (
                "a causal pin",
                read(&pure),
                Ask {
                    pin: Some(2),
                    ..ASK
                },
                Pool {
                    down: true,
                    ..Pool::default()
                },
                replica(Reason::PureRead, 2),
            ),
            (
                "a pin already tried falls back to the balancer",
                read(&pure),
                Ask {
                    pin: Some(2),
                    ..ASK
                },
                Pool {
                    tried: vec![2],
                    ..Pool::default()
                },
                replica(Reason::PureRead, 1),
            ),
            (
                "no eligible replica",
                read(&pure),
                ASK,
                Pool {
                    down: true,
                    ..Pool::default()
                },
                primary(Reason::NoEligibleReplica),
            ),
            (
                "every replica tried",
                read(&pure),
                ASK,
                Pool {
                    tried: vec![1],
                    ..Pool::default()
                },
                primary(Reason::NoEligibleReplica),
            ),
        ];
        for (rule, statement, ask, pool, (target, reason, replica)) in rows {
            let p = plan(&statement, &ask, &pool);
            assert_eq!(p.decision, Decision { target, reason }, "{rule}");
            assert_eq!(p.replica, replica, "{rule}");
        }
    }

    #[test]
    fn bounded_staleness_asks_the_balancer_for_its_bound() {
        let pure = Verdict::Read;
        let pool = Pool::default();
        let bound = Duration::from_secs(1);
        let ask = Ask {
            consistency: Consistency::BoundedStaleness(bound),
            ..ASK
        };
        plan(&read(&pure), &ask, &pool);
        assert_eq!(pool.asked.get(), Some(LagBound::At(bound)));
        plan(&read(&pure), &ASK, &pool);
        assert_eq!(pool.asked.get(), Some(LagBound::Pool));
        let write = Verdict::Primary(Reason::Write("INSERT"));
        pool.asked.set(None);
        plan(&read(&write), &ASK, &pool);
        assert_eq!(
            pool.asked.get(),
            None,
            "a primary-bound statement moves no balancer"
        );
    }

    #[test]
    fn admission() {
        let none = Decision::primary(Reason::NoEligibleReplica);
        let down = || true;
        let up = || false;
        assert_eq!(
            admit(&none, Fallback::Error, up),
            Err(Refusal::NoEligibleReplica)
        );
        assert_eq!(admit(&none, Fallback::Primary, up), Ok(()));
        assert_eq!(
            admit(&none, Fallback::Primary, down),
            Err(Refusal::PrimaryDown)
        );
        let write = Decision::primary(Reason::Write("UPDATE"));
        assert_eq!(
            admit(&write, Fallback::Error, down),
            Err(Refusal::PrimaryDown)
        );
        let read = Decision::replica(Reason::PureRead);
        let never = || -> bool { panic!("a replica-bound call does not ask about the primary") };
        assert_eq!(admit(&read, Fallback::Error, never), Ok(()));
    }
}
