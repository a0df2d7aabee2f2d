//! What the router asks adapters to carry out.

use super::types::{AgentStatus, DecisionTrace, HandoffNote, Id, Level, Millis};

/// Lifecycle steps published on `events.<shop_id>`. An `Offer` effect stands
/// for OFFERED and a `Deflect` effect for DEFLECTED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    Queued,
    Offered,
    Accepted,
    TimedOut,
    Requeued,
    Transferred,
    Escalated,
    Deflected,
    Completed,
    Cancelled,
    Declined,
}

impl EventKind {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Queued => "QUEUED",
            EventKind::Offered => "OFFERED",
            EventKind::Accepted => "ACCEPTED",
            EventKind::TimedOut => "TIMED_OUT",
            EventKind::Requeued => "REQUEUED",
            EventKind::Transferred => "TRANSFERRED",
            EventKind::Escalated => "ESCALATED",
            EventKind::Deflected => "DEFLECTED",
            EventKind::Completed => "COMPLETED",
            EventKind::Cancelled => "CANCELLED",
            EventKind::Declined => "DECLINED",
        }
    }
}

/// One lifecycle step of one inquiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub inquiry: Id,
    pub shop: Id,
    pub group: Id,
    /// For TRANSFERRED and ESCALATED: the group it came from.
    pub from_group: Option<Id>,
    pub agent: Option<Id>,
    pub at: Millis,
    /// Score including aging at `at`.
    pub score: i32,
    /// For an inquiry's first ACCEPTED: milliseconds from receipt to acceptance.
    pub waited_ms: Option<u64>,
    /// With `waited_ms`: the group whose queue it waited in (an overflow
    /// group's agent may have taken it).
    pub waited_in: Option<Id>,
    /// For COMPLETED: milliseconds from acceptance to completion.
    pub handled_ms: Option<u64>,
    pub note: Option<Box<HandoffNote>>,
    pub detail: Option<String>,
}

/// An offer of one inquiry to one agent (publish on `assignments.<agent>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    pub inquiry: Id,
    pub shop: Id,
    pub agent: Id,
    pub group: Id,
    pub at: Millis,
    pub expires_at: Millis,
    pub attempt: u32,
    pub trace: DecisionTrace,
    pub note: Option<Box<HandoffNote>>,
}

/// Scope of a load level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Router,
    Group(Id),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Router => f.write_str("router"),
            Scope::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// A level moved (publish on `levels`).
#[derive(Clone, Debug, PartialEq)]
pub struct LevelChange {
    pub scope: Scope,
    pub from: Level,
    pub to: Level,
    pub reason: String,
    pub at: Millis,
}

/// Everything the core asks the outside world to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Offer(Offer),
    /// An open offer's deadline moved (timers were paused while decisions
    /// could not be recorded): tell the desktop again, with `expires_at`.
    OfferRenewed {
        inquiry: Id,
        agent: Id,
        expires_at: Millis,
    },
    /// An earlier offer is void (timeout, cancellation, agent gone).
    Withdraw {
        inquiry: Id,
        agent: Id,
        reason: &'static str,
    },
    Event(Event),
    /// Hand the inquiry to the self-service bot.
    Deflect {
        inquiry: Id,
        shop: Id,
        group: Id,
        at: Millis,
        /// The inquiry's score, as its DEFLECTED step keeps it.
        score: i32,
    },
    /// A deflection recorded in the last [`DEFLECTION_RESEND`] before a
    /// restart, published again: the router may have stopped before it went
    /// out. The deflections stream drops it as a duplicate if it did.
    DeflectionResent {
        inquiry: Id,
        shop: Id,
    },
    LevelChanged(LevelChange),
    /// The router changed an agent's status (timeouts, lost heartbeat).
    AgentStatusChanged {
        agent: Id,
        status: AgentStatus,
        reason: &'static str,
    },
}

/// How far back a restart publishes deflections again: JetStream's duplicate
/// window on the deflections stream (2 min), within which a second copy
/// with the same `Nats-Msg-Id` is dropped.
pub const DEFLECTION_RESEND: Millis = 120_000;
