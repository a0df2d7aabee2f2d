//! Agents and the per-group census and index of agents ready for work.
//!
//! An agent's place in a group's ready index is `(5 - proficiency, occupancy,
//! last offer, id)`, so the first entry is the SPEC's choice: highest
//! proficiency, then lowest occupancy, then longest idle, then id.

use super::matching::Offering;
use super::types::{AgentStatus, Id, Millis};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

pub type AgentIx = u32;
pub type GroupIx = u16;
pub type InqIx = u32;
/// A group or agent id in the router's name table (timelines keep these).
pub type NameIx = u32;

/// Whether an agent can take new work now, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    NotAvailable,
    Fatigued,
    Full,
    Ready,
}

/// One agent and its live state.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: Id,
    /// `id` in the router's name table, for timelines.
    pub name: NameIx,
    pub status: AgentStatus,
    /// Groups with proficiency 1-5.
    pub groups: Vec<(GroupIx, u8)>,
    pub max_concurrent: u32,
    /// `max_concurrent` plus the playbook's extra chats at the agent's level.
    pub capacity: u32,
    /// Inquiries offered to or active with this agent.
    pub holding: Vec<InqIx>,
    pub offering: Offering,
    pub last_offer_at: Millis,
    /// Start of continuous service (fatigue rule).
    pub serving_since: Option<Millis>,
    /// Start of the current pause from service.
    pub paused_since: Option<Millis>,
    /// Set by the fatigue timer once `serving_since + max_continuous` passed.
    pub fatigued: bool,
    pub consecutive_timeouts: u32,
    /// Open offer streams; zero starts the heartbeat grace.
    pub connections: u32,
    pub grace_deadline: Option<Millis>,
    /// Its last desktop stream ended and none is back yet (the grace runs).
    /// Not set by a restore's grace: desktops reconnecting to a restarted
    /// router get the offers it made meanwhile when they subscribe.
    pub stream_lost: bool,
    /// Within one tick: its offers that ran out will set it AWAY, so it
    /// takes no new work meanwhile (it would be withdrawn at once).
    pub away_due: bool,
    pub class: Class,
    /// `(occupancy, last_offer_at)` under which the agent is in ready indexes.
    pub indexed: Option<(u32, Millis)>,
    /// Recorded fields changed since the last `take_changes`.
    pub dirty: bool,
}

impl Agent {
    /// Offered plus active inquiries.
    pub fn load(&self) -> u32 {
        self.holding.len() as u32
    }

    /// Class from status, desktop, fatigue and load; `enforce_fatigue` from
    /// the level. An agent whose offer stream dropped takes no new work
    /// during the heartbeat grace: an offer would wait unseen until it timed
    /// out, while a connected agent might take it now.
    pub fn classify(&self, enforce_fatigue: bool) -> Class {
        if self.status != AgentStatus::Available || self.stream_lost || self.away_due {
            Class::NotAvailable
        } else if self.fatigued && enforce_fatigue {
            Class::Fatigued
        } else if self.load() >= self.capacity {
            Class::Full
        } else {
            Class::Ready
        }
    }

    /// Load over capacity in millionths, comparable across agents.
    pub fn occupancy_ppm(&self) -> u32 {
        if self.capacity == 0 {
            return 1_000_000;
        }
        (u64::from(self.load()) * 1_000_000 / u64::from(self.capacity)) as u32
    }

    /// Proficiency in `group`, if a member.
    pub fn proficiency_in(&self, group: GroupIx) -> Option<u8> {
        self.groups.iter().find(|(g, _)| *g == group).map(|&(_, p)| p)
    }
}

/// Position in a group's ready index; the smallest is the best agent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentKey {
    pub inverse_proficiency: u8,
    pub occupancy_ppm: u32,
    pub last_offer_at: Millis,
    pub id: Id,
    pub ix: AgentIx,
}

/// Counts of a group's agents by class, and the slots of those who can work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub members: u32,
    pub not_available: u32,
    pub fatigued: u32,
    pub full: u32,
    pub ready: u32,
    pub by_status: [u32; 4],
    /// Capacity of agents who can take work now (AVAILABLE, not fatigued).
    pub capacity: u32,
    /// Load of those same agents.
    pub load: u32,
    /// Their free slots, agent by agent: one above its cap (after a level
    /// drop or a lower `max_concurrent`) frees none, and hides no one else's.
    pub free: u32,
    /// Capacity and load of the agents at work (AVAILABLE or on BREAK),
    /// fatigued or not: how busy the team on duty is (occupancy).
    pub on_duty_capacity: u32,
    pub on_duty_load: u32,
}

impl Census {
    /// Free slots among agents who can take work now.
    pub fn free_slots(&self) -> u32 {
        self.free
    }

    /// Adds (`sign = 1`) or removes (`sign = -1`) one agent's contribution.
    pub fn count(&mut self, agent: &Agent, sign: i32) {
        let apply = |v: &mut u32, d: u32| {
            *v = if sign > 0 { *v + d } else { *v - d };
        };
        apply(&mut self.members, 1);
        apply(&mut self.by_status[status_index(agent.status)], 1);
        match agent.class {
            Class::NotAvailable => apply(&mut self.not_available, 1),
            Class::Fatigued => apply(&mut self.fatigued, 1),
            Class::Full => apply(&mut self.full, 1),
            Class::Ready => apply(&mut self.ready, 1),
        }
        if matches!(agent.status, AgentStatus::Available | AgentStatus::Break) {
            apply(&mut self.on_duty_capacity, agent.capacity);
            apply(&mut self.on_duty_load, agent.load());
        }
        if matches!(agent.class, Class::Full | Class::Ready) {
            apply(&mut self.capacity, agent.capacity);
            apply(&mut self.load, agent.load());
            apply(&mut self.free, agent.capacity.saturating_sub(agent.load()));
        }
    }
}

/// Index of a status in `Census::by_status`.
pub fn status_index(status: AgentStatus) -> usize {
    match status {
        AgentStatus::Available => 0,
        AgentStatus::Away => 1,
        AgentStatus::Break => 2,
        AgentStatus::Offline => 3,
    }
}

/// The ready agents of one offering in a group, best first, with a copy of
/// the best: choosing an agent compares the best of every offering that can
/// serve the inquiry, and reading it here costs no walk down the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadySet {
    agents: BTreeSet<AgentKey>,
    best: Option<AgentKey>,
}

impl ReadySet {
    pub fn insert(&mut self, key: AgentKey) {
        if self.best.as_ref().is_none_or(|best| key < *best) {
            self.best = Some(key.clone());
        }
        self.agents.insert(key);
    }

    pub fn remove(&mut self, key: &AgentKey) {
        self.agents.remove(key);
        if self.best.as_ref() == Some(key) {
            self.best = self.agents.first().cloned();
        }
    }

    /// The best agent (smallest key).
    pub fn best(&self) -> Option<&AgentKey> {
        self.best.as_ref()
    }

    pub fn iter(&self) -> std::collections::btree_set::Iter<'_, AgentKey> {
        self.agents.iter()
    }

    pub fn range(
        &self,
        bounds: (std::ops::Bound<&AgentKey>, std::ops::Bound<&AgentKey>),
    ) -> std::collections::btree_set::Range<'_, AgentKey> {
        self.agents.range(bounds)
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

/// A group's agents: who is in it, counts, and who is ready by offering.
#[derive(Clone, Debug, Default)]
pub struct GroupAgents {
    pub members: BTreeSet<AgentIx>,
    pub census: Census,
    pub ready: FxHashMap<Offering, ReadySet>,
    /// Agents who can take work (AVAILABLE, not fatigued), full or not, by
    /// offering: who will serve a need once a slot frees.
    pub working: FxHashMap<Offering, u32>,
}

impl GroupAgents {
    /// Puts an agent in (`add`) or takes it out of this group's structures.
    pub fn update(&mut self, group: GroupIx, ix: AgentIx, agent: &Agent, add: bool) {
        if add {
            self.members.insert(ix);
        } else {
            self.members.remove(&ix);
        }
        self.update_counts(group, ix, agent, add);
    }

    /// [`GroupAgents::update`] except `members`: for taking an agent out
    /// while its state changes and its groups stay the same.
    pub fn update_counts(&mut self, group: GroupIx, ix: AgentIx, agent: &Agent, add: bool) {
        self.count(agent, add);
        self.update_ready(group, ix, agent, add);
    }

    /// Adds the agent to (`add`) or takes it out of the census and the
    /// working counts, as it is now.
    pub fn count(&mut self, agent: &Agent, add: bool) {
        self.census.count(agent, if add { 1 } else { -1 });
        if matches!(agent.class, Class::Full | Class::Ready) {
            let n = self.working.entry(agent.offering).or_default();
            if add {
                *n += 1;
            } else {
                *n -= 1;
                if *n == 0 {
                    self.working.remove(&agent.offering);
                }
            }
        }
    }

    /// Members on duty (AVAILABLE or on BREAK).
    pub fn on_duty(&self) -> u32 {
        self.census.by_status[status_index(AgentStatus::Available)]
            + self.census.by_status[status_index(AgentStatus::Break)]
    }

    /// Whether an agent who can take work now (a slot free or not) could
    /// serve `need`.
    pub fn someone_working_could_serve(&self, need: crate::core::matching::Need) -> bool {
        self.working.keys().any(|offering| offering.check(need).is_ok())
    }

    /// Puts the agent in (`add`) or takes it out of the ready index under
    /// its `indexed` key; nothing if it has none.
    pub fn update_ready(&mut self, group: GroupIx, ix: AgentIx, agent: &Agent, add: bool) {
        let Some((occupancy_ppm, last_offer_at)) = agent.indexed else { return };
        let proficiency = agent.proficiency_in(group).unwrap_or(1);
        let key = AgentKey {
            inverse_proficiency: 5u8.saturating_sub(proficiency),
            occupancy_ppm,
            last_offer_at,
            id: agent.id.clone(),
            ix,
        };
        if add {
            self.ready.entry(agent.offering).or_default().insert(key);
        } else if let Some(set) = self.ready.get_mut(&agent.offering) {
            set.remove(&key);
            if set.is_empty() {
                self.ready.remove(&agent.offering);
            }
        }
    }
}
