//! A group's waiting inquiries, ordered by rank within lanes that share the
//! same language and skill need, split HIGH / other so the reserve can let
//! HIGH through while holding NORMAL and LOW back.

use super::agents::InqIx;
use super::matching::Need;
use super::types::{Band, Millis};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

/// Order within a lane: smallest first = best (negated rank, then arrival).
pub type LaneKey = (i64, u64);

/// Two lanes for one need.
#[derive(Clone, Debug, Default)]
pub struct Lanes {
    pub high: BTreeMap<LaneKey, InqIx>,
    pub rest: BTreeMap<LaneKey, InqIx>,
}

impl Lanes {
    fn lane(&mut self, band: Band) -> &mut BTreeMap<LaneKey, InqIx> {
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
}

/// The waiting inquiries of one group.
#[derive(Clone, Debug, Default)]
pub struct GroupQueue {
    pub lanes: FxHashMap<Need, Lanes>,
    /// Those that waited `overflow_after`: also servable by overflow groups.
    pub overflowed: FxHashMap<Need, Lanes>,
    /// Waiting inquiries not yet overflowed, by wait start.
    pub clock: BTreeMap<(Millis, u64), InqIx>,
    by_age: BTreeSet<(Millis, u64)>,
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
    map.entry(slot.need).or_default().lane(slot.band).insert(slot.key, ix);
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
        } else if clocked {
            self.clock.insert((slot.since, slot.key.1), ix);
        }
        self.by_age.insert((slot.since, slot.key.1));
        self.by_band[band_index(slot.band)] += 1;
    }

    /// Removes a waiting inquiry from every structure it may be in.
    pub fn remove(&mut self, slot: &Slot) {
        remove_lane(&mut self.lanes, slot);
        remove_lane(&mut self.overflowed, slot);
        self.clock.remove(&(slot.since, slot.key.1));
        self.by_age.remove(&(slot.since, slot.key.1));
        self.by_band[band_index(slot.band)] -= 1;
    }

    /// Moves an inquiry whose overflow clock ran out into the overflow lanes.
    pub fn mark_overflowed(&mut self, ix: InqIx, slot: &Slot) {
        self.clock.remove(&(slot.since, slot.key.1));
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
        self.by_age.first().map(|&(since, _)| since)
    }
}
