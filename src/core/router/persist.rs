//! Recording the router: `take_changes` hands out the records that changed
//! since the last call (`restore.rs` rebuilds a router from them).

use super::record::{Place, NO_AGENT};
use super::Router;
use crate::core::agents::{AgentIx, GroupIx, InqIx};
use crate::core::snapshot::{
    AgentRecord, Change, GroupLevelRecord, InquiryRecord, LevelsRecord, OverrideRecord, Restored, TimelineRecord,
};

impl Router {
    /// Starts collecting changes for `take_changes` (off by default, so
    /// routers that are never persisted keep no change lists).
    pub fn track_changes(&mut self) {
        self.tracking = true;
    }

    /// The records changed since the last call, in a deterministic order:
    /// levels, agents, inquiries, forgotten inquiries.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        if std::mem::take(&mut self.levels_dirty) && self.tracking {
            changes.push(Change::Levels(self.levels_record()));
        }
        for ax in std::mem::take(&mut self.dirty_agents) {
            self.agents[ax as usize].dirty = false;
            changes.push(Change::Agent(self.agent_record(ax)));
        }
        for ix in std::mem::take(&mut self.dirty_inquiries) {
            let Some(rec) = self.records[ix as usize].as_mut() else { continue };
            if !std::mem::take(&mut rec.dirty) {
                continue;
            }
            changes.push(Change::Inquiry(Box::new(self.inquiry_record(ix))));
        }
        changes.extend(std::mem::take(&mut self.forgotten).into_iter().map(Change::Forget));
        changes
    }

    /// Every live record, as a full snapshot would hold them.
    pub fn all_records(&self) -> Restored {
        Restored {
            inquiries: (0..self.records.len() as InqIx)
                .filter(|&ix| self.records[ix as usize].is_some())
                .map(|ix| self.inquiry_record(ix))
                .collect(),
            agents: (0..self.agents.len() as AgentIx).map(|ax| self.agent_record(ax)).collect(),
            levels: Some(self.levels_record()),
        }
    }

    /// Every live record as changes: levels, agents, inquiries.
    pub fn all_changes(&self) -> Vec<Change> {
        let all = self.all_records();
        let levels = all.levels.map(Change::Levels).into_iter();
        let agents = all.agents.into_iter().map(Change::Agent);
        levels.chain(agents).chain(all.inquiries.into_iter().map(|r| Change::Inquiry(Box::new(r)))).collect()
    }

    fn group_name(&self, g: GroupIx) -> crate::core::types::Id {
        self.groups[g as usize].id.clone()
    }

    fn inquiry_record(&self, ix: InqIx) -> InquiryRecord {
        let rec = self.rec(ix);
        let agent_id = |ax: AgentIx| self.agents[ax as usize].id.clone();
        let (agent, serving_group, deadline, finished_at) = match rec.place {
            Place::Waiting => (None, None, None, None),
            Place::Offered { agent, group, deadline } => {
                (Some(agent_id(agent)), Some(self.group_name(group)), Some(deadline), None)
            }
            Place::Active { agent, group, .. } => (Some(agent_id(agent)), Some(self.group_name(group)), None, None),
            Place::Finished { at, .. } => (None, None, None, Some(at)),
        };
        InquiryRecord {
            inquiry: rec.inquiry.clone(),
            state: rec.place.state(),
            agent,
            serving_group,
            home: self.group_name(rec.home),
            deadline,
            finished_at,
            score: rec.score,
            band: rec.band,
            escalated: rec.escalated,
            since: rec.since,
            received_at: rec.received_at,
            seq: rec.seq,
            rank: rec.rank,
            attempts: rec.attempts,
            overflowed: rec.overflowed,
            via_dedicated: rec.via_dedicated,
            next_rule: rec.next_rule,
            accepted_at: rec.accepted_at(),
            note: rec.note.as_deref().cloned(),
            deflection_stored: !rec.deflection_unstored,
            excluded: rec.excluded.map(agent_id),
            handed_on_by: (rec.excluded.is_some() && rec.handed_on_by != NO_AGENT).then(|| agent_id(rec.handed_on_by)),
            excluded_until: rec.excluded.map(|_| rec.excluded_until),
            timeline: self.map_steps(rec, |step| TimelineRecord {
                kind: step.kind,
                at: step.at,
                group: self.names.id(step.group),
                agent: self.names.get(step.agent).cloned(),
                score: Some(step.score),
                trace: step.trace.as_deref().cloned(),
                note: step.rare.as_ref().and_then(|r| r.note.clone()),
                detail: step.rare.as_ref().and_then(|r| r.detail.as_deref().map(String::from)),
            }),
        }
    }

    fn agent_record(&self, ax: AgentIx) -> AgentRecord {
        let a = &self.agents[ax as usize];
        let names = |bits: u64, table: &crate::core::matching::BitNames| {
            (0..63u8).filter(|b| bits & (1 << b) != 0).map(|b| table.name(b).to_string()).collect()
        };
        AgentRecord {
            id: a.id.clone(),
            status: a.status,
            groups: a.groups.iter().map(|&(g, p)| (self.group_name(g).to_string(), p)).collect(),
            max_concurrent: a.max_concurrent,
            languages: names(a.offering.languages, &self.languages),
            skills: names(a.offering.skills, &self.skills),
            serving_since: a.serving_since,
            paused_since: a.paused_since,
            fatigued: a.fatigued,
            consecutive_timeouts: a.consecutive_timeouts,
        }
    }

    fn levels_record(&self) -> LevelsRecord {
        LevelsRecord {
            router_level: self.router_level,
            groups: self
                .groups
                .iter()
                .map(|g| GroupLevelRecord {
                    group: g.id.to_string(),
                    level: g.level,
                    measured: g.tracker.level(),
                    at_most_since: g.tracker.at_most_since(),
                    handle_ms_avg: g.handle_ms_avg,
                })
                .collect(),
            overrides: self
                .overrides
                .iter()
                .map(|o| OverrideRecord {
                    group: o.group.map(|g| self.group_name(g).to_string()),
                    level: o.level,
                    from: o.from,
                    until: o.until,
                })
                .collect(),
        }
    }
}
