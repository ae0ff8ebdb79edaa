//! Where a statement goes and why: [`Target`], [`Reason`], [`Decision`], route hints, and
//! [`decide`], the precedence between the hints and the classifier's verdict (the first rule of
//! `crate::plan::plan`, which holds every routing rule in order).
//!
//! Precedence, highest first:
//! 1. a per-call handle ([`crate::RoutingPool::primary`] / [`crate::RoutingPool::replica`]);
//! 2. the innermost task scope ([`scope`]);
//! 3. a hint comment in the statement (`/* rwsplit:primary */`, `/* rwsplit:replica */`);
//! 4. the classifier's verdict.
//!
//! A primary hint always wins. A replica hint is a request, never a licence: it can send a
//! read to a replica that the classifier kept on the primary only because it called a function
//! the classifier does not know, but it never sends a write, a locking read, a side-effect call
//! or anything unparseable to a replica.
//!
//! Layer: plain types, with the pure precedence function [`decide`] (above `options` only).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::options::Consistency;

/// One table per enumeration of labelled values: declares the enum and, from the same rows,
/// `ALL` (every value in order, so `value as usize` indexes arrays built from it) and the
/// label function (named by the caller: `label` unless told otherwise).
macro_rules! labeled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $label:literal,)*
        }
        $(#[$fmeta:meta])* $fvis:vis fn $f:ident;
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order (`value as usize` is its place).
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant,)*];

            $(#[$fmeta])*
            #[allow(dead_code)] // without the `metrics` feature, some labels are never read
            $fvis fn $f(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($body:tt)* }
    ) => {
        $crate::route::labeled! {
            $(#[$meta])*
            $vis enum $name { $($body)* }
            /// Its label in metrics and spans.
            $vis fn label;
        }
    };
}
pub(crate) use labeled;

labeled! {
    /// The server role a statement runs on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Target {
        /// The primary (writable) server.
        Primary = "primary",
        /// One of the read replicas.
        Replica = "replica",
    }
    /// Lower-case name, as printed by `examples/classify.rs` and used in metrics.
    pub fn as_str;
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A routing hint: the role a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Run on the primary, whatever the statement is.
    Primary,
    /// Run on a replica if the statement is a read (a write still goes to the primary).
    Replica,
}

labeled! {
    /// Where a hint came from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum HintSource {
        /// A per-call handle such as `pool.primary()`.
        Call = "call",
        /// A task scope entered with [`scope`].
        Scope = "scope",
        /// A `/* rwsplit:... */` comment in the statement text.
        Comment = "comment",
    }
    /// Lower-case name used in spans and metrics.
    pub fn as_str;
}

/// Why a statement was routed where it was.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A provably pure read.
    PureRead,
    /// A read calling a function the classifier does not know, sent by the
    /// [`UnknownFunctionPolicy`](crate::UnknownFunctionPolicy).
    UnknownFunction(Arc<str>),
    /// A statement that changes data, schema or privileges (its leading keyword).
    Write(&'static str),
    /// A locking read (`FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`, ...).
    LockingRead,
    /// A call to a function with side effects or session state (its name, lower case).
    SideEffectFunction(Arc<str>),
    /// A read of session state that only the writing connection knows (`@@last_insert_id`).
    SessionVariable(Arc<str>),
    /// `SELECT ... INTO` (variables, files or a new table).
    SelectInto,
    /// A user-variable assignment (`@x := ...`).
    VariableAssignment,
    /// A data-modifying statement inside a `WITH` clause.
    DataModifyingCte,
    /// More than one statement in one call.
    MultiStatement,
    /// Session or transaction control (`SET`, `USE`, `BEGIN`, `PREPARE`, ...).
    SessionControl(&'static str),
    /// A question about the replication role (`SHOW MASTER STATUS`): asked of the primary so
    /// the answer describes the server that takes the writes.
    ServerState(&'static str),
    /// A MySQL executable comment (`/*! ... */`), whose content the server runs.
    ExecutableComment,
    /// Text that the server's lexer and the classifier's could read differently (comment,
    /// quote or whitespace rules that depend on the server or its settings), so what the
    /// classifier judged may not be what the server runs.
    LexicalAmbiguity,
    /// The statement did not parse in the backend's dialect (or was empty).
    Unparseable,
    /// The statement is longer than the classifier's size limit.
    TooLarge,
    /// A hint chose the route.
    Hint(HintSource),
    /// The statement runs inside a transaction, which is pinned to the primary.
    Transaction,
    /// A read, but the pool has no replica.
    NoReplica,
    /// A read, but no replica was eligible (down, lagging, or out of rotation).
    NoEligibleReplica,
    /// A read, but all reads are forced to the primary by the degrade switch.
    ForcedToPrimary,
    /// A read that needs strong consistency (or read-your-writes that no replica can serve).
    Consistency,
    /// A replica refused the statement as a write although the classifier saw a read (a view
    /// over a writing function, a user overload of a built-in name): it ran on the primary,
    /// and goes there directly from then on.
    ReplicaRefused,
    /// A read of a relation whose reading runs a volatile or side-effect function, as the
    /// primary's catalog says: a view over one, a table whose row-security policy calls one,
    /// ... (the relation's name, as the classifier reports it). Learned with
    /// `PoolOptions::function_volatility`.
    VolatileRelation(Arc<str>),
    /// A read that casts to a user type (PostgreSQL) whose conversion runs a volatile or
    /// side-effect function, as the primary's catalog says: a domain whose CHECK constraint
    /// calls one, a user-defined cast or an input function that is one (the type's name, as
    /// the classifier reports it). Learned with `PoolOptions::function_volatility`.
    VolatileType(Arc<str>),
}

/// The one table of [`Reason`]: a row per variant (per [`HintSource`] for `Hint`) gives its
/// metric and span label (the row's name, whose place is the reason's ordinal, the index of its
/// metric handles), its `Display` text, and whether a read sent to the primary for it is a
/// fallback (`fallback`: recorded as `rwsplit.fallback` on the span; `fallback(Cause)`: also
/// counted in `rwsplit_fallbacks_total` with that [`FallbackCause`]). A new reason is a
/// variant and a row; `REASON_LABELS`, `ordinal`, `label`, `Display` and the fallback mapping
/// all derive from the rows.
macro_rules! reason_table {
    ($($label:ident: $pat:pat => $text:literal $(, $fallback:ident $(($cause:ident))?)?;)*) => {
        /// The rows' names, in table order: `Row::x as usize` is row `x`'s ordinal.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Row {
            $($label,)*
        }

        /// Metric labels of every [`Reason`], indexed by [`Reason::ordinal`].
        pub(crate) const REASON_LABELS: &[&str] = &[$(stringify!($label),)*];

        #[allow(unused_variables)]
        impl Reason {
            fn row(&self) -> Row {
                match self {
                    $($pat => Row::$label,)*
                }
            }

            /// Is a read sent to the primary for this reason a fallback (the replica it could
            /// have used was not allowed or not available)? Recorded as `rwsplit.fallback`.
            pub(crate) fn is_fallback(&self) -> bool {
                match self {
                    $($pat => reason_table!(@is $($fallback)?),)*
                }
            }

            /// The cause under which `rwsplit_fallbacks_total` counts such a fallback, if it
            /// does.
            pub(crate) fn fallback_cause(&self) -> Option<FallbackCause> {
                match self {
                    $($pat => reason_table!(@cause $($($cause)?)?),)*
                }
            }
        }

        impl fmt::Display for Reason {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($pat => write!(f, $text),)*
                }
            }
        }
    };
    (@is fallback) => { true };
    (@is) => { false };
    (@cause $cause:ident) => { Some(FallbackCause::$cause) };
    (@cause) => { None };
}

reason_table! {
    pure_read: Reason::PureRead => "pure read";
    unknown_function: Reason::UnknownFunction(name) => "read calling unknown function {name}";
    write: Reason::Write(kw) => "write ({kw})";
    locking_read: Reason::LockingRead => "locking read";
    side_effect_function: Reason::SideEffectFunction(name) => "side-effect function {name}";
    session_variable: Reason::SessionVariable(name) => "session variable {name}";
    select_into: Reason::SelectInto => "SELECT ... INTO";
    variable_assignment: Reason::VariableAssignment => "user-variable assignment";
    data_modifying_cte: Reason::DataModifyingCte => "data-modifying WITH";
    multi_statement: Reason::MultiStatement => "multiple statements";
    session_control: Reason::SessionControl(kw) => "session control ({kw})";
    server_state: Reason::ServerState(kw) => "server state ({kw})";
    executable_comment: Reason::ExecutableComment => "executable comment /*! */";
    lexical_ambiguity: Reason::LexicalAmbiguity
        => "lexical ambiguity (the server may read it differently)";
    unparseable: Reason::Unparseable => "unparseable";
    too_large: Reason::TooLarge => "statement too large to classify";
    hint_call: Reason::Hint(HintSource::Call) => "hint (call)";
    hint_scope: Reason::Hint(HintSource::Scope) => "hint (scope)";
    hint_comment: Reason::Hint(HintSource::Comment) => "hint (comment)";
    transaction: Reason::Transaction => "transaction";
    no_replica: Reason::NoReplica => "read, no replica configured";
    no_eligible_replica: Reason::NoEligibleReplica => "read, no eligible replica",
        fallback(NoEligibleReplica);
    forced_to_primary: Reason::ForcedToPrimary => "read, forced to primary",
        fallback(ForcedToPrimary);
    consistency: Reason::Consistency => "read, consistency requires primary", fallback;
    replica_refused: Reason::ReplicaRefused => "refused by a replica as a write";
    volatile_relation: Reason::VolatileRelation(name)
        => "reads {name}, which calls a volatile function";
    volatile_type: Reason::VolatileType(name)
        => "casts to {name}, which calls a volatile function";
}

impl Reason {
    /// A short, stable label for metrics (bounded cardinality: never a function name).
    pub fn label(&self) -> &'static str {
        REASON_LABELS[self.ordinal()]
    }

    pub(crate) fn ordinal(&self) -> usize {
        self.row() as usize
    }
}

labeled! {
    /// Why a read fell back to the primary (the `cause` of `rwsplit_fallbacks_total`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum FallbackCause {
        /// No replica was eligible.
        NoEligibleReplica = "no_eligible_replica",
        /// The degrade switch is on.
        ForcedToPrimary = "forced_to_primary",
        /// A causal read's wait for a replica timed out.
        CausalWaitTimeout = "causal_wait_timeout",
        /// Every eligible replica lagged more than `causal_wait_timeout`: no wait.
        CausalLag = "causal_lag",
    }
}

/// The routing decision for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Where the statement goes.
    pub target: Target,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    pub(crate) fn primary(reason: Reason) -> Self {
        Decision {
            target: Target::Primary,
            reason,
        }
    }

    pub(crate) fn replica(reason: Reason) -> Self {
        Decision {
            target: Target::Replica,
            reason,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\t{}", self.target, self.reason)
    }
}

/// What the classifier concluded about a statement, before hints and pool state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Provably a pure read.
    Read,
    /// A read except that it calls functions neither list knows (their names).
    ReadUnknownFunction(Arc<[Arc<str>]>),
    /// Must run on the primary.
    Primary(Reason),
}

/// How reads that call unknown functions are routed.
///
/// Default: [`UnknownFunctionPolicy::Primary`], because a user-defined function may write
/// (a MySQL stored function or a PostgreSQL `VOLATILE` function), and the rule of this crate is
/// that only a provably pure read leaves the primary. Add known-pure functions with
/// [`crate::ClassifierOptions::pure_function`] instead of switching the policy when you can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownFunctionPolicy {
    /// Keep such reads on the primary (fail-safe).
    #[default]
    Primary,
    /// Treat unknown functions as pure and let such reads go to replicas.
    Replica,
}

tokio::task_local! {
    static SCOPE: Route;
    static CONSISTENCY: Consistency;
}

/// Set once a task scope (a route hint, a consistency level or an ambient session) is entered
/// anywhere in the process. Until then no task-local can be set, and a statement skips the
/// three lookups (about 60 instructions per statement). A scope is entered in the task whose
/// statements it reaches, before them, so the task sees its own store.
static SCOPED: AtomicBool = AtomicBool::new(false);

/// Records that a task scope is being entered (see [`SCOPED`]).
pub(crate) fn entering_scope() {
    if !SCOPED.load(Ordering::Relaxed) {
        SCOPED.store(true, Ordering::Relaxed);
    }
}

/// Has any task scope ever been entered in this process?
#[inline]
pub(crate) fn scopes_entered() -> bool {
    SCOPED.load(Ordering::Relaxed)
}

/// The value of the task-local `key` in the current task scope, if any.
#[inline]
fn current<T: Copy>(key: &'static tokio::task::LocalKey<T>) -> Option<T> {
    if !scopes_entered() {
        return None;
    }
    key.try_with(|v| *v).ok()
}

/// Runs `fut` with a route hint that reaches every statement it executes through a
/// [`crate::RoutingPool`], like a request context. Scopes nest; the innermost wins.
///
/// ```
/// # async fn demo() {
/// use rwsplit::{scope, Route};
/// let answer = scope(Route::Primary, async {
///     // every statement run here through a RoutingPool goes to the primary
///     42
/// })
/// .await;
/// assert_eq!(answer, 42);
/// # }
/// ```
pub async fn scope<F: Future>(route: Route, fut: F) -> F::Output {
    entering_scope();
    SCOPE.scope(route, fut).await
}

/// The route hint of the current task scope, if any.
#[inline]
pub fn current_scope() -> Option<Route> {
    current(&SCOPE)
}

/// Enters the consistency level's task scope (see [`crate::with_consistency`]).
pub(crate) async fn consistency_scope<F: Future>(consistency: Consistency, fut: F) -> F::Output {
    entering_scope();
    CONSISTENCY.scope(consistency, fut).await
}

/// The consistency level of the current task scope, if any.
#[inline]
pub fn current_consistency() -> Option<Consistency> {
    current(&CONSISTENCY)
}

/// The state of the pool that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolState {
    /// The pool has at least one replica configured.
    pub has_replicas: bool,
    /// The unknown-function policy.
    pub unknown_functions: UnknownFunctionPolicy,
    /// The consistency the read asks for (call > scope > pool default).
    pub consistency: Consistency,
}

/// Decides the target of one statement. The only place where precedence lives.
#[inline(always)]
pub(crate) fn decide(
    verdict: &Verdict,
    comment_hint: Option<Route>,
    call_hint: Option<Route>,
    scope_hint: Option<Route>,
    state: PoolState,
) -> Decision {
    let hint = call_hint
        .map(|r| (r, HintSource::Call))
        .or(scope_hint.map(|r| (r, HintSource::Scope)))
        .or(comment_hint.map(|r| (r, HintSource::Comment)));

    let read_decision = |reason: Reason| {
        if !state.has_replicas {
            Decision::primary(Reason::NoReplica)
        } else if state.consistency == Consistency::Strong {
            Decision::primary(Reason::Consistency)
        } else {
            Decision::replica(reason)
        }
    };

    match (hint, verdict) {
        (_, Verdict::Primary(reason)) => match hint {
            Some((Route::Primary, src)) => Decision::primary(Reason::Hint(src)),
            _ => Decision::primary(reason.clone()),
        },
        (Some((Route::Primary, src)), _) => Decision::primary(Reason::Hint(src)),
        (Some((Route::Replica, src)), _) => read_decision(Reason::Hint(src)),
        (None, Verdict::Read) => read_decision(Reason::PureRead),
        (None, Verdict::ReadUnknownFunction(names)) => {
            let name = names.first().cloned().unwrap_or_else(|| "?".into());
            match state.unknown_functions {
                UnknownFunctionPolicy::Primary => Decision::primary(Reason::UnknownFunction(name)),
                UnknownFunctionPolicy::Replica => read_decision(Reason::UnknownFunction(name)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: PoolState = PoolState {
        has_replicas: true,
        unknown_functions: UnknownFunctionPolicy::Primary,
        consistency: Consistency::Eventual,
    };

    #[test]
    fn strong_consistency_keeps_reads_on_the_primary_even_with_a_replica_hint() {
        let strong = PoolState {
            consistency: Consistency::Strong,
            ..STATE
        };
        let d = decide(&Verdict::Read, None, Some(Route::Replica), None, strong);
        assert_eq!(d, Decision::primary(Reason::Consistency));
    }

    #[test]
    fn every_reason_has_one_row_label_text_and_fallback() {
        let f: Arc<str> = Arc::from("f");
        let rows: &[(Reason, &str, &str)] = &[
            (Reason::PureRead, "pure_read", "pure read"),
            (
                Reason::UnknownFunction(f.clone()),
                "unknown_function",
                "read calling unknown function f",
            ),
            (Reason::Write("UPDATE"), "write", "write (UPDATE)"),
            (Reason::LockingRead, "locking_read", "locking read"),
            (
                Reason::SideEffectFunction(f.clone()),
                "side_effect_function",
                "side-effect function f",
            ),
            (
                Reason::SessionVariable(f.clone()),
                "session_variable",
                "session variable f",
            ),
            (Reason::SelectInto, "select_into", "SELECT ... INTO"),
            (
                Reason::VariableAssignment,
                "variable_assignment",
                "user-variable assignment",
            ),
            (
                Reason::DataModifyingCte,
                "data_modifying_cte",
                "data-modifying WITH",
            ),
            (
                Reason::MultiStatement,
                "multi_statement",
                "multiple statements",
            ),
            (
                Reason::SessionControl("SET"),
                "session_control",
                "session control (SET)",
            ),
            (
                Reason::ServerState("SHOW"),
                "server_state",
                "server state (SHOW)",
            ),
            (
                Reason::ExecutableComment,
                "executable_comment",
                "executable comment /*! */",
            ),
            (
                Reason::LexicalAmbiguity,
                "lexical_ambiguity",
                "lexical ambiguity (the server may read it differently)",
            ),
            (Reason::Unparseable, "unparseable", "unparseable"),
            (
                Reason::TooLarge,
                "too_large",
                "statement too large to classify",
            ),
            (Reason::Hint(HintSource::Call), "hint_call", "hint (call)"),
            (
                Reason::Hint(HintSource::Scope),
                "hint_scope",
                "hint (scope)",
            ),
            (
                Reason::Hint(HintSource::Comment),
                "hint_comment",
                "hint (comment)",
            ),
            (Reason::Transaction, "transaction", "transaction"),
            (
                Reason::NoReplica,
                "no_replica",
                "read, no replica configured",
            ),
            (
                Reason::NoEligibleReplica,
                "no_eligible_replica",
                "read, no eligible replica",
            ),
            (
                Reason::ForcedToPrimary,
                "forced_to_primary",
                "read, forced to primary",
            ),
            (
                Reason::Consistency,
                "consistency",
                "read, consistency requires primary",
            ),
            (
                Reason::ReplicaRefused,
                "replica_refused",
                "refused by a replica as a write",
            ),
            (
                Reason::VolatileRelation(f.clone()),
                "volatile_relation",
                "reads f, which calls a volatile function",
            ),
            (
                Reason::VolatileType(f.clone()),
                "volatile_type",
                "casts to f, which calls a volatile function",
            ),
        ];
        assert_eq!(rows.len(), REASON_LABELS.len());
        for (i, (reason, label, text)) in rows.iter().enumerate() {
            assert_eq!(reason.ordinal(), i, "{reason:?}");
            assert_eq!(reason.label(), *label);
            assert_eq!(reason.to_string(), *text);
            let fallback = matches!(
                reason,
                Reason::NoEligibleReplica | Reason::ForcedToPrimary | Reason::Consistency
            );
            assert_eq!(reason.is_fallback(), fallback, "{reason:?}");
        }
        assert_eq!(
            Reason::NoEligibleReplica.fallback_cause(),
            Some(FallbackCause::NoEligibleReplica)
        );
        assert_eq!(
            Reason::ForcedToPrimary.fallback_cause(),
            Some(FallbackCause::ForcedToPrimary)
        );
        assert_eq!(Reason::Consistency.fallback_cause(), None);
        assert_eq!(
            FallbackCause::CausalWaitTimeout.label(),
            "causal_wait_timeout"
        );
        let targets: Vec<_> = Target::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(targets, ["primary", "replica"]);
        assert_eq!(Target::Replica as usize, 1);
    }

    fn write() -> Verdict {
        Verdict::Primary(Reason::Write("UPDATE"))
    }

    #[test]
    fn pure_read_goes_to_replica() {
        let d = decide(&Verdict::Read, None, None, None, STATE);
        assert_eq!(d, Decision::replica(Reason::PureRead));
    }

    #[test]
    fn read_without_replicas_stays_on_primary() {
        let state = PoolState {
            has_replicas: false,
            ..STATE
        };
        let d = decide(&Verdict::Read, None, Some(Route::Replica), None, state);
        assert_eq!(d, Decision::primary(Reason::NoReplica));
    }

    #[test]
    fn replica_hint_never_moves_a_write() {
        for (c, s, m) in [
            (Some(Route::Replica), None, None),
            (None, Some(Route::Replica), None),
            (None, None, Some(Route::Replica)),
        ] {
            let d = decide(&write(), m, c, s, STATE);
            assert_eq!(d, Decision::primary(Reason::Write("UPDATE")));
        }
    }

    #[test]
    fn primary_hint_wins_over_a_read() {
        let d = decide(&Verdict::Read, Some(Route::Primary), None, None, STATE);
        assert_eq!(d, Decision::primary(Reason::Hint(HintSource::Comment)));
    }

    #[test]
    fn call_beats_scope_beats_comment() {
        let d = decide(
            &Verdict::Read,
            Some(Route::Primary),
            Some(Route::Replica),
            Some(Route::Primary),
            STATE,
        );
        assert_eq!(d, Decision::replica(Reason::Hint(HintSource::Call)));
        let d = decide(
            &Verdict::Read,
            Some(Route::Replica),
            None,
            Some(Route::Primary),
            STATE,
        );
        assert_eq!(d, Decision::primary(Reason::Hint(HintSource::Scope)));
    }

    #[test]
    fn unknown_function_follows_policy_and_replica_hint() {
        let v = Verdict::ReadUnknownFunction(vec![Arc::from("my_fn")].into());
        let d = decide(&v, None, None, None, STATE);
        assert_eq!(
            d,
            Decision::primary(Reason::UnknownFunction("my_fn".into()))
        );
        let d = decide(&v, Some(Route::Replica), None, None, STATE);
        assert_eq!(d, Decision::replica(Reason::Hint(HintSource::Comment)));
        let lenient = PoolState {
            unknown_functions: UnknownFunctionPolicy::Replica,
            ..STATE
        };
        let d = decide(&v, None, None, None, lenient);
        assert_eq!(
            d,
            Decision::replica(Reason::UnknownFunction("my_fn".into()))
        );
    }

    #[tokio::test]
    async fn scopes_nest_innermost_wins() {
        assert_eq!(current_scope(), None);
        let inner = scope(Route::Primary, async {
            scope(Route::Replica, async { current_scope() }).await
        })
        .await;
        assert_eq!(inner, Some(Route::Replica));
    }
}
