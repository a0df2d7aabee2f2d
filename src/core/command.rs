//! What adapters ask of the router. Every command is applied at a `now` the
//! caller passes in.

use super::types::{AgentStatus, HandoffNote, Id, Inquiry, Level, Millis};

/// Permission level of whoever issues a command (SPEC section 6, "Auth").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    Lead,
    Admin,
    /// The router itself (presence loss, recovery); allowed everything.
    System,
}

/// Who issues a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: Id,
    pub role: Role,
}

impl Actor {
    /// An actor with role `Agent`.
    pub fn agent(id: &str) -> Actor {
        Actor { id: id.into(), role: Role::Agent }
    }

    /// The router acting on its own behalf.
    pub fn system() -> Actor {
        Actor { id: "system".into(), role: Role::System }
    }
}

/// An agent's presence as set from the desktop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub agent: Id,
    pub status: AgentStatus,
    /// Group id and proficiency 1-5.
    pub groups: Vec<(String, u8)>,
    /// `None` takes the configured default.
    pub max_concurrent: Option<u32>,
    /// Empty means the default language (`zh`).
    pub languages: Vec<String>,
    pub skills: Vec<String>,
}

/// Where a transfer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTarget {
    Agent(Id),
    Group(String),
}

/// Every input the core reacts to.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// An inquiry received now.
    Arrive(Box<Inquiry>),
    /// An inquiry the service received at `received_at` (its broker stored
    /// it then; the router was away or behind): its wait, aging included,
    /// counts from then. A time after the command's is taken as now.
    ArriveReceived {
        inquiry: Box<Inquiry>,
        received_at: Millis,
    },
    /// The customer left. `shop`, when known (the subject's shop), must be
    /// the inquiry's: one shop cannot cancel another's customers.
    Cancel {
        inquiry: Id,
        shop: Option<Id>,
    },
    SetPresence {
        actor: Actor,
        presence: Presence,
    },
    Accept {
        actor: Actor,
        inquiry: Id,
    },
    Decline {
        actor: Actor,
        inquiry: Id,
        /// Why, in the agent's words (plain text, at most
        /// `MAX_DECLINE_REASON` bytes): on the DECLINED step and event.
        reason: Option<Box<str>>,
    },
    Complete {
        actor: Actor,
        inquiry: Id,
    },
    Transfer {
        actor: Actor,
        inquiry: Id,
        target: TransferTarget,
        note: HandoffNote,
    },
    Escalate {
        actor: Actor,
        inquiry: Id,
        note: HandoffNote,
    },
    /// Pin a minimum level for a window; `group: None` is router-wide.
    SetLevelOverride {
        actor: Actor,
        group: Option<String>,
        level: Level,
        from: Millis,
        until: Millis,
    },
    ClearLevelOverride {
        actor: Actor,
        group: Option<String>,
    },
    /// A desktop opened its offer stream (the heartbeat).
    DesktopConnected {
        agent: Id,
    },
    /// A desktop's offer stream ended; the grace period starts.
    DesktopDisconnected {
        agent: Id,
    },
    /// The deflections stream stored the bot's copy of deflected inquiry
    /// `inquiry`: a restart need not publish it again.
    DeflectionStored {
        inquiry: Id,
    },
    /// Drives the timers: offer timeouts, overflow, levels, heartbeat grace.
    Tick,
    /// A `Tick` while commands sent from `since` on still wait to be
    /// applied: offers and desktop graces due after `since` stay open, as an
    /// Accept or a reconnect sent in time may be among those commands.
    TickQueued {
        since: Millis,
    },
    /// Every open offer's accept deadline moves `by` milliseconds later: for
    /// that long the adapters could not deliver offers or hear answers (the
    /// decisions could not be recorded), and an agent must not time out on
    /// an offer nobody showed them.
    ExtendOffers {
        by: Millis,
    },
}
