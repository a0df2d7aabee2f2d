//! The scenario file: a promotion day in TOML — window, arrival curve with
//! named spikes, category and customer mix, handle times, agent behaviour, the
//! roster per group and shift, and optional level pins.
//!
//! This module owns only the format: serde structs with unknown keys refused,
//! and syntax or type errors reported with line and key path. Turning a parsed
//! scenario into timed events (and checking its values) is `plan.rs`.

use super::SimError;
use crate::core::settings::duration_text;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A duration written as text (`"30s"`, `"4m"`, `"1h 30m"`) or whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        duration_text::deserialize(d).map(Span)
    }
}

impl Span {
    /// Milliseconds.
    pub fn ms(self) -> u64 {
        self.0.as_millis() as u64
    }
}

/// One scenario file. See `scenarios/double11.toml` for a documented example.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the report; the file name when empty.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `2024-11-10T18:00:00+08:00`; clock times in the file are read at this offset.
    pub start: String,
    pub duration: Span,
    /// Tick interval of the router (default 1 s).
    pub step: Option<Span>,
    /// Seed of the random draws (default 1; `--seed` overrides).
    pub seed: Option<u64>,
    /// Customers still waiting this long leave (a Cancel); none by default.
    pub patience: Option<Span>,
    #[serde(default = "default_shop")]
    pub shop: String,
    #[serde(default = "default_platform")]
    pub platform: String,
    /// Required unless the inquiries come from `--recorded`.
    pub arrivals: Option<Arrivals>,
    #[serde(default)]
    pub mix: Vec<MixPeriod>,
    #[serde(default)]
    pub customers: Customers,
    #[serde(default)]
    pub handle: HandleTimes,
    #[serde(default)]
    pub agents: AgentBehaviour,
    #[serde(default)]
    pub bot: Bot,
    #[serde(default)]
    pub roster: Vec<Shift>,
    #[serde(default)]
    pub overrides: Vec<LevelPin>,
}

fn default_shop() -> String {
    "shop-1".into()
}

fn default_platform() -> String {
    "taobao".into()
}

/// The arrival curve: a base rate between points, plus named spikes on top.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    /// Points `{ at = "20:00", per_min = 120 }`, in time order.
    pub curve: Vec<RatePoint>,
    /// `"linear"` (default) between points, or `"step"` (hold until the next).
    #[serde(default)]
    pub shape: CurveShape,
    #[serde(default)]
    pub spikes: Vec<Spike>,
}

/// How the rate moves between curve points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurveShape {
    #[default]
    Linear,
    Step,
}

/// The base rate at one clock time.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePoint {
    pub at: String,
    pub per_min: f64,
}

/// Extra arrivals that rise to `peak_per_min` within `rise`, then decay
/// exponentially with time constant `decay`, until `lasts` after `at`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    pub name: String,
    pub at: String,
    pub peak_per_min: f64,
    pub rise: Span,
    pub decay: Span,
    pub lasts: Span,
}

/// Category weights from a clock time until the next period.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixPeriod {
    pub from: String,
    /// `PRE_SALES = 55`, ... — weights, need not sum to 100.
    pub categories: BTreeMap<String, f64>,
}

/// Who the customers are.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Customers {
    /// Share of customers with a VIP tier of 1 or more.
    pub vip_share: f64,
    /// Weights of tiers 1-5 among VIPs.
    pub vip_tiers: [f64; 5],
    /// Share of fans of the shop.
    pub fan_share: f64,
    /// Language weights, e.g. `{ zh = 97, en = 3 }`; all `zh` when empty.
    pub languages: BTreeMap<String, f64>,
}

impl Default for Customers {
    fn default() -> Self {
        Customers {
            vip_share: 0.10,
            vip_tiers: [40.0, 25.0, 18.0, 11.0, 6.0],
            fan_share: 0.08,
            languages: BTreeMap::new(),
        }
    }
}

/// Handle time of one chat (acceptance to completion).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandleTimes {
    pub distribution: Distribution,
    /// Log-space standard deviation of the lognormal.
    pub spread: f64,
    /// Mean for categories not listed in `by_category`.
    pub mean: Span,
    pub by_category: BTreeMap<String, Span>,
}

impl Default for HandleTimes {
    fn default() -> Self {
        HandleTimes {
            distribution: Distribution::Lognormal,
            spread: 0.6,
            mean: Span(Duration::from_secs(240)),
            by_category: BTreeMap::new(),
        }
    }
}

/// The shape of the handle-time distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    #[default]
    Lognormal,
    Exponential,
    Fixed,
}

/// How simulated agents behave.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentBehaviour {
    /// Mean time from offer to accept; each offer takes 0.5x-1.5x this.
    pub accept_delay: Span,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        AgentBehaviour { accept_delay: Span(Duration::from_secs(4)) }
    }
}

/// The self-service bot that deflected inquiries go to.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bot {
    /// Share of deflected inquiries the bot resolves; the rest come back.
    pub resolves: f64,
    /// When an unresolved one comes back (with `bot_attempted`).
    pub returns_after: Span,
}

impl Default for Bot {
    fn default() -> Self {
        Bot { resolves: 0.65, returns_after: Span(Duration::from_secs(120)) }
    }
}

/// `count` agents on one shift, ids `<name>-001`, `<name>-002`, ...
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub name: String,
    /// Group id to proficiency 1-5, e.g. `{ pre_sales = 4, orders = 2 }`.
    pub groups: BTreeMap<String, u8>,
    pub count: u32,
    pub start: String,
    pub end: String,
    pub max_concurrent: Option<u32>,
    #[serde(default)]
    pub languages: Vec<String>,
    /// Skills the shift's agents have, as an agent's `SetPresence` lists
    /// them; recorded inquiries with `required_skills` need them.
    #[serde(default)]
    pub skills: Vec<String>,
    pub breaks: Option<Breaks>,
}

/// A break of `length` after every `every` of work, staggered across the shift.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breaks {
    pub every: Span,
    pub length: Span,
}

/// A minimum level pinned by ops for a window (like `SetLevelOverride`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelPin {
    pub level: crate::core::Level,
    /// A group id; router-wide when absent.
    pub group: Option<String>,
    pub from: String,
    pub until: String,
}

impl Scenario {
    /// Reads and parses a scenario file; the error names the file, line and key.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let failed = |e: String| SimError::Scenario(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| failed(format!("cannot read the file: {e}")))?;
        let mut scenario = Scenario::parse(&text).map_err(|e| failed(e.to_string()))?;
        if scenario.name.is_empty() {
            scenario.name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        }
        Ok(scenario)
    }

    /// Parses scenario text; the error names every bad key by its path (the
    /// first also by its line), as `check-config` does for configurations.
    pub fn parse(text: &str) -> Result<Scenario, SimError> {
        crate::config::parse_every_problem(text).map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| if p.path.is_empty() { p.message.clone() } else { format!("{}: {}", p.path, p.message) })
                .collect();
            SimError::Scenario(match lines.as_slice() {
                [one] => one.clone(),
                _ => format!("{} problems:\n  {}", lines.len(), lines.join("\n  ")),
            })
        })
    }
}
