//! What the server says about user-defined functions the classifier does not know: asked once
//! per function name (PostgreSQL's `pg_proc.provolatile`, as pgpool-II does) and cached, so a
//! user's `VOLATILE` function stays on the primary while `STABLE` and `IMMUTABLE` ones may go
//! to replicas. Off unless `PoolOptions::function_volatility` is set.
//!
//! Layer: knowledge (above `route` only).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::route::{Reason, Verdict};

/// Learned volatility: `true` when the function may write (volatile).
#[derive(Debug, Default)]
pub(crate) struct FunctionCatalog {
    known: RwLock<HashMap<Arc<str>, bool>>,
    pending: Mutex<HashSet<Arc<str>>>,
}

/// Bounds the catalog so a stream of odd names cannot grow it without limit.
const MAX_FUNCTIONS: usize = 10_000;

impl FunctionCatalog {
    /// The verdict with learned functions applied: any volatile one sends the statement to
    /// the primary; all known and not volatile makes it a read. `None` leaves it unchanged.
    pub fn resolve(&self, verdict: &Verdict) -> Option<Verdict> {
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
    pub fn claim_missing(&self, verdict: &Verdict) -> Vec<Arc<str>> {
        let Verdict::ReadUnknownFunction(names) = verdict else {
            return Vec::new();
        };
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
                known.insert(name.clone(), answers.get(&**name).copied().unwrap_or(true));
            }
        }
        self.release(asked);
    }

    /// Forgets that `names` are being looked up (after a failed lookup).
    pub fn release(&self, names: &[Arc<str>]) {
        if let Ok(mut pending) = self.pending.lock() {
            for n in names {
                pending.remove(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(names: &[&str]) -> Verdict {
        Verdict::ReadUnknownFunction(names.iter().map(|n| Arc::from(*n)).collect())
    }

    #[test]
    fn learned_functions_decide_and_unknown_ones_stay_unknown() {
        let c = FunctionCatalog::default();
        let v = unknown(&["stable_f", "volatile_f"]);
        assert_eq!(c.resolve(&v), None);
        let missing = c.claim_missing(&v);
        assert_eq!(missing.len(), 2);
        assert!(c.claim_missing(&v).is_empty(), "already pending");
        c.learn(
            &missing,
            vec![("stable_f".into(), false), ("volatile_f".into(), true)],
        );
        assert_eq!(
            c.resolve(&v),
            Some(Verdict::Primary(Reason::SideEffectFunction(
                "volatile_f".into()
            )))
        );
        assert_eq!(c.resolve(&unknown(&["stable_f"])), Some(Verdict::Read));
        let ghost = unknown(&["no_such_fn"]);
        let missing = c.claim_missing(&ghost);
        c.learn(&missing, vec![]);
        assert!(matches!(c.resolve(&ghost), Some(Verdict::Primary(_))));
    }
}
