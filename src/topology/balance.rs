//! Balancing policies: which eligible replica serves the next read.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use sqlx::Database;

use super::Replica;

/// How reads are spread over eligible replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Power of two choices on outstanding requests: pick two replicas at random and use the
    /// one with fewer requests in flight (ties: the higher weight). Adapts to slow replicas
    /// without coordination; the default.
    #[default]
    LeastOutstanding,
    /// Each replica in turn.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// At random, in proportion to each replica's weight.
    Weighted,
}

pub(super) fn pick<'a, DB: Database>(
    balance: Balance,
    replicas: &'a [Replica<DB>],
    cursor: &AtomicUsize,
    ok: impl Fn(&Replica<DB>) -> bool,
) -> Option<&'a Replica<DB>> {
    match replicas {
        [] => None,
        [only] => ok(only).then_some(only),
        _ => match balance {
            Balance::RoundRobin => {
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                (0..replicas.len())
                    .map(|i| &replicas[(start + i) % replicas.len()])
                    .find(|r| ok(r))
            }
            Balance::Random => nth_eligible(replicas, &ok, |n| rand::rng().random_range(0..n)),
            Balance::Weighted => {
                let total: u64 = eligible(replicas, &ok).map(|r| u64::from(r.weight)).sum();
                if total == 0 {
                    return None;
                }
                let mut ticket = rand::rng().random_range(0..total);
                eligible(replicas, &ok).find(|r| {
                    let w = u64::from(r.weight);
                    if ticket < w {
                        true
                    } else {
                        ticket -= w;
                        false
                    }
                })
            }
            Balance::LeastOutstanding => {
                let n = eligible(replicas, &ok).count();
                if n <= 1 {
                    return eligible(replicas, &ok).next();
                }
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                let ra = eligible(replicas, &ok).nth(a)?;
                let rb = eligible(replicas, &ok).nth(b)?;
                let load =
                    |r: &Replica<DB>| (r.in_flight.load(Ordering::Relaxed), u32::MAX - r.weight);
                Some(if load(rb) < load(ra) { rb } else { ra })
            }
        },
    }
}

fn eligible<'a, 'f, DB: Database>(
    replicas: &'a [Replica<DB>],
    ok: &'f impl Fn(&Replica<DB>) -> bool,
) -> impl Iterator<Item = &'a Replica<DB>> + 'f
where
    'a: 'f,
{
    replicas.iter().filter(move |r| ok(r))
}

fn nth_eligible<'a, DB: Database>(
    replicas: &'a [Replica<DB>],
    ok: &impl Fn(&Replica<DB>) -> bool,
    choose: impl FnOnce(usize) -> usize,
) -> Option<&'a Replica<DB>> {
    let n = eligible(replicas, ok).count();
    if n == 0 {
        return None;
    }
    eligible(replicas, ok).nth(choose(n))
}
