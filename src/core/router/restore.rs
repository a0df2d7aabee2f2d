//! Restoring the router from its records (see `persist.rs` for recording).
//!
//! A restore normalises what a crash between two writes may have left: an
//! offer to an agent who is not AVAILABLE, or work held by an unknown or
//! OFFLINE agent, goes back to its queue. Timers continue from the recorded
//! times; desktops get a fresh heartbeat grace to reconnect. What changes with
//! every offer (sticky agents, idle order) is read back from the timelines.

use super::placement::sticky_key;
use super::record::{Place, Record, Step, StepRare, NO_NAME};
use super::{Override, Router, SettingsError};
use crate::core::agents::{AgentIx, GroupIx, InqIx};
use crate::core::command::Presence;
use crate::core::effect::{Effect, EventKind, DEFLECTION_RESEND};
use crate::core::levels::LevelTracker;
use crate::core::matching::language_key;
use crate::core::settings::RoutingSettings;
use crate::core::snapshot::{AgentRecord, InquiryRecord, LevelsRecord, Restored, TimelineRecord};
use crate::core::types::{AgentStatus, InquiryState, Millis};

impl Router {
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
        let unknown_homes = records.iter().filter(|r| !router.group_ix.contains_key(&*r.home)).count();
        if unknown_homes > 0 {
            router.restore_notes.push(format!(
                "{unknown_homes} inquiries recorded in groups no longer configured wait in their categories' primary groups"
            ));
        }
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
        router.resend_deflections(&mut fx);
        router.tick(now, now, &mut fx);
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
            for step in rec.timeline.iter().filter(|step| step.kind == EventKind::Offered) {
                if let Some(ax) = self.agent_named(step.agent) {
                    let last = &mut self.agents[ax as usize].last_offer_at;
                    *last = (*last).max(step.at);
                }
            }
            if rec.inquiry.customer.id.is_empty() {
                continue;
            }
            let Some(step) = rec.timeline.iter().rev().find(|step| step.kind == EventKind::Accepted) else { continue };
            let Some(ax) = self.agent_named(step.agent) else { continue };
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

    /// What the last restore could not keep as recorded (groups no longer
    /// configured, agents whose presence no longer fits), for the log.
    pub fn take_restore_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.restore_notes)
    }

    /// Deflections to publish again: every one the deflections stream has
    /// not confirmed storing, however old (it may have refused writes for
    /// long), and those within [`DEFLECTION_RESEND`] before the last finished
    /// work (a crash between storing and recording the confirmation; within
    /// the stream's duplicate window, a second copy is dropped). At least
    /// once: the bot ignores an id it has.
    fn resend_deflections(&self, fx: &mut Vec<Effect>) {
        let Some(&(last, _)) = self.finished.back() else { return };
        let recent = last.saturating_sub(DEFLECTION_RESEND);
        for &(at, ix) in &self.finished {
            let Some(rec) = self.records[ix as usize].as_ref() else { continue };
            let deflected = rec.place == (Place::Finished { state: InquiryState::Deflected, at });
            if deflected && (rec.deflection_unstored || at >= recent) {
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
                    None => {
                        self.restore_notes.push(format!(
                            "the level override of group `{name}` (at least {} until {}) is dropped: the group is \
                             no longer configured; set it again on the group that replaced it",
                            o.level.name(),
                            humantime::format_rfc3339_seconds(
                                std::time::UNIX_EPOCH + std::time::Duration::from_millis(o.until)
                            )
                        ));
                        continue;
                    }
                },
                None => None,
            };
            self.overrides.push(Override { group, level: o.level, from: o.from, until: o.until });
        }
    }

    /// Recreates an agent with its presence; groups no longer configured are
    /// dropped. Every desktop gets a fresh heartbeat grace to reconnect.
    fn restore_agent(&mut self, now: Millis, record: &AgentRecord) {
        let (known, gone): (Vec<(String, u8)>, Vec<_>) =
            record.groups.iter().cloned().partition(|(g, _)| self.group_ix.contains_key(g));
        if !gone.is_empty() {
            let names: Vec<&str> = gone.iter().map(|(g, _)| g.as_str()).collect();
            self.restore_notes.push(format!(
                "agent `{}` is no longer in {}: not configured any more; its desktop sets its groups again",
                record.id,
                names.join(", ")
            ));
        }
        let presence = Presence {
            agent: record.id.clone(),
            status: record.status,
            groups: known,
            max_concurrent: Some(record.max_concurrent),
            languages: record.languages.iter().map(|l| language_key(l)).collect(),
            skills: record.skills.clone(),
        };
        let (groups, offering, max_concurrent) = match self.parse_presence(&presence) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.restore_notes
                    .push(format!("agent `{}` is not restored ({e}); its desktop signs in again", record.id));
                return;
            }
        };
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
        // An avoided agent the router no longer knows is avoided by no one.
        let known = |id: &Option<crate::core::types::Id>| id.as_deref().and_then(|a| self.agent_ix.get(a).copied());
        let (excluded, handed_on_by) = (known(&r.excluded), known(&r.handed_on_by));
        let excluded_until = r.excluded_until.filter(|_| excluded.is_some()).unwrap_or(0);
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
            excluded,
            excluded_until,
            handed_on_by: handed_on_by.filter(|_| excluded.is_some()).unwrap_or(super::record::NO_AGENT),
            note: r.note.map(Box::new),
            timeline,
            queued_untold: false,
            deflection_unstored: r.state == InquiryState::Deflected && !r.deflection_stored,
            dirty: false,
        };
        let ix = self.records.len() as InqIx;
        self.records.push(record);
        self.index_inquiry(ix);
        if excluded.is_some() {
            self.exclusion_deadlines.insert((excluded_until, ix));
        }
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
