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
        // (timed out, declined, taken back, handed on): not a permission
        // problem, and the desktop should drop it.
        let moved_on = match place {
            Place::Waiting => true,
            Place::Offered { .. } | Place::Active { .. } => place.holder().is_some_and(held_by_other),
            Place::Finished { .. } => false,
        };
        if person && moved_on && self.was_offered_to(ix, &actor.id) {
            let now_where = if place == Place::Waiting { "waits for an agent again" } else { "is with another agent" };
            return Err(CoreError::FailedPrecondition(format!(
                "cannot {action} inquiry `{id}`: its offer to `{}` ended (timed out, declined, taken back or handed on) and it {now_where}; remove it from the desktop",
                actor.id
            )));
        }
        if person && place.holder().is_some_and(held_by_other) {
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may not {action} inquiry `{id}`: it is held by another agent",
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
