//! Recording and restoring the router: `take_changes` hands out the records
//! that changed since the last call; `restore` rebuilds a router from them.
//!
//! A restore normalises what a crash between two writes may have left: an
//! offer to an agent who is not AVAILABLE, or work held by an unknown or
//! OFFLINE agent, goes back to its queue. Timers continue from the recorded
//! times; desktops get a fresh heartbeat grace to reconnect.

use super::placement::sticky_key;
use super::record::{Place, Record, Step, StepRare, NO_NAME};
use super::{Override, Router};
use crate::core::agents::{AgentIx, GroupIx, InqIx};
use crate::core::command::Presence;
use crate::core::effect::{Effect, EventKind, DEFLECTION_RESEND};
use crate::core::levels::LevelTracker;
use crate::core::matching::language_key;
use crate::core::settings::RoutingSettings;
use crate::core::snapshot::{
    AgentRecord, Change, GroupLevelRecord, InquiryRecord, LevelsRecord, OverrideRecord, Restored, TimelineRecord,
};
use crate::core::types::{AgentStatus, InquiryState, Millis};

use super::SettingsError;

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

    /// Rebuilds a router from recorded state at `now`, then runs the timers
    /// that came due while it was down and offers waiting work to agents who
    /// can take it. Returns the router and the effects of that catch-up.
    pub fn restore(
        settings: RoutingSettings,
        restored: Restored,
        now: Millis,
    ) -> Result<(Router, Vec<Effect>), SettingsError> {
        let mut router = Router::new(settings)?;
        // What the catch-up below changes must be recorded too.
        router.track_changes();
        if let Some(levels) = &restored.levels {
            router.restore_levels(levels);
        }
        for agent in &restored.agents {
            router.restore_agent(now, agent);
        }
        let mut records = restored.inquiries;
        records.sort_by_key(|r| r.seq);
        let mut fx = Vec::new();
        let mut displaced = Vec::new();
        for record in records {
            if router.find_inquiry(&record.inquiry.id).is_some() {
                continue;
            }
            if let Some(ix) = router.restore_inquiry(record) {
                displaced.push(ix);
            }
        }
        router.finished.make_contiguous().sort_unstable();
        router.read_back_timelines();
        for ax in 0..router.agents.len() as AgentIx {
            router.join_groups(ax);
            router.attach_agent(ax);
        }
        // Best first, as a queue would serve them.
        displaced.sort_by_cached_key(|&ix| router.rec(ix).slot().key);
        for ix in displaced {
            router.route(now, ix, EventKind::Requeued, &mut fx);
        }
        while let Some(&(deadline, ix)) = router.offer_deadlines.first() {
            if deadline > now {
                break;
            }
            router.time_out_unseen(now, ix, &mut fx);
        }
        router.resend_recent_deflections(&mut fx);
        router.tick(now, &mut fx);
        let all: Vec<GroupIx> = (0..router.groups.len() as GroupIx).collect();
        router.fill_best_first(now, &all, &mut fx);
        Ok((router, fx))
    }

    /// What changes with every offer is not recorded, but read back from the
    /// kept timelines: each customer's last agent (the sticky memory, from
    /// the last acceptance) and each agent's last offer (the idle order).
    /// Finished work is kept `retain_finished`, so a sticky window longer
    /// than that is remembered across a restart only that long.
    fn read_back_timelines(&mut self) {
        let mut accepted: Vec<(Millis, u64, AgentIx)> = Vec::new();
        for rec in self.records.iter().flatten() {
            let agent = |step: &Step| self.names.get(step.agent).and_then(|id| self.agent_ix.get(id)).copied();
            for step in rec.timeline.iter().filter(|step| step.kind == EventKind::Offered) {
                if let Some(ax) = agent(step) {
                    let last = &mut self.agents[ax as usize].last_offer_at;
                    *last = (*last).max(step.at);
                }
            }
            if rec.inquiry.customer.id.is_empty() {
                continue;
            }
            let Some(step) = rec.timeline.iter().rev().find(|step| step.kind == EventKind::Accepted) else { continue };
            let Some(ax) = agent(step) else { continue };
            accepted.push((step.at, sticky_key(&rec.inquiry.shop_id, &rec.inquiry.customer.id), ax));
        }
        // Oldest first: a customer's later acceptance replaces an earlier one,
        // and expiry runs in time order.
        accepted.sort_unstable();
        for (at, key, ax) in accepted {
            self.sticky.insert(key, (ax, at));
            self.sticky_expiry.push_back((at, key));
        }
    }

    /// Deflections recorded within [`DEFLECTION_RESEND`] before the last
    /// finished work, to be published again: the last ones before a crash
    /// may not have gone out (at least once; the bot ignores an id it has).
    fn resend_recent_deflections(&self, fx: &mut Vec<Effect>) {
        let Some(&(last, _)) = self.finished.back() else { return };
        let since = last.saturating_sub(DEFLECTION_RESEND);
        for &(at, ix) in self.finished.iter().rev().take_while(|&&(at, _)| at >= since) {
            let Some(rec) = self.records[ix as usize].as_ref() else { continue };
            if rec.place == (Place::Finished { state: InquiryState::Deflected, at }) {
                let (inquiry, shop) = (rec.inquiry.id.clone(), rec.inquiry.shop_id.clone());
                fx.push(Effect::DeflectionResent { inquiry, shop });
            }
        }
    }

    fn restore_levels(&mut self, levels: &LevelsRecord) {
        self.router_level = levels.router_level;
        for record in &levels.groups {
            if let Some(&g) = self.group_ix.get(&record.group) {
                let group = &mut self.groups[g as usize];
                group.level = record.level;
                group.tracker = LevelTracker::restored(record.measured, record.at_most_since);
                group.handle_ms_avg = record.handle_ms_avg;
            }
        }
        for o in &levels.overrides {
            let group = match &o.group {
                Some(name) => match self.group_ix.get(name) {
                    Some(&g) => Some(g),
                    None => continue,
                },
                None => None,
            };
            self.overrides.push(Override { group, level: o.level, from: o.from, until: o.until });
        }
    }

    /// Recreates an agent with its presence; groups no longer configured are
    /// dropped. Every desktop gets a fresh heartbeat grace to reconnect.
    fn restore_agent(&mut self, now: Millis, record: &AgentRecord) {
        let known: Vec<(String, u8)> =
            record.groups.iter().filter(|(g, _)| self.group_ix.contains_key(g)).cloned().collect();
        let presence = Presence {
            agent: record.id.clone(),
            status: record.status,
            groups: known,
            max_concurrent: Some(record.max_concurrent),
            languages: record.languages.iter().map(|l| language_key(l)).collect(),
            skills: record.skills.clone(),
        };
        let Ok((groups, offering, max_concurrent)) = self.parse_presence(&presence) else { return };
        let ax = self.add_agent(&presence);
        let grace = self.settings.agents.heartbeat_grace.as_millis() as u64;
        let max_continuous = self.settings.fatigue.max_continuous.as_millis() as u64;
        let a = &mut self.agents[ax as usize];
        a.status = record.status;
        a.groups = groups;
        a.offering = offering;
        a.max_concurrent = max_concurrent;
        a.serving_since = record.serving_since;
        a.paused_since = record.paused_since;
        a.fatigued = record.fatigued;
        a.consecutive_timeouts = record.consecutive_timeouts;
        if record.status != AgentStatus::Offline {
            a.grace_deadline = Some(now + grace);
            self.grace_deadlines.insert((now + grace, ax));
        }
        if let (Some(since), false) = (record.serving_since, record.fatigued) {
            self.fatigue_deadlines.insert((since + max_continuous, ax));
        }
    }

    /// Inserts one recorded inquiry in its place. Returns its index when it
    /// cannot stay where it was (its holder is gone) and must be routed again.
    fn restore_inquiry(&mut self, r: InquiryRecord) -> Option<InqIx> {
        let home = self.group_ix.get(&*r.home).copied().unwrap_or(self.primary[r.inquiry.category as usize]);
        let need = self.need_of(&r.inquiry);
        let holder = r.agent.as_deref().and_then(|a| self.agent_ix.get(a).copied());
        let serving = r.serving_group.as_deref().and_then(|g| self.group_ix.get(g).copied()).unwrap_or(home);
        let place = match (r.state, holder) {
            (InquiryState::Offered, Some(ax)) if self.agents[ax as usize].status == AgentStatus::Available => {
                Place::Offered { agent: ax, group: serving, deadline: r.deadline.unwrap_or(0) }
            }
            (InquiryState::Active, Some(ax)) if self.agents[ax as usize].status != AgentStatus::Offline => {
                Place::Active { agent: ax, group: serving, accepted_at: r.accepted_at.unwrap_or(r.received_at) }
            }
            (InquiryState::Offered | InquiryState::Active | InquiryState::Waiting, _) => Place::Waiting,
            (state, _) => Place::Finished { state, at: r.finished_at.unwrap_or(r.received_at) },
        };
        let displaced = place == Place::Waiting && r.state != InquiryState::Waiting;
        let timeline = r.timeline.into_iter().map(|t| self.recorded_step(t)).collect();
        let record = Record {
            inquiry: r.inquiry,
            place,
            home,
            need,
            score: r.score,
            band: r.band,
            escalated: r.escalated,
            since: r.since,
            received_at: r.received_at,
            seq: r.seq,
            rank: r.rank,
            attempts: r.attempts,
            overflowed: r.overflowed,
            via_dedicated: r.via_dedicated,
            next_rule: r.next_rule,
            excluded: None,
            excluded_until: 0,
            handed_on_by: super::record::NO_AGENT,
            note: r.note.map(Box::new),
            timeline,
            queued_untold: false,
            dirty: false,
        };
        let ix = self.records.len() as InqIx;
        self.records.push(Some(record));
        self.index_inquiry(ix);
        self.note_unknown_need(ix);
        self.next_seq = self.next_seq.max(r.seq + 1);
        match place {
            Place::Waiting if !displaced => {
                let rec = self.rec(ix);
                let (slot, overflowed) = (rec.slot(), rec.overflowed);
                let clocked = self.overflow_clocked(ix);
                self.groups[home as usize].queue.insert(ix, &slot, overflowed, clocked);
            }
            Place::Waiting => {
                self.rec_mut(ix);
                return Some(ix);
            }
            Place::Offered { agent, deadline, .. } => {
                self.agents[agent as usize].holding.push(ix);
                self.offer_deadlines.insert((deadline, ix));
            }
            Place::Active { agent, .. } => self.agents[agent as usize].holding.push(ix),
            Place::Finished { at, .. } => self.finished.push_back((at, ix)),
        }
        None
    }

    /// A recorded timeline step as a record keeps it, its names added to the table.
    fn recorded_step(&mut self, t: TimelineRecord) -> Step {
        let rare = (t.note.is_some() || t.detail.is_some())
            .then(|| Box::new(StepRare { note: t.note, detail: t.detail.map(String::into_boxed_str) }));
        Step {
            at: t.at,
            score: t.score.or(t.trace.as_ref().map(|tr| tr.score)).unwrap_or(0),
            trace: t.trace.map(Box::new),
            rare,
            group: self.names.intern(&t.group),
            agent: t.agent.as_ref().map_or(NO_NAME, |a| self.names.intern(a)),
            kind: t.kind,
        }
    }
}
