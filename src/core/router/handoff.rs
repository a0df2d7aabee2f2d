//! Handoffs: transfer to an agent or a group with a note, escalation to the
//! supervisors with raised priority, and who may do either.

use super::record::Place;
use super::timeline::EventDetail;
use super::Router;
use crate::core::agents::{AgentIx, Class, GroupIx, InqIx};
use crate::core::command::{Actor, Role, TransferTarget};
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::priority::{self, PriorityInput};
use crate::core::types::{HandoffNote, Millis, Rule};

/// Author of the notes the router writes itself.
pub(super) const SYSTEM_AUTHOR: &str = "system";

/// The note the router writes when it takes work back from an agent.
pub(super) fn system_note(now: Millis, agent: &str) -> HandoffNote {
    HandoffNote {
        summary: format!("agent {agent} went offline during the conversation"),
        attempted: "see the earlier messages of this conversation".to_string(),
        customer_expectation: "continue where the conversation stopped".to_string(),
        author: SYSTEM_AUTHOR.to_string(),
        at: now,
    }
}

impl Router {
    /// Checks that `actor` may hand off `ix`; returns the agent holding it.
    fn may_hand_off(&self, actor: &Actor, ix: InqIx, id: &str) -> Result<Option<AgentIx>, CoreError> {
        let rec = self.rec(ix);
        let (holder, group) = match rec.place {
            Place::Finished { state, .. } => {
                return Err(CoreError::FailedPrecondition(format!(
                    "inquiry `{id}` is already {state:?}; only waiting, offered or active inquiries can be handed off"
                )))
            }
            Place::Waiting => (None, rec.home),
            Place::Offered { agent, group, .. } | Place::Active { agent, group, .. } => (Some(agent), group),
        };
        let is_holder = holder.is_some_and(|h| *self.agents[h as usize].id == *actor.id);
        let allowed = match actor.role {
            Role::Admin | Role::System => true,
            Role::Agent => is_holder,
            Role::Lead => is_holder || self.is_member(&actor.id, group),
        };
        if !allowed {
            let rule = match actor.role {
                Role::Lead => "a lead may hand off inquiries of its own groups only, which are the groups of its own SetPresence (send one naming the groups you lead, with status AWAY if you take no chats)",
                _ => "an agent may hand off only inquiries it holds",
            };
            return Err(CoreError::PermissionDenied(format!("`{}` may not hand off inquiry `{id}`: {rule}", actor.id)));
        }
        Ok(holder)
    }

    fn is_member(&self, agent: &str, g: GroupIx) -> bool {
        self.agent_ix.get(agent).is_some_and(|&ax| self.agents[ax as usize].proficiency_in(g).is_some())
    }

    /// Frees the inquiry from its holder or queue before it moves. The holder
    /// is told, offered or active alike: a lead may hand off an agent's chat,
    /// and that agent must stop serving it.
    fn detach_inquiry(&mut self, ix: InqIx, holder: Option<AgentIx>, reason: &'static str, fx: &mut Vec<Effect>) {
        match self.rec(ix).place {
            Place::Waiting => self.dequeue(ix),
            Place::Offered { deadline, .. } => {
                self.offer_deadlines.remove(&(deadline, ix));
            }
            _ => {}
        }
        if let Some(ax) = holder {
            let (inquiry, agent) = (self.rec(ix).inquiry.id.clone(), self.agents[ax as usize].id.clone());
            fx.push(Effect::Withdraw { inquiry, agent, reason });
            self.release(ax, ix);
        }
    }

    pub(super) fn transfer(
        &mut self,
        now: Millis,
        actor: &Actor,
        id: &str,
        target: TransferTarget,
        note: HandoffNote,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        check_note(&note)?;
        let ix = self.inquiry_by_id(id)?;
        let holder = self.may_hand_off(actor, ix, id)?;
        self.check_handoffs(ix, id)?;
        // The group it is offered in, and the queue it waits in if that
        // offer is declined or times out.
        let (to_agent, to_group, queue) = match &target {
            TransferTarget::Agent(agent) => {
                let ax = self.transfer_agent(ix, holder, agent)?;
                let home = self.rec(ix).home;
                let a = &self.agents[ax as usize];
                // An agent outside its group serves it under one of theirs;
                // should they not take it, it waits where it was.
                let g = if a.proficiency_in(home).is_some() { home } else { a.groups[0].0 };
                (Some(ax), g, home)
            }
            TransferTarget::Group(group) => {
                let g = self.group_by_name(group)?;
                (None, g, g)
            }
        };
        let from = self.current_group(ix);
        self.detach_inquiry(ix, holder, "transferred", fx);
        let note = HandoffNote { author: actor.id.to_string(), at: now, ..note };
        self.move_to_group(now, ix, queue, Rule::TransferTarget, holder);
        let text = match &target {
            TransferTarget::Agent(a) => format!("to agent {a}"),
            TransferTarget::Group(g) => format!("to group {g}"),
        };
        self.record_handoff(now, ix, EventKind::Transferred, (from, to_group), holder, note, text, fx);
        match to_agent {
            Some(ax) => {
                let mut trace = self.choose_agent(now, to_group, ix).trace;
                trace.rule = Some(Rule::TransferTarget);
                self.offer(now, ix, ax, to_group, trace, fx);
            }
            None => self.route(now, ix, EventKind::Queued, fx),
        }
        if let Some(ax) = holder {
            self.fill_agent(now, ax, Some(ix), fx);
        }
        Ok(())
    }

    /// The agent a transfer goes to, if it can take the inquiry now.
    fn transfer_agent(&self, ix: InqIx, holder: Option<AgentIx>, agent: &str) -> Result<AgentIx, CoreError> {
        let ax = self.agent_by_id(agent)?;
        let a = &self.agents[ax as usize];
        if holder == Some(ax) {
            return Err(CoreError::FailedPrecondition(format!("inquiry is already with agent `{agent}`")));
        }
        if a.class != Class::Ready || a.groups.is_empty() {
            let why = match a.class {
                Class::NotAvailable if a.stream_lost => ", its desktop disconnected",
                Class::Fatigued => ", due a break",
                _ => "",
            };
            return Err(CoreError::FailedPrecondition(format!(
                "agent `{agent}` cannot take work now ({}{why}, {}/{} chats); transfer to a group instead",
                a.status.name(),
                a.load(),
                a.capacity
            )));
        }
        if a.offering.check(self.rec(ix).need).is_err() {
            return Err(CoreError::FailedPrecondition(format!(
                "agent `{agent}` lacks the language or skills this inquiry needs; pick another agent or a group"
            )));
        }
        Ok(ax)
    }

    pub(super) fn escalate(
        &mut self,
        now: Millis,
        actor: &Actor,
        id: &str,
        note: HandoffNote,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        check_note(&note)?;
        let ix = self.inquiry_by_id(id)?;
        let holder = self.may_hand_off(actor, ix, id)?;
        // No limit here: an inquiry is escalated at most once, and a
        // complaint passed around too often is exactly one for a supervisor.
        let Some(target) = self.escalation else {
            return Err(CoreError::FailedPrecondition(
                "no escalation group is configured; set [escalation] group in the configuration".to_string(),
            ));
        };
        if self.rec(ix).escalated {
            return Err(CoreError::FailedPrecondition(format!("inquiry `{id}` is already escalated")));
        }
        // Taken from its agent into a queue nobody at work serves, the
        // customer would wait until a supervisor logs in.
        if !self.on_duty_could_serve(target, self.rec(ix).need, holder) {
            return Err(CoreError::FailedPrecondition(format!(
                "no one on duty in `{}` could take inquiry `{id}` (AVAILABLE or on BREAK, with its language and skills); \
                 keep serving it or transfer it, and call a supervisor in",
                self.groups[target as usize].id
            )));
        }
        let from = self.current_group(ix);
        self.detach_inquiry(ix, holder, "escalated", fx);
        let note = HandoffNote { author: actor.id.to_string(), at: now, ..note };
        self.move_to_group(now, ix, target, Rule::Escalation, holder);
        let text = "to the supervisors".to_string();
        self.record_handoff(now, ix, EventKind::Escalated, (from, target), holder, note, text, fx);
        self.route(now, ix, EventKind::Queued, fx);
        if let Some(ax) = holder {
            self.fill_agent(now, ax, Some(ix), fx);
        }
        Ok(())
    }

    fn current_group(&self, ix: InqIx) -> GroupIx {
        match self.rec(ix).place {
            Place::Offered { group, .. } | Place::Active { group, .. } => group,
            _ => self.rec(ix).home,
        }
    }

    /// Re-homes an inquiry in `g` as a new wait, with its score recomputed
    /// plus the aging it earned while it waited so far (a handoff never
    /// lowers its standing: an escalation raises it); the agent handing it
    /// off (`holder`) is avoided like one who declined.
    fn move_to_group(&mut self, now: Millis, ix: InqIx, g: GroupIx, rule: Rule, holder: Option<AgentIx>) {
        self.tell_queued(ix);
        let aging = self.aging_ms();
        let seq = self.next_seq;
        self.next_seq += 1;
        let settings = self.settings.priority.clone();
        let rec = self.rec_mut(ix);
        let input = |escalated| PriorityInput {
            category: rec.inquiry.category,
            vip_tier: rec.inquiry.customer.vip_tier,
            is_fan: rec.inquiry.customer.is_fan,
            escalated,
        };
        let waited_until = match rec.place {
            Place::Active { accepted_at, .. } => accepted_at,
            _ => now,
        };
        // Aging earned so far, across earlier handoffs too: the aged score
        // over the standing it started from.
        let before = priority::standing(&settings, input(rec.escalated)).score;
        let earned = priority::aged_score(rec.score, rec.since, waited_until, aging) - before;
        rec.escalated |= rule == Rule::Escalation;
        let standing = priority::standing(&settings, input(rec.escalated));
        rec.place = Place::Waiting;
        rec.home = g;
        rec.score = standing.score.saturating_add(earned.max(0));
        rec.band = standing.band;
        rec.since = now;
        rec.seq = seq;
        rec.rank = priority::rank(rec.score, now, aging);
        rec.overflowed = false;
        rec.via_dedicated = false;
        rec.next_rule = Some(rule);
        self.exclude(now, ix, holder);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_handoff(
        &mut self,
        now: Millis,
        ix: InqIx,
        kind: EventKind,
        (from, to): (GroupIx, GroupIx),
        holder: Option<AgentIx>,
        note: HandoffNote,
        text: String,
        fx: &mut Vec<Effect>,
    ) {
        let carried = carried_note(note.clone(), self.rec(ix).note.as_deref());
        self.rec_mut(ix).note = Some(Box::new(carried));
        let note = Box::new(note);
        let detail = EventDetail {
            group: Some(to),
            agent: holder,
            from_group: Some(from),
            note: Some(note),
            text: Some(text),
            ..EventDetail::default()
        };
        self.emit(now, ix, kind, Some(detail), fx);
    }
}

/// Longest handoff note field, in bytes. A note travels with every later
/// offer and is recorded with the inquiry; a pasted transcript would make
/// every one of those heavy (and one record too large to journal).
pub const MAX_NOTE_FIELD: usize = 4096;

/// Most transfers of one inquiry (its one escalation comes on top). Its
/// record keeps every note (in its timeline, and the latest one besides):
/// 22 notes of 3 x 4 KiB, at most doubled by JSON escaping (control
/// characters are refused), stay near 530 KiB, well inside NATS' default
/// 1 MiB message limit, so the record can always be journaled.
pub const MAX_HANDOFFS: usize = 20;

impl Router {
    /// Refuses a transfer beyond `MAX_HANDOFFS` for inquiry `ix`.
    fn check_handoffs(&self, ix: InqIx, id: &str) -> Result<(), CoreError> {
        let done = self.rec(ix).timeline.iter().filter(|s| s.kind == EventKind::Transferred).count();
        if done >= MAX_HANDOFFS {
            return Err(CoreError::FailedPrecondition(format!(
                "inquiry `{id}` has been transferred {done} times, the most one inquiry may be; serve it in the group it is in, or escalate it"
            )));
        }
        Ok(())
    }
}

/// The note a handoff leaves for every later offer: `new`, followed by what
/// the `earlier` note said that `new` does not repeat, marked as earlier, so the customer's
/// context survives any number of handoffs (SPEC: the customer never repeats
/// themselves). A handoff without a note (an escalation may have none) keeps
/// the earlier note whole. Each field stays within [`MAX_NOTE_FIELD`], the
/// oldest text cut first. The timeline keeps each note as written.
pub(super) fn carried_note(new: HandoffNote, earlier: Option<&HandoffNote>) -> HandoffNote {
    let Some(earlier) = earlier else { return new };
    if new.summary.is_empty() && new.attempted.is_empty() && new.customer_expectation.is_empty() {
        return earlier.clone();
    }
    let join = |now: String, before: &str, label: &str| {
        if before.is_empty() || now == before {
            return now;
        }
        // Marked once: an earlier note's text carried on already says so.
        let label = if before.starts_with(label) { "" } else { label };
        let mut joined = if now.is_empty() { format!("{label}{before}") } else { format!("{now}; {label}{before}") };
        joined.truncate(floor_char_boundary(&joined, MAX_NOTE_FIELD));
        joined
    };
    let by = format!("earlier note by {}: ", earlier.author);
    HandoffNote {
        summary: join(new.summary, &earlier.summary, &by),
        attempted: join(new.attempted, &earlier.attempted, "earlier: "),
        customer_expectation: join(new.customer_expectation, &earlier.customer_expectation, "earlier: "),
        author: new.author,
        at: new.at,
    }
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

fn check_note(note: &HandoffNote) -> Result<(), CoreError> {
    let fields = [
        ("summary", &note.summary),
        ("attempted", &note.attempted),
        ("customer_expectation", &note.customer_expectation),
    ];
    for (name, text) in fields {
        if text.len() > MAX_NOTE_FIELD {
            return Err(CoreError::InvalidArgument(format!(
                "note.{name} is {} bytes; keep each note field within {MAX_NOTE_FIELD} bytes (summarize, and link a long transcript instead of pasting it)",
                text.len()
            )));
        }
        if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(CoreError::InvalidArgument(format!(
                "note.{name} contains control characters; send plain text (line breaks and tabs are fine)"
            )));
        }
    }
    Ok(())
}
