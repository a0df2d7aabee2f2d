//! A group's waiting inquiries, ordered by rank within lanes that share the
//! same language and skill need, split HIGH / other so the reserve can let
//! HIGH through while holding NORMAL and LOW back.

use super::agents::InqIx;
use super::matching::Need;
use super::types::{Band, Millis};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

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

/// The waiting inquiries of one group.
#[derive(Clone, Debug, Default)]
pub struct GroupQueue {
    pub lanes: FxHashMap<Need, Lanes>,
    /// Those that waited `overflow_after`: also servable by overflow groups.
    pub overflowed: FxHashMap<Need, Lanes>,
    /// Waiting inquiries not yet overflowed, by wait start.
    pub clock: BTreeMap<(Millis, u64), InqIx>,
    /// The waiting inquiries that are not in `clock`, by wait start.
    by_age: BTreeMap<(Millis, u64), InqIx>,
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
        let age = (slot.since, slot.key.1);
        if overflowed {
            insert_lane(&mut self.overflowed, slot, ix);
            self.by_age.insert(age, ix);
        } else if clocked {
            self.clock.insert(age, ix);
        } else {
            self.by_age.insert(age, ix);
        }
        self.by_band[band_index(slot.band)] += 1;
    }

    /// Removes a waiting inquiry from every structure it may be in.
    pub fn remove(&mut self, slot: &Slot) {
        remove_lane(&mut self.lanes, slot);
        remove_lane(&mut self.overflowed, slot);
        let age = (slot.since, slot.key.1);
        if self.clock.remove(&age).is_none() {
            self.by_age.remove(&age);
        }
        self.by_band[band_index(slot.band)] -= 1;
    }

    /// Moves an inquiry whose overflow clock ran out into the overflow lanes.
    pub fn mark_overflowed(&mut self, ix: InqIx, slot: &Slot) {
        let age = (slot.since, slot.key.1);
        if self.clock.remove(&age).is_some() {
            self.by_age.insert(age, ix);
        }
        insert_lane(&mut self.overflowed, slot, ix);
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
        let clocked = self.clock.first_key_value().map(|(&age, _)| age);
        let unclocked = self.by_age.first_key_value().map(|(&age, _)| age);
        clocked.into_iter().chain(unclocked).min().map(|(since, _)| since)
    }

    /// Wait start of the longest-waiting inquiry that `counts`: a walk from
    /// the oldest that stops at the first one, so it costs one step per
    /// older inquiry that does not count.
    pub fn oldest_since_of(&self, counts: impl Fn(InqIx) -> bool) -> Option<Millis> {
        let (mut clocked, mut unclocked) = (self.clock.iter().peekable(), self.by_age.iter().peekable());
        loop {
            let take_clocked = match (clocked.peek(), unclocked.peek()) {
                (Some(c), Some(u)) => c.0 < u.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let (&(since, _), &ix) = if take_clocked { clocked.next() } else { unclocked.next() }.expect("peeked");
            if counts(ix) {
                return Some(since);
            }
        }
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

    fn slot(since: Millis, seq: u64) -> Slot {
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
}
