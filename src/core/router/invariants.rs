//! A full consistency check of the router's indexes, for tests. It scans
//! everything, so it is never called on a hot path.

use super::record::Place;
use super::Router;
use crate::core::agents::{Class, GroupAgents};
use crate::core::types::AgentStatus;

impl Router {
    /// Checks every index against the records and agents; describes the first
    /// inconsistency found.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_records()?;
        self.check_agents()?;
        self.check_work_conserving()
    }

    fn check_records(&self) -> Result<(), String> {
        let mut waiting_per_group = vec![0u32; self.groups.len()];
        for (ix, rec) in self.records.iter().enumerate() {
            let Some(rec) = rec else { continue };
            let ix = ix as u32;
            let id = &rec.inquiry.id;
            if self.find_inquiry(id) != Some(ix) {
                return Err(format!("inquiry {id} is not indexed by id"));
            }
            let holders = self.agents.iter().filter(|a| a.holding.contains(&ix)).count();
            match rec.place {
                Place::Waiting => {
                    waiting_per_group[rec.home as usize] += 1;
                    let slot = rec.slot();
                    let queue = &self.groups[rec.home as usize].queue;
                    let lane_entry = |lanes: &rustc_hash::FxHashMap<_, crate::core::queue::Lanes>| {
                        let lanes = lanes.get(&slot.need);
                        let lane =
                            lanes.map(|l| if slot.band == crate::core::types::Band::High { &l.high } else { &l.rest });
                        lane.and_then(|l| l.get(&slot.key)).copied()
                    };
                    let entries =
                        [Some(lane_entry(&queue.lanes)), rec.overflowed.then(|| lane_entry(&queue.overflowed))];
                    for entry in entries.into_iter().flatten() {
                        let Some(w) = entry.filter(|w| w.ix() == ix) else {
                            return Err(format!("waiting inquiry {id} is missing from its queue"));
                        };
                        // A lane scan reads the record only when its entry says it may avoid someone.
                        if slot.avoids && !w.may_avoid() {
                            return Err(format!("waiting inquiry {id} avoids an agent, its queue entry says not"));
                        }
                    }
                    if !queue.is_aged(ix, &slot) {
                        return Err(format!("waiting inquiry {id} is missing from its queue's age index"));
                    }
                    // Its overflow clock runs until it overflows, and the tick will find it.
                    if queue.clock_runs(&slot) != (self.overflow_clocked(ix) && !rec.overflowed) {
                        return Err(format!("waiting inquiry {id}: its overflow clock disagrees with its record"));
                    }
                    if holders != 0 {
                        return Err(format!("waiting inquiry {id} is also held by an agent"));
                    }
                }
                Place::Offered { agent, .. } | Place::Active { agent, .. } => {
                    if holders != 1 || !self.agents[agent as usize].holding.contains(&ix) {
                        return Err(format!("inquiry {id} is held by {holders} agents"));
                    }
                    if let Some(deadline) = deadline_of(rec.place) {
                        if !self.offer_deadlines.contains(&(deadline, ix)) {
                            return Err(format!("offered inquiry {id} has no offer timer"));
                        }
                    }
                }
                Place::Finished { .. } => {
                    if holders != 0 {
                        return Err(format!("finished inquiry {id} is still held"));
                    }
                }
            }
        }
        for (g, group) in self.groups.iter().enumerate() {
            group.queue.check_ages().map_err(|e| format!("group {}: {e}", group.id))?;
            if group.queue.len() != waiting_per_group[g] {
                return Err(format!(
                    "group {} counts {} waiting, records say {}",
                    group.id,
                    group.queue.len(),
                    waiting_per_group[g]
                ));
            }
        }
        if self.offer_deadlines.len()
            != self.records.iter().flatten().filter(|r| matches!(r.place, Place::Offered { .. })).count()
        {
            return Err("stale offer timers".to_string());
        }
        Ok(())
    }

    fn check_agents(&self) -> Result<(), String> {
        let mut expected: Vec<GroupAgents> = vec![GroupAgents::default(); self.groups.len()];
        for (ax, agent) in self.agents.iter().enumerate() {
            if agent.status != AgentStatus::Available
                && agent.holding.iter().any(|&ix| !matches!(self.rec(ix).place, Place::Active { .. }))
            {
                return Err(format!("agent {} is {:?} but holds an open offer", agent.id, agent.status));
            }
            if agent.class == Class::Ready && agent.load() >= agent.capacity {
                return Err(format!("agent {} is ready while full", agent.id));
            }
            for &(g, _) in &agent.groups {
                expected[g as usize].update(g, ax as u32, agent, true);
            }
        }
        for (group, want) in self.groups.iter().zip(&expected) {
            if group.agents.census != want.census {
                return Err(format!("group {} census {:?}, expected {:?}", group.id, group.agents.census, want.census));
            }
            if group.agents.ready != want.ready
                || group.agents.members != want.members
                || group.agents.working != want.working
            {
                return Err(format!("group {} ready index out of step", group.id));
            }
        }
        Ok(())
    }

    /// No waiting inquiry could be offered right now: whenever an agent of its
    /// group (or, once overflowed, of an overflow group) may take it, it has been.
    fn check_work_conserving(&self) -> Result<(), String> {
        for rec in self.records.iter().flatten().filter(|r| r.place == Place::Waiting) {
            let ix = self.find_inquiry(&rec.inquiry.id).expect("indexed");
            let home = rec.home;
            let overflow = if rec.overflowed { self.groups[home as usize].overflow_to.clone() } else { Vec::new() };
            for g in std::iter::once(home).chain(overflow) {
                if let Some((ax, _)) = self.choose_agent(0, g, ix).agent {
                    return Err(format!(
                        "inquiry {} waits in {} although agent {} of {} may take it",
                        rec.inquiry.id,
                        self.groups[home as usize].id,
                        self.agents[ax as usize].id,
                        self.groups[g as usize].id
                    ));
                }
            }
        }
        Ok(())
    }
}

fn deadline_of(place: Place) -> Option<u64> {
    match place {
        Place::Offered { deadline, .. } => Some(deadline),
        _ => None,
    }
}
