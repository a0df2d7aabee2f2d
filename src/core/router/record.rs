//! One inquiry's routing state and timeline.

use crate::core::agents::{AgentIx, GroupIx, NameIx};
use crate::core::effect::EventKind;
use crate::core::matching::Need;
use crate::core::queue::Slot;
use crate::core::types::{Band, DecisionTrace, HandoffNote, Id, Inquiry, InquiryState, Millis, Rule};

/// Where an inquiry is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Waiting,
    Offered { agent: AgentIx, group: GroupIx, deadline: Millis },
    Active { agent: AgentIx, group: GroupIx, accepted_at: Millis },
    Finished { state: InquiryState, at: Millis },
}

impl Place {
    /// The state name of this place.
    pub fn state(self) -> InquiryState {
        match self {
            Place::Waiting => InquiryState::Waiting,
            Place::Offered { .. } => InquiryState::Offered,
            Place::Active { .. } => InquiryState::Active,
            Place::Finished { state, .. } => state,
        }
    }

    /// The agent holding the inquiry, if offered or active.
    pub fn holder(self) -> Option<AgentIx> {
        match self {
            Place::Offered { agent, .. } | Place::Active { agent, .. } => Some(agent),
            _ => None,
        }
    }
}

/// One step of an inquiry's life as `GetInquiry` shows it (see [`Step`] for
/// how a record keeps it).
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    pub kind: EventKind,
    pub at: Millis,
    pub group: Id,
    pub agent: Option<Id>,
    pub score: i32,
    pub trace: Option<Box<DecisionTrace>>,
    pub note: Option<Box<HandoffNote>>,
    pub detail: Option<Box<str>>,
}

/// No agent, where an agent index is kept without an `Option`.
pub const NO_AGENT: AgentIx = AgentIx::MAX;

/// No agent: the `agent` of a step that has none.
pub const NO_NAME: NameIx = NameIx::MAX;

/// One step as a record keeps it: every finished inquiry keeps its steps for
/// `retain_finished` (24 h by default), so names are 4-byte handles rather
/// than ids, and what few steps carry besides a trace sits behind one box
/// (40 bytes a step instead of 96).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at: Millis,
    pub trace: Option<Box<DecisionTrace>>,
    pub rare: Option<Box<StepRare>>,
    pub group: NameIx,
    /// `NO_NAME` when no agent took part.
    pub agent: NameIx,
    /// The inquiry's score at `at`, aging included (as its event said).
    pub score: i32,
    pub kind: EventKind,
}

/// The parts of a step only handoffs and a few events have.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StepRare {
    pub note: Option<HandoffNote>,
    pub detail: Option<Box<str>>,
}

/// The router's record of one inquiry.
#[derive(Clone, Debug)]
pub struct Record {
    pub inquiry: Inquiry,
    pub place: Place,
    /// The group whose queue it waits in (or would return to).
    pub home: GroupIx,
    pub need: Need,
    pub score: i32,
    pub band: Band,
    pub escalated: bool,
    /// Start of the current wait (receipt; a transfer starts a new wait).
    pub since: Millis,
    pub received_at: Millis,
    /// Arrival order, the FIFO tie-break; fixed while waiting.
    pub seq: u64,
    /// Queue rank fixed at queue entry (see `priority::rank`).
    pub rank: i64,
    pub attempts: u32,
    /// Waited `overflow_after`: overflow groups may serve it.
    pub overflowed: bool,
    /// Routed to the dedicated fan/VIP group by that rule.
    pub via_dedicated: bool,
    /// Rule to report on the next offer (transfer, escalation).
    pub next_rule: Option<Rule>,
    /// Agent who just declined or let the offer time out.
    pub excluded: Option<AgentIx>,
    /// When the exclusion ends.
    pub excluded_until: Millis,
    /// Avoided until the same time: the agent who handed it on, while the
    /// transfer is not yet taken (see `Router::exclude`); `NO_AGENT` for none
    /// (4 bytes rather than an `Option`'s 8: every record pays for it).
    pub handed_on_by: AgentIx,
    pub note: Option<Box<HandoffNote>>,
    /// Every step but a leading QUEUED entry while `queued_untold`.
    pub timeline: Vec<Step>,
    /// The timeline starts with QUEUED at `received_at` in `home`, kept out
    /// of `timeline` until a second step comes: most waiting inquiries have
    /// no other, and storing it would cost each a heap block of its own.
    pub queued_untold: bool,
    /// Deflected, and the deflections stream has not confirmed storing the
    /// bot's copy yet: a restart publishes it again, however long ago.
    pub deflection_unstored: bool,
    /// Changed since the last `take_changes`.
    pub dirty: bool,
}

impl Record {
    /// Whether this inquiry avoids agent `ax` now.
    pub fn avoids(&self, ax: AgentIx) -> bool {
        self.excluded == Some(ax) || self.handed_on_by == ax
    }

    /// When the agent now serving it accepted it.
    pub fn accepted_at(&self) -> Option<Millis> {
        match self.place {
            Place::Active { accepted_at, .. } => Some(accepted_at),
            _ => None,
        }
    }

    /// Its position in its home queue while waiting.
    pub fn slot(&self) -> Slot {
        let avoids = self.excluded.is_some() || self.handed_on_by != NO_AGENT;
        Slot { need: self.need, band: self.band, key: (-self.rank, self.seq), since: self.since, avoids }
    }
}

#[cfg(test)]
#[test]
fn a_timeline_step_stays_small() {
    // Four to six steps per finished inquiry, kept for 24 h.
    assert!(std::mem::size_of::<Step>() <= 40, "Step grew to {} bytes", std::mem::size_of::<Step>());
}

#[cfg(test)]
#[test]
fn a_record_stays_within_its_memory_budget() {
    // Most of a waiting inquiry's memory is its record; the benchmark's
    // budget of 512 bytes per waiting inquiry leaves it 336. (Short ids live
    // inside it: that costs 40 bytes here and saves two heap blocks.)
    assert!(std::mem::size_of::<Record>() <= 336, "Record grew to {} bytes", std::mem::size_of::<Record>());
}
