//! Matching inquiries and agents: which agent gets a new inquiry, which waiting
//! inquiry a freed slot gets, and the bookkeeping of offers and queues.

use super::record::{Place, Step};
use super::Router;
use crate::core::agents::{AgentIx, AgentKey, Class, GroupIx, InqIx};
use crate::core::effect::{Effect, EventKind, Offer};
use crate::core::matching::Mismatch;
use crate::core::priority;
use crate::core::queue::{Lane, LaneKey, Lanes, Waiter};
use crate::core::types::{Band, DecisionTrace, Level, Millis, Rule};
use rustc_hash::FxHashMap;

/// The agent chosen for an inquiry in one group, or why none was.
pub(super) struct Choice {
    pub agent: Option<(AgentIx, Rule)>,
    pub trace: DecisionTrace,
}

impl Router {
    /// Level of an agent: the highest of its groups' levels.
    fn agent_level(&self, ax: AgentIx) -> Level {
        let agent = &self.agents[ax as usize];
        agent.groups.iter().map(|&(g, _)| self.groups[g as usize].level).max().unwrap_or_default()
    }

    /// Takes an agent out of its groups' census and ready indexes (not out
    /// of the indexes while `index_held` keeps it out of them already).
    pub(super) fn detach_agent(&mut self, ax: AgentIx) {
        let agent = &self.agents[ax as usize];
        let index = self.index_held != Some(ax);
        for &(g, _) in &agent.groups {
            let group = &mut self.groups[g as usize].agents;
            group.count(agent, false);
            if index {
                group.update_ready(g, ax, agent, false);
            }
        }
    }

    /// Takes the agent off the member lists of its groups, before a presence
    /// changes them. (Detaching and attaching around every offer and release
    /// leave membership alone; `join_groups` puts it back.)
    pub(super) fn leave_groups(&mut self, ax: AgentIx) {
        for &(g, _) in &self.agents[ax as usize].groups {
            self.groups[g as usize].agents.members.remove(&ax);
        }
    }

    /// Puts the agent on the member lists of its groups.
    pub(super) fn join_groups(&mut self, ax: AgentIx) {
        for &(g, _) in &self.agents[ax as usize].groups {
            self.groups[g as usize].agents.members.insert(ax);
        }
    }

    /// Recomputes capacity and class, and puts the agent back in its groups'
    /// census and ready indexes (the indexes once `index_held` lets go).
    pub(super) fn attach_agent(&mut self, ax: AgentIx) {
        let playbook = *self.playbook(self.agent_level(ax));
        let agent = &mut self.agents[ax as usize];
        agent.capacity = agent.max_concurrent + playbook.extra_concurrent;
        agent.class = agent.classify(playbook.enforce_fatigue);
        agent.indexed = (agent.class == Class::Ready).then(|| (agent.occupancy_ppm(), agent.last_offer_at));
        let agent = &self.agents[ax as usize];
        let index = self.index_held != Some(ax);
        for &(g, _) in &agent.groups {
            let group = &mut self.groups[g as usize].agents;
            group.count(agent, true);
            if index {
                group.update_ready(g, ax, agent, true);
            }
        }
    }

    /// Keeps agent `ax` out of its ready indexes until `release_index`, while
    /// several changes in a row (a completion and the offers that refill the
    /// slot) would each take it out and put it back under a new key. Nothing
    /// may choose agents in its groups meanwhile.
    pub(super) fn hold_index(&mut self, ax: AgentIx) {
        debug_assert!(self.index_held.is_none(), "one agent at a time");
        let agent = &self.agents[ax as usize];
        for &(g, _) in &agent.groups {
            self.groups[g as usize].agents.update_ready(g, ax, agent, false);
        }
        self.index_held = Some(ax);
    }

    /// Puts the agent held by `hold_index` back in its ready indexes.
    pub(super) fn release_index(&mut self, ax: AgentIx) {
        debug_assert_eq!(self.index_held, Some(ax));
        self.index_held = None;
        let agent = &self.agents[ax as usize];
        for &(g, _) in &agent.groups {
            self.groups[g as usize].agents.update_ready(g, ax, agent, true);
        }
    }

    /// Changes an agent with its indexes kept right. Groups whose reserve
    /// held NORMAL and LOW work back before and lets it through after are
    /// noted in `reopened`, for their other agents to be filled.
    pub(super) fn with_agent(&mut self, ax: AgentIx, change: impl FnOnce(&mut crate::core::agents::Agent)) {
        // A scratch list rather than a new one: this runs on every offer and release.
        let mut closed = std::mem::take(&mut self.closed_scratch);
        closed.clear();
        self.reserve_closed(ax, &mut closed);
        self.detach_agent(ax);
        change(&mut self.agents[ax as usize]);
        self.reserve_closed(ax, &mut closed);
        self.attach_agent(ax);
        for &g in &closed {
            if self.reserve_allows(g, Band::Normal) && !self.reopened.contains(&g) {
                self.reopened.push(g);
            }
        }
        self.closed_scratch = closed;
    }

    /// Frees the slot `ix` holds at agent `ax`.
    pub(super) fn release(&mut self, ax: AgentIx, ix: InqIx) {
        self.with_agent(ax, |a| a.holding.retain(|&i| i != ix));
    }

    /// Trace fields that come from the group's census.
    fn base_trace(&self, now: Millis, g: GroupIx, ix: InqIx) -> DecisionTrace {
        let group = &self.groups[g as usize];
        let census = &group.agents.census;
        let rec = self.rec(ix);
        DecisionTrace {
            rule: None,
            score: priority::aged_score(rec.score, rec.since, now, self.aging_ms()),
            band: Some(rec.band),
            level: group.level,
            group: group.id.clone(),
            considered: census.members,
            skipped_full: census.full,
            skipped_fatigue: census.fatigued,
            skipped_not_available: census.not_available,
            ..DecisionTrace::default()
        }
    }

    /// Chooses the agent for inquiry `ix` in group `g` (SPEC "Agent choice").
    pub(super) fn choose_agent(&self, now: Millis, g: GroupIx, ix: InqIx) -> Choice {
        let rec = self.rec(ix);
        let mut trace = self.base_trace(now, g, ix);
        if self.groups[g as usize].agents.ready.is_empty() {
            // No agent of the group is ready: neither is the customer's last one.
            return Choice { agent: None, trace };
        }
        let reserve_ok = self.reserve_allows(g, rec.band);
        let mut best: Option<&AgentKey> = None;
        let mut second: Option<&AgentKey> = None;
        for (offering, set) in &self.groups[g as usize].agents.ready {
            let n = set.len() as u32;
            match offering.check(rec.need) {
                Err(Mismatch::Language) => trace.skipped_language += n,
                Err(Mismatch::Skill) => trace.skipped_skill += n,
                Ok(()) if !reserve_ok => trace.skipped_reserve += n,
                Ok(()) => {
                    // The two best of all sets, for the trace's deciding
                    // criterion. A set's best is kept at hand; its next one
                    // is looked up only when the set's first becomes the best
                    // so far: otherwise it cannot be among the two.
                    let takes = |k: &&AgentKey| !rec.avoids(k.ix);
                    let first = match set.best() {
                        Some(key) if !rec.avoids(key.ix) => key,
                        _ => match set.iter().find(takes) {
                            Some(key) => key,
                            None => continue,
                        },
                    };
                    if best.is_none_or(|b| first < b) {
                        let next = set.iter().filter(takes).find(|k| *k > first);
                        second = match next {
                            Some(next) if best.is_none_or(|b| next < b) => Some(next),
                            _ => best,
                        };
                        best = Some(first);
                    } else if second.is_none_or(|s| first < s) {
                        second = Some(first);
                    }
                }
            }
        }
        if let Some(sticky) = self.sticky_agent(now, g, ix, reserve_ok) {
            trace.rule = Some(Rule::Sticky);
            return Choice { agent: Some((sticky, Rule::Sticky)), trace };
        }
        let agent = best.map(|b| {
            let rule = rec.next_rule.unwrap_or(if rec.via_dedicated {
                Rule::Dedicated
            } else {
                deciding_criterion(b, second)
            });
            (b.ix, rule)
        });
        trace.rule = agent.map(|(_, r)| r);
        Choice { agent, trace }
    }

    /// The agent that may take inquiry `ix` in group `g` now, with the trace
    /// of choosing it; `None` if none may. Unlike `choose_agent` it counts
    /// nothing when no agent is ready or the reserve holds the inquiry's
    /// band back (most arrivals in a SURGE): that trace would never be shown.
    pub(super) fn offerable_agent(&self, now: Millis, g: GroupIx, ix: InqIx) -> Option<(AgentIx, DecisionTrace)> {
        if self.groups[g as usize].agents.ready.is_empty() || !self.reserve_allows(g, self.rec(ix).band) {
            return None;
        }
        let choice = self.choose_agent(now, g, ix);
        choice.agent.map(|(ax, _)| (ax, choice.trace))
    }

    /// The customer's previous agent, if it may take this inquiry now.
    fn sticky_agent(&self, now: Millis, g: GroupIx, ix: InqIx, reserve_ok: bool) -> Option<AgentIx> {
        let rec = self.rec(ix);
        if !reserve_ok || rec.next_rule.is_some() || rec.inquiry.customer.id.is_empty() {
            return None;
        }
        let &(ax, at) = self.sticky.get(&sticky_key(&rec.inquiry.shop_id, &rec.inquiry.customer.id))?;
        let agent = &self.agents[ax as usize];
        let fresh = now.saturating_sub(at) <= self.settings.agents.sticky_window.as_millis() as u64;
        // Whoever handed this inquiry on is not whom it should come back to.
        let handed_on = || {
            rec.timeline
                .iter()
                .any(|s| matches!(s.kind, EventKind::Transferred | EventKind::Escalated) && s.agent == agent.name)
        };
        (fresh
            && agent.class == Class::Ready
            && !rec.avoids(ax)
            && agent.proficiency_in(g).is_some()
            && agent.offering.check(rec.need).is_ok()
            && !handed_on())
        .then_some(ax)
    }

    /// Offers inquiry `ix` to agent `ax` on behalf of group `g`.
    pub(super) fn offer(
        &mut self,
        now: Millis,
        ix: InqIx,
        ax: AgentIx,
        g: GroupIx,
        trace: DecisionTrace,
        fx: &mut Vec<Effect>,
    ) {
        let timeout = self.groups[g as usize].settings.accept_timeout.as_millis() as u64;
        let deadline = now + timeout;
        let mut trace = trace;
        // Set only where the level lets a fatigued agent take work at all.
        trace.agent_fatigued = self.agents[ax as usize].fatigued;
        self.offer_deadlines.insert((deadline, ix));
        self.with_agent(ax, |a| {
            a.holding.push(ix);
            a.last_offer_at = now;
        });
        let (agent_id, agent_name) = (self.agents[ax as usize].id.clone(), self.agents[ax as usize].name);
        let (group_id, group_name) = (self.groups[g as usize].id.clone(), self.groups[g as usize].name);
        let rec = self.rec_mut(ix);
        rec.place = Place::Offered { agent: ax, group: g, deadline };
        rec.attempts += 1;
        rec.excluded = None;
        rec.handed_on_by = super::record::NO_AGENT;
        rec.next_rule = None;
        let step = Step {
            at: now,
            score: trace.score,
            trace: Some(Box::new(trace.clone())),
            rare: None,
            group: group_name,
            agent: agent_name,
            kind: EventKind::Offered,
        };
        self.push_step(ix, step);
        let rec = self.rec(ix);
        fx.push(Effect::Offer(Offer {
            inquiry: rec.inquiry.id.clone(),
            shop: rec.inquiry.shop_id.clone(),
            agent: agent_id,
            group: group_id,
            at: now,
            expires_at: deadline,
            attempt: rec.attempts,
            trace,
            note: rec.note.clone(),
        }));
    }

    /// Puts inquiry `ix` in its home queue and reports `kind` (QUEUED or REQUEUED).
    pub(super) fn enqueue(&mut self, now: Millis, ix: InqIx, kind: EventKind, fx: &mut Vec<Effect>) {
        let rec = self.rec(ix);
        let (home, slot, overflowed) = (rec.home, rec.slot(), rec.overflowed);
        let clocked = self.overflow_clocked(ix);
        let group = &mut self.groups[home as usize];
        group.queue.insert(ix, &slot, overflowed, clocked);
        self.rec_mut(ix).place = Place::Waiting;
        // Work an agent gave back (OFFLINE) was just REQUEUED, with the agent
        // and the note; waiting now is the same step, not a second one.
        let home = self.groups[home as usize].name;
        let told = kind == EventKind::Requeued
            && self.rec(ix).timeline.last().is_some_and(|s| s.kind == kind && s.at == now && s.group == home);
        if !told {
            self.emit(now, ix, kind, None, fx);
        }
    }

    /// Whether waiting inquiry `ix` runs an overflow clock: its group has
    /// overflow groups, or it came in through the dedicated group (and moves
    /// on to its primary group when the clock runs out).
    pub(super) fn overflow_clocked(&self, ix: InqIx) -> bool {
        let rec = self.rec(ix);
        rec.via_dedicated || !self.groups[rec.home as usize].overflow_to.is_empty()
    }

    /// Takes a waiting inquiry out of its queue.
    pub(super) fn dequeue(&mut self, ix: InqIx) {
        let rec = self.rec(ix);
        debug_assert_eq!(rec.place, Place::Waiting);
        let (home, slot) = (rec.home, rec.slot());
        self.groups[home as usize].queue.remove(&slot);
    }

    /// Offers `ix` in its home group if an agent may take it, else (once
    /// overflowed) in an overflow group, else queues it.
    pub(super) fn route(&mut self, now: Millis, ix: InqIx, queued: EventKind, fx: &mut Vec<Effect>) {
        let home = self.rec(ix).home;
        if let Some((ax, trace)) = self.offerable_agent(now, home, ix) {
            return self.offer(now, ix, ax, home, trace, fx);
        }
        if self.rec(ix).overflowed {
            for t in 0..self.groups[home as usize].overflow_to.len() {
                let target = self.groups[home as usize].overflow_to[t];
                if let Some((ax, mut trace)) = self.offerable_agent(now, target, ix) {
                    trace.rule = Some(Rule::Overflow);
                    return self.offer(now, ix, ax, target, trace, fx);
                }
            }
        }
        self.enqueue(now, ix, queued, fx);
    }

    /// Fills agent `ax`'s free slots with the best waiting work it may take,
    /// never `skip` (the inquiry it just gave back).
    pub(super) fn fill_agent(&mut self, now: Millis, ax: AgentIx, skip: Option<InqIx>, fx: &mut Vec<Effect>) {
        while self.agents[ax as usize].class == Class::Ready && self.offer_best_waiting(now, ax, skip, fx) {}
    }

    /// Offers agent `ax` the best waiting inquiry it may take, if any.
    pub(super) fn offer_best_waiting(
        &mut self,
        now: Millis,
        ax: AgentIx,
        skip: Option<InqIx>,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let Some((ix, g, overflow)) = self.best_waiting_for(ax, skip) else { return false };
        // Waiting for minutes, its record is cold: load all its lines at once.
        self.records.prefetch(ix as usize);
        let mut trace = self.base_trace(now, g, ix);
        let rec = self.rec(ix);
        let rule = if overflow {
            Rule::Overflow
        } else {
            rec.next_rule.unwrap_or(if rec.via_dedicated { Rule::Dedicated } else { Rule::BestProficiency })
        };
        trace.rule = Some(rule);
        self.dequeue(ix);
        self.offer(now, ix, ax, g, trace, fx);
        true
    }

    /// The best waiting inquiry agent `ax` may take: from its groups' queues,
    /// and from the overflow lanes of groups that overflow into them.
    fn best_waiting_for(&self, ax: AgentIx, skip: Option<InqIx>) -> Option<(InqIx, GroupIx, bool)> {
        let agent = &self.agents[ax as usize];
        let mut best: Option<(LaneKey, InqIx, GroupIx, bool)> = None;
        for overflow in [false, true] {
            for &(g, _) in &agent.groups {
                let rest_allowed = self.reserve_allows(g, Band::Normal);
                let group = &self.groups[g as usize];
                let sources: &[GroupIx] = if overflow { &group.overflow_from } else { std::slice::from_ref(&g) };
                for &src in sources {
                    let queue = &self.groups[src as usize].queue;
                    let lanes = if overflow { &queue.overflowed } else { &queue.lanes };
                    if let Some((key, ix)) = self.best_in(lanes, ax, skip, rest_allowed) {
                        if best.is_none_or(|(b, ..)| key < b) {
                            best = Some((key, ix, g, overflow));
                        }
                    }
                }
            }
        }
        best.map(|(_, ix, g, overflow)| (ix, g, overflow))
    }

    fn best_in(
        &self,
        lanes: &FxHashMap<crate::core::matching::Need, Lanes>,
        ax: AgentIx,
        skip: Option<InqIx>,
        rest_allowed: bool,
    ) -> Option<(LaneKey, InqIx)> {
        let offering = self.agents[ax as usize].offering;
        let usable = |w: Waiter| Some(w.ix()) != skip && !(w.may_avoid() && self.rec(w.ix()).avoids(ax));
        let mut best: Option<(LaneKey, InqIx)> = None;
        for (need, lanes) in lanes {
            if offering.check(*need).is_err() {
                continue;
            }
            let mut consider = |lane: &Lane| {
                // Every inquiry the agent is avoiding is passed over, however many.
                let found = lane.iter().find(|(_, &w)| usable(w));
                if let Some((&key, &w)) = found {
                    if best.is_none_or(|(b, _)| key < b) {
                        best = Some((key, w.ix()));
                    }
                }
            };
            consider(&lanes.high);
            if rest_allowed {
                consider(&lanes.rest);
            }
        }
        best
    }
}

/// Key of the sticky-agent memory: the customer within a shop, as a 64-bit
/// hash rather than the strings, so that remembering a customer costs no
/// allocation. The hash is rustc-hash's, as the id index's: it costs a
/// fraction of SipHash's on every arrival and accept, and neither was keyed
/// here. Two customers sharing a key would at worst be offered the other's
/// last agent first. The memory is not persisted (a restore rebuilds it from
/// the timelines), so the hash need only be stable within one process.
pub(super) fn sticky_key(shop: &str, customer: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((shop, customer))
}

/// Which criterion put `best` ahead of the runner-up.
fn deciding_criterion(best: &AgentKey, second: Option<&AgentKey>) -> Rule {
    match second {
        None => Rule::BestProficiency,
        Some(s) if s.inverse_proficiency != best.inverse_proficiency => Rule::BestProficiency,
        Some(s) if s.occupancy_ppm != best.occupancy_ppm => Rule::LeastOccupied,
        Some(_) => Rule::LongestIdle,
    }
}
