//! A group's waiting inquiries, ordered by rank within lanes that share the
//! same language and skill need, split HIGH / other so the reserve can let
//! HIGH through while holding NORMAL and LOW back.

use super::agents::InqIx;
use super::matching::Need;
use super::types::{Band, Millis};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// Order within a lane: smallest first = best (negated rank, then arrival).
pub type LaneKey = (i64, u64);

/// A waiting inquiry in a lane: its index, and whether it may avoid some
/// agent (one it was just taken back from, or who handed it on). Finding
/// the best inquiry for an agent reads the record of a lane's first entry
/// only when it may: the records of waiting work are long out of cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter(u32);

impl Waiter {
    const MAY_AVOID: u32 = 1 << 31;

    pub fn new(ix: InqIx, may_avoid: bool) -> Waiter {
        assert!(ix < Self::MAY_AVOID, "inquiry index {ix} out of range");
        Waiter(if may_avoid { ix | Self::MAY_AVOID } else { ix })
    }

    pub fn ix(self) -> InqIx {
        self.0 & !Self::MAY_AVOID
    }

    /// False only if the inquiry avoided no agent when it was queued, or
    /// overflowed for the overflow lanes (it never starts avoiding one
    /// while it waits).
    pub fn may_avoid(self) -> bool {
        self.0 & Self::MAY_AVOID != 0
    }
}

/// One lane: waiting inquiries in order, best first.
pub type Lane = BTreeMap<LaneKey, Waiter>;

/// Two lanes for one need.
#[derive(Clone, Debug, Default)]
pub struct Lanes {
    pub high: Lane,
    pub rest: Lane,
}

impl Lanes {
    fn lane(&mut self, band: Band) -> &mut Lane {
        if band == Band::High {
            &mut self.high
        } else {
            &mut self.rest
        }
    }

    fn is_empty(&self) -> bool {
        self.high.is_empty() && self.rest.is_empty()
    }
}

/// Where a waiting inquiry sits; enough to remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub need: Need,
    pub band: Band,
    pub key: LaneKey,
    pub since: Millis,
    /// The inquiry avoids some agent (see [`Waiter`]).
    pub avoids: bool,
}

/// Wait start and arrival sequence: the order of `GroupQueue`'s age index.
pub type AgeKey = (Millis, u64);

/// An entry of the age index: the inquiry, and whether its overflow clock
/// runs (its group overflows or it came in through the dedicated group,
/// and it has not overflowed yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Aged(u32);

impl Aged {
    const CLOCK_RUNS: u32 = 1 << 31;

    fn new(ix: InqIx, clock_runs: bool) -> Aged {
        assert!(ix < Self::CLOCK_RUNS, "inquiry index {ix} out of range");
        Aged(if clock_runs { ix | Self::CLOCK_RUNS } else { ix })
    }

    fn ix(self) -> InqIx {
        self.0 & !Self::CLOCK_RUNS
    }

    fn clock_runs(self) -> bool {
        self.0 & Self::CLOCK_RUNS != 0
    }
}

/// The waiting inquiries of one group.
#[derive(Clone, Debug, Default)]
pub struct GroupQueue {
    pub lanes: FxHashMap<Need, Lanes>,
    /// Those that waited `overflow_after`: also servable by overflow groups.
    pub overflowed: FxHashMap<Need, Lanes>,
    /// Every waiting inquiry by wait start. Overflow clocks run out in this
    /// order, so the tick walks it once, onward from `frontier`: an
    /// inquiry stays in this one index from queueing to leaving instead of
    /// moving from a clock index to another one when it overflows.
    by_age: BTreeMap<AgeKey, Aged>,
    /// The last key the tick walked; every clock up to it has run out.
    frontier: Option<AgeKey>,
    /// Running clocks queued at or behind `frontier` (such as an inquiry
    /// back in the queue after its offer ended, its wait start kept): the
    /// walk has passed their keys, so they are found here.
    late: BTreeMap<AgeKey, InqIx>,
    by_band: [u32; 3],
}

fn band_index(band: Band) -> usize {
    match band {
        Band::High => 0,
        Band::Normal => 1,
        Band::Low => 2,
    }
}

fn insert_lane(map: &mut FxHashMap<Need, Lanes>, slot: &Slot, ix: InqIx) {
    map.entry(slot.need).or_default().lane(slot.band).insert(slot.key, Waiter::new(ix, slot.avoids));
}

fn remove_lane(map: &mut FxHashMap<Need, Lanes>, slot: &Slot) {
    if let Some(lanes) = map.get_mut(&slot.need) {
        lanes.lane(slot.band).remove(&slot.key);
        if lanes.is_empty() {
            map.remove(&slot.need);
        }
    }
}

impl GroupQueue {
    /// Adds a waiting inquiry; `overflowed` puts it straight in the overflow
    /// lanes, `clocked` starts its overflow clock (groups with overflow targets).
    pub fn insert(&mut self, ix: InqIx, slot: &Slot, overflowed: bool, clocked: bool) {
        insert_lane(&mut self.lanes, slot, ix);
        if overflowed {
            insert_lane(&mut self.overflowed, slot, ix);
        }
        let age = (slot.since, slot.key.1);
        let clock_runs = clocked && !overflowed;
        self.by_age.insert(age, Aged::new(ix, clock_runs));
        if clock_runs && self.frontier.is_some_and(|f| age <= f) {
            self.late.insert(age, ix);
        }
        self.by_band[band_index(slot.band)] += 1;
    }

    /// Removes a waiting inquiry from every structure it may be in.
    pub fn remove(&mut self, slot: &Slot) {
        remove_lane(&mut self.lanes, slot);
        remove_lane(&mut self.overflowed, slot);
        let age = (slot.since, slot.key.1);
        let aged = self.by_age.remove(&age);
        if aged.is_some_and(Aged::clock_runs) && !self.late.is_empty() {
            self.late.remove(&age);
        }
        self.by_band[band_index(slot.band)] -= 1;
    }

    /// Appends to `due` the inquiries whose overflow clock ran out by `now`
    /// (`after` = the group's `overflow_after`), oldest first, and stops
    /// their clocks. Each entry is walked once in its life.
    pub fn take_due(&mut self, now: Millis, after: Millis, due: &mut Vec<InqIx>) {
        let ran_out = |&(since, _): &AgeKey| since.saturating_add(after) <= now;
        while let Some(entry) = self.late.first_entry().filter(|e| ran_out(e.key())) {
            let (age, ix) = entry.remove_entry();
            due.push(ix);
            if let Some(aged) = self.by_age.get_mut(&age) {
                *aged = Aged::new(ix, false);
            }
        }
        let onward = match self.frontier {
            Some(f) => self.by_age.range_mut((Excluded(f), Unbounded)),
            None => self.by_age.range_mut(..),
        };
        for (age, aged) in onward.take_while(|(age, _)| ran_out(age)) {
            self.frontier = Some(*age);
            if aged.clock_runs() {
                due.push(aged.ix());
                *aged = Aged::new(aged.ix(), false);
            }
        }
    }

    /// Puts an inquiry whose overflow clock ran out in the overflow lanes.
    pub fn mark_overflowed(&mut self, ix: InqIx, slot: &Slot) {
        insert_lane(&mut self.overflowed, slot, ix);
    }

    /// Whether the overflow clock of waiting inquiry `slot` runs, and the
    /// tick will find it when it runs out (for the invariants).
    pub fn clock_runs(&self, slot: &Slot) -> bool {
        let age = (slot.since, slot.key.1);
        let walked = self.frontier.is_some_and(|f| age <= f);
        self.by_age.get(&age).is_some_and(|a| a.clock_runs()) && (!walked || self.late.contains_key(&age))
    }

    /// The age index holds every waiting inquiry once, and `late` only
    /// running clocks the walk has passed (for the invariants).
    pub fn check_ages(&self) -> Result<(), String> {
        if self.by_age.len() != self.len() as usize {
            return Err(format!("{} in the age index, {} waiting", self.by_age.len(), self.len()));
        }
        for (age, &ix) in &self.late {
            let listed = self.by_age.get(age).is_some_and(|a| a.ix() == ix && a.clock_runs());
            if !listed || self.frontier.is_none_or(|f| *age > f) {
                return Err(format!("inquiry index {ix} is late but not a running clock behind the walk"));
            }
        }
        Ok(())
    }

    /// Whether waiting inquiry `ix` with `slot` is in the age index.
    pub fn is_aged(&self, ix: InqIx, slot: &Slot) -> bool {
        self.by_age.get(&(slot.since, slot.key.1)).is_some_and(|a| a.ix() == ix)
    }

    /// Number of waiting inquiries.
    pub fn len(&self) -> u32 {
        self.by_band.iter().sum()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waiting count of one band.
    pub fn len_of(&self, band: Band) -> u32 {
        self.by_band[band_index(band)]
    }

    /// Wait start of the longest-waiting inquiry.
    pub fn oldest_since(&self) -> Option<Millis> {
        self.by_age.first_key_value().map(|(&(since, _), _)| since)
    }

    /// Wait start of the longest-waiting inquiry that `counts`: a walk from
    /// the oldest that stops at the first one, so it costs one step per
    /// older inquiry that does not count.
    pub fn oldest_since_of(&self, counts: impl Fn(InqIx) -> bool) -> Option<Millis> {
        self.by_age.iter().find(|(_, aged)| counts(aged.ix())).map(|(&(since, _), _)| since)
    }

    /// Waiting inquiries whose need `counts`, lane by lane.
    pub fn len_of_needs(&self, counts: impl Fn(Need) -> bool) -> u32 {
        let lanes = self.lanes.iter().filter(|(&need, _)| counts(need));
        lanes.map(|(_, l)| (l.high.len() + l.rest.len()) as u32).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn slot(since: Millis, seq: u64) -> Slot {
        Slot { need: Need::default(), band: Band::Normal, key: (-(since as i64), seq), since, avoids: false }
    }

    #[test]
    fn a_waiter_keeps_its_index_and_whether_it_may_avoid_someone() {
        for (ix, may_avoid) in [(0, false), (7, true), ((1 << 31) - 1, true), ((1 << 31) - 1, false)] {
            let w = Waiter::new(ix, may_avoid);
            assert_eq!((w.ix(), w.may_avoid()), (ix, may_avoid));
        }
        let mut q = GroupQueue::default();
        q.insert(4, &Slot { avoids: true, ..slot(10, 1) }, true, false);
        let lanes = &q.lanes[&Need::default()].rest;
        assert_eq!(lanes.values().next().map(|w| (w.ix(), w.may_avoid())), Some((4, true)));
        assert!(q.overflowed[&Need::default()].rest.values().all(|w| w.may_avoid()));
    }

    #[test]
    fn oldest_wait_covers_clocked_overflowed_and_unclocked_inquiries() {
        let mut q = GroupQueue::default();
        let (a, b, c) = (slot(100, 1), slot(50, 2), slot(200, 3));
        q.insert(1, &a, false, true);
        q.insert(2, &b, false, false);
        q.insert(3, &c, false, true);
        assert_eq!((q.len(), q.oldest_since()), (3, Some(50)));
        q.remove(&b);
        assert_eq!(q.oldest_since(), Some(100));
        q.mark_overflowed(1, &a);
        assert_eq!(q.oldest_since(), Some(100));
        q.remove(&a);
        assert_eq!(q.oldest_since(), Some(200));
        q.remove(&c);
        assert_eq!((q.len(), q.oldest_since()), (0, None));
    }

    #[test]
    fn the_oldest_that_counts_skips_the_older_ones_that_do_not() {
        let mut q = GroupQueue::default();
        let (a, b, c) = (slot(100, 1), slot(50, 2), slot(200, 3));
        q.insert(1, &a, false, true);
        q.insert(2, &b, false, false);
        q.insert(3, &c, true, false);
        assert_eq!(q.oldest_since_of(|_| true), Some(50));
        assert_eq!(q.oldest_since_of(|ix| ix != 2), Some(100));
        assert_eq!(q.oldest_since_of(|ix| ix == 3), Some(200));
        assert_eq!(q.oldest_since_of(|_| false), None);
        assert_eq!((q.len_of_needs(|_| true), q.len_of_needs(|_| false)), (3, 0));
    }

    fn due(q: &mut GroupQueue, now: Millis, after: Millis) -> Vec<InqIx> {
        let mut due = Vec::new();
        q.take_due(now, after, &mut due);
        due
    }

    #[test]
    fn clocks_run_out_oldest_first_once_each_and_only_where_they_run() {
        let mut q = GroupQueue::default();
        q.insert(1, &slot(100, 1), false, true);
        q.insert(2, &slot(150, 2), false, false);
        q.insert(3, &slot(200, 3), true, true);
        q.insert(4, &slot(300, 4), false, true);
        assert_eq!(due(&mut q, 160, 60), vec![1]);
        assert_eq!(due(&mut q, 199, 60), Vec::<InqIx>::new(), "a clock runs out once");
        // Not clocked (2) and already overflowed (3) are passed over.
        assert_eq!(due(&mut q, 400, 60), vec![4]);
        assert!(!q.clock_runs(&slot(300, 4)));
        q.check_ages().unwrap();
    }

    #[test]
    fn a_shorter_overflow_time_catches_up_and_a_longer_one_waits() {
        let mut q = GroupQueue::default();
        for (ix, since) in [(1, 100), (2, 200), (3, 300)] {
            q.insert(ix, &slot(since, ix as u64), false, true);
        }
        assert_eq!(due(&mut q, 350, 300), Vec::<InqIx>::new());
        assert_eq!(due(&mut q, 350, 120), vec![1, 2]);
        assert_eq!(due(&mut q, 500, 300), Vec::<InqIx>::new());
        assert_eq!(due(&mut q, 600, 300), vec![3]);
    }

    #[test]
    fn a_clock_queued_behind_the_walk_still_runs_out_and_leaves_cleanly() {
        let mut q = GroupQueue::default();
        q.insert(1, &slot(100, 1), false, true);
        q.insert(2, &slot(300, 3), false, true);
        assert_eq!(due(&mut q, 200, 60), vec![1]);
        // Back in the queue after an offer ended, wait start kept: behind the walk.
        let back = slot(90, 2);
        q.insert(5, &back, false, true);
        assert!(q.clock_runs(&back));
        q.check_ages().unwrap();
        assert_eq!(due(&mut q, 149, 60), Vec::<InqIx>::new());
        assert_eq!(due(&mut q, 150, 60), vec![5]);
        assert!(!q.clock_runs(&back));
        q.check_ages().unwrap();
        // One that leaves before its clock runs out leaves the late index too.
        let again = slot(95, 4);
        q.insert(6, &again, false, true);
        q.remove(&again);
        q.check_ages().unwrap();
        assert_eq!(due(&mut q, 1_000, 60), vec![2]);
        assert_eq!((q.len(), q.oldest_since()), (3, Some(90)));
    }
}

#[cfg(test)]
#[path = "queue_properties.rs"]
mod properties;
