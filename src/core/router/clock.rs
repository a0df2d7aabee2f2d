//! Everything that happens because time passed: offer timeouts, heartbeat
//! grace, fatigue, overflow, load levels with overrides, staffing advice, and
//! forgetting finished work (`forget.rs`).

use super::record::Place;
use super::{Override, Router};
use crate::core::agents::{AgentIx, GroupIx, InqIx};
use crate::core::command::{Actor, Role};
use crate::core::effect::{Effect, EventKind, LevelChange, Scope};
use crate::core::error::CoreError;
use crate::core::levels::{raw_level, Observation};
use crate::core::staffing::{advise, StaffingInput};
use crate::core::types::{AgentStatus, Level, Millis, Rule};

/// Levels are re-evaluated at most this often.
const LEVEL_EVAL_MS: u64 = 1_000;
/// Override windows one scope may hold at once (a promotion has a few).
pub const OVERRIDES_PER_SCOPE: usize = 16;
/// Crossing records `overflow` prefetches at once: a usual tick's worth;
/// more (a catch-up) would evict the first before they are used.
const OVERFLOW_PREFETCH: usize = 512;

impl Router {
    /// Runs the timers due by `now`, but those a queued command could still
    /// stop — offer timeouts (an Accept), a desktop's grace (its reconnect) —
    /// only if due by `answered_until` (see `Command::TickQueued`).
    pub(super) fn tick(&mut self, now: Millis, answered_until: Millis, fx: &mut Vec<Effect>) {
        self.time_out_due(now, answered_until, fx);
        self.expire_heartbeats(now, answered_until, fx);
        self.expire_fatigue(now);
        self.expire_exclusions(now, fx);
        self.overflow(now, fx);
        if now >= self.next_level_eval {
            self.evaluate_levels(now, fx);
            self.next_level_eval = now + LEVEL_EVAL_MS;
        }
        self.forget_finished(now);
    }

    /// Times out every offer due by `until`, at `now`. Agents whose due offers reach
    /// the AWAY threshold take no new work while the others are timed out:
    /// an offer made to them in between (a slot freed by their first
    /// timeout, an inquiry another agent let run out) would be withdrawn
    /// again when they go AWAY a moment later.
    fn time_out_due(&mut self, now: Millis, until: Millis, fx: &mut Vec<Effect>) {
        let due = self.offer_deadlines.iter().take_while(|&&(deadline, _)| deadline <= until);
        let mut due_per_agent: Vec<AgentIx> = due
            .filter_map(|&(_, ix)| match self.rec(ix).place {
                Place::Offered { agent, .. } => Some(agent),
                _ => None,
            })
            .collect();
        due_per_agent.sort_unstable();
        let threshold = self.settings.agents.timeouts_before_away;
        let mut away_due: Vec<AgentIx> = due_per_agent
            .chunk_by(|a, b| a == b)
            .filter(|run| {
                let agent = &self.agents[run[0] as usize];
                agent.status == AgentStatus::Available && agent.consecutive_timeouts + run.len() as u32 >= threshold
            })
            .map(|run| run[0])
            .collect();
        for &ax in &away_due {
            self.with_agent(ax, |a| a.away_due = true);
        }
        while let Some(&(deadline, ix)) = self.offer_deadlines.first() {
            if deadline > until {
                break;
            }
            self.time_out(now, ix, fx);
        }
        for ax in away_due.drain(..) {
            self.with_agent(ax, |a| a.away_due = false);
        }
    }

    /// Moves every open offer's deadline `by` later (see `Command::ExtendOffers`)
    /// and tells each desktop the new deadline.
    pub(super) fn extend_offers(&mut self, by: Millis, fx: &mut Vec<Effect>) {
        if by == 0 {
            return;
        }
        let open = std::mem::take(&mut self.offer_deadlines);
        for (deadline, ix) in open {
            let later = deadline + by;
            let rec = self.rec_mut(ix);
            if let Place::Offered { deadline: d, agent, .. } = &mut rec.place {
                *d = later;
                let (agent, inquiry) = (*agent, rec.inquiry.id.clone());
                let agent = self.agents[agent as usize].id.clone();
                fx.push(Effect::OfferRenewed { inquiry, agent, expires_at: later });
            }
            self.offer_deadlines.insert((later, ix));
        }
    }

    /// Inquiries that waited `overflow_after` become servable by the overflow
    /// groups, and are offered there at once when an agent may take them.
    /// When several cross at once (a catch-up after a pause, or many groups
    /// in one tick), they are taken best first across groups, so a free
    /// overflow slot goes to the highest priority as it would in a queue.
    fn overflow(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let mut due: Vec<(GroupIx, InqIx)> = Vec::new();
        let mut crossed = Vec::new();
        for g in 0..self.groups.len() {
            let after = self.playbook(self.groups[g].level).overflow_after.as_millis() as u64;
            self.groups[g].queue.take_due(now, after, &mut crossed);
            due.extend(crossed.drain(..).map(|ix| (g as GroupIx, ix)));
        }
        // Each record was last touched when it queued, long ago.
        for &(_, ix) in due.iter().take(OVERFLOW_PREFETCH) {
            self.records.prefetch(ix as usize);
        }
        if due.len() > 1 {
            due.sort_by_cached_key(|&(_, ix)| self.rec(ix).slot().key);
        }
        for (g, ix) in due {
            if self.rec(ix).via_dedicated {
                self.back_to_primary(now, ix, fx);
                continue;
            }
            let slot = self.rec(ix).slot();
            self.groups[g as usize].queue.mark_overflowed(ix, &slot);
            self.rec_mut(ix).overflowed = true;
            for t in 0..self.groups[g as usize].overflow_to.len() {
                let target = self.groups[g as usize].overflow_to[t];
                if let Some((ax, mut trace)) = self.offerable_agent(now, target, ix) {
                    trace.rule = Some(Rule::Overflow);
                    self.dequeue(ix);
                    self.offer(now, ix, ax, target, trace, fx);
                    break;
                }
            }
        }
    }

    /// A fan or VIP inquiry that waited `overflow_after` in the dedicated
    /// group moves to its category's primary group, rank kept (SPEC: the
    /// dedicated group first, else the primary group): it is offered there
    /// when an agent may take it, else waits there and overflows from there
    /// (its wait so far counts toward that).
    fn back_to_primary(&mut self, now: Millis, ix: InqIx, fx: &mut Vec<Effect>) {
        self.dequeue(ix);
        // Its QUEUED step names the dedicated group: store it before moving.
        self.tell_queued(ix);
        let primary = self.primary[self.rec(ix).inquiry.category as usize];
        let rec = self.rec_mut(ix);
        rec.home = primary;
        rec.via_dedicated = false;
        if let Some((ax, mut trace)) = self.offerable_agent(now, primary, ix) {
            trace.rule = Some(Rule::Overflow);
            return self.offer(now, ix, ax, primary, trace, fx);
        }
        // Waits on in the primary group: REQUEUED there, on timeline and events.
        self.enqueue(now, ix, EventKind::Requeued, fx);
    }

    /// Measures every group, applies hysteresis and overrides, reports level
    /// changes, and re-applies the playbook where a level moved.
    pub(super) fn evaluate_levels(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let overrides = self.overrides.len();
        self.overrides.retain(|o| o.until > now);
        self.levels_dirty |= overrides != self.overrides.len();
        // Handle times move with every completion; recorded once a second.
        self.levels_dirty |= std::mem::take(&mut self.handle_avg_moved);
        let mut changed = Vec::new();
        let offered_since = self.oldest_offered();
        for g in 0..self.groups.len() as GroupIx {
            // Above what was measured, the level in force came from a pin.
            let was_pinned = self.groups[g as usize].level > self.groups[g as usize].tracker.level();
            let (measured, reason) = self.measure(now, g, offered_since[g as usize]);
            let pinned = self.pinned_level(now, Some(g));
            let group = &mut self.groups[g as usize];
            let level = measured.max(pinned);
            if level != group.level {
                self.levels_dirty = true;
                let reason = if pinned > measured {
                    format!("ops override to at least {}", pinned.name())
                } else if level < group.level && was_pinned {
                    format!("ops override ended; measured: {reason}")
                } else {
                    reason
                };
                let scope = Scope::Group(group.id.clone());
                fx.push(Effect::LevelChanged(LevelChange { scope, from: group.level, to: level, reason, at: now }));
                group.level = level;
                changed.push(g);
            }
            self.update_staffing(g);
        }
        // A pin of the router pins every group, so the groups say it all.
        let highest = self.groups.iter().max_by_key(|g| g.level);
        let router_level = highest.map_or(Level::Normal, |g| g.level);
        if router_level != self.router_level {
            self.levels_dirty = true;
            let reason = match highest {
                Some(g) if router_level > Level::Normal => format!("highest group level ({} {})", g.id, g.level.name()),
                _ => "every group NORMAL".to_string(),
            };
            fx.push(Effect::LevelChanged(LevelChange {
                scope: Scope::Router,
                from: self.router_level,
                to: router_level,
                reason,
                at: now,
            }));
            self.router_level = router_level;
        }
        self.reapply_playbook(now, &changed, fx);
    }

    /// The measured level of a group after hysteresis, with the reason;
    /// `offered_since` from [`Router::oldest_offered`].
    fn measure(&mut self, now: Millis, g: GroupIx, offered_since: Option<Millis>) -> (Level, String) {
        let cooldown = self.settings.levels.cooldown.as_millis() as u64;
        // Customers nobody on duty in the group could serve (a language or
        // skill of no one at work) wait for want of the right person, not
        // for want of capacity: they are left out of the load measure, lest
        // one such customer put the whole group at SURGE. With nobody on
        // duty at all, everyone waiting counts: that is the team missing.
        // Someone on duty in a group it overflows to counts too (the overflow
        // group's agents may be busy: capacity again). The queue gauges and
        // the oldest-wait alert show them all.
        let (queue_length, oldest_servable) = {
            let queue = &self.groups[g as usize].queue;
            // Once per need waiting (each has its lanes), not per customer.
            let counted: Vec<_> = queue.lanes.keys().filter(|&&need| self.load_counts(g, need)).copied().collect();
            let servable = |need| counted.contains(&need);
            (queue.len_of_needs(servable), queue.oldest_since_of(|ix| servable(self.rec(ix).need)))
        };
        let group = &mut self.groups[g as usize];
        let census = &group.agents.census;
        let obs = Observation {
            arrivals_per_min: group.arrivals.per_minute(now),
            queue_length,
            oldest_wait_ms: super::views::oldest_wait(oldest_servable, offered_since, now),
            occupancy: if census.capacity == 0 { 0.0 } else { f64::from(census.load) / f64::from(census.capacity) },
        };
        group.arrivals_per_min = obs.arrivals_per_min;
        group.routed_per_min = group.routed.per_minute(now);
        let (raw, reason) = raw_level(&self.settings.levels, group.settings.baseline_per_min, obs);
        let before = group.tracker.level();
        let tracked = group.tracker.clone();
        group.tracker.observe(now, raw, cooldown);
        let after = group.tracker.level();
        if group.tracker != tracked {
            self.levels_dirty = true;
        }
        let reason = if after < before {
            format!("{} held for the {}s cooldown", after.name(), cooldown / 1000)
        } else {
            reason
        };
        (after, reason)
    }

    /// Whether a customer of group `g` needing `need` counts in its load:
    /// someone on duty there or in a group it overflows to could serve
    /// them, or nobody at all is on duty in `g`.
    pub(super) fn load_counts(&self, g: GroupIx, need: crate::core::matching::Need) -> bool {
        let here = &self.groups[g as usize];
        here.agents.on_duty() == 0
            || self.on_duty_could_serve(g, need, None)
            || here.overflow_to.iter().any(|&t| self.on_duty_could_serve(t, need, None))
    }

    /// Whether an agent of group `g` on duty (AVAILABLE or on BREAK), busy
    /// or not, other than `except`, could serve `need`. A walk over the
    /// members, done once a second per waiting need rather than kept up on
    /// every offer.
    pub(super) fn on_duty_could_serve(
        &self,
        g: GroupIx,
        need: crate::core::matching::Need,
        except: Option<AgentIx>,
    ) -> bool {
        self.groups[g as usize].agents.members.iter().any(|&ax| {
            let a = &self.agents[ax as usize];
            Some(ax) != except
                && matches!(a.status, crate::core::AgentStatus::Available | crate::core::AgentStatus::Break)
                && a.offering.check(need).is_ok()
        })
    }

    fn pinned_level(&self, now: Millis, group: Option<GroupIx>) -> Level {
        self.overrides
            .iter()
            .filter(|o| o.from <= now && now < o.until && (o.group.is_none() || o.group == group))
            .map(|o| o.level)
            .max()
            .unwrap_or_default()
    }

    /// Chats per working agent of a group: with no one working, what an
    /// agent at the group's level would carry.
    pub(super) fn staffing_concurrency(&self, g: GroupIx) -> f64 {
        let group = &self.groups[g as usize];
        let census = &group.agents.census;
        let working = census.ready + census.full;
        if working == 0 {
            f64::from(self.settings.agents.max_concurrent + self.playbook(group.level).extra_concurrent)
        } else {
            f64::from(census.capacity) / f64::from(working)
        }
    }

    fn update_staffing(&mut self, g: GroupIx) {
        let standby = self.playbook(self.groups[g as usize].level).standby_reserve;
        let concurrency = self.staffing_concurrency(g);
        let group = &mut self.groups[g as usize];
        group.staffing = advise(StaffingInput {
            // Customers waiting, not the chats agents hold: an agent in
            // several groups holds other groups' chats too.
            waiting: group.queue.len(),
            arrivals_per_sec: group.routed_per_min / 60.0,
            handle_secs: group.handle_ms_avg / 1000.0,
            concurrency,
            service_level: group.settings.service_level,
            answer_within_secs: group.settings.answer_within.as_secs_f64(),
            standby_reserve: standby,
        });
    }

    /// After levels moved: agents' capacity and fatigue rule change, reserve
    /// and overflow time follow the new playbook, and freed slots are filled.
    fn reapply_playbook(&mut self, now: Millis, changed: &[GroupIx], fx: &mut Vec<Effect>) {
        if changed.is_empty() {
            return;
        }
        let mut members: Vec<AgentIx> =
            changed.iter().flat_map(|&g| self.groups[g as usize].agents.members.iter().copied()).collect();
        members.sort_unstable();
        members.dedup();
        for &ax in &members {
            self.with_agent(ax, |_| {});
        }
        self.fill_best_first(now, changed, fx);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_override(
        &mut self,
        now: Millis,
        actor: &Actor,
        group: Option<String>,
        level: Level,
        from: Millis,
        until: Millis,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        require_admin(actor, "set a level override")?;
        let g = group.as_deref().map(|name| self.group_by_name(name)).transpose()?;
        let from = if from == 0 { now } else { from };
        if until <= from || until <= now {
            return Err(CoreError::InvalidArgument(format!(
                "override window ends ({until}) before it starts ({from}) or in the past; until_ms must be later than from_ms and now"
            )));
        }
        // A scope holds every window set for it (the midnight opening and
        // the evening spike, set up the day before), and the highest level
        // in force wins: a new window never silently drops a pin ops rely on.
        // Lowering or moving one is ClearLevelOverride, then the windows wanted.
        let window = Override { group: g, level, from, until };
        if self.overrides.contains(&window) {
            return Ok(());
        }
        let set = self.overrides.iter().filter(|o| o.group == g && o.until > now).count();
        if set >= OVERRIDES_PER_SCOPE {
            return Err(CoreError::FailedPrecondition(format!(
                "{OVERRIDES_PER_SCOPE} override windows are already set for this scope; clear them (ClearLevelOverride) and set the ones still needed"
            )));
        }
        self.overrides.push(window);
        self.levels_dirty = true;
        self.evaluate_levels(now, fx);
        Ok(())
    }

    pub(super) fn clear_override(
        &mut self,
        now: Millis,
        actor: &Actor,
        group: Option<String>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        require_admin(actor, "clear a level override")?;
        let g = group.as_deref().map(|name| self.group_by_name(name)).transpose()?;
        self.overrides.retain(|o| o.group != g);
        self.levels_dirty = true;
        self.evaluate_levels(now, fx);
        Ok(())
    }
}

fn require_admin(actor: &Actor, what: &str) -> Result<(), CoreError> {
    match actor.role {
        Role::Admin | Role::System => Ok(()),
        _ => Err(CoreError::PermissionDenied(format!("`{}` may not {what}: only admins may", actor.id))),
    }
}
