//! The router: all routing state and every decision of SPEC section 4.
//!
//! `Router::handle(now, command, &mut effects)` is the only way state changes.
//! It never reads a clock and never performs I/O; adapters carry out the
//! effects. The same commands at the same times always give the same effects.

mod acting;
mod clock;
mod forget;
mod handoff;
mod invariants;
mod lifecycle;
mod persist;
mod placement;
mod presence;
mod record;
mod reserve;
mod restore;
mod returns;
mod timeline;
mod views;

pub use clock::OVERRIDES_PER_SCOPE;
pub use record::{Place, TimelineEntry};
pub use views::{AgentView, GroupView, InquiryView, StateCounts, WaitingView};

use super::agents::{Agent, AgentIx, GroupAgents, GroupIx, InqIx};
use super::command::Command;
use super::effect::Effect;
use super::error::CoreError;
use super::id_index::IdIndex;
use super::levels::{ArrivalWindow, LevelTracker};
use super::matching::{BitNames, SharedNames};
use super::queue::GroupQueue;
use super::record_table::RecordTable;
use super::settings::{GroupSettings, Playbook, RoutingSettings};
use super::staffing::StaffingAdvice;
use super::types::{Category, Id, Level, Millis};
use record::Record;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};
use timeline::Names;

/// One skill group's live state.
#[derive(Debug)]
struct Group {
    id: Id,
    /// `id` in `names`.
    name: super::agents::NameIx,
    settings: GroupSettings,
    overflow_to: Vec<GroupIx>,
    overflow_from: Vec<GroupIx>,
    queue: GroupQueue,
    agents: GroupAgents,
    /// Arrivals that land here, each customer once: the load level's rate.
    arrivals: ArrivalWindow,
    /// Arrivals routed here (not deflected; a bot hand-back counts here,
    /// once): the rate agents must answer, for the staffing advice.
    routed: ArrivalWindow,
    tracker: LevelTracker,
    /// Level in force: measured, raised by any active override.
    level: Level,
    handle_ms_avg: f64,
    arrivals_per_min: f64,
    routed_per_min: f64,
    staffing: StaffingAdvice,
}

/// A minimum level pinned by ops for a window.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Override {
    group: Option<GroupIx>,
    level: Level,
    from: Millis,
    until: Millis,
}

/// The routing engine. See the module docs.
#[derive(Debug)]
pub struct Router {
    settings: RoutingSettings,
    groups: Vec<Group>,
    group_ix: FxHashMap<String, GroupIx>,
    primary: [GroupIx; 8],
    dedicated: Option<GroupIx>,
    escalation: Option<GroupIx>,
    agents: Vec<Agent>,
    agent_ix: FxHashMap<Id, AgentIx>,
    records: RecordTable<Record>,
    free_records: Vec<InqIx>,
    inquiry_ix: IdIndex,
    languages: BitNames,
    skills: BitNames,
    shared: SharedNames,
    /// Group and agent ids, for timelines.
    names: Names,
    next_seq: u64,
    offer_deadlines: BTreeSet<(Millis, InqIx)>,
    grace_deadlines: BTreeSet<(Millis, AgentIx)>,
    fatigue_deadlines: BTreeSet<(Millis, AgentIx)>,
    exclusion_deadlines: BTreeSet<(Millis, InqIx)>,
    finished: VecDeque<(Millis, InqIx)>,
    /// Last agent per customer, by `placement::sticky_key`.
    sticky: FxHashMap<u64, (AgentIx, Millis)>,
    sticky_expiry: VecDeque<(Millis, u64)>,
    overrides: Vec<Override>,
    router_level: Level,
    next_level_eval: Millis,
    /// Groups whose reserve let NORMAL and LOW work through again during
    /// the current command (see `with_agent`).
    reopened: Vec<GroupIx>,
    /// The agent `hold_index` keeps out of its ready indexes, if any.
    index_held: Option<AgentIx>,
    /// Reused by `with_agent`.
    closed_scratch: Vec<GroupIx>,
    /// Inquiries whose need names a language or skill no agent offered yet
    /// (see `resolve_unknown_needs`); some may have finished since.
    unknown_needs: Vec<InqIx>,
    /// What a restore could not keep (see `take_restore_notes`).
    restore_notes: Vec<String>,
    /// Records changed since the last `take_changes`, for persistence.
    dirty_inquiries: Vec<InqIx>,
    dirty_agents: Vec<AgentIx>,
    forgotten: Vec<Id>,
    levels_dirty: bool,
    /// A group's average handle time moved since levels were last recorded.
    handle_avg_moved: bool,
    /// Whether changes are collected at all (only a persisting service asks).
    tracking: bool,
}

/// The id of the record at an index, for [`IdIndex`].
fn record_id<'r>(records: &'r RecordTable<Record>) -> impl Fn(InqIx) -> &'r str {
    |ix| &records[ix as usize].as_ref().expect("indexed inquiries are live").inquiry.id
}

/// Settings the router cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing settings are not usable: {0}; run `ticket-router check-config` for every problem")]
pub struct SettingsError(pub String);

impl Router {
    /// A router with no agents and no inquiries. The settings should have
    /// passed `config::validate`; the few problems that would make routing
    /// impossible are refused here too.
    pub fn new(settings: RoutingSettings) -> Result<Router, SettingsError> {
        let mut group_ix = FxHashMap::default();
        for (i, g) in settings.groups.iter().enumerate() {
            if group_ix.insert(g.id.clone(), i as GroupIx).is_some() {
                return Err(SettingsError(format!("group `{}` is defined twice", g.id)));
            }
        }
        let find = |id: &str| group_ix.get(id).copied();
        let mut primary = [GroupIx::MAX; 8];
        for (i, g) in settings.groups.iter().enumerate() {
            for c in &g.categories {
                primary[*c as usize] = i as GroupIx;
            }
        }
        if let Some(c) = Category::ALL.iter().find(|c| primary[**c as usize] == GroupIx::MAX) {
            return Err(SettingsError(format!("category {} is served by no group", c.name())));
        }
        let window_secs = settings.levels.window.as_secs().max(1);
        let mut names = Names::default();
        let mut groups: Vec<Group> = settings
            .groups
            .iter()
            .map(|g| Group {
                id: g.id.as_str().into(),
                name: names.intern(&g.id.as_str().into()),
                settings: g.clone(),
                overflow_to: Vec::new(),
                overflow_from: Vec::new(),
                queue: GroupQueue::default(),
                agents: GroupAgents::default(),
                arrivals: ArrivalWindow::new(window_secs),
                routed: ArrivalWindow::new(window_secs),
                tracker: LevelTracker::default(),
                level: Level::Normal,
                handle_ms_avg: g.handle_time.as_millis() as f64,
                arrivals_per_min: 0.0,
                routed_per_min: 0.0,
                staffing: StaffingAdvice::default(),
            })
            .collect();
        for (i, g) in settings.groups.iter().enumerate() {
            for target in &g.overflow {
                let t = find(target)
                    .ok_or_else(|| SettingsError(format!("group `{}` overflows to unknown `{target}`", g.id)))?;
                if t as usize != i && !groups[i].overflow_to.contains(&t) {
                    groups[i].overflow_to.push(t);
                    groups[t as usize].overflow_from.push(i as GroupIx);
                }
            }
        }
        let optional = |id: &str, what: &str| -> Result<Option<GroupIx>, SettingsError> {
            if id.is_empty() {
                return Ok(None);
            }
            find(id).map(Some).ok_or_else(|| SettingsError(format!("{what} group `{id}` is not configured")))
        };
        let dedicated = optional(&settings.dedicated.group, "dedicated")?;
        let escalation = optional(&settings.escalation.group, "escalation")?;
        Ok(Router {
            settings,
            groups,
            group_ix,
            primary,
            dedicated,
            escalation,
            agents: Vec::new(),
            agent_ix: FxHashMap::default(),
            records: RecordTable::default(),
            free_records: Vec::new(),
            inquiry_ix: IdIndex::default(),
            index_held: None,
            languages: BitNames::default(),
            skills: BitNames::default(),
            shared: SharedNames::default(),
            names,
            next_seq: 0,
            offer_deadlines: BTreeSet::new(),
            grace_deadlines: BTreeSet::new(),
            fatigue_deadlines: BTreeSet::new(),
            exclusion_deadlines: BTreeSet::new(),
            finished: VecDeque::new(),
            sticky: FxHashMap::default(),
            sticky_expiry: VecDeque::new(),
            overrides: Vec::new(),
            router_level: Level::Normal,
            next_level_eval: 0,
            reopened: Vec::new(),
            closed_scratch: Vec::new(),
            unknown_needs: Vec::new(),
            restore_notes: Vec::new(),
            dirty_inquiries: Vec::new(),
            dirty_agents: Vec::new(),
            forgotten: Vec::new(),
            levels_dirty: false,
            handle_avg_moved: false,
            tracking: false,
        })
    }

    /// Applies one command at `now`, appending the effects to `effects`.
    /// On error nothing changed and nothing was appended.
    pub fn handle(&mut self, now: Millis, command: Command, effects: &mut Vec<Effect>) -> Result<(), CoreError> {
        let result = match command {
            Command::Arrive(inquiry) => self.arrive(now, now, *inquiry, effects),
            Command::ArriveReceived { inquiry, received_at } => {
                self.arrive(now, received_at.min(now), *inquiry, effects)
            }
            Command::Cancel { inquiry, shop } => self.cancel(now, &inquiry, shop.as_deref(), effects),
            Command::SetPresence { actor, presence } => self.set_presence(now, &actor, presence, effects),
            Command::Accept { actor, inquiry } => self.accept(now, &actor, &inquiry, effects),
            Command::Decline { actor, inquiry, reason } => self.decline(now, &actor, &inquiry, reason, effects),
            Command::Complete { actor, inquiry } => self.complete(now, &actor, &inquiry, effects),
            Command::Transfer { actor, inquiry, target, note } => {
                self.transfer(now, &actor, &inquiry, target, note, effects)
            }
            Command::Escalate { actor, inquiry, note } => self.escalate(now, &actor, &inquiry, note, effects),
            Command::SetLevelOverride { actor, group, level, from, until } => {
                self.set_override(now, &actor, group, level, from, until, effects)
            }
            Command::ClearLevelOverride { actor, group } => self.clear_override(now, &actor, group, effects),
            Command::DesktopConnected { agent } => self.desktop_connected(now, &agent, effects),
            Command::DesktopDisconnected { agent } => self.desktop_disconnected(now, &agent),
            Command::DeflectionStored { inquiry } => {
                self.deflection_stored(&inquiry);
                Ok(())
            }
            Command::ExtendOffers { by } => {
                self.extend_offers(by, effects);
                Ok(())
            }
            Command::Tick => {
                self.tick(now, now, effects);
                Ok(())
            }
            Command::TickQueued { since } => {
                self.tick(now, since.min(now), effects);
                Ok(())
            }
        };
        self.fill_reopened(now, effects);
        result
    }

    /// The settings the router runs with.
    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    fn playbook(&self, level: Level) -> &Playbook {
        self.settings.levels.playbook(level)
    }

    fn group_by_name(&self, id: &str) -> Result<GroupIx, CoreError> {
        self.group_ix.get(id).copied().ok_or_else(|| CoreError::UnknownGroup(id.to_string()))
    }

    fn agent_by_id(&self, id: &str) -> Result<AgentIx, CoreError> {
        self.agent_ix.get(id).copied().ok_or_else(|| CoreError::UnknownAgent(id.into()))
    }

    /// The agent a timeline step names, if it is still known.
    fn agent_named(&self, name: super::agents::NameIx) -> Option<AgentIx> {
        self.names.get(name).and_then(|id| self.agent_ix.get(id)).copied()
    }

    fn inquiry_by_id(&self, id: &str) -> Result<InqIx, CoreError> {
        self.find_inquiry(id).ok_or_else(|| CoreError::UnknownInquiry(id.into()))
    }

    /// The index of the known inquiry `id`.
    fn find_inquiry(&self, id: &str) -> Option<InqIx> {
        let id_of = record_id(&self.records);
        // The caller reads the record next, usually one not touched for
        // minutes: asking for all its cache lines before the id comparison
        // waits on the first makes those misses overlap instead of queueing.
        self.inquiry_ix.get(id, |ix| {
            self.records.prefetch(ix as usize);
            id_of(ix)
        })
    }

    /// Indexes the record at `ix` by its id (not yet indexed).
    fn index_inquiry(&mut self, ix: InqIx) {
        let id = &self.records[ix as usize].as_ref().expect("live inquiry index").inquiry.id;
        self.inquiry_ix.insert(id, ix);
    }

    fn rec(&self, ix: InqIx) -> &Record {
        self.records[ix as usize].as_ref().expect("live inquiry index")
    }

    /// The record, marked changed (it will be part of the next `take_changes`).
    fn rec_mut(&mut self, ix: InqIx) -> &mut Record {
        let rec = self.records[ix as usize].as_mut().expect("live inquiry index");
        if self.tracking && !rec.dirty {
            rec.dirty = true;
            self.dirty_inquiries.push(ix);
        }
        rec
    }

    /// Marks an agent's recorded fields (presence, fatigue, timeouts) changed.
    fn touch_agent(&mut self, ax: AgentIx) {
        let agent = &mut self.agents[ax as usize];
        if self.tracking && !agent.dirty {
            agent.dirty = true;
            self.dirty_agents.push(ax);
        }
    }

    fn aging_ms(&self) -> u64 {
        self.settings.priority.aging_interval.as_millis() as u64
    }

    /// Reserved slots of a group now: `floor(ratio x capacity of agents who can work)`.
    fn reserve_slots(&self, g: GroupIx) -> u32 {
        let group = &self.groups[g as usize];
        reserve_of(self.playbook(group.level).reserve_ratio, group.agents.census.capacity)
    }
}

/// `floor(ratio x capacity)` as the ratio is written: 0.35 x 180 is 63,
/// though in binary floating point it comes to 62.999...
///
/// The cast rounds toward zero and takes anything below zero (and NaN) to 0,
/// which is the floor for every value a u32 holds. `f64::floor` would be a
/// library call on the baseline x86-64 target, and this runs for every
/// candidate slot of every offer.
fn reserve_of(ratio: f64, capacity: u32) -> u32 {
    (ratio * f64::from(capacity) + 1e-9) as u32
}

#[cfg(test)]
#[test]
fn reserves_round_down_from_the_ratio_as_written() {
    for (ratio, capacity, slots) in [(0.35, 180, 63), (0.29, 100, 29), (0.57, 100, 57), (0.7, 90, 63), (0.3, 1, 0)] {
        assert_eq!(reserve_of(ratio, capacity), slots, "{ratio} x {capacity}");
    }
    // The cast is the floor over every ratio of two decimals and capacity.
    for percent in 0..=100 {
        let ratio = f64::from(percent) / 100.0;
        for capacity in 0..=2_000 {
            let floor = (ratio * f64::from(capacity) + 1e-9).floor() as u32;
            assert_eq!(reserve_of(ratio, capacity), floor, "{ratio} x {capacity}");
        }
    }
}

#[cfg(test)]
mod dedicated_tests;
#[cfg(test)]
mod handoff_tests;
#[cfg(test)]
mod level_tests;
#[cfg(test)]
mod ordering_tests;
#[cfg(test)]
mod persist_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod regressions;
#[cfg(test)]
mod tests;
