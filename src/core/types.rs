//! Domain vocabulary shared by every part of the core: categories, bands,
//! levels, statuses and the inquiry as the router receives it.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The core never reads a clock: every
/// command carries its `now`.
pub type Millis = u64;

/// Cheaply cloned identifier (inquiry, agent, shop, customer): up to 23
/// bytes inline (no heap block, no pointer to chase), longer ones shared.
pub type Id = smol_str::SmolStr;

/// What the customer asks about; decides the primary skill group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    PreSales,
    Order,
    Logistics,
    AfterSalesRefund,
    AfterSalesExchange,
    AfterSalesRepair,
    Complaint,
    Other,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 8] = [
        Category::PreSales,
        Category::Order,
        Category::Logistics,
        Category::AfterSalesRefund,
        Category::AfterSalesExchange,
        Category::AfterSalesRepair,
        Category::Complaint,
        Category::Other,
    ];

    /// The name used in configuration, JSON and protobuf.
    pub fn name(self) -> &'static str {
        match self {
            Category::PreSales => "PRE_SALES",
            Category::Order => "ORDER",
            Category::Logistics => "LOGISTICS",
            Category::AfterSalesRefund => "AFTER_SALES_REFUND",
            Category::AfterSalesExchange => "AFTER_SALES_EXCHANGE",
            Category::AfterSalesRepair => "AFTER_SALES_REPAIR",
            Category::Complaint => "COMPLAINT",
            Category::Other => "OTHER",
        }
    }

    /// Parses the configuration/JSON name.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// How the customer reached the shop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    #[default]
    Chat,
    Phone,
    Email,
}

/// Priority band; decides who may use reserved capacity and who is deflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Band {
    High,
    Normal,
    Low,
}

/// Traffic state of a group or the whole router, ordered NORMAL < PEAK < SURGE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    #[default]
    Normal,
    Peak,
    Surge,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 3] = [Level::Normal, Level::Peak, Level::Surge];

    /// 0, 1, 2 — the gauge value and an array index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in configuration and messages.
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "NORMAL",
            Level::Peak => "PEAK",
            Level::Surge => "SURGE",
        }
    }
}

/// Presence an agent sets from the desktop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentStatus {
    Available,
    Away,
    Break,
    Offline,
}

impl AgentStatus {
    /// All statuses, for reporting counts.
    pub const ALL: [AgentStatus; 4] =
        [AgentStatus::Available, AgentStatus::Away, AgentStatus::Break, AgentStatus::Offline];

    /// The name used in the protocol and in messages.
    pub fn name(self) -> &'static str {
        match self {
            AgentStatus::Available => "AVAILABLE",
            AgentStatus::Away => "AWAY",
            AgentStatus::Break => "BREAK",
            AgentStatus::Offline => "OFFLINE",
        }
    }
}

/// Where an inquiry is in its life. Every known inquiry is in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InquiryState {
    Waiting,
    Offered,
    Active,
    Completed,
    Deflected,
    Cancelled,
}

impl InquiryState {
    /// The name used in the protocol and in messages.
    pub fn name(self) -> &'static str {
        match self {
            InquiryState::Waiting => "WAITING",
            InquiryState::Offered => "OFFERED",
            InquiryState::Active => "ACTIVE",
            InquiryState::Completed => "COMPLETED",
            InquiryState::Deflected => "DEFLECTED",
            InquiryState::Cancelled => "CANCELLED",
        }
    }
}

/// The rule that chose the agent of an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rule {
    Sticky,
    Dedicated,
    BestProficiency,
    LeastOccupied,
    LongestIdle,
    Overflow,
    TransferTarget,
    Escalation,
}

/// The customer behind an inquiry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: Id,
    pub vip_tier: u8,
    pub is_fan: bool,
    pub lifetime_value_cents: i64,
}

/// An inquiry as it arrives, already validated by the adapter that decoded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    pub id: Id,
    pub shop_id: Id,
    pub platform: Id,
    pub customer: Customer,
    pub category: Category,
    pub channel: Channel,
    pub language: Id,
    pub required_skills: Vec<String>,
    pub order_value_cents: i64,
    pub subject: Option<Box<str>>,
    pub created_at_ms: Millis,
    pub bot_attempted: bool,
}

/// Carried with a transfer or escalation so the customer never repeats themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffNote {
    pub summary: String,
    pub attempted: String,
    pub customer_expectation: String,
    /// Agent id of the author, or `system`.
    pub author: String,
    pub at: Millis,
}

/// Why one offer went to one agent: the rule, the inquiry's standing, and how
/// many of the group's agents were considered or skipped for which reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionTrace {
    pub rule: Option<Rule>,
    pub score: i32,
    pub band: Option<Band>,
    pub level: Level,
    pub group: Id,
    pub considered: u32,
    pub skipped_full: u32,
    pub skipped_reserve: u32,
    pub skipped_fatigue: u32,
    pub skipped_language: u32,
    pub skipped_skill: u32,
    pub skipped_not_available: u32,
    /// The agent has served `fatigue.max_continuous` without a break and is
    /// offered work only because the level makes the fatigue rule advisory
    /// (SURGE by default): a break is due as soon as the surge allows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_fatigued: bool,
}
