//! A table of slots addressed by a `u32` index that grows without moving
//! what it holds.
//!
//! A `Vec` of a few hundred thousand ~340-byte records copies all of them
//! each time it grows: a 100-160 ms pause of the routing thread at 150,000
//! records, longer with every growth. Here slots live in fixed chunks; growing
//! adds a chunk and copies nothing, and an index stays valid for the slot's
//! life.

use std::ops::{Index, IndexMut};

/// Slots per chunk: 1,024 records are ~350 KB, small next to the table and
/// large enough that the chunk list stays short.
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Optional values at stable indexes, like a `Vec<Option<T>>` that never
/// moves its elements.
#[derive(Clone)]
pub struct RecordTable<T> {
    /// Arrays rather than slices: an index masked to the chunk needs no
    /// second bounds check on each of the many record reads a command makes.
    chunks: Vec<Box<[Option<T>; CHUNK]>>,
    len: usize,
}

/// The slots up to `len()`, not the unused rest of the last chunk.
impl<T: std::fmt::Debug> std::fmt::Debug for RecordTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Default for RecordTable<T> {
    fn default() -> Self {
        RecordTable { chunks: Vec::new(), len: 0 }
    }
}

impl<T> RecordTable<T> {
    /// Number of slots, empty ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a slot holding `value` at index `len()`.
    pub fn push(&mut self, value: T) {
        if self.len == self.chunks.len() * CHUNK {
            let chunk: Box<[Option<T>]> = (0..CHUNK).map(|_| None).collect();
            self.chunks.push(chunk.try_into().unwrap_or_else(|_| unreachable!("a chunk has CHUNK slots")));
        }
        let ix = self.len;
        self.len += 1;
        self[ix] = Some(value);
    }

    /// Asks the CPU to start loading slot `ix` (if it exists) into cache.
    /// Batches over records met long ago (forgetting, overflow) prefetch
    /// those ahead, so their cache misses overlap instead of queueing.
    pub fn prefetch(&self, ix: usize) {
        if ix < self.len {
            prefetch(&self.chunks[ix >> CHUNK_BITS][ix & (CHUNK - 1)]);
        }
    }

    /// Every slot in index order, empty ones included.
    pub fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flat_map(|chunk| chunk.iter()).take(self.len)
    }
}

/// Asks the CPU to start loading `value` (a value or a slice) into cache:
/// an agent about to be read, or the heap parts of records about to be
/// dropped, which drop glue would otherwise read one miss at a time.
pub fn prefetch<T: ?Sized>(value: &T) {
    prefetch_bytes((value as *const T).cast(), std::mem::size_of_val(value));
}

/// Prefetches every 64-byte cache line that `len` bytes from `start`
/// touch; nothing on targets without a prefetch instruction.
fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first_line = start.wrapping_sub(start as usize % 64);
        let end = start as usize + len;
        for offset in (0..end - first_line as usize).step_by(64) {
            // SAFETY: SSE is part of every x86_64 target, and a prefetch is
            // only a hint: it reads nothing the program sees and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first_line.wrapping_add(offset).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

impl<T> Index<usize> for RecordTable<T> {
    type Output = Option<T>;

    fn index(&self, ix: usize) -> &Option<T> {
        assert!(ix < self.len, "slot {ix} of a table of {}", self.len);
        &self.chunks[ix >> CHUNK_BITS][ix & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for RecordTable<T> {
    fn index_mut(&mut self, ix: usize) -> &mut Option<T> {
        assert!(ix < self.len, "slot {ix} of a table of {}", self.len);
        &mut self.chunks[ix >> CHUNK_BITS][ix & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_index_and_place_across_chunks() {
        let mut table = RecordTable::default();
        for i in 0..3 * CHUNK + 5 {
            table.push(i);
        }
        let first: *const Option<usize> = &table[0];
        for i in 0..CHUNK {
            table.push(i);
        }
        assert!(std::ptr::eq(first, &table[0]), "growing moved the first slot");
        assert_eq!(
            (table.len(), table[CHUNK], table[3 * CHUNK + 4]),
            (4 * CHUNK + 5, Some(CHUNK), Some(3 * CHUNK + 4))
        );
        table[7] = None;
        // A hint only: any index, in range or past the end, changes nothing.
        (0..table.len() + CHUNK).step_by(97).for_each(|ix| table.prefetch(ix));
        assert_eq!(table.iter().flatten().count(), 4 * CHUNK + 4);
        assert_eq!(table.iter().nth(8), Some(&Some(8)));
        assert_eq!(table.iter().last(), Some(&Some(CHUNK - 1)));
    }

    #[test]
    #[should_panic(expected = "slot 5 of a table of 5")]
    fn a_slot_past_the_end_is_refused_even_inside_the_last_chunk() {
        let mut table = RecordTable::default();
        (0..5).for_each(|i| table.push(i));
        let _ = &table[5];
    }
}
