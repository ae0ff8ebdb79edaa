//! A per-thread front for the classifier's shared cache: the analyses of the statements this
//! thread routed last, found without the shared cache's lock, hashing and bookkeeping (a cache
//! hit through it costs about half of one through the shared cache).
//!
//! Direct-mapped: [`SLOTS`] entries per thread, each holding the text (compared in full: the
//! hash only picks the slot), the classifier it belongs to (by an id never reused, so a dropped
//! classifier's entries never answer for a new one at the same address), the classifier's
//! insertion generation when the entry was read from the shared cache, and the shared analysis.
//!
//! The front holds only what the shared cache holds: an entry is filled from a shared-cache hit
//! (never from a fresh analysis the shared cache may not keep), and answers only while the
//! classifier's generation has not moved, that is while nothing was inserted into the shared
//! cache (an insertion may replace the statement's analysis with a concurrent thread's, or evict
//! it). So every thread uses the one shared analysis of a statement, and what is learned on it
//! (a replica's refusal) is seen by all, as without the front. In a steady state, when every
//! statement is cached, nothing is inserted and the front answers; while new statements keep
//! arriving, it falls back to the shared cache.
//!
//! Texts longer than [`MAX_LEN`] are not kept, so the front's memory stays bounded: `SLOTS` ×
//! (`MAX_LEN` + one analysis) per thread, outside the shared cache's `cache_bytes` budget. An
//! entry of a dropped classifier stays until its slot is reused.

use std::cell::RefCell;
use std::sync::Arc;

use super::Analysis;

/// Entries per thread.
const SLOTS: usize = 64;
/// The longest text kept.
pub(super) const MAX_LEN: usize = 512;

struct Entry {
    classifier: u64,
    generation: u64,
    sql: Box<str>,
    analysis: Arc<Analysis>,
}

thread_local! {
    static FRONT: RefCell<[Option<Entry>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// The slot of `sql`: a multiply-rotate hash of its 8-byte words (collisions only cost a miss).
#[inline]
pub(super) fn slot(sql: &str) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = sql.as_bytes();
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    (h >> 58) as usize % SLOTS
}

/// The analysis of `sql` by `classifier`, if this thread kept it in `slot` and the classifier's
/// shared cache saw no insertion since (its `generation` is the one the entry was read at).
#[inline]
pub(super) fn get(
    classifier: u64,
    generation: u64,
    slot: usize,
    sql: &str,
) -> Option<Arc<Analysis>> {
    FRONT
        .try_with(|front| {
            let front = front.try_borrow().ok()?;
            let entry = front.get(slot)?.as_ref()?;
            let valid = entry.classifier == classifier && entry.generation == generation;
            (valid && *entry.sql == *sql).then(|| entry.analysis.clone())
        })
        .ok()
        .flatten()
}

/// Keeps `analysis`, found in the shared cache for `sql` at `generation` (read before the
/// lookup), in `slot`, in place of what was there.
pub(super) fn put(
    classifier: u64,
    generation: u64,
    slot: usize,
    sql: &str,
    analysis: &Arc<Analysis>,
) {
    if sql.len() > MAX_LEN {
        return;
    }
    let _replaced = FRONT
        .try_with(|front| {
            let mut front = front.try_borrow_mut().ok()?;
            let slot = front.get_mut(slot)?;
            if let Some(entry) = slot {
                if entry.classifier == classifier && *entry.sql == *sql {
                    // The same text again (read at a newer generation): no new copy of it.
                    entry.generation = generation;
                    return Some(std::mem::replace(&mut entry.analysis, analysis.clone()));
                }
            }
            let entry = Entry {
                classifier,
                generation,
                sql: sql.into(),
                analysis: analysis.clone(),
            };
            slot.replace(entry).map(|old| old.analysis)
        })
        .ok()
        .flatten();
    // What was replaced drops here, after the borrow ended.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_and_stay_in_range() {
        let mut used = std::collections::HashSet::new();
        for i in 0..1000 {
            let s = slot(&format!("SELECT v FROM t WHERE id = {i}"));
            assert!(s < SLOTS);
            used.insert(s);
        }
        assert!(used.len() > SLOTS / 2, "{} slots used", used.len());
        assert_eq!(slot(""), slot(""));
        assert_eq!(slot("SELECT 1"), slot("SELECT 1"));
    }
}
