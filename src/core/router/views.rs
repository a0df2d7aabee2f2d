//! Read-only views of the router for `GetInquiry`, `GetQueues`,
//! `GetStaffing`, metrics and tests.

use super::record::{Place, TimelineEntry};
use super::Router;
use crate::core::agents::status_index;
use crate::core::priority;
use crate::core::types::{AgentStatus, Band, HandoffNote, Id, Inquiry, InquiryState, Level, Millis};

/// One inquiry as `GetInquiry` shows it.
#[derive(Clone, Debug)]
pub struct InquiryView<'a> {
    pub inquiry: &'a Inquiry,
    pub state: InquiryState,
    pub owner: Option<Id>,
    pub group: Id,
    /// Score including aging now.
    pub score: i32,
    pub band: Band,
    pub escalated: bool,
    pub attempts: u32,
    pub received_at: Millis,
    pub note: Option<&'a HandoffNote>,
    pub timeline: Vec<TimelineEntry>,
    /// While offered: when the offer times out (later than the offer time
    /// plus the accept timeout if timers were paused meanwhile).
    pub offer_expires_at: Option<Millis>,
}

/// One group as `GetQueues`, `GetStaffing` and the metrics show it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupView {
    pub id: Id,
    /// Waiting per band: HIGH, NORMAL, LOW.
    pub waiting: [u32; 3],
    /// Of those, the ones nobody on duty in the group (AVAILABLE or on
    /// BREAK) could serve while someone is: left out of the load level.
    pub unservable: u32,
    pub oldest_wait_ms: u64,
    /// Agents per status: AVAILABLE, AWAY, BREAK, OFFLINE.
    pub agents: [u32; 4],
    pub occupancy: f64,
    pub level: Level,
    /// The level's reserve ratio (policy).
    pub reserve_ratio: f64,
    pub reserved_slots: u32,
    /// Capacity of the agents who can take work now.
    pub capacity: u32,
    pub free_slots: u32,
    pub arrivals_per_min: f64,
    /// Arrivals routed to agents (not deflected; bot hand-backs included):
    /// the rate the Erlang C advice is computed from.
    pub routed_per_min: f64,
    pub handle_secs: f64,
    pub concurrency: f64,
    pub erlang_agents: u32,
    pub standby_reserve: f64,
    pub recommended_agents: u32,
}

/// One agent's status and work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub id: Id,
    pub status: AgentStatus,
    pub load: u32,
    pub capacity: u32,
    pub groups: Vec<(Id, u8)>,
    pub offered: Vec<Id>,
    pub active: Vec<Id>,
}

impl GroupView {
    /// The headroom in force: slots held back for HIGH work now over the
    /// capacity of agents who can take work (0 when nobody can).
    pub fn reserve_held(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            f64::from(self.reserved_slots) / f64::from(self.capacity)
        }
    }
}

/// How many known inquiries are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub waiting: u64,
    pub offered: u64,
    pub active: u64,
    pub completed: u64,
    pub deflected: u64,
    pub cancelled: u64,
}

/// A waiting inquiry's standing, for tests that check queue order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingView {
    pub id: Id,
    pub group: Id,
    pub band: Band,
    pub rank: i64,
    pub seq: u64,
    pub overflowed: bool,
}

impl Router {
    /// Whether an ops level override is set for `group` (`None`: the router
    /// as a whole) at `now`, in force or yet to start.
    pub fn has_override(&self, group: Option<&str>, now: Millis) -> bool {
        let scope = match group {
            None => None,
            Some(name) => match self.group_ix.get(name) {
                Some(&g) => Some(g),
                None => return false,
            },
        };
        self.overrides.iter().any(|o| o.group == scope && o.until > now)
    }

    /// The ops level overrides not ended at `now`, in force or yet to
    /// start: group id (`None`: the router), minimum level, from, until.
    pub fn overrides(&self, now: Millis) -> Vec<(Option<Id>, Level, Millis, Millis)> {
        let scope = |g: Option<crate::core::agents::GroupIx>| g.map(|g| self.groups[g as usize].id.clone());
        self.overrides.iter().filter(|o| o.until > now).map(|o| (scope(o.group), o.level, o.from, o.until)).collect()
    }

    /// The inquiry `id`, while the router still knows it.
    pub fn inquiry(&self, now: Millis, id: &str) -> Option<InquiryView<'_>> {
        let rec = self.rec(self.find_inquiry(id)?);
        let (owner, group) = match rec.place {
            Place::Offered { agent, group, .. } | Place::Active { agent, group, .. } => {
                (Some(self.agents[agent as usize].id.clone()), group)
            }
            _ => (None, rec.home),
        };
        Some(InquiryView {
            inquiry: &rec.inquiry,
            state: rec.place.state(),
            owner,
            group: self.groups[group as usize].id.clone(),
            score: priority::aged_score(rec.score, rec.since, now, self.aging_ms()),
            band: rec.band,
            escalated: rec.escalated,
            attempts: rec.attempts,
            received_at: rec.received_at,
            note: rec.note.as_deref(),
            timeline: self.timeline(rec),
            offer_expires_at: match rec.place {
                Place::Offered { deadline, .. } => Some(deadline),
                _ => None,
            },
        })
    }

    /// The state of inquiry `id`, if known.
    pub fn inquiry_state(&self, id: &str) -> Option<InquiryState> {
        self.find_inquiry(id).map(|ix| self.rec(ix).place.state())
    }

    /// Per group, the earliest wait start among its open offers: an offered
    /// customer still waits, so the oldest wait (metric, alert and level)
    /// counts them, or an offer near the 3-minute mark would hide the wait
    /// until it timed out. One pass over the open offers (a few per agent).
    pub(super) fn oldest_offered(&self) -> Vec<Option<Millis>> {
        let mut oldest: Vec<Option<Millis>> = vec![None; self.groups.len()];
        for &(_, ix) in &self.offer_deadlines {
            let rec = self.rec(ix);
            let group = &mut oldest[rec.home as usize];
            *group = Some(group.map_or(rec.since, |s| s.min(rec.since)));
        }
        oldest
    }

    /// Every group, in configuration order.
    pub fn groups(&self, now: Millis) -> Vec<GroupView> {
        let offered_since = self.oldest_offered();
        (0..self.groups.len())
            .map(|g| {
                let group = &self.groups[g];
                let census = &group.agents.census;
                let playbook = self.playbook(group.level);
                let q = &group.queue;
                GroupView {
                    id: group.id.clone(),
                    waiting: [q.len_of(Band::High), q.len_of(Band::Normal), q.len_of(Band::Low)],
                    unservable: q.len_of_needs(|need| !self.load_counts(g as u16, need)),
                    oldest_wait_ms: oldest_wait(q.oldest_since(), offered_since[g], now),
                    agents: census.by_status,
                    occupancy: if census.on_duty_capacity == 0 {
                        0.0
                    } else {
                        f64::from(census.on_duty_load) / f64::from(census.on_duty_capacity)
                    },
                    level: group.level,
                    reserve_ratio: playbook.reserve_ratio,
                    reserved_slots: self.reserve_slots(g as u16),
                    capacity: census.capacity,
                    free_slots: census.free_slots(),
                    arrivals_per_min: group.arrivals_per_min,
                    routed_per_min: group.routed_per_min,
                    handle_secs: group.handle_ms_avg / 1000.0,
                    concurrency: self.staffing_concurrency(g as u16),
                    erlang_agents: group.staffing.erlang_agents,
                    standby_reserve: playbook.standby_reserve,
                    recommended_agents: group.staffing.recommended,
                }
            })
            .collect()
    }

    /// The router-wide level: the highest group level or global override.
    pub fn router_level(&self) -> Level {
        self.router_level
    }

    /// The agent `id`, if it ever set its presence.
    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let agent = &self.agents[*self.agent_ix.get(id)? as usize];
        let (mut offered, mut active) = (Vec::new(), Vec::new());
        for &ix in &agent.holding {
            let rec = self.rec(ix);
            match rec.place {
                Place::Active { .. } => active.push(rec.inquiry.id.clone()),
                _ => offered.push(rec.inquiry.id.clone()),
            }
        }
        Some(AgentView {
            id: agent.id.clone(),
            status: agent.status,
            load: agent.load(),
            capacity: agent.capacity,
            groups: agent.groups.iter().map(|&(g, p)| (self.groups[g as usize].id.clone(), p)).collect(),
            offered,
            active,
        })
    }

    /// Ids of every agent the router knows.
    pub fn agent_ids(&self) -> Vec<Id> {
        self.agents.iter().map(|a| a.id.clone()).collect()
    }

    /// Agents per status over all agents.
    pub fn agents_by_status(&self) -> [u32; 4] {
        let mut counts = [0; 4];
        for a in &self.agents {
            counts[status_index(a.status)] += 1;
        }
        counts
    }

    /// Known inquiries per state.
    pub fn state_counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for rec in self.records.iter().flatten() {
            match rec.place.state() {
                InquiryState::Waiting => c.waiting += 1,
                InquiryState::Offered => c.offered += 1,
                InquiryState::Active => c.active += 1,
                InquiryState::Completed => c.completed += 1,
                InquiryState::Deflected => c.deflected += 1,
                InquiryState::Cancelled => c.cancelled += 1,
            }
        }
        c
    }

    /// Every waiting inquiry with its rank (for order checks in tests).
    pub fn waiting(&self) -> Vec<WaitingView> {
        self.records
            .iter()
            .flatten()
            .filter(|r| r.place == Place::Waiting)
            .map(|r| WaitingView {
                id: r.inquiry.id.clone(),
                group: self.groups[r.home as usize].id.clone(),
                band: r.band,
                rank: r.rank,
                seq: r.seq,
                overflowed: r.overflowed,
            })
            .collect()
    }

    /// Whether agent `agent` has the language and skills inquiry `inquiry` needs.
    pub fn can_serve(&self, agent: &str, inquiry: &str) -> bool {
        match (self.agent_ix.get(agent), self.find_inquiry(inquiry)) {
            (Some(&ax), Some(ix)) => self.agents[ax as usize].offering.check(self.rec(ix).need).is_ok(),
            _ => false,
        }
    }

    /// Groups that may serve inquiries waiting in `group` once overflowed.
    pub fn overflow_targets(&self, group: &str) -> Vec<Id> {
        self.group_ix.get(group).map_or_else(Vec::new, |&g| {
            self.groups[g as usize].overflow_to.iter().map(|&t| self.groups[t as usize].id.clone()).collect()
        })
    }
}

/// How long the longest-waiting customer not yet answered has waited: in
/// the queue (`queued`, its oldest `since`) or offered (`offered`).
pub(super) fn oldest_wait(queued: Option<Millis>, offered: Option<Millis>, now: Millis) -> Millis {
    queued.into_iter().chain(offered).min().map_or(0, |since| now.saturating_sub(since))
}
