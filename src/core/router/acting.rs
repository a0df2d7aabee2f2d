//! Who may act on an inquiry: the checks behind accept, decline and
//! complete, with errors that tell a desktop what to do.

use super::record::Place;
use super::Router;
use crate::core::agents::{AgentIx, InqIx};
use crate::core::command::{Actor, Command, Role};
use crate::core::effect::EventKind;
use crate::core::error::CoreError;
use crate::core::record_table::prefetch;

impl Router {
    /// A hint that `command` comes next: starts loading into cache the
    /// inquiry record and the agent it names (for an arrival, the record
    /// slot it will take), which have usually not been touched for minutes,
    /// so that those misses overlap the command in hand instead of stalling
    /// that one. Changes nothing; any command may be passed, and one that
    /// never comes costs only the loads.
    pub fn prepare(&self, command: &Command) {
        let (actor, inquiry) = match command {
            // A new inquiry: the record slot it will most likely take (one
            // freed a while ago).
            Command::Arrive(_) | Command::ArriveReceived { .. } => {
                if let Some(&ix) = self.free_records.last() {
                    self.records.prefetch(ix as usize);
                }
                return;
            }
            Command::Accept { actor, inquiry }
            | Command::Decline { actor, inquiry, .. }
            | Command::Complete { actor, inquiry }
            | Command::Transfer { actor, inquiry, .. }
            | Command::Escalate { actor, inquiry, .. } => (actor, inquiry),
            _ => return,
        };
        if let Some(&ax) = self.agent_ix.get(&*actor.id) {
            prefetch(&self.agents[ax as usize]);
        }
        // Without comparing ids: that would wait for the very record.
        self.inquiry_ix.candidates(inquiry, |ix| self.records.prefetch(ix as usize));
    }

    /// The inquiry `id` as offered to (`active == false`) or active with the
    /// acting agent; permission and state errors otherwise.
    pub(super) fn held_by_actor(
        &self,
        actor: &Actor,
        id: &str,
        active: bool,
        action: &str,
    ) -> Result<(InqIx, AgentIx), CoreError> {
        // An agent the router does not know holds nothing: say so, rather
        // than "held by another agent" or a state it cannot change.
        let person = match actor.role {
            Role::Agent | Role::Lead => Some(self.agent_by_id(&actor.id)?),
            Role::Admin | Role::System => None,
        };
        // The agent is read after the inquiry's record: fetching it now lets
        // the two misses overlap.
        if let Some(ax) = person {
            prefetch(&self.agents[ax as usize]);
        }
        let ix = self.inquiry_by_id(id)?;
        let place = self.rec(ix).place;
        // Another agent's inquiry is refused as such, whatever its state, and
        // without telling that state.
        let held_by_other = place.holder().is_some_and(|h| person.is_some_and(|me| h != me));
        // A desktop acting on an offer of its own that has ended meanwhile
        // (timed out, declined, taken back, handed on) is told to drop it:
        // if it waits again, that is a state to tell; if another agent has
        // it, still PERMISSION_DENIED (SPEC), with the hint. Only these two
        // cases read the timeline.
        let ended = || person.is_some_and(|me| self.was_offered_to(ix, me));
        if place == Place::Waiting && ended() {
            return Err(CoreError::FailedPrecondition(format!(
                "cannot {action} inquiry `{id}`: its offer to `{}` ended (timed out, declined or taken back) and it waits for an agent again; remove it from the desktop",
                actor.id
            )));
        }
        if held_by_other {
            let hint = if ended() { "; its offer to you ended: remove it from the desktop" } else { "" };
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may not {action} inquiry `{id}`: it is held by another agent{hint}",
                actor.id
            )));
        }
        let holder = match (place, active) {
            (Place::Offered { agent, .. }, false) | (Place::Active { agent, .. }, true) => agent,
            _ => {
                let wanted = if active { "ACTIVE" } else { "OFFERED" };
                return Err(CoreError::FailedPrecondition(format!(
                    "cannot {action} inquiry `{id}`: it is {}, and only {wanted} inquiries can be; fetch its state with GetInquiry",
                    place.state().name()
                )));
            }
        };
        let may = match (actor.role, person) {
            (Role::System, _) => true,
            (Role::Admin, _) => active,
            (_, me) => me == Some(holder),
        };
        if !may {
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may not {action} inquiry `{id}`: it is held by another agent",
                actor.id
            )));
        }
        Ok((ix, holder))
    }

    /// Whether inquiry `ix` was ever offered to agent `ax`.
    fn was_offered_to(&self, ix: InqIx, ax: AgentIx) -> bool {
        let name = self.agents[ax as usize].name;
        self.rec(ix).timeline.iter().any(|step| step.kind == EventKind::Offered && step.agent == name)
    }
}
