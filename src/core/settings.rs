//! The routing rules' numbers (SPEC section 4), every one with its default.
//!
//! These are plain data with serde derives so the configuration file can hold
//! them directly; checking them for consistency lives in `crate::config`.

use super::types::{Category, Level};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Everything the routing core needs to decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    pub groups: Vec<GroupSettings>,
    pub dedicated: DedicatedSettings,
    pub escalation: EscalationSettings,
    pub priority: PrioritySettings,
    pub levels: LevelSettings,
    pub fatigue: FatigueSettings,
    pub agents: AgentSettings,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        let group = |id: &str, categories: &[Category], overflow: &[&str], baseline: f64| GroupSettings {
            id: id.to_string(),
            categories: categories.to_vec(),
            overflow: overflow.iter().map(|s| s.to_string()).collect(),
            baseline_per_min: baseline,
            ..GroupSettings::default()
        };
        use Category::*;
        RoutingSettings {
            groups: vec![
                group("pre_sales", &[PreSales, Other], &["orders"], 30.0),
                group("orders", &[Order, Logistics], &["after_sales"], 20.0),
                group("after_sales", &[AfterSalesRefund, AfterSalesExchange, AfterSalesRepair], &["orders"], 15.0),
                group("complaints", &[Complaint], &["supervisors"], 5.0),
                group("fans", &[], &["pre_sales"], 10.0),
                group("supervisors", &[], &[], 2.0),
            ],
            dedicated: DedicatedSettings::default(),
            escalation: EscalationSettings::default(),
            priority: PrioritySettings::default(),
            levels: LevelSettings::default(),
            fatigue: FatigueSettings::default(),
            agents: AgentSettings::default(),
        }
    }
}

/// One skill group: a queue and the agents who serve it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSettings {
    pub id: String,
    /// Categories whose primary group this is.
    pub categories: Vec<Category>,
    /// Groups that may serve this group's waiting work after `overflow_after`.
    pub overflow: Vec<String>,
    #[serde(with = "duration_text")]
    pub accept_timeout: Duration,
    /// Normal arrivals per minute; the level thresholds are multiples of it.
    pub baseline_per_min: f64,
    /// Share of inquiries to answer within `answer_within` (staffing target).
    pub service_level: f64,
    #[serde(with = "duration_text")]
    pub answer_within: Duration,
    /// Average handle time of one chat until measurements replace it.
    #[serde(with = "duration_text")]
    pub handle_time: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            id: String::new(),
            categories: Vec::new(),
            overflow: Vec::new(),
            accept_timeout: Duration::from_secs(30),
            baseline_per_min: 10.0,
            service_level: 0.8,
            answer_within: Duration::from_secs(30),
            handle_time: Duration::from_secs(240),
        }
    }
}

/// The fan/VIP team and who is routed there first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedicatedSettings {
    /// Group id of the dedicated team; empty disables the rule.
    pub group: String,
    /// Fans of the shop go to the dedicated group first.
    pub fans: bool,
    /// Customers at this VIP tier or above go there first (0 disables).
    pub min_vip_tier: u8,
    /// With no free agent, still queue there while its queue is shorter than this.
    pub short_queue: u32,
}

impl Default for DedicatedSettings {
    fn default() -> Self {
        DedicatedSettings { group: "fans".into(), fans: true, min_vip_tier: 3, short_queue: 5 }
    }
}

/// Where escalations go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationSettings {
    /// The supervisors' group.
    pub group: String,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        EscalationSettings { group: "supervisors".into() }
    }
}

/// Base score per category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct CategoryScores {
    pub COMPLAINT: i32,
    pub AFTER_SALES_REFUND: i32,
    pub AFTER_SALES_EXCHANGE: i32,
    pub AFTER_SALES_REPAIR: i32,
    pub LOGISTICS: i32,
    pub ORDER: i32,
    pub PRE_SALES: i32,
    pub OTHER: i32,
}

impl Default for CategoryScores {
    fn default() -> Self {
        CategoryScores {
            COMPLAINT: 90,
            AFTER_SALES_REFUND: 80,
            AFTER_SALES_EXCHANGE: 70,
            AFTER_SALES_REPAIR: 60,
            LOGISTICS: 50,
            ORDER: 40,
            PRE_SALES: 20,
            OTHER: 10,
        }
    }
}

impl CategoryScores {
    /// The base score of `category`.
    pub fn of(&self, category: Category) -> i32 {
        match category {
            Category::Complaint => self.COMPLAINT,
            Category::AfterSalesRefund => self.AFTER_SALES_REFUND,
            Category::AfterSalesExchange => self.AFTER_SALES_EXCHANGE,
            Category::AfterSalesRepair => self.AFTER_SALES_REPAIR,
            Category::Logistics => self.LOGISTICS,
            Category::Order => self.ORDER,
            Category::PreSales => self.PRE_SALES,
            Category::Other => self.OTHER,
        }
    }
}

/// The priority table of SPEC section 4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrioritySettings {
    pub base: CategoryScores,
    pub per_vip_tier: i32,
    pub fan_bonus: i32,
    pub escalation_bonus: i32,
    /// Waiting this long adds one point; zero turns aging off.
    #[serde(with = "duration_text")]
    pub aging_interval: Duration,
    /// Score at or above which an inquiry is HIGH band.
    pub high_band_score: i32,
    /// VIP tier at or above which an inquiry is HIGH band.
    pub high_band_vip_tier: u8,
}

impl Default for PrioritySettings {
    fn default() -> Self {
        PrioritySettings {
            base: CategoryScores::default(),
            per_vip_tier: 6,
            fan_bonus: 15,
            escalation_bonus: 10,
            aging_interval: Duration::from_secs(10),
            high_band_score: 80,
            high_band_vip_tier: 3,
        }
    }
}

/// Conditions that raise a group to one level. Any one is enough.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevelThresholds {
    /// Arrivals per minute as a multiple of the group's baseline.
    pub arrival_ratio: f64,
    pub queue_length: u32,
    #[serde(with = "duration_text")]
    pub oldest_wait: Duration,
    /// Occupancy (load / capacity of online agents); above 1 never triggers.
    pub occupancy: f64,
}

/// What changes at one level: the headroom.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Playbook {
    /// Share of the group's capacity held back for the HIGH band.
    pub reserve_ratio: f64,
    #[serde(with = "duration_text")]
    pub overflow_after: Duration,
    /// Extra concurrent chats per agent (the promotion reception limit).
    pub extra_concurrent: u32,
    /// LOW band pre-sales go to the bot first.
    pub deflect_low_pre_sales: bool,
    /// Standby reserve added to the staffing advice.
    pub standby_reserve: f64,
    /// Whether the fatigue rule stops new work (false: advisory only).
    pub enforce_fatigue: bool,
}

/// Load levels: measurement, thresholds, hysteresis and the playbooks.
///
/// A partly written threshold or playbook table keeps the defaults *of its
/// own level* for the keys it leaves out (`[levels.surge] queue_length = 150`
/// leaves the SURGE arrival ratio at 5x, not PEAK's 2x).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, from = "partial::LevelsFile")]
pub struct LevelSettings {
    /// Sliding window over which arrivals are counted.
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// How long a lower level's conditions must hold before stepping down.
    #[serde(with = "duration_text")]
    pub cooldown: Duration,
    pub peak: LevelThresholds,
    pub surge: LevelThresholds,
    pub normal_playbook: Playbook,
    pub peak_playbook: Playbook,
    pub surge_playbook: Playbook,
}

impl LevelSettings {
    /// The playbook in force at `level`.
    pub fn playbook(&self, level: Level) -> &Playbook {
        match level {
            Level::Normal => &self.normal_playbook,
            Level::Peak => &self.peak_playbook,
            Level::Surge => &self.surge_playbook,
        }
    }
}

impl Default for LevelSettings {
    fn default() -> Self {
        let playbook = |reserve, overflow_s, extra, deflect, standby, enforce| Playbook {
            reserve_ratio: reserve,
            overflow_after: Duration::from_secs(overflow_s),
            extra_concurrent: extra,
            deflect_low_pre_sales: deflect,
            standby_reserve: standby,
            enforce_fatigue: enforce,
        };
        LevelSettings {
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(300),
            peak: LevelThresholds {
                arrival_ratio: 2.0,
                queue_length: 20,
                oldest_wait: Duration::from_secs(60),
                occupancy: 2.0,
            },
            surge: LevelThresholds {
                arrival_ratio: 5.0,
                queue_length: 100,
                oldest_wait: Duration::from_secs(180),
                occupancy: 2.0,
            },
            normal_playbook: playbook(0.10, 60, 0, false, 0.0, true),
            peak_playbook: playbook(0.20, 45, 1, false, 0.25, true),
            surge_playbook: playbook(0.30, 30, 2, true, 0.25, false),
        }
    }
}

impl Default for LevelThresholds {
    fn default() -> Self {
        LevelSettings::default().peak
    }
}

impl Default for Playbook {
    fn default() -> Self {
        LevelSettings::default().normal_playbook
    }
}

mod partial;

/// Fatigue: no new work after serving continuously this long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FatigueSettings {
    #[serde(with = "duration_text")]
    pub max_continuous: Duration,
    /// A pause at least this long (BREAK, AWAY or OFFLINE) resets the count.
    #[serde(with = "duration_text")]
    pub min_break: Duration,
}

impl Default for FatigueSettings {
    fn default() -> Self {
        FatigueSettings { max_continuous: Duration::from_secs(45 * 60), min_break: Duration::from_secs(10 * 60) }
    }
}

/// Agent defaults and presence timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    pub max_concurrent: u32,
    /// The customer's previous agent is preferred within this window.
    #[serde(with = "duration_text")]
    pub sticky_window: Duration,
    /// A desktop stream may be gone this long before the agent is set AWAY.
    #[serde(with = "duration_text")]
    pub heartbeat_grace: Duration,
    /// Consecutive offer timeouts that set an agent AWAY.
    pub timeouts_before_away: u32,
    /// Finished inquiries stay queryable (`GetInquiry`, duplicate checks) this long.
    #[serde(with = "duration_text")]
    pub retain_finished: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_concurrent: 5,
            sticky_window: Duration::from_secs(24 * 3600),
            heartbeat_grace: Duration::from_secs(30),
            timeouts_before_away: 2,
            retain_finished: Duration::from_secs(24 * 3600),
        }
    }
}

pub mod duration_text;
