//! The small world the property tests play in, and random sequences of
//! abstract operations over it.
//!
//! An operation names agents and inquiries by number; [`command`] turns it
//! into a concrete [`Command`] when it is applied. Operations that act on held
//! work (accept, decline, complete, transfer, escalate) usually pick among
//! what the model says is held right then, so that many of them succeed.

use super::model::{Model, Place};
use crate::core::command::{Actor, Command, Presence, Role, TransferTarget};
use crate::core::settings::{DedicatedSettings, EscalationSettings, FatigueSettings, GroupSettings, RoutingSettings};
use crate::core::testkit::inquiry;
use crate::core::types::{AgentStatus, Category, HandoffNote, Id, Level, Millis};
use proptest::collection::vec;
use proptest::prelude::*;
use std::time::Duration;

/// Group ids; index 4 (`GROUPS.len()`) stands for an unknown group.
pub const GROUPS: [&str; 4] = ["sales", "service", "fans", "sup"];
/// Agent ids; index 6 stands for an unknown agent.
pub const AGENTS: [&str; 6] = ["a0", "a1", "a2", "a3", "a4", "a5"];
/// How many inquiry ids (`q0`..) are in play.
pub const INQUIRIES: u8 = 40;
/// How many customers the inquiries come from (for the sticky rule).
pub const CUSTOMERS: u8 = 8;

/// Two groups overflowing into each other, a dedicated `fans` group that
/// overflows into `sales`, and the supervisors. The thresholds and timers are
/// short so that levels, cooldowns, fatigue and forgetting happen within one
/// sequence.
pub fn settings() -> RoutingSettings {
    use Category::*;
    let group = |id: &str, categories: &[Category], overflow: &[&str]| GroupSettings {
        id: id.to_string(),
        categories: categories.to_vec(),
        overflow: overflow.iter().map(|s| s.to_string()).collect(),
        baseline_per_min: 3.0,
        ..GroupSettings::default()
    };
    let mut s = RoutingSettings {
        groups: vec![
            group("sales", &[PreSales, Other, Order, Logistics], &["service"]),
            group("service", &[AfterSalesRefund, AfterSalesExchange, AfterSalesRepair, Complaint], &["sales"]),
            group("fans", &[], &["sales"]),
            group("sup", &[], &[]),
        ],
        dedicated: DedicatedSettings { group: "fans".into(), fans: true, min_vip_tier: 3, short_queue: 2 },
        escalation: EscalationSettings { group: "sup".into() },
        fatigue: FatigueSettings { max_continuous: Duration::from_secs(600), min_break: Duration::from_secs(180) },
        ..RoutingSettings::default()
    };
    s.levels.cooldown = Duration::from_secs(120);
    s.levels.peak.queue_length = 4;
    s.levels.surge.queue_length = 8;
    s.agents.retain_finished = Duration::from_secs(900);
    s.agents.sticky_window = Duration::from_secs(1200);
    s
}

/// A new inquiry.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub id: u8,
    pub customer: u8,
    pub category: Category,
    pub vip_tier: u8,
    pub fan: bool,
    pub english: bool,
    /// Bit 0: skill `a`, bit 1: skill `b`.
    pub skills: u8,
    pub bot_attempted: bool,
    /// Seconds the stream held it before the router got it (0: received now).
    pub held_secs: u8,
}

/// Who sets a presence: the agent itself, another agent (refused) or an admin.
#[derive(Clone, Debug)]
pub enum SetBy {
    Itself,
    Agent(u8),
    Admin,
}

/// A presence update.
#[derive(Clone, Debug)]
pub struct PresenceOp {
    pub agent: u8,
    pub status: AgentStatus,
    /// Group index (4 is unknown) and proficiency (0 is invalid).
    pub groups: Vec<(u8, u8)>,
    pub max_concurrent: Option<u32>,
    /// 0: zh, 1: en, 2: zh and en, 3: none (the default, zh).
    pub languages: u8,
    pub skills: u8,
    pub by: SetBy,
}

/// Who acts on an inquiry.
#[derive(Clone, Debug)]
pub enum Who {
    /// The agent holding it (or agent 0 when nobody does).
    Holder,
    Agent(u8),
    Lead(u8),
    Admin,
    System,
}

/// Which inquiry an operation acts on.
#[derive(Clone, Debug)]
pub struct Pick {
    /// Choose among inquiries in the state the operation needs, when any.
    pub held: bool,
    pub index: u8,
    pub who: Who,
}

/// Where a transfer goes.
#[derive(Clone, Debug)]
pub enum Target {
    Group(u8),
    Agent(u8),
}

/// One step of a sequence.
#[derive(Clone, Debug)]
pub enum Op {
    Arrive(Arrival),
    Cancel(u8),
    Presence(PresenceOp),
    Accept(Pick),
    Decline(Pick),
    Complete(Pick),
    Transfer(Pick, Target),
    Escalate(Pick),
    Override {
        group: Option<u8>,
        level: Level,
        delay_s: u32,
        len_s: u32,
        admin: bool,
    },
    ClearOverride {
        group: Option<u8>,
        admin: bool,
    },
    Connect(u8),
    Disconnect(u8),
    /// Advance time by this many milliseconds, then tick.
    Tick(u64),
    /// Advance time by the first, then tick with commands sent the second
    /// many milliseconds ago still queued (`Command::TickQueued`).
    TickQueued(u64, u64),
    /// Open offers get this many milliseconds more (after an outage).
    ExtendOffers(u64),
}

fn category() -> impl Strategy<Value = Category> {
    proptest::sample::select(Category::ALL.to_vec())
}

fn level() -> impl Strategy<Value = Level> {
    proptest::sample::select(Level::ALL.to_vec())
}

fn status() -> impl Strategy<Value = AgentStatus> {
    prop_oneof![
        7 => Just(AgentStatus::Available),
        1 => Just(AgentStatus::Away),
        1 => Just(AgentStatus::Break),
        1 => Just(AgentStatus::Offline),
    ]
}

fn skills() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 1 => 1u8..4]
}

fn arrival() -> impl Strategy<Value = Arrival> {
    let held = prop_oneof![3 => Just(0u8), 1 => 1u8..=200];
    (
        (0..INQUIRIES, 0..CUSTOMERS, category(), 0u8..=5, any::<bool>()),
        (prop::bool::weighted(0.3), skills(), any::<bool>(), held),
    )
        .prop_map(|((id, customer, category, vip_tier, fan), (english, skills, bot_attempted, held_secs))| {
            Arrival { id, customer, category, vip_tier, fan, english, skills, bot_attempted, held_secs }
        })
}

fn presence() -> impl Strategy<Value = PresenceOp> {
    let group = prop_oneof![20 => 0u8..4, 1 => Just(4u8)];
    let proficiency = prop_oneof![30 => 1u8..=5, 1 => Just(0u8)];
    let max = prop_oneof![10 => (1u32..=3).prop_map(Some), 1 => Just(None), 1 => Just(Some(0))];
    let by = prop_oneof![10 => Just(SetBy::Itself), 1 => (0u8..6).prop_map(SetBy::Agent), 1 => Just(SetBy::Admin)];
    (0u8..6, status(), vec((group, proficiency), 0..=3), max, 0u8..4, 0u8..4, by).prop_map(
        |(agent, status, groups, max_concurrent, languages, skills, by)| PresenceOp {
            agent,
            status,
            groups,
            max_concurrent,
            languages,
            skills,
            by,
        },
    )
}

fn pick() -> impl Strategy<Value = Pick> {
    let who = prop_oneof![
        12 => Just(Who::Holder),
        3 => (0u8..6).prop_map(Who::Agent),
        1 => (0u8..6).prop_map(Who::Lead),
        1 => Just(Who::Admin),
        1 => Just(Who::System),
    ];
    (prop::bool::weighted(0.85), any::<u8>(), who).prop_map(|(held, index, who)| Pick { held, index, who })
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![3 => (0u8..=4).prop_map(Target::Group), 2 => (0u8..=6).prop_map(Target::Agent)]
}

fn tick() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..40_000, 1 => 60_000u64..900_000]
}

fn op() -> impl Strategy<Value = Op> {
    let group = proptest::option::of(0u8..=4);
    prop_oneof![
        22 => arrival().prop_map(Op::Arrive),
        4 => (0..INQUIRIES).prop_map(Op::Cancel),
        10 => presence().prop_map(Op::Presence),
        20 => pick().prop_map(Op::Accept),
        4 => pick().prop_map(Op::Decline),
        14 => pick().prop_map(Op::Complete),
        4 => (pick(), target()).prop_map(|(p, t)| Op::Transfer(p, t)),
        3 => pick().prop_map(Op::Escalate),
        2 => (group.clone(), level(), prop_oneof![3 => Just(0u32), 1 => 1u32..300], 0u32..900, prop::bool::weighted(0.9))
            .prop_map(|(group, level, delay_s, len_s, admin)| Op::Override { group, level, delay_s, len_s, admin }),
        1 => (group, prop::bool::weighted(0.9)).prop_map(|(group, admin)| Op::ClearOverride { group, admin }),
        3 => (0u8..=6).prop_map(Op::Connect),
        3 => (0u8..=6).prop_map(Op::Disconnect),
        18 => tick().prop_map(Op::Tick),
        4 => (tick(), 0u64..5_000).prop_map(|(ms, behind)| Op::TickQueued(ms, behind)),
        1 => (0u64..60_000).prop_map(Op::ExtendOffers),
    ]
}

/// Sequences of up to `max_len` operations.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(op(), 1..=max_len)
}

/// The id of inquiry number `n`.
pub fn inquiry_id(n: u8) -> Id {
    format!("q{}", n % INQUIRIES).into()
}

fn agent_id(n: u8) -> Id {
    AGENTS.get(n as usize).copied().unwrap_or("nobody").into()
}

fn group_id(n: u8) -> String {
    GROUPS.get(n as usize).copied().unwrap_or("nowhere").to_string()
}

fn note() -> HandoffNote {
    HandoffNote { summary: "handed on".into(), ..HandoffNote::default() }
}

fn admin() -> Actor {
    Actor { id: "ops".into(), role: Role::Admin }
}

/// Skill names from bits: 1 is `a`, 2 is `b`.
fn skill_names(bits: u8) -> Vec<String> {
    ["a", "b"].iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, s)| s.to_string()).collect()
}

impl Arrival {
    fn command(&self, now: Millis) -> Command {
        let mut q = inquiry(&inquiry_id(self.id), self.category);
        q.customer.id = format!("c{}", self.customer).into();
        q.customer.vip_tier = self.vip_tier;
        q.customer.is_fan = self.fan;
        q.language = if self.english { "en-US".into() } else { "zh".into() };
        q.required_skills = skill_names(self.skills);
        q.bot_attempted = self.bot_attempted;
        q.created_at_ms = now;
        match self.held_secs {
            0 => Command::Arrive(Box::new(q)),
            held => Command::ArriveReceived { inquiry: Box::new(q), received_at: now - u64::from(held) * 1_000 },
        }
    }
}

impl PresenceOp {
    fn command(&self) -> Command {
        let agent = agent_id(self.agent);
        let actor = match self.by {
            SetBy::Itself => Actor::agent(&agent),
            SetBy::Agent(n) => Actor::agent(&agent_id(n)),
            SetBy::Admin => admin(),
        };
        let languages = match self.languages {
            0 => vec!["zh".to_string()],
            1 => vec!["en".to_string()],
            2 => vec!["zh".to_string(), "en".to_string()],
            _ => Vec::new(),
        };
        let presence = Presence {
            agent,
            status: self.status,
            groups: self.groups.iter().map(|&(g, proficiency)| (group_id(g), proficiency)).collect(),
            max_concurrent: self.max_concurrent,
            languages,
            skills: skill_names(self.skills),
        };
        Command::SetPresence { actor, presence }
    }
}

/// The inquiry a pick names, and who acts on it.
fn resolve(model: &Model, pick: &Pick, wanted: impl Fn(&Place) -> bool) -> (Id, Actor) {
    let mut candidates = model.ids_where(wanted);
    if candidates.is_empty() {
        candidates = model.ids_where(|_| true);
    }
    let id = if pick.held && !candidates.is_empty() {
        candidates[pick.index as usize % candidates.len()].clone()
    } else {
        inquiry_id(pick.index)
    };
    let actor = match pick.who {
        Who::Holder => {
            let holder = model.inquiries.get(&id).and_then(|p| p.holder().cloned());
            Actor::agent(&holder.unwrap_or_else(|| agent_id(0)))
        }
        Who::Agent(n) => Actor::agent(&agent_id(n)),
        Who::Lead(n) => Actor { id: agent_id(n), role: Role::Lead },
        Who::Admin => admin(),
        Who::System => Actor::system(),
    };
    (id, actor)
}

/// The concrete command for an operation at `now`, picking held work as
/// the model knows it.
pub fn command(model: &Model, now: Millis, op: &Op) -> Command {
    let offered = |p: &Place| matches!(p, Place::Offered(_));
    let open = |p: &Place| *p == Place::Waiting || p.holder().is_some();
    let by = |admin_role: bool| if admin_role { admin() } else { Actor::agent("a0") };
    match op {
        Op::Arrive(a) => a.command(now),
        Op::Cancel(n) => Command::Cancel { inquiry: inquiry_id(*n), shop: None },
        Op::Presence(p) => p.command(),
        Op::Accept(pick) => {
            let (inquiry, actor) = resolve(model, pick, offered);
            Command::Accept { actor, inquiry }
        }
        Op::Decline(pick) => {
            let (inquiry, actor) = resolve(model, pick, offered);
            Command::Decline { actor, inquiry, reason: None }
        }
        Op::Complete(pick) => {
            let (inquiry, actor) = resolve(model, pick, |p| matches!(p, Place::Active(_)));
            Command::Complete { actor, inquiry }
        }
        Op::Transfer(pick, target) => {
            let (inquiry, actor) = resolve(model, pick, |p| p.holder().is_some());
            let target = match target {
                Target::Group(g) => TransferTarget::Group(group_id(*g)),
                Target::Agent(a) => TransferTarget::Agent(agent_id(*a)),
            };
            Command::Transfer { actor, inquiry, target, note: note() }
        }
        Op::Escalate(pick) => {
            let (inquiry, actor) = resolve(model, pick, open);
            Command::Escalate { actor, inquiry, note: note() }
        }
        Op::Override { group, level, delay_s, len_s, admin } => {
            let from = if *delay_s == 0 { 0 } else { now + u64::from(*delay_s) * 1000 };
            let until = from.max(now) + u64::from(*len_s) * 1000;
            Command::SetLevelOverride { actor: by(*admin), group: group.map(group_id), level: *level, from, until }
        }
        Op::ClearOverride { group, admin } => {
            Command::ClearLevelOverride { actor: by(*admin), group: group.map(group_id) }
        }
        Op::Connect(a) => Command::DesktopConnected { agent: agent_id(*a) },
        Op::Disconnect(a) => Command::DesktopDisconnected { agent: agent_id(*a) },
        Op::Tick(_) => Command::Tick,
        Op::TickQueued(_, behind) => Command::TickQueued { since: now.saturating_sub(*behind) },
        Op::ExtendOffers(by) => Command::ExtendOffers { by: *by },
    }
}
