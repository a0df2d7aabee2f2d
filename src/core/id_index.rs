//! Lookup of records by their string id, storing only the record's index.
//!
//! A map from `Id` to index costs 32 bytes per bucket; this table
//! stores the 4-byte index and compares against the id the record already
//! holds, so a waiting inquiry pays about 5 bytes per bucket for its id.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Index of a record in its table.
pub type Ix = u32;

/// Ids to indexes; the ids live in the records (`id_of`).
#[derive(Debug, Default)]
pub struct IdIndex {
    table: HashTable<Ix>,
}

fn hash(id: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

impl IdIndex {
    /// The index of `id`, if present.
    pub fn get<'r>(&self, id: &str, id_of: impl Fn(Ix) -> &'r str) -> Option<Ix> {
        self.table.find(hash(id), |&ix| id_of(ix) == id).copied()
    }

    /// Adds `id` at `ix`; the caller made sure it was not present.
    pub fn insert<'r>(&mut self, id: &str, ix: Ix, id_of: impl Fn(Ix) -> &'r str) {
        self.table.insert_unique(hash(id), ix, |&other| hash(id_of(other)));
    }

    /// Removes `id` known to be at `ix`, without reading any record (the
    /// one at `ix` may already be gone); whether it was there.
    pub fn remove_at(&mut self, id: &str, ix: Ix) -> bool {
        self.table.find_entry(hash(id), |&other| other == ix).map(|entry| entry.remove()).is_ok()
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
            index.insert(id, ix as Ix, id_of);
        }
        assert_eq!((index.get("c", id_of), index.get("x", id_of), index.len()), (Some(2), None, 4));
        assert!(index.remove_at("b", 1));
        assert_eq!((index.get("b", id_of), index.remove_at("b", 1), index.len()), (None, false, 3));
        assert_eq!(index.get("dd", id_of), Some(3));
        assert!(!index.remove_at("dd", 2), "only at its own index");
        assert!(index.remove_at("dd", 3));
        assert_eq!((index.get("dd", id_of), index.len()), (None, 2));
    }
}
