//! Balancing policies: which eligible replica serves the next read.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use sqlx::Database;

use super::Server;

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

/// What a balancer needs to know about a replica: its requests in flight and its weight.
/// `Server` in the pool; plain structs in the tests.
pub(super) trait Candidate {
    fn in_flight(&self) -> usize;
    fn weight(&self) -> u32;
}

impl<DB: Database> Candidate for Server<DB> {
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn weight(&self) -> u32 {
        self.weight
    }
}

/// Chooses a replica with the thread-local generator (`rand::rng()`: no lock, no allocation).
pub(super) fn pick<'a, DB: Database>(
    balance: Balance,
    replicas: &'a [Server<DB>],
    cursor: &AtomicUsize,
    ok: impl Fn(&Server<DB>) -> bool,
) -> Option<&'a Server<DB>> {
    match replicas {
        // No choice to draw: no generator to fetch (its thread-local costs more than the pick).
        [] => None,
        [only] => ok(only).then_some(only),
        _ => pick_with(balance, replicas, cursor, ok, &mut rand::rng()),
    }
}

/// Chooses one of the `replicas` that pass `ok`, drawing any randomness from `rng` (any
/// [`Rng`]: a seeded one makes the choice reproducible, as in the tests). `None` when no replica
/// passes. Allocates nothing and takes no lock.
pub(super) fn pick_with<'a, C: Candidate, R: Rng + ?Sized>(
    balance: Balance,
    replicas: &'a [C],
    cursor: &AtomicUsize,
    ok: impl Fn(&C) -> bool,
    rng: &mut R,
) -> Option<&'a C> {
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
            Balance::Random => nth_eligible(replicas, &ok, |n| rng.random_range(0..n)),
            Balance::Weighted => {
                let total: u64 = eligible(replicas, &ok).map(|r| u64::from(r.weight())).sum();
                if total == 0 {
                    return None;
                }
                let mut ticket = rng.random_range(0..total);
                eligible(replicas, &ok).find(|r| {
                    let w = u64::from(r.weight());
                    if ticket < w {
                        true
                    } else {
                        ticket -= w;
                        false
                    }
                })
            }
            // Each replica judged once (the judgement reads the replica's health, lag and
            // role: the costliest part of a pick), into a mask of the eligible positions.
            Balance::LeastOutstanding if replicas.len() <= 64 => {
                let mask = replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| ok(r))
                    .fold(0u64, |mask, (i, _)| mask | 1 << i);
                let n = mask.count_ones() as usize;
                if n <= 1 {
                    return (n == 1).then(|| &replicas[mask.trailing_zeros() as usize]);
                }
                // Two distinct eligible replicas, uniformly (the same draws as below).
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                let ra = &replicas[nth_set_bit(mask, a)];
                let rb = &replicas[nth_set_bit(mask, b)];
                let load = |r: &C| (r.in_flight(), u32::MAX - r.weight());
                Some(if load(rb) < load(ra) { rb } else { ra })
            }
            Balance::LeastOutstanding => {
                let n = eligible(replicas, &ok).count();
                if n <= 1 {
                    return eligible(replicas, &ok).next();
                }
                // Two distinct eligible replicas, uniformly.
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                let ra = eligible(replicas, &ok).nth(a)?;
                let rb = eligible(replicas, &ok).nth(b)?;
                let load = |r: &C| (r.in_flight(), u32::MAX - r.weight());
                Some(if load(rb) < load(ra) { rb } else { ra })
            }
        },
    }
}

fn eligible<'a, 'f, C>(
    replicas: &'a [C],
    ok: &'f impl Fn(&C) -> bool,
) -> impl Iterator<Item = &'a C> + 'f
where
    'a: 'f,
{
    replicas.iter().filter(move |r| ok(r))
}

/// The position of the `n`th (from 0) set bit of `mask`, which has more than `n` set bits.
fn nth_set_bit(mut mask: u64, n: usize) -> usize {
    for _ in 0..n {
        mask &= mask - 1;
    }
    mask.trailing_zeros() as usize
}

fn nth_eligible<'a, C>(
    replicas: &'a [C],
    ok: &impl Fn(&C) -> bool,
    choose: impl FnOnce(usize) -> usize,
) -> Option<&'a C> {
    let n = eligible(replicas, ok).count();
    if n == 0 {
        return None;
    }
    eligible(replicas, ok).nth(choose(n))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[derive(Debug)]
    struct Fake {
        id: usize,
        in_flight: usize,
        weight: u32,
    }

    impl Candidate for Fake {
        fn in_flight(&self) -> usize {
            self.in_flight
        }

        fn weight(&self) -> u32 {
            self.weight
        }
    }

    /// Replicas with these `(in_flight, weight)`, identified by position.
    fn fakes(spec: &[(usize, u32)]) -> Vec<Fake> {
        spec.iter()
            .enumerate()
            .map(|(id, &(in_flight, weight))| Fake {
                id,
                in_flight,
                weight,
            })
            .collect()
    }

    /// How often each replica is picked in `rounds` picks, with a generator seeded by `seed`.
    fn histogram(
        balance: Balance,
        replicas: &[Fake],
        ok: impl Fn(&Fake) -> bool,
        seed: u64,
        rounds: usize,
    ) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        let cursor = AtomicUsize::new(0);
        let mut counts = vec![0; replicas.len()];
        for _ in 0..rounds {
            let r = pick_with(balance, replicas, &cursor, &ok, &mut rng).expect("a replica");
            counts[r.id] += 1;
        }
        counts
    }

    const P2C: Balance = Balance::LeastOutstanding;

    #[test]
    fn p2c_picks_the_less_loaded_of_two() {
        // With two eligible replicas both are always drawn: the idle one always wins.
        for seed in 0..20 {
            let r = fakes(&[(7, 1), (0, 1)]);
            assert_eq!(histogram(P2C, &r, |_| true, seed, 100), [0, 100]);
            let r = fakes(&[(0, 1), (7, 1)]);
            assert_eq!(histogram(P2C, &r, |_| true, seed, 100), [100, 0]);
        }
    }

    #[test]
    fn p2c_never_picks_the_more_loaded_of_the_pair() {
        // The busiest replica loses every pair it is in; the idlest wins every pair it is in
        // (drawn in 2 of the 3 possible pairs); the middle one wins only against the busiest.
        let r = fakes(&[(10, 1), (0, 1), (5, 1)]);
        let counts = histogram(P2C, &r, |_| true, 7, 3000);
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] > counts[2], "{counts:?}");
        assert!((1700..=2300).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn p2c_breaks_ties_by_weight() {
        for seed in 0..20 {
            let r = fakes(&[(3, 1), (3, 5)]);
            assert_eq!(histogram(P2C, &r, |_| true, seed, 50), [0, 50]);
        }
        // Load comes first: a heavier but busier replica loses.
        let r = fakes(&[(1, 1), (2, 100)]);
        assert_eq!(histogram(P2C, &r, |_| true, 3, 50), [50, 0]);
    }

    #[test]
    fn p2c_draws_every_pair_when_loads_are_equal() {
        let r = fakes(&[(0, 1), (0, 1), (0, 1), (0, 1)]);
        let counts = histogram(P2C, &r, |_| true, 11, 4000);
        for c in &counts {
            assert!((700..=1300).contains(c), "{counts:?}");
        }
    }

    #[test]
    fn ineligible_replicas_are_never_picked() {
        // The idlest replica is out: the choice is among the others only.
        let r = fakes(&[(0, 9), (4, 1), (2, 1)]);
        for balance in [P2C, Balance::RoundRobin, Balance::Random, Balance::Weighted] {
            let counts = histogram(balance, &r, |f| f.id != 0, 5, 300);
            assert_eq!(counts[0], 0, "{balance:?}: {counts:?}");
            assert_eq!(counts.iter().sum::<usize>(), 300);
        }
        // One eligible replica left: it, whatever its load; none left: nothing.
        assert_eq!(histogram(P2C, &r, |f| f.id == 1, 5, 10), [0, 10, 0]);
        let mut rng = StdRng::seed_from_u64(1);
        let cursor = AtomicUsize::new(0);
        for balance in [P2C, Balance::RoundRobin, Balance::Random, Balance::Weighted] {
            assert!(pick_with(balance, &r, &cursor, |_| false, &mut rng).is_none());
            assert!(pick_with(balance, &r[..1], &cursor, |_| false, &mut rng).is_none());
            assert!(pick_with::<Fake, _>(balance, &[], &cursor, |_| true, &mut rng).is_none());
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let r = fakes(&[(1, 1), (1, 2), (0, 1), (2, 3), (1, 1)]);
        for balance in [P2C, Balance::Random, Balance::Weighted] {
            let run = |seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                let cursor = AtomicUsize::new(0);
                (0..200)
                    .map(|_| {
                        pick_with(balance, &r, &cursor, |_| true, &mut rng)
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(42), run(42), "{balance:?}");
            assert_ne!(run(42), run(43), "{balance:?}");
        }
    }

    /// The choice of power of two choices by iterating over the eligible replicas (the path
    /// `pick_with` takes for more than 64): the reference the mask path must match.
    fn p2c_by_iteration<'a, R: Rng>(
        replicas: &'a [Fake],
        ok: &impl Fn(&Fake) -> bool,
        rng: &mut R,
    ) -> Option<&'a Fake> {
        let n = eligible(replicas, ok).count();
        if n <= 1 {
            return eligible(replicas, ok).next();
        }
        let a = rng.random_range(0..n);
        let b = (a + rng.random_range(1..n)) % n;
        let ra = eligible(replicas, ok).nth(a)?;
        let rb = eligible(replicas, ok).nth(b)?;
        let load = |r: &Fake| (r.in_flight(), u32::MAX - r.weight());
        Some(if load(rb) < load(ra) { rb } else { ra })
    }

    #[test]
    fn p2c_judges_each_replica_once_and_chooses_as_by_iteration() {
        let mut setup = StdRng::seed_from_u64(99);
        for case in 0..500u64 {
            let len = setup.random_range(2..=64);
            let spec: Vec<(usize, u32)> = (0..len)
                .map(|_| (setup.random_range(0..4), setup.random_range(1..3)))
                .collect();
            let r = fakes(&spec);
            let out: u64 = setup.random();
            let ok = |f: &Fake| out >> (f.id % 64) & 1 == 0 || case % 7 == 0;
            let judged = std::cell::Cell::new(0);
            let counted = |f: &Fake| {
                judged.set(judged.get() + 1);
                ok(f)
            };
            let cursor = AtomicUsize::new(0);
            let got = pick_with(P2C, &r, &cursor, counted, &mut StdRng::seed_from_u64(case));
            let want = p2c_by_iteration(&r, &ok, &mut StdRng::seed_from_u64(case));
            assert_eq!(
                got.map(|f| f.id),
                want.map(|f| f.id),
                "case {case}: {spec:?}"
            );
            assert_eq!(judged.get(), len, "case {case}: each replica judged once");
        }
    }

    #[test]
    fn p2c_beyond_64_replicas_still_prefers_the_less_loaded() {
        // 70 replicas: the iterating path. Only two are eligible, so both are always drawn.
        let mut spec = vec![(0, 1); 70];
        spec[3] = (9, 1);
        spec[68] = (1, 1);
        let r = fakes(&spec);
        let counts = histogram(P2C, &r, |f| f.id == 3 || f.id == 68, 4, 40);
        assert_eq!((counts[3], counts[68]), (0, 40), "{counts:?}");
    }

    #[test]
    fn weighted_follows_the_weights() {
        let r = fakes(&[(0, 1), (0, 3), (0, 0)]);
        let counts = histogram(Balance::Weighted, &r, |_| true, 9, 4000);
        assert_eq!(counts[2], 0, "weight 0 is never picked: {counts:?}");
        assert!((2700..=3300).contains(&counts[1]), "{counts:?}");
    }
}
