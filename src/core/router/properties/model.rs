//! The oracle: a tiny model of what the effects say happened.
//!
//! It knows nothing of routing. It learns where each inquiry is, who holds it
//! and each agent's status and capacity only from the commands that succeeded
//! and the effects the router returned, in order, and complains at the first
//! effect that does not make sense (an offer to a full or unavailable agent,
//! an inquiry offered while someone holds it, an accept of work not offered).

use crate::core::command::{Command, Presence};
use crate::core::effect::{Effect, EventKind, Scope};
use crate::core::settings::RoutingSettings;
use crate::core::types::{AgentStatus, Id, InquiryState, Level, Millis};
use std::collections::BTreeMap;

/// Where the effects say an inquiry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Arrived in this step; an effect must still say where it went.
    New,
    Waiting,
    Offered(Id),
    Active(Id),
    Finished(InquiryState, Millis),
}

impl Place {
    /// The state the router should report.
    pub fn state(&self) -> Option<InquiryState> {
        match self {
            Place::New => None,
            Place::Waiting => Some(InquiryState::Waiting),
            Place::Offered(_) => Some(InquiryState::Offered),
            Place::Active(_) => Some(InquiryState::Active),
            Place::Finished(state, _) => Some(*state),
        }
    }

    /// The agent holding the inquiry, if offered or active.
    pub fn holder(&self) -> Option<&Id> {
        match self {
            Place::Offered(a) | Place::Active(a) => Some(a),
            _ => None,
        }
    }
}

/// What the model knows of one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub status: AgentStatus,
    pub groups: Vec<String>,
    pub max_concurrent: u32,
    /// Load went above capacity because capacity dropped (never by an offer).
    pub overfull: bool,
}

/// The model. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Extra chats per agent at each level.
    extra: [u32; 3],
    default_max: u32,
    retain_ms: u64,
    levels: BTreeMap<String, Level>,
    pub inquiries: BTreeMap<Id, Place>,
    pub agents: BTreeMap<Id, Agent>,
    /// Inquiry -> the agent that just gave it back and must not get it again
    /// until it was offered elsewhere or handed off ("avoid once").
    pub excluded: BTreeMap<Id, Id>,
    /// Inquiry -> the agent who transferred or escalated it, until accepted.
    handed_on: BTreeMap<Id, Id>,
    /// Inquiry -> that agent, avoided as long as `excluded` once the
    /// handoff was given back before anyone took it.
    pub excluded_sender: BTreeMap<Id, Id>,
    /// The inquiry and agent of the latest COMPLETED event: an admin's
    /// completion withdraws the chat from that agent's desktops after it.
    completed: Option<(Id, Id)>,
}

impl Model {
    /// An empty model for a router with settings `s`.
    pub fn new(s: &RoutingSettings) -> Model {
        let extra = Level::ALL.map(|l| s.levels.playbook(l).extra_concurrent);
        Model {
            extra,
            default_max: s.agents.max_concurrent,
            retain_ms: s.agents.retain_finished.as_millis() as u64,
            levels: BTreeMap::new(),
            inquiries: BTreeMap::new(),
            agents: BTreeMap::new(),
            excluded: BTreeMap::new(),
            handed_on: BTreeMap::new(),
            excluded_sender: BTreeMap::new(),
            completed: None,
        }
    }

    /// Inquiries offered to or active with `agent`.
    pub fn load(&self, agent: &str) -> u32 {
        self.inquiries.values().filter(|p| p.holder().is_some_and(|h| **h == *agent)).count() as u32
    }

    /// `max_concurrent` plus the extra chats of the highest level among the
    /// agent's groups.
    pub fn capacity(&self, agent: &str) -> u32 {
        let Some(a) = self.agents.get(agent) else { return 0 };
        let level = a.groups.iter().filter_map(|g| self.levels.get(g)).max().copied().unwrap_or_default();
        a.max_concurrent + self.extra[level.index()]
    }

    /// Ids of the inquiries whose place passes `keep`, in id order.
    pub fn ids_where(&self, keep: impl Fn(&Place) -> bool) -> Vec<Id> {
        self.inquiries.iter().filter(|(_, p)| keep(p)).map(|(id, _)| id.clone()).collect()
    }

    /// What a command that succeeded says by itself, before its effects.
    pub fn command(&mut self, cmd: &Command) {
        match cmd {
            Command::Arrive(inquiry) | Command::ArriveReceived { inquiry, .. } => {
                self.inquiries.insert(inquiry.id.clone(), Place::New);
            }
            Command::SetPresence { presence, .. } => self.presence(presence),
            _ => {}
        }
    }

    /// A presence: groups and chats as given; the status only through the
    /// `AgentStatusChanged` effect that follows when it changes (a new agent
    /// starts OFFLINE).
    fn presence(&mut self, p: &Presence) {
        let status = self.agents.get(&p.agent).map_or(AgentStatus::Offline, |a| a.status);
        let agent = Agent {
            status,
            groups: p.groups.iter().map(|(g, _)| g.clone()).collect(),
            max_concurrent: p.max_concurrent.unwrap_or(self.default_max),
            overfull: false,
        };
        self.agents.insert(p.agent.clone(), agent);
        self.capacity_changed();
    }

    /// Marks agents whose load a capacity drop left above capacity.
    fn capacity_changed(&mut self) {
        let over: Vec<Id> = self.agents.keys().filter(|a| self.load(a) > self.capacity(a)).cloned().collect();
        for a in over {
            self.agents.get_mut(&a).expect("known agent").overfull = true;
        }
    }

    /// Takes in one effect; describes the first thing about it that is wrong.
    pub fn effect(&mut self, now: Millis, fx: &Effect) -> Result<(), String> {
        match fx {
            Effect::Offer(o) => {
                let status = self.agents.get(&o.agent).map(|a| a.status);
                if status != Some(AgentStatus::Available) {
                    return Err(format!("offer of {} to {} who is {status:?}", o.inquiry, o.agent));
                }
                let (load, capacity) = (self.load(&o.agent), self.capacity(&o.agent));
                if load >= capacity {
                    return Err(format!("offer of {} to {} at load {load} of {capacity}", o.inquiry, o.agent));
                }
                let place = self.place(&o.inquiry)?;
                if !matches!(place, Place::New | Place::Waiting) {
                    return Err(format!("offer of {} to {} while it is {place:?}", o.inquiry, o.agent));
                }
                self.excluded.remove(&o.inquiry);
                self.excluded_sender.remove(&o.inquiry);
                self.inquiries.insert(o.inquiry.clone(), Place::Offered(o.agent.clone()));
            }
            Effect::OfferRenewed { inquiry, agent, .. } => {
                let place = self.place(inquiry)?;
                if place != Place::Offered(agent.clone()) {
                    return Err(format!("renewed offer of {inquiry} to {agent} while it is {place:?}"));
                }
            }
            Effect::Withdraw { inquiry, agent, reason: "completed by an admin" } => {
                if self.completed.as_ref() != Some(&(inquiry.clone(), agent.clone())) {
                    return Err(format!(
                        "{inquiry} withdrawn from {agent} as completed by an admin, not just completed"
                    ));
                }
            }
            Effect::Withdraw { inquiry, agent, .. } => {
                let place = self.place(inquiry)?;
                if place.holder() != Some(agent) {
                    return Err(format!("withdraw of {inquiry} from {agent} while it is {place:?}"));
                }
                self.inquiries.insert(inquiry.clone(), Place::Waiting);
            }
            Effect::Event(e) => self.event(now, e.kind, &e.inquiry, e.agent.as_ref())?,
            Effect::Deflect { inquiry, .. } => {
                let place = self.place(inquiry)?;
                if place != Place::New {
                    return Err(format!("deflect of {inquiry} while it is {place:?}"));
                }
                self.inquiries.insert(inquiry.clone(), Place::Finished(InquiryState::Deflected, now));
            }
            Effect::DeflectionResent { inquiry, .. } => return Err(format!("{inquiry} resent without a restart")),
            Effect::LevelChanged(change) => {
                if let Scope::Group(g) = &change.scope {
                    self.levels.insert(g.to_string(), change.to);
                    self.capacity_changed();
                }
            }
            Effect::AgentStatusChanged { agent, status, .. } => {
                let a = self.agents.get_mut(agent).ok_or_else(|| format!("status change of unknown {agent}"))?;
                if a.status == *status {
                    return Err(format!("status change of {agent} to {status:?}, which it already had"));
                }
                a.status = *status;
            }
        }
        Ok(())
    }

    fn place(&self, inquiry: &Id) -> Result<Place, String> {
        self.inquiries.get(inquiry).cloned().ok_or_else(|| format!("effect on unknown inquiry {inquiry}"))
    }

    fn event(&mut self, now: Millis, kind: EventKind, id: &Id, agent: Option<&Id>) -> Result<(), String> {
        let place = self.place(id)?;
        if place.holder().is_some() && place.holder() != agent {
            return Err(format!("{kind:?} of {id} names agent {agent:?} but it is {place:?}"));
        }
        if kind == EventKind::Completed {
            self.completed = agent.map(|a| (id.clone(), a.clone()));
        }
        let next = match kind {
            EventKind::Accepted if matches!(place, Place::Offered(_)) => Place::Active(agent.cloned().unwrap()),
            EventKind::Completed if matches!(place, Place::Active(_)) => Place::Finished(InquiryState::Completed, now),
            EventKind::Cancelled if !matches!(place, Place::Finished(..)) => {
                Place::Finished(InquiryState::Cancelled, now)
            }
            // The customer left while with the bot; it finished when deflected.
            EventKind::Cancelled => match place {
                Place::Finished(InquiryState::Deflected, at) => Place::Finished(InquiryState::Cancelled, at),
                _ => return Err(format!("{kind:?} event of {id} while it is {place:?}")),
            },
            EventKind::Queued
            | EventKind::Requeued
            | EventKind::TimedOut
            | EventKind::Declined
            | EventKind::Transferred
            | EventKind::Escalated
                if !matches!(place, Place::Finished(..)) =>
            {
                Place::Waiting
            }
            _ => return Err(format!("{kind:?} event of {id} while it is {place:?}")),
        };
        // Whoever gave it back avoids it until it is offered elsewhere; so
        // does whoever handed it on, if the handoff was not yet taken.
        match (kind, agent) {
            (EventKind::Queued | EventKind::Requeued, None) | (EventKind::Accepted, _) => {}
            (_, Some(a)) => {
                self.excluded.insert(id.clone(), a.clone());
                self.excluded_sender.remove(id);
                let given_back = matches!(kind, EventKind::TimedOut | EventKind::Declined | EventKind::Requeued);
                if let Some(sender) = self.handed_on.get(id).filter(|s| given_back && *s != a) {
                    self.excluded_sender.insert(id.clone(), sender.clone());
                }
            }
            (_, None) => {
                self.excluded.remove(id);
                self.excluded_sender.remove(id);
            }
        }
        match kind {
            EventKind::Transferred | EventKind::Escalated => match agent {
                Some(a) => self.handed_on.insert(id.clone(), a.clone()),
                None => self.handed_on.remove(id),
            },
            EventKind::Accepted => self.handed_on.remove(id),
            _ => None,
        };
        self.inquiries.insert(id.clone(), next);
        Ok(())
    }

    /// After a tick: finished inquiries older than `retain_finished` are forgotten.
    pub fn forget(&mut self, now: Millis) {
        let retain = self.retain_ms;
        let gone = self.ids_where(|p| matches!(p, Place::Finished(_, at) if at + retain <= now));
        for id in gone {
            self.inquiries.remove(&id);
            self.excluded.remove(&id);
            self.handed_on.remove(&id);
            self.excluded_sender.remove(&id);
        }
    }

    /// Clears `overfull` where load is back within capacity; describes an
    /// agent above capacity for any other reason.
    pub fn settle(&mut self) -> Result<(), String> {
        let ids: Vec<Id> = self.agents.keys().cloned().collect();
        for a in ids {
            let (load, capacity) = (self.load(&a), self.capacity(&a));
            let agent = self.agents.get_mut(&a).expect("known agent");
            if load <= capacity {
                agent.overfull = false;
            } else if !agent.overfull {
                return Err(format!("agent {a} holds {load} of {capacity} without a capacity drop"));
            }
        }
        Ok(())
    }
}
