//! The headroom reserve at work: whether a band may take a slot, and what
//! to offer once a reserve lets NORMAL and LOW work through again.

use super::Router;
use crate::core::agents::{AgentIx, AgentKey, Class, GroupIx};
use crate::core::effect::Effect;
use crate::core::matching::Need;
use crate::core::types::{Band, Millis};

impl Router {
    /// Whether the group's reserve lets an inquiry of this band take a slot.
    pub(super) fn reserve_allows(&self, g: GroupIx, band: Band) -> bool {
        band == Band::High || self.groups[g as usize].agents.census.free_slots() > self.reserve_slots(g)
    }

    /// Adds the groups of agent `ax` whose reserve holds NORMAL and LOW work back now.
    pub(super) fn reserve_closed(&self, ax: AgentIx, closed: &mut Vec<GroupIx>) {
        let groups = self.agents[ax as usize].groups.iter().map(|&(g, _)| g);
        closed.extend(groups.filter(|&g| !self.reserve_allows(g, Band::Normal)));
    }

    /// Fills the ready agents of every group in `reopened`, best agent first.
    ///
    /// Work is conserved between commands, so all a reopened reserve can let
    /// through is NORMAL and LOW work waiting in the group's queue or
    /// overflowed from the groups that overflow into it. Only agents whose
    /// languages and skills fit such work are visited, and the walk ends once
    /// the reserve closes again or no such work is left: the other agents
    /// could take nothing they could not take before.
    pub(super) fn fill_reopened(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        use std::ops::Bound::{Excluded, Unbounded};
        while let Some(g) = self.reopened.pop() {
            let mut visited: rustc_hash::FxHashSet<AgentIx> = Default::default();
            // Filling an agent changes no other agent's key, so the best agent
            // not yet visited comes after the last one visited, in the order
            // at the start (a filled agent's new key may come later: skipped).
            let mut after: Option<crate::core::agents::AgentKey> = None;
            while self.reserve_allows(g, Band::Normal) {
                let needs = self.held_back_needs(g);
                let from = after.as_ref().map_or(Unbounded, Excluded);
                let next = self.groups[g as usize]
                    .agents
                    .ready
                    .iter()
                    .filter(|(offering, _)| needs.iter().any(|&need| offering.check(need).is_ok()))
                    .filter_map(|(_, set)| set.range((from, Unbounded)).find(|k| !visited.contains(&k.ix)))
                    .min()
                    .cloned();
                let Some(key) = next else { break };
                visited.insert(key.ix);
                let ax = key.ix;
                after = Some(key);
                self.fill_agent(now, ax, None, fx);
            }
        }
    }

    /// Fills the agents who can take work in `groups` one offer at a time,
    /// each to the best agent then (proficiency, occupancy, idle, id), as
    /// one inquiry after another would be placed: the best agent takes the
    /// best waiting work, and equally good agents are evened out by
    /// occupancy rather than filled one after the other.
    pub(super) fn fill_best_first(&mut self, now: Millis, groups: &[GroupIx], fx: &mut Vec<Effect>) {
        for &g in groups {
            let mut order: std::collections::BTreeSet<_> =
                self.groups[g as usize].agents.ready.values().flat_map(|set| set.iter()).cloned().collect();
            while let Some(key) = order.pop_first() {
                let ax = key.ix;
                if self.agents[ax as usize].class != Class::Ready || !self.offer_best_waiting(now, ax, None, fx) {
                    continue; // nothing it may take: it drops out
                }
                let a = &self.agents[ax as usize];
                if a.class == Class::Ready {
                    order.insert(AgentKey { occupancy_ppm: a.occupancy_ppm(), last_offer_at: a.last_offer_at, ..key });
                }
            }
        }
    }

    /// Needs of the NORMAL and LOW work whose way group `g`'s reserve
    /// decides: waiting in its queue, or overflowed into it.
    fn held_back_needs(&self, g: GroupIx) -> Vec<Need> {
        let group = &self.groups[g as usize];
        let sources = group.overflow_from.iter().map(|&s| &self.groups[s as usize].queue.overflowed);
        std::iter::once(&group.queue.lanes)
            .chain(sources)
            .flat_map(|lanes| lanes.iter())
            .filter(|(_, lanes)| !lanes.rest.is_empty())
            .map(|(&need, _)| need)
            .collect()
    }
}
