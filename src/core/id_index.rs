//! Lookup of records by their string id, storing only the record's index
//! and 32 bits of the id's hash, in one array probed linearly.
//!
//! A map from `Id` to index costs 32 bytes per bucket; this table stores
//! 8 and compares against the id the record already holds. Keeping the hash
//! bits means growing the table never reads a record: rehashing 200,000
//! entries by their ids would touch 200,000 records scattered in memory, a
//! pause of tens of milliseconds, and lookups read a record only when its
//! hash bits match.
//!
//! Why not hashbrown's `HashTable`, as before: it keeps its control bytes
//! apart from the entries, so looking up an id not seen for minutes (an
//! accept, a completion, a new arrival) waits for two cache misses. Here an
//! id's entries follow its home slot, eight to a 64-byte line, so a lookup
//! usually waits for one.

use crate::core::record_table::prefetch;
use std::hash::BuildHasher;

/// Index of a record in its table.
pub type Ix = u32;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    hash: u32,
    ix: Ix,
}

/// An unused slot: no record has index `Ix::MAX`.
const EMPTY: Entry = Entry { hash: 0, ix: Ix::MAX };

/// Slots of a table's first allocation.
const MIN_SLOTS: usize = 64;

/// Ids to indexes; the ids live in the records (`id_of`).
#[derive(Default)]
pub struct IdIndex {
    /// A power of two of them, or none; at most three quarters in use, so
    /// that a probe rarely runs past the line its home slot is in.
    slots: Vec<Entry>,
    len: usize,
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdIndex").field("len", &self.len).field("slots", &self.slots.len()).finish()
    }
}

/// 32 bits of the id's hash, both halves folded in.
fn hash(id: &str) -> u32 {
    let h = rustc_hash::FxBuildHasher.hash_one(id);
    (h ^ h >> 32) as u32
}

impl IdIndex {
    /// The index of `id`, if present.
    pub fn get<'r>(&self, id: &str, id_of: impl Fn(Ix) -> &'r str) -> Option<Ix> {
        let h = hash(id);
        self.probe(h).map(|(_, e)| e).find(|e| e.hash == h && id_of(e.ix) == id).map(|e| e.ix)
    }

    /// Calls `f` with every index whose hash bits match `id`'s, without
    /// reading any record: the one holding `id`, if present, is among them
    /// (with a rare 32-bit collision besides). For prefetching.
    pub fn candidates(&self, id: &str, mut f: impl FnMut(Ix)) {
        let h = hash(id);
        self.probe(h).filter(|(_, e)| e.hash == h).for_each(|(_, e)| f(e.ix));
    }

    /// Asks the CPU to start loading the slots a lookup of `id` (or a
    /// removal of an id with `hash_of` bits) reads first, so that the
    /// lookup, made later, does not wait for them.
    pub fn prefetch(&self, id: &str) {
        self.prefetch_hashed(hash(id));
    }

    /// `prefetch` with the id's `hash_of`.
    pub fn prefetch_hashed(&self, hash: u32) {
        if !self.slots.is_empty() {
            let home = self.home(hash);
            // Two slots: the second is in the next line when the home slot ends one.
            prefetch(&self.slots[home..(home + 2).min(self.slots.len())]);
        }
    }

    /// Adds `id` at `ix`; the caller made sure it was not present.
    pub fn insert(&mut self, id: &str, ix: Ix) {
        assert_ne!(ix, EMPTY.ix, "index {ix} is reserved");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(Entry { hash: hash(id), ix });
        self.len += 1;
    }

    /// Removes `id` known to be at `ix`, without reading any record (the
    /// one at `ix` may already be gone); whether it was there.
    pub fn remove_at(&mut self, id: &str, ix: Ix) -> bool {
        self.remove_hashed(Self::hash_of(id), ix)
    }

    /// What `remove_hashed` needs of an id. Removing many, the hashes are
    /// taken first and the removals made in a row: the table's cache misses
    /// then overlap instead of waiting behind the work between them.
    pub fn hash_of(id: &str) -> u32 {
        hash(id)
    }

    /// `remove_at` with the id's `hash_of`.
    pub fn remove_hashed(&mut self, hash: u32, ix: Ix) -> bool {
        let wanted = Entry { hash, ix };
        let Some(at) = self.probe(hash).find(|&(_, e)| e == wanted).map(|(at, _)| at) else { return false };
        self.len -= 1;
        // Backward shift: entries after the hole that may live there move
        // up, so that no probe ever stops short at it (no tombstones).
        let mask = self.slots.len() - 1;
        let mut hole = at;
        let mut next = (at + 1) & mask;
        while self.slots[next] != EMPTY {
            let home = self.home(self.slots[next].hash);
            // It may move if its home is not after the hole (cyclically).
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = EMPTY;
        true
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot a probe for `hash` starts at: the multiplication spreads
    /// the bits into the top ones, which pick the slot.
    fn home(&self, hash: u32) -> usize {
        let spread = (hash as u64 | (hash as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (spread >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The used slots from `hash`'s home up to the first unused one, with
    /// their positions: where an entry with these bits can be.
    fn probe(&self, hash: u32) -> impl Iterator<Item = (usize, Entry)> + '_ {
        let (n, mask) = (self.slots.len(), self.slots.len().wrapping_sub(1));
        let start = if n == 0 { 0 } else { self.home(hash) };
        (0..n).map(move |k| (start + k) & mask).map(|at| (at, self.slots[at])).take_while(|&(_, e)| e != EMPTY)
    }

    /// Puts `entry` in the first unused slot from its home on (one exists).
    fn place(&mut self, entry: Entry) {
        let mask = self.slots.len() - 1;
        let mut at = self.home(entry.hash);
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = entry;
    }

    /// Doubles the slots, placing every entry again by its stored bits.
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        old.into_iter().filter(|&e| e != EMPTY).for_each(|e| self.place(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inserts_and_removes_by_the_ids_the_records_hold() {
        let ids = ["a", "b", "c", "dd"];
        let id_of = |ix: Ix| ids[ix as usize];
        let mut index = IdIndex::default();
        assert_eq!(index.get("a", id_of), None, "an empty index has nothing");
        assert!(!index.remove_at("a", 0));
        for (ix, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id, id_of), None);
            index.insert(id, ix as Ix);
        }
        assert_eq!((index.get("c", id_of), index.get("x", id_of), index.len()), (Some(2), None, 4));
        assert!(index.remove_at("b", 1));
        assert_eq!((index.get("b", id_of), index.remove_at("b", 1), index.len()), (None, false, 3));
        assert_eq!(index.get("dd", id_of), Some(3));
        assert!(!index.remove_at("dd", 2), "only at its own index");
        assert!(index.remove_at("dd", 3));
        assert_eq!((index.get("dd", id_of), index.len()), (None, 2));
    }

    #[test]
    fn a_lookup_reads_only_records_whose_hash_bits_match() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("inq-{i:010}")).collect();
        let mut index = IdIndex::default();
        for (ix, id) in ids.iter().enumerate() {
            index.insert(id, ix as Ix);
        }
        let reads = std::cell::Cell::new(0);
        let id_of = |ix: Ix| {
            reads.set(reads.get() + 1);
            ids[ix as usize].as_str()
        };
        assert!(ids.iter().enumerate().all(|(ix, id)| index.get(id, id_of) == Some(ix as Ix)));
        assert_eq!(index.get("inq-x", id_of), None);
        // Only the record with the id is read, but for a rare 32-bit collision.
        assert!(reads.get() <= 10_002, "{} record reads for 10,001 lookups", reads.get());
        let mut found = Vec::new();
        index.candidates(&ids[1234], |ix| found.push(ix));
        assert!(found.contains(&1234) && found.len() <= 2, "candidates of one id: {found:?}");
        found.clear();
        index.candidates("inq-x", |ix| found.push(ix));
        assert!(found.len() <= 1, "an absent id has no candidate but for a collision: {found:?}");
    }

    #[test]
    fn entries_sharing_a_home_slot_survive_removals_around_them_and_the_wrap() {
        // Sixteen hash values whose probes start at the last slots of the
        // first table (64 slots), so that runs of them wrap to the front.
        let mut index = IdIndex::default();
        index.insert("seed", 0);
        let near_end: Vec<u32> = (0u32..).filter(|&h| index.home(h) >= 62).take(16).collect();
        index.remove_at("seed", 0);
        let mut present: Vec<(u32, Ix)> = Vec::new();
        for (k, &h) in near_end.iter().enumerate() {
            index.place(Entry { hash: h, ix: k as Ix });
            index.len += 1;
            present.push((h, k as Ix));
        }
        // Remove every third, then check every remaining one is still found.
        for k in (0..present.len()).step_by(3).rev() {
            let (h, ix) = present.remove(k);
            assert!(index.remove_hashed(h, ix));
            assert!(!index.remove_hashed(h, ix), "removed once only");
            for &(h, ix) in &present {
                assert!(index.probe(h).any(|(_, e)| e == Entry { hash: h, ix }), "{h:#x} at {ix} lost");
            }
        }
        assert_eq!(index.len(), present.len());
    }

    #[test]
    fn matches_a_plain_map_over_random_inserts_and_removals() {
        // Through several growths, with removals in between.
        let ids: Vec<String> = (0..20_000).map(|i| format!("inq-{i:010}")).collect();
        let id_of = |ix: Ix| ids[ix as usize].as_str();
        let (mut index, mut model) = (IdIndex::default(), std::collections::HashSet::new());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..60_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ix = (x % ids.len() as u64) as Ix;
            if model.contains(&ix) {
                assert!(index.remove_at(id_of(ix), ix));
                model.remove(&ix);
            } else {
                index.insert(id_of(ix), ix);
                model.insert(ix);
            }
        }
        assert_eq!(index.len(), model.len());
        for (ix, id) in ids.iter().enumerate() {
            let want = model.contains(&(ix as Ix)).then_some(ix as Ix);
            assert_eq!(index.get(id, id_of), want, "{id}");
        }
    }
}
