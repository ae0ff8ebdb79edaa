//! What the primary's catalog says about the names the classifier cannot judge from the text,
//! with `PoolOptions::function_volatility` (off by default; README, "Asking the catalog"):
//!
//! - **Functions and operators** the classifier does not know (`Verdict::ReadUnknownFunction`:
//!   bare, schema- or database-qualified, PostgreSQL user operators), asked once per name in
//!   the background and cached: a name that may write or keep state sends the statement to
//!   the primary with [`Reason::SideEffectFunction`]; when every name is known safe, the
//!   statement is a read. A name the server does not know is recorded as unsafe. Until the
//!   answer arrives the statement follows the unknown-function policy (the primary by
//!   default).
//! - **Relations** whose reading runs such a function (a PostgreSQL view over a volatile
//!   function or operator, a table whose row-security policy calls one, a MySQL/MariaDB view
//!   over a stored function that is not safe or over a side-effect built-in, views over
//!   those): a snapshot of the whole database's list, taken in the background when a read
//!   first names a relation, refreshed when older than [`RELATIONS_MAX_AGE`] or after DDL
//!   through the pool. A read naming one goes to the primary with
//!   [`Reason::VolatileRelation`]. The same snapshot lists (PostgreSQL) the built-in names
//!   that an unsafe user function shares (`public.lower(int)`, reached by `lower(5)` or
//!   through `search_path`): a read calling the bare name goes to the primary with
//!   [`Reason::SideEffectFunction`]. Relations are judged optimistically: a read is not held
//!   back while the snapshot loads (holding every table's first read would cost every
//!   application); a view created since the last snapshot is caught by the replica's
//!   refusal if its function writes, not if it only keeps state.
//! - **Types** (PostgreSQL) whose conversion runs such a function, in the same snapshot: a
//!   domain whose CHECK calls one or casts to such a type (or a domain over such a domain),
//!   a user-defined cast from or to the type, a user type's input function, and the types
//!   holding such a type (composites and row types with a column of it, ranges over it,
//!   arrays of it). A read casting to one (`x::d`, `CAST(x AS d)`, `d 'text'`, a column
//!   definition list) goes to the primary with [`Reason::VolatileType`], judged
//!   optimistically like relations. Functions taking, returning or naming such a type in
//!   their bodies, and views depending on one, are unsafe functions and relations. Reading a column of such a type does not count: a
//!   domain's CHECK runs when a value is made, not when it is read.
//!
//! Memory is bounded: at most [`MAX_FUNCTIONS`] names and [`MAX_RELATIONS`] relation names.
//!
//! Layer: knowledge (above `route` and `classify` only).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::classify::Analysis;
use crate::route::{Reason, Verdict};

/// Learned volatility (`true` when the function may write or keep state) and the snapshot of
/// unsafe relations.
#[derive(Debug, Default)]
pub(crate) struct FunctionCatalog {
    known: RwLock<HashMap<Arc<str>, bool>>,
    pending: Mutex<HashSet<Arc<str>>>,
    /// When a background lookup last failed: none is started for [`RETRY_AFTER`] after it (a
    /// server whose catalog cannot answer must not get a failing query per statement).
    failed: Mutex<Option<Instant>>,
    relations: RwLock<Relations>,
}

/// The snapshot of relations whose reading runs an unsafe function.
#[derive(Debug, Default)]
struct Relations {
    /// Canonical names: `schema.name` and the bare `name` of each (a bare reference may mean
    /// any schema, so the bare name matches if any schema's relation of that name is unsafe).
    unsafe_names: HashSet<Arc<str>>,
    /// Built-in function names that an unsafe user function shares (PostgreSQL): a bare call
    /// may reach the user's function. Also built-in operator symbols (`operator(||)`) that an
    /// unsafe user operator shares. A bare built-in name that is also an unsafe type's (in
    /// `unsafe_types`) is unsafe too: `name(x)` may be a cast to it.
    shadowed: HashSet<Arc<str>>,
    /// Canonical names of the user types (PostgreSQL) whose conversion runs an unsafe
    /// function (`schema.name` and bare `name`, as for relations).
    unsafe_types: HashSet<Arc<str>>,
    /// When the snapshot in `unsafe_names` was taken, if one was.
    taken: Option<Instant>,
    /// A snapshot is being taken.
    pending: bool,
    /// DDL ran through the pool since the snapshot: take a new one.
    stale: bool,
    /// When the last snapshot failed, if it did.
    failed: Option<Instant>,
}

/// Bounds the catalog so a stream of odd names cannot grow it without limit.
pub(crate) const MAX_FUNCTIONS: usize = 10_000;

/// Bounds each list of the snapshot (names beyond it are dropped, and a read of a dropped one
/// is judged as if it were safe: see the README).
pub(crate) const MAX_RELATIONS: usize = 20_000;

/// How long after a failed lookup or snapshot no new one starts.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The age after which the snapshot of unsafe relations is taken again (at the next read
/// that names a relation).
pub(crate) const RELATIONS_MAX_AGE: Duration = Duration::from_secs(30);

impl FunctionCatalog {
    /// The verdict with what the catalog learned applied: a read of an unsafe relation or
    /// calling an unsafe function goes to the primary; a read whose every unknown function is
    /// known safe is a read. `None` leaves the classifier's verdict unchanged.
    pub fn resolve(&self, analysis: &Analysis) -> Option<Verdict> {
        let verdict = &analysis.verdict;
        if matches!(verdict, Verdict::Primary(_)) {
            return None;
        }
        if !analysis.relations.is_empty()
            || !analysis.builtins.is_empty()
            || !analysis.types.is_empty()
        {
            if let Ok(relations) = self.relations.read() {
                if let Some(name) = relations.unsafe_relation(&analysis.relations) {
                    return Some(Verdict::Primary(Reason::VolatileRelation(name)));
                }
                if let Some(name) = unsafe_name(&relations.unsafe_types, &analysis.types) {
                    return Some(Verdict::Primary(Reason::VolatileType(name)));
                }
                if let Some(name) = analysis.builtins.iter().find(|b| {
                    relations.shadowed.contains(&***b) || relations.unsafe_types.contains(&***b)
                }) {
                    return Some(Verdict::Primary(Reason::SideEffectFunction(name.clone())));
                }
            }
        }
        let Verdict::ReadUnknownFunction(names) = verdict else {
            return None;
        };
        let known = self.known.read().ok()?;
        let mut all_known = true;
        for name in names.iter() {
            match known.get(name) {
                Some(true) => {
                    return Some(Verdict::Primary(Reason::SideEffectFunction(name.clone())));
                }
                Some(false) => {}
                None => all_known = false,
            }
        }
        all_known.then_some(Verdict::Read)
    }

    /// Unknown names of `verdict` not learned yet (whether or not a lookup is under way).
    pub fn unknown(&self, verdict: &Verdict) -> Vec<Arc<str>> {
        let Verdict::ReadUnknownFunction(names) = verdict else {
            return Vec::new();
        };
        let Ok(known) = self.known.read() else {
            return Vec::new();
        };
        names
            .iter()
            .filter(|n| !known.contains_key(*n))
            .cloned()
            .collect()
    }

    /// Unknown names of `verdict` not yet looked up or being looked up; marks them pending.
    /// None within [`RETRY_AFTER`] of a failed lookup.
    pub fn claim_missing(&self, verdict: &Verdict, now: Instant) -> Vec<Arc<str>> {
        let Verdict::ReadUnknownFunction(names) = verdict else {
            return Vec::new();
        };
        let failed = self.failed.lock().ok().and_then(|f| *f);
        if failed.is_some_and(|f| now.saturating_duration_since(f) < RETRY_AFTER) {
            return Vec::new();
        }
        let known = match self.known.read() {
            Ok(k) => k,
            Err(_) => return Vec::new(),
        };
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        if known.len() >= MAX_FUNCTIONS {
            return Vec::new();
        }
        names
            .iter()
            .filter(|n| !known.contains_key(*n) && pending.insert((*n).clone()))
            .cloned()
            .collect()
    }

    /// Records what the server said. Names it did not know (not functions of this database)
    /// are recorded as volatile: unknown stays on the primary.
    pub fn learn(&self, asked: &[Arc<str>], answers: Vec<(String, bool)>) {
        let answers: HashMap<String, bool> = answers.into_iter().collect();
        if let Ok(mut known) = self.known.write() {
            for name in asked {
                if known.len() >= MAX_FUNCTIONS {
                    break;
                }
                known.insert(name.clone(), answers.get(&**name).copied().unwrap_or(true));
            }
        }
        self.release(asked);
    }

    /// A background lookup of `names` failed at `now`: they may be claimed again after
    /// [`RETRY_AFTER`].
    pub fn lookup_failed(&self, names: &[Arc<str>], now: Instant) {
        if let Ok(mut failed) = self.failed.lock() {
            *failed = Some(now);
        }
        self.release(names);
    }

    /// Forgets that `names` are being looked up (after a failed lookup).
    pub fn release(&self, names: &[Arc<str>]) {
        if let Ok(mut pending) = self.pending.lock() {
            for n in names {
                pending.remove(n);
            }
        }
    }

    /// Should a new snapshot of unsafe relations be taken for a read naming `analysis`'s
    /// relations? When it returns true the caller takes it and hands it to
    /// [`FunctionCatalog::learn_relations`] (or [`FunctionCatalog::relations_failed`]).
    pub fn claim_relations(&self, analysis: &Analysis, now: Instant) -> bool {
        let names_none = analysis.relations.is_empty()
            && analysis.builtins.is_empty()
            && analysis.types.is_empty();
        if names_none || matches!(analysis.verdict, Verdict::Primary(_)) {
            return false;
        }
        // The common case takes only the read lock.
        match self.relations.read() {
            Ok(r) if r.pending || r.fresh(now) => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        let Ok(mut r) = self.relations.write() else {
            return false;
        };
        if r.pending || r.fresh(now) {
            return false;
        }
        r.pending = true;
        true
    }

    /// Replaces the snapshot with the server's list of unsafe relations (each as its
    /// canonical `schema.name` and bare `name`), of shadowed built-in names and of unsafe
    /// types (named as relations are).
    pub fn learn_relations(
        &self,
        names: Vec<String>,
        shadowed: Vec<String>,
        types: Vec<String>,
        taken: Instant,
    ) {
        let Ok(mut r) = self.relations.write() else {
            return;
        };
        r.unsafe_names = names
            .into_iter()
            .take(MAX_RELATIONS)
            .map(Arc::from)
            .collect();
        r.shadowed = shadowed
            .into_iter()
            .take(MAX_RELATIONS)
            .map(Arc::from)
            .collect();
        r.unsafe_types = types
            .into_iter()
            .take(MAX_RELATIONS)
            .map(Arc::from)
            .collect();
        r.taken = Some(taken);
        r.pending = false;
        r.stale = false;
        r.failed = None;
    }

    /// A snapshot claimed at `claimed` failed: the old one (if any) stays, and a new one is
    /// tried [`RETRY_AFTER`] later (or after DDL through the pool).
    pub fn relations_failed(&self, claimed: Instant) {
        if let Ok(mut r) = self.relations.write() {
            r.pending = false;
            r.failed = Some(claimed);
        }
    }

    /// DDL (`sql`) ran through the pool: a view may have been created or replaced, so the
    /// next read naming a relation takes a new snapshot; and when the text names a function,
    /// operator or aggregate, what was learned about functions is forgotten (a `CREATE OR
    /// REPLACE` may have made a stable function volatile). A lookup already under way may
    /// still record an answer from before the DDL: the window is one round trip.
    pub fn schema_changed(&self, sql: &str) {
        let stale = self.relations.read().map(|r| r.stale).unwrap_or(true);
        if !stale {
            if let Ok(mut r) = self.relations.write() {
                r.stale = true;
            }
        }
        let lower = sql.to_ascii_lowercase();
        if ["function", "operator", "aggregate"]
            .iter()
            .any(|w| lower.contains(w))
        {
            if let Ok(mut known) = self.known.write() {
                known.clear();
            }
        }
    }
}

impl Relations {
    fn fresh(&self, now: Instant) -> bool {
        let recent = |at: Option<Instant>, age: Duration| {
            at.is_some_and(|t| now.saturating_duration_since(t) < age)
        };
        !self.stale && (recent(self.taken, RELATIONS_MAX_AGE) || recent(self.failed, RETRY_AFTER))
    }

    /// The first of `named` the snapshot lists as unsafe. A name with more parts than
    /// `schema.name` (PostgreSQL's `database.schema.name`) is matched by its last two.
    fn unsafe_relation(&self, named: &[Arc<str>]) -> Option<Arc<str>> {
        unsafe_name(&self.unsafe_names, named)
    }
}

/// The first of `named` that `unsafe_names` lists. A name with more parts than `schema.name`
/// (PostgreSQL's `database.schema.name`) is matched by its last two.
fn unsafe_name(unsafe_names: &HashSet<Arc<str>>, named: &[Arc<str>]) -> Option<Arc<str>> {
    if unsafe_names.is_empty() {
        return None;
    }
    named
        .iter()
        .find(|n| {
            unsafe_names.contains(&***n) || last_two(n).is_some_and(|t| unsafe_names.contains(t))
        })
        .cloned()
}

/// `b.c` of a canonical `a.b.c` (a dot inside a quoted part is not a separator), if the name
/// has more than two parts.
fn last_two(name: &str) -> Option<&str> {
    let mut quoted = None::<char>;
    let mut dots = Vec::new();
    let mut chars = name.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quoted, c) {
            (None, '"' | '`') => quoted = Some(c),
            (Some(q), c) if c == q => {
                if chars.peek().map(|&(_, n)| n) == Some(q) {
                    chars.next();
                } else {
                    quoted = None;
                }
            }
            (None, '.') => dots.push(i),
            _ => {}
        }
    }
    (dots.len() >= 2).then(|| &name[dots[dots.len() - 2] + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Classifier, Dialect};

    fn unknown(names: &[&str]) -> Verdict {
        Verdict::ReadUnknownFunction(names.iter().map(|n| Arc::from(*n)).collect())
    }

    fn analysis(c: &Classifier, sql: &str) -> Arc<Analysis> {
        c.analyze(sql)
    }

    #[test]
    fn learned_functions_decide_and_unknown_ones_stay_unknown() {
        let c = FunctionCatalog::default();
        let pg = Classifier::new(Dialect::Postgres);
        let both = analysis(&pg, "SELECT stable_f(1), volatile_f(2)");
        let v = unknown(&["stable_f", "volatile_f"]);
        assert_eq!(both.verdict, v);
        assert_eq!(c.resolve(&both), None);
        let missing = c.claim_missing(&v, Instant::now());
        assert_eq!(missing.len(), 2);
        assert!(
            c.claim_missing(&v, Instant::now()).is_empty(),
            "already pending"
        );
        assert_eq!(c.unknown(&v).len(), 2, "pending is still unknown");
        c.learn(
            &missing,
            vec![("stable_f".into(), false), ("volatile_f".into(), true)],
        );
        assert_eq!(
            c.resolve(&both),
            Some(Verdict::Primary(Reason::SideEffectFunction(
                "volatile_f".into()
            )))
        );
        assert_eq!(
            c.resolve(&analysis(&pg, "SELECT stable_f(x) FROM t")),
            Some(Verdict::Read)
        );
        // DDL through the pool that names a function forgets what was learned; other DDL
        // does not.
        c.schema_changed("CREATE TABLE t (a int)");
        assert_eq!(
            c.resolve(&analysis(&pg, "SELECT stable_f(1)")),
            Some(Verdict::Read)
        );
        c.schema_changed("CREATE OR REPLACE FUNCTION stable_f(a int) RETURNS int ...");
        assert_eq!(c.resolve(&analysis(&pg, "SELECT stable_f(1)")), None);
        let ghost = analysis(&pg, "SELECT no_such_fn()");
        let missing = c.claim_missing(&ghost.verdict, Instant::now());
        c.learn(&missing, vec![]);
        assert!(matches!(c.resolve(&ghost), Some(Verdict::Primary(_))));
        // A failed lookup is claimed again, but not before RETRY_AFTER.
        let other = unknown(&["other_f"]);
        let t0 = Instant::now();
        let missing = c.claim_missing(&other, t0);
        c.lookup_failed(&missing, t0);
        assert!(c
            .claim_missing(&other, t0 + Duration::from_secs(1))
            .is_empty());
        assert_eq!(c.claim_missing(&other, t0 + RETRY_AFTER), missing);
    }

    #[test]
    fn qualified_names_are_learned_apart_from_bare_ones() {
        let c = FunctionCatalog::default();
        let pg = Classifier::new(Dialect::Postgres);
        let bare = analysis(&pg, "SELECT f(1)");
        let qualified = analysis(&pg, "SELECT app.f(1)");
        let quoted = analysis(&pg, "SELECT \"App\".f(1)");
        let missing: Vec<Arc<str>> = [&bare, &qualified, &quoted]
            .iter()
            .flat_map(|a| c.claim_missing(&a.verdict, Instant::now()))
            .collect();
        assert_eq!(
            missing.iter().map(|m| &**m).collect::<Vec<_>>(),
            ["f", "app.f", "\"App\".f"]
        );
        c.learn(
            &missing,
            vec![
                ("f".into(), true),
                ("app.f".into(), false),
                ("\"App\".f".into(), true),
            ],
        );
        assert!(matches!(c.resolve(&bare), Some(Verdict::Primary(_))));
        assert_eq!(c.resolve(&qualified), Some(Verdict::Read));
        assert!(matches!(c.resolve(&quoted), Some(Verdict::Primary(_))));
    }

    #[test]
    fn unsafe_relations_send_reads_to_the_primary() {
        let c = FunctionCatalog::default();
        let pg = Classifier::new(Dialect::Postgres);
        let t0 = Instant::now();
        let view = analysis(&pg, "SELECT * FROM app.bad_view WHERE id = 1");
        let bare = analysis(&pg, "SELECT * FROM bad_view");
        let three = analysis(&pg, "SELECT * FROM db.app.bad_view");
        let other_schema = analysis(&pg, "SELECT * FROM other.bad_view");
        let table = analysis(&pg, "SELECT * FROM users");
        let no_relation = analysis(&pg, "SELECT 1");
        let write = analysis(&pg, "DELETE FROM app.bad_view");
        assert!(!c.claim_relations(&no_relation, t0), "nothing to check");
        assert!(!c.claim_relations(&write, t0), "goes to the primary anyway");
        assert!(c.claim_relations(&view, t0));
        assert!(!c.claim_relations(&table, t0), "already pending");
        // Optimistic while the snapshot loads.
        assert_eq!(c.resolve(&view), None);
        c.learn_relations(
            vec!["app.bad_view".into(), "bad_view".into()],
            vec!["lower".into()],
            vec!["app.bad_dom".into(), "bad_dom".into()],
            t0,
        );
        let primary = |name: &str| Some(Verdict::Primary(Reason::VolatileRelation(name.into())));
        assert_eq!(c.resolve(&view), primary("app.bad_view"));
        assert_eq!(c.resolve(&bare), primary("bad_view"));
        assert_eq!(c.resolve(&three), primary("db.app.bad_view"));
        assert_eq!(c.resolve(&other_schema), None);
        assert_eq!(c.resolve(&table), None);
        assert_eq!(c.resolve(&write), None);
        // An unknown function does not hide the view.
        let both = analysis(&pg, "SELECT my_f(v.x) FROM bad_view v");
        assert_eq!(c.resolve(&both), primary("bad_view"));
        // A built-in name that an unsafe user function shares: the bare call may be the
        // user's; `pg_catalog.lower` may not.
        let side_effect =
            |name: &str| Some(Verdict::Primary(Reason::SideEffectFunction(name.into())));
        assert_eq!(
            c.resolve(&analysis(&pg, "SELECT lower(5)")),
            side_effect("lower")
        );
        assert_eq!(
            c.resolve(&analysis(&pg, "SELECT pg_catalog.lower('x')")),
            None
        );
        assert_eq!(c.resolve(&analysis(&pg, "SELECT upper('x')")), None);
        // A cast to an unsafe type, in any of its spellings; other types are not.
        let cast = |name: &str| Some(Verdict::Primary(Reason::VolatileType(name.into())));
        for (sql, name) in [
            ("SELECT 1::app.bad_dom", "app.bad_dom"),
            ("SELECT CAST(x AS bad_dom) FROM users", "bad_dom"),
            ("SELECT ARRAY[1]::bad_dom[]", "bad_dom"),
            ("SELECT '{1}'::db.app.bad_dom[][]", "db.app.bad_dom"),
        ] {
            assert_eq!(c.resolve(&analysis(&pg, sql)), cast(name), "{sql}");
        }
        assert_eq!(c.resolve(&analysis(&pg, "SELECT 1::other.bad_dom")), None);
        assert_eq!(c.resolve(&analysis(&pg, "SELECT 1::int, 'x'::text")), None);
        // A cast alone asks for the snapshot.
        let fresh = FunctionCatalog::default();
        assert!(fresh.claim_relations(&analysis(&pg, "SELECT 1::good_dom"), t0));
        // Fresh: no new snapshot until it ages or DDL runs through the pool.
        assert!(!c.claim_relations(&table, t0 + Duration::from_secs(1)));
        let t1 = t0 + RELATIONS_MAX_AGE;
        assert!(c.claim_relations(&table, t1));
        c.relations_failed(t1);
        assert_eq!(c.resolve(&view), primary("app.bad_view"), "kept on failure");
        assert!(
            !c.claim_relations(&table, t1 + Duration::from_secs(1)),
            "backs off"
        );
        assert!(c.claim_relations(&table, t1 + RETRY_AFTER));
        c.learn_relations(vec![], vec![], vec![], t0 + RELATIONS_MAX_AGE);
        assert_eq!(c.resolve(&view), None);
        let later = t0 + RELATIONS_MAX_AGE + Duration::from_secs(1);
        assert!(!c.claim_relations(&table, later));
        c.schema_changed("CREATE VIEW v AS SELECT 1");
        assert!(c.claim_relations(&table, later));
    }

    #[test]
    fn the_catalog_is_bounded() {
        let c = FunctionCatalog::default();
        let many: Vec<Arc<str>> = (0..MAX_FUNCTIONS + 10)
            .map(|i| Arc::from(format!("f{i}")))
            .collect();
        let v = Verdict::ReadUnknownFunction(many.clone().into());
        let missing = c.claim_missing(&v, Instant::now());
        c.learn(&missing, vec![]);
        assert_eq!(c.known.read().unwrap().len(), MAX_FUNCTIONS);
        assert!(c
            .claim_missing(&unknown(&["one_more"]), Instant::now())
            .is_empty());
        c.learn_relations(
            (0..MAX_RELATIONS + 10).map(|i| format!("v{i}")).collect(),
            (0..MAX_RELATIONS + 10).map(|i| format!("f{i}")).collect(),
            (0..MAX_RELATIONS + 10).map(|i| format!("t{i}")).collect(),
            Instant::now(),
        );
        assert_eq!(
            c.relations.read().unwrap().unsafe_types.len(),
            MAX_RELATIONS
        );
        assert_eq!(c.relations.read().unwrap().shadowed.len(), MAX_RELATIONS);
        assert_eq!(
            c.relations.read().unwrap().unsafe_names.len(),
            MAX_RELATIONS
        );
    }

    #[test]
    fn last_two_parts_respect_quotes() {
        assert_eq!(last_two("a.b"), None);
        assert_eq!(last_two("a.b.c"), Some("b.c"));
        assert_eq!(last_two("\"x.y\".b"), None);
        assert_eq!(last_two("\"x.y\".\"b.\"\"c\".d"), Some("\"b.\"\"c\".d"));
        assert_eq!(last_two("`d.b`.s.v"), Some("s.v"));
    }
}
