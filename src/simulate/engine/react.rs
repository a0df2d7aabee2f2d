//! How the simulated world answers the core: agents accept offers after a
//! delay and finish chats after their handle time, customers leave when their
//! patience runs out, the bot hands back what it could not solve, and shifts
//! and breaks change presence. Also the per-tick sampling for the statistics.

use super::{Ev, Fate, Sim, COMEBACK_MS};
use crate::core::{Actor, AgentStatus, Command, Effect, Event, EventKind, Id, Millis};
use crate::rng::{mix, unit_of};
use crate::simulate::plan::Step;
use crate::simulate::stats::GroupSample;

impl Sim<'_> {
    pub(super) fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Accept { ix, agent, token } => {
                if self.tracks[ix as usize].offer == Some((agent, token)) {
                    let actor = Actor::agent(&self.agents[agent as usize].id);
                    let inquiry = self.inquiry_id(ix);
                    self.command(Command::Accept { actor, inquiry });
                }
            }
            Ev::Complete { ix, agent } => {
                let actor = Actor::agent(&self.agents[agent as usize].id);
                let inquiry = self.inquiry_id(ix);
                if self.command(Command::Complete { actor, inquiry }) {
                    let a = &mut self.agents[agent as usize];
                    a.active -= 1;
                    if a.leaving && a.active == 0 {
                        self.presence(agent, AgentStatus::Offline);
                    }
                }
            }
            Ev::Abandon(ix) => {
                if self.tracks[ix as usize].fate == Fate::Open {
                    let inquiry = self.inquiry_id(ix);
                    self.command(Command::Cancel { inquiry, shop: None });
                }
            }
            Ev::Agent(agent, step) => self.agent_step(agent, step),
            Ev::Comeback(agent) => {
                let a = &self.agents[agent as usize];
                if a.on_shift && !a.on_break && !a.leaving {
                    self.presence(agent, AgentStatus::Available);
                }
            }
            Ev::BotReturn(ix) => {
                self.bot_pending -= 1;
                self.bot_return(ix);
            }
        }
        self.settle();
    }

    pub(super) fn inquiry_id(&self, ix: u32) -> Id {
        self.tracks[ix as usize].id.clone()
    }

    /// An inquiry the bot could not resolve comes back as the service sees
    /// it: the same id, marked `bot_attempted` (a new track for its second
    /// life; the core does not count the customer again for the level).
    pub(super) fn bot_return(&mut self, ix: u32) {
        let track = &self.tracks[ix as usize];
        let Some(planned) = track.planned else { return };
        let mut inquiry = self.plan.arrivals[planned as usize].inquiry.clone();
        inquiry.id = track.id.clone();
        inquiry.bot_attempted = true;
        inquiry.created_at_ms = self.now;
        self.stats.bot_returned += 1;
        let handle_ms = track.handle_ms;
        // Its second life draws apart from its first.
        self.arrive(inquiry, handle_ms, None, u64::from(planned) | 1 << 32);
    }

    pub(super) fn agent_step(&mut self, agent: u32, step: Step) {
        let a = &mut self.agents[agent as usize];
        match step {
            Step::Available => {
                if !a.on_shift {
                    a.on_shift = true;
                    a.groups.iter().for_each(|&g| self.on_shift[g] += 1);
                }
                self.agents[agent as usize].on_break = false;
                self.presence(agent, AgentStatus::Available);
            }
            Step::Break => {
                a.on_break = true;
                self.presence(agent, AgentStatus::Break);
            }
            Step::Leave => {
                if a.on_shift {
                    a.groups.iter().for_each(|&g| self.on_shift[g] -= 1);
                }
                a.leaving = true;
                a.on_shift = false;
                let status = if a.active == 0 { AgentStatus::Offline } else { AgentStatus::Away };
                self.presence(agent, status);
            }
        }
    }

    pub(super) fn presence(&mut self, agent: u32, status: AgentStatus) {
        let mut presence = self.plan.agents[agent as usize].presence.clone();
        presence.status = status;
        let actor = Actor::agent(&presence.agent);
        self.command(Command::SetPresence { actor, presence });
    }

    /// Carries out the effects of the commands applied so far.
    pub(super) fn settle(&mut self) {
        let mut fx = std::mem::take(&mut self.fx);
        for effect in fx.drain(..) {
            match effect {
                Effect::Offer(o) => {
                    let (ix, agent) = (self.by_id[&o.inquiry], self.agent_ix[&o.agent]);
                    self.seq += 1;
                    let token = self.seq;
                    let track = &mut self.tracks[ix as usize];
                    track.offer = Some((agent, token));
                    track.attempts += 1;
                    let draw = unit_of(mix(self.plan.seed ^ track.draw_key, track.attempts));
                    let delay = (self.plan.accept_delay_ms as f64 * (0.5 + draw)) as u64;
                    self.schedule(self.now + delay, Ev::Accept { ix, agent, token });
                }
                Effect::Withdraw { inquiry, .. } => {
                    if let Some(&ix) = self.by_id.get(&inquiry) {
                        self.tracks[ix as usize].offer = None;
                    }
                }
                Effect::Event(e) => self.event(&e),
                Effect::Deflect { inquiry, .. } => self.deflected(&inquiry),
                Effect::AgentStatusChanged { agent, status: AgentStatus::Away, .. } => {
                    if let Some(&a) = self.agent_ix.get(&agent) {
                        if self.agents[a as usize].on_shift && !self.agents[a as usize].leaving {
                            self.schedule(self.now + COMEBACK_MS, Ev::Comeback(a));
                        }
                    }
                }
                // The simulation never pauses its timers, nor restarts.
                Effect::AgentStatusChanged { .. }
                | Effect::LevelChanged(_)
                | Effect::OfferRenewed { .. }
                | Effect::DeflectionResent { .. } => {}
            }
        }
        self.fx = fx;
    }

    pub(super) fn event(&mut self, e: &Event) {
        let Some(&ix) = self.by_id.get(&e.inquiry) else { return };
        let track = &mut self.tracks[ix as usize];
        match e.kind {
            EventKind::Accepted => {
                let agent = e.agent.as_ref().and_then(|a| self.agent_ix.get(a)).copied();
                track.offer = None;
                if track.fate == Fate::Open {
                    track.fate = Fate::Answered;
                    self.open -= 1;
                    let wait = e.waited_ms.unwrap_or(self.now - track.arrived);
                    let (group, level) = (track.group, track.level);
                    self.stats.answered(group, level, self.now, wait);
                }
                if let Some(agent) = agent {
                    self.agents[agent as usize].active += 1;
                    let handle_ms = self.tracks[ix as usize].handle_ms;
                    self.schedule(self.now + handle_ms, Ev::Complete { ix, agent });
                }
            }
            EventKind::Cancelled if track.fate == Fate::Open => {
                track.fate = Fate::Gone;
                self.open -= 1;
                let (group, level) = (track.group, track.level);
                self.stats.abandoned(group, level, self.now);
            }
            _ => {}
        }
    }

    pub(super) fn deflected(&mut self, inquiry: &Id) {
        let Some(&ix) = self.by_id.get(inquiry) else { return };
        let track = &mut self.tracks[ix as usize];
        if track.fate != Fate::Open {
            return;
        }
        track.fate = Fate::Gone;
        self.open -= 1;
        let (group, level) = (track.group, track.level);
        self.stats.deflected(group, level, self.now);
        let resolved = unit_of(mix(self.plan.seed.rotate_left(17), track.draw_key)) < self.plan.bot_resolves;
        if !resolved && track.planned.is_some() {
            self.bot_pending += 1;
            self.schedule(self.now + self.plan.bot_returns_ms, Ev::BotReturn(ix));
        }
    }

    /// Reads every group after a tick; `record` false (after the window)
    /// only keeps the levels current for late arrivals.
    pub(super) fn sample(&mut self, at: Millis, record: bool) {
        let views = self.router.groups(at);
        let samples: Vec<GroupSample> = views
            .iter()
            .enumerate()
            .map(|(g, v)| GroupSample {
                level: v.level,
                queue: v.waiting.iter().sum(),
                recommended: v.recommended_agents,
                on_shift: self.on_shift[g],
            })
            .collect();
        for (g, s) in samples.iter().enumerate() {
            self.levels[g] = s.level;
        }
        if !record {
            return;
        }
        let on_shift = self.agents.iter().filter(|a| a.on_shift).count() as u32;
        self.stats.sample(at, self.plan.step_ms, self.router.router_level(), &samples, on_shift);
    }
}
