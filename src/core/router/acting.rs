//! Who may act on an inquiry: the checks behind accept, decline and
//! complete, with errors that tell a desktop what to do.

use super::record::Place;
use super::Router;
use crate::core::agents::{AgentIx, InqIx};
use crate::core::command::{Actor, Role};
use crate::core::effect::EventKind;
use crate::core::error::CoreError;

impl Router {
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
        if matches!(actor.role, Role::Agent | Role::Lead) {
            self.agent_by_id(&actor.id)?;
        }
        let ix = self.inquiry_by_id(id)?;
        let place = self.rec(ix).place;
        // Another agent's inquiry is refused as such, whatever its state, and
        // without telling that state.
        let held_by_other = |h: AgentIx| *self.agents[h as usize].id != *actor.id;
        let person = matches!(actor.role, Role::Agent | Role::Lead);
        // A desktop acting on an offer of its own that has ended meanwhile
        // (timed out, declined, taken back, handed on) is told to drop it:
        // if it waits again, that is a state to tell; if another agent has
        // it, still PERMISSION_DENIED (SPEC), with the hint.
        let ended = person && self.was_offered_to(ix, &actor.id);
        if ended && place == Place::Waiting {
            return Err(CoreError::FailedPrecondition(format!(
                "cannot {action} inquiry `{id}`: its offer to `{}` ended (timed out, declined or taken back) and it waits for an agent again; remove it from the desktop",
                actor.id
            )));
        }
        if person && place.holder().is_some_and(held_by_other) {
            let hint = if ended { "; its offer to you ended: remove it from the desktop" } else { "" };
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
        let holder_id = &self.agents[holder as usize].id;
        let may = match actor.role {
            Role::System => true,
            Role::Admin => active,
            Role::Agent | Role::Lead => **holder_id == *actor.id,
        };
        if !may {
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may not {action} inquiry `{id}`: it is held by another agent",
                actor.id
            )));
        }
        Ok((ix, holder))
    }

    /// Whether inquiry `ix` was ever offered to agent `agent`.
    fn was_offered_to(&self, ix: InqIx, agent: &str) -> bool {
        let Some(&ax) = self.agent_ix.get(agent) else { return false };
        let name = self.agents[ax as usize].name;
        self.rec(ix).timeline.iter().any(|step| step.kind == EventKind::Offered && step.agent == name)
    }
}
