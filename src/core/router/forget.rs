//! Forgetting: finished inquiries after `retain_finished`, and customers'
//! last agents after the sticky window.

use super::record::Place;
use super::Router;
use crate::core::agents::InqIx;
use crate::core::id_index::IdIndex;
use crate::core::record_table::prefetch;
use crate::core::types::Millis;
use std::collections::hash_map::Entry;

/// How many finished records ahead `forget_finished` prefetches: enough to
/// cover a memory access while one record is dropped.
const FORGET_PREFETCH: usize = 8;

impl Router {
    /// Drops finished inquiries after `retain_finished`, and stale sticky agents.
    pub(super) fn forget_finished(&mut self, now: Millis) {
        let retain = self.settings.agents.retain_finished.as_millis() as u64;
        // Records finished long ago are out of cache, and so is their
        // place in the id index: records a few ahead are fetched while one
        // is looked at, and the index removals are made in a row afterwards.
        for &(_, ix) in self.finished.iter().take(FORGET_PREFETCH) {
            self.records.prefetch(ix as usize);
        }
        let mut gone: Vec<(u32, InqIx)> = Vec::new();
        while let Some(&(at, ix)) = self.finished.front() {
            if at + retain > now {
                break;
            }
            if let Some(&(_, ahead)) = self.finished.get(FORGET_PREFETCH) {
                self.records.prefetch(ahead as usize);
            }
            self.finished.pop_front();
            // A deflected inquiry the bot handed back lives on under the same index.
            if let Some(rec) = self.records[ix as usize].as_ref() {
                if matches!(rec.place, Place::Finished { at: done, .. } if done == at) {
                    gone.push((IdIndex::hash_of(&rec.inquiry.id), ix));
                    // Its steps are read when it is dropped, after the removals below.
                    prefetch(rec.timeline.as_slice());
                }
            }
        }
        for &(hash, ix) in &gone {
            self.inquiry_ix.remove_hashed(hash, ix);
        }
        for k in 0..gone.len() {
            let ix = gone[k].1;
            // Dropping a step reads its boxed trace, a third miss behind the
            // record and the timeline: fetch those of a record a few ahead.
            if let Some(Some(ahead)) = gone.get(k + FORGET_PREFETCH).map(|&(_, a)| self.records[a as usize].as_ref()) {
                ahead.timeline.iter().filter_map(|step| step.trace.as_deref()).for_each(prefetch);
            }
            // Finished twice in the same millisecond (deflected, handed back
            // and done at once), it is listed twice: gone the first time.
            let slot = &mut self.records[ix as usize];
            let Some(rec) = slot.as_mut() else { continue };
            if self.tracking {
                self.forgotten.push(std::mem::take(&mut rec.inquiry.id));
            }
            // Dropped where it lies: moving it out first would copy all six lines.
            *slot = None;
            self.free_records.push(ix);
        }
        let window = self.settings.agents.sticky_window.as_millis() as u64;
        while let Some((at, _)) = self.sticky_expiry.front() {
            if at + window > now {
                break;
            }
            let (at, key) = self.sticky_expiry.pop_front().expect("front exists");
            // One lookup: the entry is removed only if no later accept renewed it.
            if let Entry::Occupied(entry) = self.sticky.entry(key) {
                if entry.get().1 == at {
                    entry.remove();
                }
            }
        }
    }
}
