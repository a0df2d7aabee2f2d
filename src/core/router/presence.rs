//! Agent presence: status changes and what they do to held work, the desktop
//! heartbeat with its grace period, and the fatigue clock.

use super::handoff::system_note;
use super::record::Place;
use super::returns::Said;
use super::Router;
use crate::core::agents::{Agent, AgentIx, Class, GroupIx};
use crate::core::command::{Actor, Presence, Role};
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::matching::{language_key, Offering};
use crate::core::types::{AgentStatus, Millis};

/// A presence with names turned into indexes: groups with proficiency, the
/// languages and skills offered, and the chat limit.
type ParsedPresence = (Vec<(GroupIx, u8)>, Offering, u32);

/// Highest `max_concurrent` accepted from a desktop.
pub const MAX_CONCURRENT_LIMIT: u32 = 50;

impl Router {
    pub(super) fn set_presence(
        &mut self,
        now: Millis,
        actor: &Actor,
        p: Presence,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        if actor.role == Role::Agent && *actor.id != *p.agent {
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may set only its own presence, not `{}`",
                actor.id, p.agent
            )));
        }
        let names_before = self.languages.len() + self.skills.len();
        let (groups, offering, max_concurrent) = self.parse_presence(&p)?;
        if self.languages.len() + self.skills.len() > names_before {
            self.resolve_unknown_needs();
        }
        let ax = match self.agent_ix.get(&p.agent) {
            Some(&ax) => ax,
            None => self.add_agent(&p),
        };
        self.leave_groups(ax);
        self.with_agent(ax, |a| {
            a.groups = groups;
            a.offering = offering;
            a.max_concurrent = max_concurrent;
        });
        self.join_groups(ax);
        self.touch_agent(ax);
        if self.agents[ax as usize].status != p.status || p.status == AgentStatus::Available {
            let by = if *actor.id == *p.agent { "set by the desktop" } else { "set by an admin" };
            self.set_status(now, ax, p.status, by, fx);
        }
        Ok(())
    }

    /// An agent brought a language or skill no agent offered before: the
    /// waiting inquiries that need one get their need in agents' terms, and
    /// take their place among the work that agent may serve.
    fn resolve_unknown_needs(&mut self) {
        let pending = std::mem::take(&mut self.unknown_needs);
        for ix in pending {
            // An index is reused after its record is forgotten: look at what is there now.
            let Some(rec) = self.records[ix as usize].as_ref() else { continue };
            if rec.place != Place::Waiting || !rec.need.is_unknown() {
                continue;
            }
            let need = self.need_of(&rec.inquiry);
            if need != rec.need {
                let (home, slot, overflowed) = (rec.home, rec.slot(), rec.overflowed);
                let clocked = self.overflow_clocked(ix);
                self.groups[home as usize].queue.remove(&slot);
                self.rec_mut(ix).need = need;
                let slot = self.rec(ix).slot();
                self.groups[home as usize].queue.insert(ix, &slot, overflowed, clocked);
            }
            if need.is_unknown() {
                self.unknown_needs.push(ix);
            }
        }
    }

    /// Validates a presence and turns names into indexes and bits.
    pub(super) fn parse_presence(&mut self, p: &Presence) -> Result<ParsedPresence, CoreError> {
        let mut groups = Vec::with_capacity(p.groups.len());
        for (name, proficiency) in &p.groups {
            let g = self.group_by_name(name)?;
            if !(1..=5).contains(proficiency) {
                return Err(CoreError::InvalidArgument(format!(
                    "proficiency {proficiency} in group `{name}` is out of range; use 1 (learning) to 5 (expert)"
                )));
            }
            if !groups.iter().any(|&(known, _)| known == g) {
                groups.push((g, *proficiency));
            }
        }
        let max_concurrent = p.max_concurrent.unwrap_or(self.settings.agents.max_concurrent);
        if !(1..=MAX_CONCURRENT_LIMIT).contains(&max_concurrent) {
            return Err(CoreError::InvalidArgument(format!(
                "max_concurrent {max_concurrent} is out of range; use 1 to {MAX_CONCURRENT_LIMIT}"
            )));
        }
        let languages: Vec<String> = if p.languages.is_empty() {
            vec!["zh".to_string()]
        } else {
            p.languages.iter().map(|l| language_key(l)).collect()
        };
        // Refused before anything is interned: an error changes nothing.
        if !self.languages.has_room_for(languages.iter().map(String::as_str)) {
            return Err(too_many("languages"));
        }
        if !self.skills.has_room_for(p.skills.iter().map(String::as_str)) {
            return Err(too_many("skills"));
        }
        let mut offering = Offering::default();
        for language in &languages {
            let bit = self.languages.intern(language).ok_or_else(|| too_many("languages"))?;
            offering.languages |= 1 << bit;
        }
        for skill in &p.skills {
            let bit = self.skills.intern(skill).ok_or_else(|| too_many("skills"))?;
            offering.skills |= 1 << bit;
        }
        Ok((groups, offering, max_concurrent))
    }

    pub(super) fn add_agent(&mut self, p: &Presence) -> AgentIx {
        let ax = self.agents.len() as AgentIx;
        let name = self.names.intern(&p.agent);
        self.agents.push(Agent {
            id: p.agent.clone(),
            name,
            status: AgentStatus::Offline,
            groups: Vec::new(),
            max_concurrent: self.settings.agents.max_concurrent,
            capacity: 0,
            holding: Vec::new(),
            offering: Offering::default(),
            last_offer_at: 0,
            serving_since: None,
            paused_since: None,
            fatigued: false,
            consecutive_timeouts: 0,
            connections: 0,
            grace_deadline: None,
            stream_lost: false,
            away_due: false,
            class: Class::NotAvailable,
            indexed: None,
            dirty: false,
        });
        self.agent_ix.insert(p.agent.clone(), ax);
        ax
    }

    /// Moves an agent to `status`. OFFLINE gives back everything it holds;
    /// AWAY and BREAK give back unaccepted offers; AVAILABLE fills its slots.
    pub(super) fn set_status(
        &mut self,
        now: Millis,
        ax: AgentIx,
        status: AgentStatus,
        reason: &'static str,
        fx: &mut Vec<Effect>,
    ) {
        let old = self.agents[ax as usize].status;
        let fatigue = &self.settings.fatigue;
        let (max_continuous, min_break) =
            (fatigue.max_continuous.as_millis() as u64, fatigue.min_break.as_millis() as u64);
        let mut fatigue_at = None;
        // The fatigue timer of the current service stretch, keyed as it was set.
        let old_deadline = self.agents[ax as usize].serving_since.map(|since| since + max_continuous);
        self.touch_agent(ax);
        self.with_agent(ax, |a| {
            a.status = status;
            if status == AgentStatus::Available {
                // Only a return to work clears the timeouts: a desktop that
                // re-sends AVAILABLE has not answered the offers it let lapse.
                if old != AgentStatus::Available {
                    a.consecutive_timeouts = 0;
                }
                let rested = a.paused_since.is_some_and(|p| now.saturating_sub(p) >= min_break);
                if old != AgentStatus::Available && (a.serving_since.is_none() || rested) {
                    a.serving_since = Some(now);
                    a.fatigued = false;
                    fatigue_at = Some(now + max_continuous);
                }
                a.paused_since = None;
            } else if old == AgentStatus::Available {
                a.paused_since = Some(now);
            }
        });
        if let Some(at) = fatigue_at {
            if let Some(old) = old_deadline {
                self.fatigue_deadlines.remove(&(old, ax));
            }
            self.fatigue_deadlines.insert((at, ax));
        }
        if old != status {
            let agent = self.agents[ax as usize].id.clone();
            fx.push(Effect::AgentStatusChanged { agent, status, reason });
        }
        let give_back: Vec<_> = self.agents[ax as usize]
            .holding
            .iter()
            .copied()
            .filter(|&ix| status == AgentStatus::Offline || self.rec(ix).accepted_at().is_none())
            .collect();
        if status != AgentStatus::Available {
            for ix in give_back {
                let note = (status == AgentStatus::Offline && self.rec(ix).accepted_at().is_some())
                    .then(|| system_note(now, &self.agents[ax as usize].id));
                self.take_back(now, ix, ax, EventKind::Requeued, Said { note, reason: None }, fx);
            }
        }
        self.fill_agent(now, ax, None, fx);
    }

    /// A desktop subscribed: the grace, if running, ends, and the agent
    /// takes work again.
    pub(super) fn desktop_connected(
        &mut self,
        now: Millis,
        agent: &str,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        let ax = self.agent_by_id(agent)?;
        if let Some(deadline) = self.agents[ax as usize].grace_deadline {
            self.grace_deadlines.remove(&(deadline, ax));
        }
        self.with_agent(ax, |a| {
            a.connections += 1;
            a.grace_deadline = None;
            a.stream_lost = false;
        });
        self.fill_agent(now, ax, None, fx);
        Ok(())
    }

    /// A desktop's stream ended: with none left, the grace starts, and the
    /// agent takes no new work until a desktop is back.
    pub(super) fn desktop_disconnected(&mut self, now: Millis, agent: &str) -> Result<(), CoreError> {
        let ax = self.agent_by_id(agent)?;
        let grace = self.settings.agents.heartbeat_grace.as_millis() as u64;
        let a = &self.agents[ax as usize];
        let starts = a.connections <= 1 && a.grace_deadline.is_none();
        self.with_agent(ax, |a| {
            a.connections = a.connections.saturating_sub(1);
            if starts {
                a.grace_deadline = Some(now + grace);
                a.stream_lost = true;
            }
        });
        if starts {
            self.grace_deadlines.insert((now + grace, ax));
        }
        Ok(())
    }

    /// Desktops gone past the grace period by `until`: AWAY at `now`,
    /// offers back to the queue.
    pub(super) fn expire_heartbeats(&mut self, now: Millis, until: Millis, fx: &mut Vec<Effect>) {
        while let Some(&(deadline, ax)) = self.grace_deadlines.first() {
            if deadline > until {
                break;
            }
            self.grace_deadlines.pop_first();
            self.agents[ax as usize].grace_deadline = None;
            let status = self.agents[ax as usize].status;
            if matches!(status, AgentStatus::Available | AgentStatus::Break) {
                self.set_status(now, ax, AgentStatus::Away, "desktop heartbeat lost", fx);
            }
            // From here on its status says it all: set AVAILABLE again, it
            // takes work as any agent does.
            self.with_agent(ax, |a| a.stream_lost = false);
        }
    }

    /// Agents who served `max_continuous` without a break take no new work
    /// while the level enforces the fatigue rule.
    pub(super) fn expire_fatigue(&mut self, now: Millis) {
        while let Some(&(at, ax)) = self.fatigue_deadlines.first() {
            if at > now {
                break;
            }
            self.fatigue_deadlines.pop_first();
            // Also while paused: only a break of `min_break` clears it.
            self.with_agent(ax, |a| a.fatigued = true);
            self.touch_agent(ax);
        }
    }
}

fn too_many(what: &str) -> CoreError {
    CoreError::InvalidArgument(format!("more than 63 distinct {what} are in use; merge or drop some"))
}
