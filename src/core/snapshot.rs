//! What the router records so it can be rebuilt after a restart: one record
//! per inquiry, one per agent, and one for levels and overrides.
//!
//! Records hold names, not internal indexes, so a router with a changed
//! configuration can still restore them. The core only produces and consumes
//! these values; storing them is the persistence adapter's job.

use super::effect::EventKind;
use super::types::{AgentStatus, Band, DecisionTrace, HandoffNote, Id, Inquiry, InquiryState, Level, Millis, Rule};
use serde::{Deserialize, Serialize};

/// One step of an inquiry's timeline as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineRecord {
    pub kind: EventKind,
    pub at: Millis,
    pub group: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Id>,
    /// Absent in records written before steps kept their score: then the
    /// offer's trace has it, other steps read 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<DecisionTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<HandoffNote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An inquiry and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InquiryRecord {
    pub inquiry: Inquiry,
    pub state: InquiryState,
    /// The agent holding it (OFFERED, ACTIVE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Id>,
    /// The group serving it (OFFERED, ACTIVE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_group: Option<Id>,
    /// The group whose queue it waits in or returns to.
    pub home: Id,
    /// When an OFFERED offer expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    /// When it finished (COMPLETED, DEFLECTED, CANCELLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    pub score: i32,
    pub band: Band,
    pub escalated: bool,
    pub since: Millis,
    pub received_at: Millis,
    pub seq: u64,
    pub rank: i64,
    pub attempts: u32,
    pub overflowed: bool,
    pub via_dedicated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rule: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<HandoffNote>,
    /// DEFLECTED: whether the deflections stream confirmed storing the bot's
    /// copy (written only when not; records from before it was kept count
    /// as stored).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub deflection_stored: bool,
    /// The agent it avoids until `excluded_until` (who declined it or let
    /// the offer time out), so a restart does not offer it straight back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Id>,
    /// Avoided as long: who handed it on, while no one took the handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_on_by: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_until: Option<Millis>,
    #[serde(default)]
    pub timeline: Vec<TimelineRecord>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// An agent's presence and fatigue clock. Its load is derived from the
/// inquiries it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: Id,
    pub status: AgentStatus,
    pub groups: Vec<(String, u8)>,
    pub max_concurrent: u32,
    pub languages: Vec<String>,
    pub skills: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_since: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Millis>,
    pub fatigued: bool,
    pub consecutive_timeouts: u32,
}

/// One group's level and hysteresis state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupLevelRecord {
    pub group: String,
    /// Level in force (with overrides).
    pub level: Level,
    /// Measured level (hysteresis).
    pub measured: Level,
    pub at_most_since: [Option<Millis>; 3],
    pub handle_ms_avg: f64,
}

/// A level override as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub level: Level,
    pub from: Millis,
    pub until: Millis,
}

/// Levels of every group, the router's level and the overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelsRecord {
    pub router_level: Level,
    pub groups: Vec<GroupLevelRecord>,
    pub overrides: Vec<OverrideRecord>,
}

/// One change to record after a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The inquiry's new record.
    Inquiry(Box<InquiryRecord>),
    /// The inquiry was forgotten (finished longer ago than `retain_finished`).
    Forget(Id),
    Agent(AgentRecord),
    Levels(LevelsRecord),
}

/// Everything recorded, as read back at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    pub inquiries: Vec<InquiryRecord>,
    pub agents: Vec<AgentRecord>,
    pub levels: Option<LevelsRecord>,
}
