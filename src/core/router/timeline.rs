//! Lifecycle events and the timeline `GetInquiry` shows: every step is
//! published as an event and recorded, except a waiting inquiry's first
//! QUEUED step, which stays implicit until a second step comes (see
//! `Record::queued_untold`).

use super::record::{Place, Record, TimelineEntry};
use super::Router;
use crate::core::agents::{AgentIx, GroupIx, InqIx};
use crate::core::effect::{Effect, Event, EventKind};
use crate::core::priority;
use crate::core::types::Millis;
use std::borrow::Cow;

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
        let group = match rec.place {
            Place::Offered { group, .. } | Place::Active { group, .. } => group,
            _ => rec.home,
        };
        let detail = detail.unwrap_or_default();
        let group_id = self.groups[group as usize].id.clone();
        let agent = detail.agent.map(|a| self.agents[a as usize].id.clone());
        let score = priority::aged_score(rec.score, rec.since, now, aging);
        let event = Event {
            kind,
            inquiry: rec.inquiry.id.clone(),
            shop: rec.inquiry.shop_id.clone(),
            group: group_id.clone(),
            from_group: detail.from_group.map(|g| self.groups[g as usize].id.clone()),
            agent: agent.clone(),
            at: now,
            score,
            waited_ms: detail.waited_ms,
            handled_ms: detail.handled_ms,
            note: detail.note.clone(),
            detail: detail.text.clone(),
        };
        let rec = self.rec_mut(ix);
        if kind == EventKind::Queued && rec.timeline.is_empty() && !rec.queued_untold && now == rec.received_at {
            rec.queued_untold = true; // see `Record::queued_untold`
        } else {
            let step = TimelineEntry {
                kind,
                at: now,
                group: group_id,
                agent,
                trace: None,
                note: detail.note,
                detail: detail.text.map(String::into_boxed_str),
            };
            self.push_step(ix, step);
        }
        fx.push(Effect::Event(event));
    }

    /// Appends a step to the timeline, storing the untold QUEUED entry first.
    pub(super) fn push_step(&mut self, ix: InqIx, step: TimelineEntry) {
        self.tell_queued(ix);
        self.rec_mut(ix).timeline.push(step);
    }

    /// Stores the untold QUEUED entry, if any; before the home group changes.
    pub(super) fn tell_queued(&mut self, ix: InqIx) {
        if self.rec(ix).queued_untold {
            let queued = self.untold_queued(self.rec(ix));
            let rec = self.rec_mut(ix);
            rec.timeline.reserve_exact(2);
            rec.timeline.push(queued);
            rec.queued_untold = false;
        }
    }

    /// The QUEUED entry a record keeps out of its timeline.
    fn untold_queued(&self, rec: &Record) -> TimelineEntry {
        TimelineEntry {
            kind: EventKind::Queued,
            at: rec.received_at,
            group: self.groups[rec.home as usize].id.clone(),
            agent: None,
            trace: None,
            note: None,
            detail: None,
        }
    }

    /// An inquiry's whole timeline.
    pub(super) fn timeline<'a>(&self, rec: &'a super::record::Record) -> Cow<'a, [TimelineEntry]> {
        if rec.queued_untold {
            let mut all = vec![self.untold_queued(rec)];
            all.extend(rec.timeline.iter().cloned());
            Cow::Owned(all)
        } else {
            Cow::Borrowed(&rec.timeline)
        }
    }
}

/// Optional parts of a lifecycle event.
#[derive(Default)]
pub(super) struct EventDetail {
    pub agent: Option<AgentIx>,
    pub from_group: Option<GroupIx>,
    pub waited_ms: Option<u64>,
    pub handled_ms: Option<u64>,
    pub note: Option<Box<crate::core::types::HandoffNote>>,
    pub text: Option<String>,
}
