//! Lifecycle events and the timeline `GetInquiry` shows: every step is
//! published as an event and recorded, except a waiting inquiry's first
//! QUEUED step, which stays implicit until a second step comes (see
//! `Record::queued_untold`).

use super::record::{Place, Record, Step, StepRare, TimelineEntry, NO_NAME};
use super::Router;
use crate::core::agents::{AgentIx, GroupIx, InqIx, NameIx};
use crate::core::effect::{Effect, Event, EventKind};
use crate::core::priority;
use crate::core::types::{Id, Millis};
use rustc_hash::FxHashMap;

/// The group and agent ids that timelines name, each stored once. Groups and
/// agents are never removed, and names of ones no longer configured come
/// back only with recorded timelines, so the table grows with the number of
/// distinct agents and groups, not with inquiries.
#[derive(Debug, Default)]
pub(super) struct Names {
    ids: Vec<Id>,
    index: FxHashMap<Id, NameIx>,
}

impl Names {
    /// The handle of `id`, added if new.
    pub fn intern(&mut self, id: &Id) -> NameIx {
        if let Some(&name) = self.index.get(id) {
            return name;
        }
        let name = self.ids.len() as NameIx;
        self.ids.push(id.clone());
        self.index.insert(id.clone(), name);
        name
    }

    /// The id behind `name`; `None` for `NO_NAME`.
    pub fn get(&self, name: NameIx) -> Option<&Id> {
        self.ids.get(name as usize)
    }

    /// The id behind the handle of a group or agent (always present).
    pub fn id(&self, name: NameIx) -> Id {
        self.get(name).cloned().unwrap_or_default()
    }
}

impl Router {
    /// Records a lifecycle step in the timeline and publishes it.
    pub(super) fn emit(
        &mut self,
        now: Millis,
        ix: InqIx,
        kind: EventKind,
        detail: Option<EventDetail>,
        fx: &mut Vec<Effect>,
    ) {
        let aging = self.aging_ms();
        let rec = self.rec(ix);
        let detail = detail.unwrap_or_default();
        let group = detail.group.unwrap_or(match rec.place {
            Place::Offered { group, .. } | Place::Active { group, .. } => group,
            _ => rec.home,
        });
        let group_name = self.groups[group as usize].name;
        let agent_name = detail.agent.map_or(NO_NAME, |a| self.agents[a as usize].name);
        let score = priority::aged_score(rec.score, rec.since, now, aging);
        let event = Event {
            kind,
            inquiry: rec.inquiry.id.clone(),
            shop: rec.inquiry.shop_id.clone(),
            group: self.groups[group as usize].id.clone(),
            from_group: detail.from_group.map(|g| self.groups[g as usize].id.clone()),
            agent: detail.agent.map(|a| self.agents[a as usize].id.clone()),
            at: now,
            score,
            waited_ms: detail.waited_ms,
            waited_in: detail.waited_ms.map(|_| self.groups[rec.home as usize].id.clone()),
            handled_ms: detail.handled_ms,
            note: detail.note.clone(),
            detail: detail.text.clone(),
        };
        let rec = self.rec_mut(ix);
        if kind == EventKind::Queued && rec.timeline.is_empty() && !rec.queued_untold && now == rec.received_at {
            rec.queued_untold = true; // see `Record::queued_untold`
        } else {
            let rare = (detail.note.is_some() || detail.text.is_some()).then(|| {
                Box::new(StepRare { note: detail.note.map(|n| *n), detail: detail.text.map(String::into_boxed_str) })
            });
            let step = Step { at: now, trace: None, rare, group: group_name, agent: agent_name, score, kind };
            self.push_step(ix, step);
        }
        fx.push(Effect::Event(event));
    }

    /// Appends a step to the timeline, storing the untold QUEUED entry first.
    pub(super) fn push_step(&mut self, ix: InqIx, step: Step) {
        self.tell_queued(ix);
        self.rec_mut(ix).timeline.push(step);
    }

    /// Stores the untold QUEUED entry, if any; before the home group changes.
    pub(super) fn tell_queued(&mut self, ix: InqIx) {
        if self.rec(ix).queued_untold {
            let queued = self.untold_queued(self.rec(ix));
            let rec = self.rec_mut(ix);
            // Room for the usual rest of its life (offered, accepted,
            // completed), so that it never grows.
            rec.timeline.reserve_exact(4);
            rec.timeline.push(queued);
            rec.queued_untold = false;
        }
    }

    /// The QUEUED entry a record keeps out of its timeline.
    fn untold_queued(&self, rec: &Record) -> Step {
        let group = self.groups[rec.home as usize].name;
        let score = rec.score; // no aging yet at receipt
        Step { at: rec.received_at, trace: None, rare: None, group, agent: NO_NAME, score, kind: EventKind::Queued }
    }

    /// `f` of every step of an inquiry's timeline, the untold QUEUED one included.
    pub(super) fn map_steps<T>(&self, rec: &Record, f: impl FnMut(&Step) -> T) -> Vec<T> {
        let untold = rec.queued_untold.then(|| self.untold_queued(rec));
        untold.iter().chain(&rec.timeline).map(f).collect()
    }

    /// An inquiry's whole timeline, with ids.
    pub(super) fn timeline(&self, rec: &Record) -> Vec<TimelineEntry> {
        self.map_steps(rec, |step| TimelineEntry {
            kind: step.kind,
            at: step.at,
            group: self.names.id(step.group),
            agent: self.names.get(step.agent).cloned(),
            score: step.score,
            trace: step.trace.clone(),
            note: step.rare.as_ref().and_then(|r| r.note.clone()).map(Box::new),
            detail: step.rare.as_ref().and_then(|r| r.detail.clone()),
        })
    }
}

/// Optional parts of a lifecycle event.
#[derive(Default)]
pub(super) struct EventDetail {
    /// The group the step names, when not where the inquiry is (a transfer
    /// to an agent names the agent's group).
    pub group: Option<GroupIx>,
    pub agent: Option<AgentIx>,
    pub from_group: Option<GroupIx>,
    pub waited_ms: Option<u64>,
    pub handled_ms: Option<u64>,
    pub note: Option<Box<crate::core::types::HandoffNote>>,
    pub text: Option<String>,
}
