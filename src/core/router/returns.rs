//! Work that goes back to the queue: offers that time out (and, after too
//! many, set the agent AWAY), the agent a returned inquiry avoids for a
//! while, and offers or chats taken back from an agent.

use super::handoff::carried_note;
use super::record::{Place, NO_AGENT};
use super::timeline::EventDetail;
use super::Router;
use crate::core::agents::{AgentIx, InqIx};
use crate::core::effect::{Effect, EventKind};
use crate::core::priority;
use crate::core::types::{AgentStatus, HandoffNote, Millis, Rule};

/// The withdrawal reason of the timeout that sets an agent AWAY.
pub(super) const AWAY_AFTER_TIMEOUTS: &str =
    "accept timeout; too many offers in a row timed out, so you are AWAY now: set AVAILABLE to take offers again";

/// What goes on the step of work taken back: the system's handoff note
/// (an agent gone OFFLINE), or the agent's reason (a decline).
#[derive(Default)]
pub(super) struct Said {
    pub note: Option<HandoffNote>,
    pub reason: Option<String>,
}

impl Router {
    /// An offer that ran out while the router was down: back to the queue
    /// like any timeout, but not counted against the agent, whose desktop
    /// could not accept it meanwhile.
    pub(super) fn time_out_unseen(&mut self, now: Millis, ix: InqIx, fx: &mut Vec<Effect>) {
        let Place::Offered { agent: ax, .. } = self.rec(ix).place else { return };
        self.take_back(now, ix, ax, EventKind::TimedOut, Said::default(), fx);
        // Another agent had the first chance; if none took it, the agent who
        // never saw the offer is not avoided: it is still first in line.
        if self.rec(ix).place == Place::Waiting {
            let rec = self.rec_mut(ix);
            (rec.excluded, rec.handed_on_by) = (None, NO_AGENT);
        }
        self.fill_agent(now, ax, None, fx);
    }

    /// An unaccepted offer ran out: back to the queue, and AWAY after too many.
    pub(super) fn time_out(&mut self, now: Millis, ix: InqIx, fx: &mut Vec<Effect>) {
        let Place::Offered { agent: ax, .. } = self.rec(ix).place else { return };
        self.take_back(now, ix, ax, EventKind::TimedOut, Said::default(), fx);
        self.touch_agent(ax);
        let agent = &mut self.agents[ax as usize];
        agent.consecutive_timeouts += 1;
        if agent.consecutive_timeouts >= self.settings.agents.timeouts_before_away
            && agent.status == AgentStatus::Available
        {
            // The desktop learns it from the withdrawal: nothing else reaches
            // it, and an agent who believes they are AVAILABLE would wait.
            let inquiry = &self.rec(ix).inquiry.id;
            if let Some(Effect::Withdraw { reason, .. }) =
                fx.iter_mut().rev().find(|e| matches!(e, Effect::Withdraw { inquiry: i, .. } if i == inquiry))
            {
                *reason = AWAY_AFTER_TIMEOUTS;
            }
            self.set_status(now, ax, AgentStatus::Away, "consecutive offer timeouts", fx);
        } else {
            self.fill_agent(now, ax, Some(ix), fx);
        }
    }

    /// Avoids agent `ax` for inquiry `ix` for one accept timeout, so that
    /// another agent gets the chance first; after that it may be offered to
    /// `ax` again (see `expire_exclusions`).
    pub(super) fn exclude(&mut self, now: Millis, ix: InqIx, ax: Option<AgentIx>) {
        let until = now + self.groups[self.rec(ix).home as usize].settings.accept_timeout.as_millis() as u64;
        let rec = self.rec_mut(ix);
        rec.excluded = ax;
        rec.handed_on_by = NO_AGENT;
        rec.excluded_until = until;
        if ax.is_some() {
            self.exclusion_deadlines.insert((until, ix));
        }
    }

    /// The agent who last transferred or escalated `ix`, if no one accepted it since.
    fn untaken_handoff_sender(&self, ix: InqIx) -> Option<AgentIx> {
        let steps = self.rec(ix).timeline.iter().rev();
        let last = steps
            .take_while(|s| s.kind != EventKind::Accepted)
            .find(|s| matches!(s.kind, EventKind::Transferred | EventKind::Escalated))?;
        self.agent_named(last.agent)
    }

    /// Ends exclusions that ran their time; a waiting inquiry whose only
    /// eligible agent was the excluded one is offered now.
    pub(super) fn expire_exclusions(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        while let Some(&(until, ix)) = self.exclusion_deadlines.first() {
            if until > now {
                break;
            }
            self.exclusion_deadlines.pop_first();
            let live =
                self.records[ix as usize].as_ref().is_some_and(|r| r.excluded.is_some() && r.excluded_until == until);
            if !live {
                continue;
            }
            let rec = self.rec_mut(ix);
            (rec.excluded, rec.handed_on_by) = (None, NO_AGENT);
            if self.rec(ix).place == Place::Waiting {
                self.place_waiting(now, ix, fx);
            }
        }
    }

    /// Offers a waiting inquiry if an agent of its group (or, once
    /// overflowed, of an overflow group) may take it now.
    fn place_waiting(&mut self, now: Millis, ix: InqIx, fx: &mut Vec<Effect>) {
        let home = self.rec(ix).home;
        let overflow =
            if self.rec(ix).overflowed { self.groups[home as usize].overflow_to.clone() } else { Vec::new() };
        for (g, rule) in std::iter::once((home, None)).chain(overflow.into_iter().map(|t| (t, Some(Rule::Overflow)))) {
            if let Some((ax, mut trace)) = self.offerable_agent(now, g, ix) {
                if rule.is_some() {
                    trace.rule = rule;
                }
                self.dequeue(ix);
                self.offer(now, ix, ax, g, trace, fx);
                return;
            }
        }
    }

    /// A chat given back mid-conversation waits again from `now`, keeping
    /// the aging it earned until it was accepted (as a transfer does): the
    /// conversation was not waiting, so it must not count toward the oldest
    /// wait (levels, the 3-minute alert) nor age its priority.
    fn restart_wait(&mut self, now: Millis, ix: InqIx, accepted_at: Millis) {
        let aging = self.aging_ms();
        let rec = self.rec_mut(ix);
        rec.score = priority::aged_score(rec.score, rec.since, accepted_at, aging);
        rec.since = now;
        rec.rank = priority::rank(rec.score, now, aging);
        rec.overflowed = false;
    }

    /// Takes an offered or active inquiry back from agent `ax` and routes it
    /// again: an offer keeps its place at the front of its queue (rank kept),
    /// an active chat waits anew (`restart_wait`); `ax` is avoided once.
    pub(super) fn take_back(
        &mut self,
        now: Millis,
        ix: InqIx,
        ax: AgentIx,
        why: EventKind,
        said: Said,
        fx: &mut Vec<Effect>,
    ) {
        let Said { note, reason } = said;
        let was = self.rec(ix).place;
        if let Place::Offered { deadline, .. } = was {
            self.offer_deadlines.remove(&(deadline, ix));
        }
        // Offer or active chat: the desktop (a second one still open, say)
        // stops showing what is no longer the agent's.
        let (inquiry, agent) = (self.rec(ix).inquiry.id.clone(), self.agents[ax as usize].id.clone());
        let withdrawn = match why {
            EventKind::TimedOut => "accept timeout",
            EventKind::Declined => "declined",
            _ => "returned to the queue",
        };
        fx.push(Effect::Withdraw { inquiry, agent, reason: withdrawn });
        self.release(ax, ix);
        if let Place::Active { accepted_at, .. } = was {
            self.restart_wait(now, ix, accepted_at);
        }
        let note = note.map(Box::new);
        // Work given back (OFFLINE, AWAY, BREAK) goes back to the queue it
        // came from: its REQUEUED step names that group, not the one an
        // overflow or a transfer offered it under.
        let group = (why == EventKind::Requeued).then_some(self.rec(ix).home);
        let detail = EventDetail { group, agent: Some(ax), note: note.clone(), text: reason, ..EventDetail::default() };
        self.emit(now, ix, why, Some(detail), fx);
        self.exclude(now, ix, Some(ax));
        // A transfer or escalation given back before anyone took it: whoever
        // handed it on is avoided as long, not offered it straight back.
        if let Some(sender) = self.untaken_handoff_sender(ix).filter(|&s| s != ax) {
            self.rec_mut(ix).handed_on_by = sender;
        }
        let rec = self.rec_mut(ix);
        rec.place = Place::Waiting;
        if let Some(note) = note {
            // The system's note (an agent gone OFFLINE) keeps what earlier
            // notes said, so the next agent has all of it.
            rec.note = Some(Box::new(carried_note(*note, rec.note.as_deref())));
        }
        if rec.next_rule == Some(Rule::TransferTarget) {
            rec.next_rule = None;
        }
        self.route(now, ix, EventKind::Requeued, fx);
    }
}
