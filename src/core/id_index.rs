//! Lookup of records by their string id, storing only the record's index
//! and 32 bits of the id's hash.
//!
//! A map from `Id` to index costs 32 bytes per bucket; this table stores
//! 8 and compares against the id the record already holds. Keeping the hash
//! bits means growing the table never reads a record: rehashing 200,000
//! entries by their ids would touch 200,000 records scattered in memory, a
//! pause of tens of milliseconds, and lookups read a record only when its
//! hash bits match.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Index of a record in its table.
pub type Ix = u32;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u32,
    ix: Ix,
}

/// Ids to indexes; the ids live in the records (`id_of`).
#[derive(Debug, Default)]
pub struct IdIndex {
    table: HashTable<Entry>,
}

/// 32 bits of the id's hash, both halves folded in.
fn hash(id: &str) -> u32 {
    let h = rustc_hash::FxBuildHasher.hash_one(id);
    (h ^ h >> 32) as u32
}

/// The table's 64-bit hash of stored bits: the multiplication spreads them
/// into the top bits the table's tag bytes come from.
fn spread(hash: u32) -> u64 {
    (hash as u64 | (hash as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl IdIndex {
    /// The index of `id`, if present.
    pub fn get<'r>(&self, id: &str, id_of: impl Fn(Ix) -> &'r str) -> Option<Ix> {
        let h = hash(id);
        self.table.find(spread(h), |e| e.hash == h && id_of(e.ix) == id).map(|e| e.ix)
    }

    /// Calls `f` with every index whose hash bits match `id`'s, without
    /// reading any record: the one holding `id`, if present, is among them
    /// (with a rare 32-bit collision besides). For prefetching.
    pub fn candidates(&self, id: &str, mut f: impl FnMut(Ix)) {
        let h = hash(id);
        let _ = self.table.find(spread(h), |e| {
            if e.hash == h {
                f(e.ix);
            }
            false
        });
    }

    /// Adds `id` at `ix`; the caller made sure it was not present.
    pub fn insert(&mut self, id: &str, ix: Ix) {
        let h = hash(id);
        self.table.insert_unique(spread(h), Entry { hash: h, ix }, |e| spread(e.hash));
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
        self.table.find_entry(spread(hash), |e| e.hash == hash && e.ix == ix).map(|entry| entry.remove()).is_ok()
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no id is present.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
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
}
