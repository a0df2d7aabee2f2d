//! Consistency checks of a deserialized [`Config`]: every problem at once, each with
//! the key path to fix and a message that says how. Pure: no file or network access
//! (paths to key files are not opened here). The adapter sections' checks are in
//! `adapters.rs`; the tests of every rule in `tests.rs`.

pub(crate) mod adapters;
#[cfg(test)]
mod tests;

use super::Config;
use crate::core::settings::{GroupSettings, LevelThresholds, Playbook};
use crate::core::types::Category;
use adapters::{check_grpc_and_metrics, check_nats};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a key path such as `groups[1].overflow[0]`, an environment variable, or
    /// `line N, column M` for a TOML syntax error; empty for the file as a whole.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Priority scores must stay in this range so sums of bonuses cannot overflow.
const SCORE_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
/// Upper bound of concurrent chats per agent; more is a typo, not a team.
const MAX_CONCURRENT: u32 = 50;
/// Most extra chats a level may add per agent.
const MAX_EXTRA_CONCURRENT: u32 = 10;

/// Every problem of `config`, section by section; empty when it is usable.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    check_nats(&config.nats, &mut out);
    check_grpc_and_metrics(config, &mut out);
    check_groups(&config.groups, &mut out);
    check_categories(&config.groups, &mut out);
    check_group_references(config, &mut out);
    check_priority(config, &mut out);
    check_levels(config, &mut out);
    check_agents_and_fatigue(config, &mut out);
    out
}

fn push(out: &mut Vec<Problem>, path: impl Into<String>, message: impl Into<String>) {
    out.push(Problem::new(path, message));
}

/// The defined group ids, once each, for "name one of" hints.
fn group_list(groups: &[GroupSettings]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for id in groups.iter().map(|g| g.id.as_str()).filter(|id| !id.is_empty()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.join(", ")
}

fn check_groups(groups: &[GroupSettings], out: &mut Vec<Problem>) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, group) in groups.iter().enumerate() {
        let at = format!("groups[{i}]");
        match first.get(group.id.as_str()) {
            _ if group.id.is_empty() => {
                push(out, format!("{at}.id"), "is empty; give every group a unique id such as \"pre_sales\"")
            }
            // The router-wide level is exported as scope="router".
            _ if group.id == "router" => push(
                out,
                format!("{at}.id"),
                "\"router\" names the router-wide level in metrics and alerts; choose another id",
            ),
            Some(j) => push(
                out,
                format!("{at}.id"),
                format!("{:?} is already the id of groups[{j}]; group ids must be unique", group.id),
            ),
            None => {
                first.insert(&group.id, i);
            }
        }
        check_overflow(groups, i, out);
        check_group_numbers(&at, group, out);
    }
}

fn check_overflow(groups: &[GroupSettings], i: usize, out: &mut Vec<Problem>) {
    let group = &groups[i];
    for (k, target) in group.overflow.iter().enumerate() {
        let at = format!("groups[{i}].overflow[{k}]");
        if !group.id.is_empty() && *target == group.id {
            push(out, at, format!("group {:?} overflows to itself; remove it from its own overflow list", group.id));
        } else if !groups.iter().any(|g| g.id == *target) {
            push(out, at, format!("no group {target:?} is defined; name one of: {}", group_list(groups)));
        } else if group.overflow[..k].contains(target) {
            push(out, at, format!("{target:?} is listed twice; remove the repetition"));
        }
    }
}

fn check_group_numbers(at: &str, group: &GroupSettings, out: &mut Vec<Problem>) {
    nonzero(
        out,
        &format!("{at}.accept_timeout"),
        group.accept_timeout,
        "how long an agent has to accept an offer, e.g. \"30s\"",
    );
    if !(group.baseline_per_min.is_finite() && group.baseline_per_min > 0.0) {
        push(
            out,
            format!("{at}.baseline_per_min"),
            format!("is {}; write the group's normal arrivals per minute, above 0", group.baseline_per_min),
        );
    }
    if !(group.service_level > 0.0 && group.service_level <= 1.0) {
        push(
            out,
            format!("{at}.service_level"),
            format!("is {}; write a share above 0 and at most 1, e.g. 0.8 for 80 %", group.service_level),
        );
    }
    nonzero(out, &format!("{at}.answer_within"), group.answer_within, "the service-level target time, e.g. \"30s\"");
    nonzero(out, &format!("{at}.handle_time"), group.handle_time, "the average handle time of one chat, e.g. \"4m\"");
}

fn nonzero(out: &mut Vec<Problem>, path: &str, value: Duration, what: &str) {
    if value.is_zero() {
        push(out, path, format!("is zero; write {what}"));
    }
}

fn check_categories(groups: &[GroupSettings], out: &mut Vec<Problem>) {
    let mut served: BTreeMap<Category, usize> = BTreeMap::new();
    for (i, group) in groups.iter().enumerate() {
        for (k, category) in group.categories.iter().enumerate() {
            match served.get(category) {
                Some(&j) => push(out, format!("groups[{i}].categories[{k}]"), format!(
                    "{} is already served by groups[{j}] ({:?}); a category has one primary group, remove it here or there (overflow lets other groups help)",
                    category.name(), groups[j].id)),
                None => {
                    served.insert(*category, i);
                }
            }
        }
    }
    for category in Category::ALL.into_iter().filter(|c| !served.contains_key(c)) {
        push(
            out,
            "groups",
            format!("no group serves category {}; add it to the categories of one [[groups]]", category.name()),
        );
    }
}

fn check_group_references(config: &Config, out: &mut Vec<Problem>) {
    let known = |id: &str| config.groups.iter().any(|g| g.id == id);
    let dedicated = &config.dedicated.group;
    if !dedicated.is_empty() && !known(dedicated) {
        push(
            out,
            "dedicated.group",
            format!(
                "no group {dedicated:?} is defined; name one of: {}, or write \"\" to turn the dedicated rule off",
                group_list(&config.groups)
            ),
        );
    }
    if config.dedicated.min_vip_tier > 5 {
        push(
            out,
            "dedicated.min_vip_tier",
            format!(
                "is {}; VIP tiers run 0-5, write 1-5 (or 0 to turn the VIP part off)",
                config.dedicated.min_vip_tier
            ),
        );
    }
    let escalation = &config.escalation.group;
    if escalation.is_empty() {
        push(
            out,
            "escalation.group",
            format!("is empty; name the supervisors' group, one of: {}", group_list(&config.groups)),
        );
    } else if !known(escalation) {
        push(
            out,
            "escalation.group",
            format!("no group {escalation:?} is defined; name one of: {}", group_list(&config.groups)),
        );
    }
}

fn check_priority(config: &Config, out: &mut Vec<Problem>) {
    let p = &config.priority;
    let mut scores: Vec<(String, i32)> =
        Category::ALL.into_iter().map(|c| (format!("priority.base.{}", c.name()), p.base.of(c))).collect();
    for (key, value) in [
        ("per_vip_tier", p.per_vip_tier),
        ("fan_bonus", p.fan_bonus),
        ("escalation_bonus", p.escalation_bonus),
        ("high_band_score", p.high_band_score),
    ] {
        scores.push((format!("priority.{key}"), value));
    }
    if p.high_band_vip_tier > 5 {
        push(
            out,
            "priority.high_band_vip_tier",
            format!(
                "is {}; VIP tiers go up to 5: write 1 to 5, or 0 to put no VIP in the HIGH band for the tier alone",
                p.high_band_vip_tier
            ),
        );
    }
    for (path, value) in scores.into_iter().filter(|(_, v)| !SCORE_RANGE.contains(v)) {
        push(
            out,
            path,
            format!("is {value}; scores must be between {} and {}", SCORE_RANGE.start(), SCORE_RANGE.end()),
        );
    }
}

fn check_levels(config: &Config, out: &mut Vec<Problem>) {
    let levels = &config.levels;
    if levels.window < Duration::from_secs(1) {
        push(out, "levels.window", "is shorter than 1s; arrivals are counted over this window, write e.g. \"60s\"");
    }
    nonzero(
        out,
        "levels.cooldown",
        levels.cooldown,
        "how long a lower level must hold before stepping down, e.g. \"5m\"",
    );
    check_thresholds("levels.peak", &levels.peak, out);
    check_thresholds("levels.surge", &levels.surge, out);
    check_surge_above_peak(&levels.peak, &levels.surge, out);
    for (name, playbook) in [
        ("normal_playbook", &levels.normal_playbook),
        ("peak_playbook", &levels.peak_playbook),
        ("surge_playbook", &levels.surge_playbook),
    ] {
        check_playbook(&format!("levels.{name}"), playbook, out);
    }
}

fn check_thresholds(at: &str, t: &LevelThresholds, out: &mut Vec<Problem>) {
    if !(t.arrival_ratio.is_finite() && t.arrival_ratio > 0.0) {
        push(
            out,
            format!("{at}.arrival_ratio"),
            format!("is {}; write a multiple of the baseline above 0, e.g. 2.0", t.arrival_ratio),
        );
    }
    if t.occupancy.is_nan() || t.occupancy <= 0.0 {
        push(
            out,
            format!("{at}.occupancy"),
            format!("is {}; write a ratio above 0 (above 1 turns this condition off)", t.occupancy),
        );
    }
    let always = "the condition would always hold, so the group could never be below this level";
    if t.queue_length == 0 {
        push(out, format!("{at}.queue_length"), format!("is 0; {always}; write at least 1"));
    }
    if t.oldest_wait.is_zero() {
        push(out, format!("{at}.oldest_wait"), format!("is zero; {always}; write e.g. \"60s\""));
    }
}

fn check_surge_above_peak(peak: &LevelThresholds, surge: &LevelThresholds, out: &mut Vec<Problem>) {
    let pairs = [
        ("arrival_ratio", surge.arrival_ratio < peak.arrival_ratio, peak.arrival_ratio.to_string()),
        ("queue_length", surge.queue_length < peak.queue_length, peak.queue_length.to_string()),
        ("oldest_wait", surge.oldest_wait < peak.oldest_wait, humantime::format_duration(peak.oldest_wait).to_string()),
        ("occupancy", surge.occupancy < peak.occupancy, peak.occupancy.to_string()),
    ];
    for (key, _, peak_value) in pairs.into_iter().filter(|(_, below, _)| *below) {
        push(out, format!("levels.surge.{key}"), format!("is below levels.peak.{key} ({peak_value}); SURGE thresholds must be at least the PEAK ones, raise it or lower the PEAK one"));
    }
}

fn check_playbook(at: &str, playbook: &Playbook, out: &mut Vec<Problem>) {
    if !(playbook.reserve_ratio >= 0.0 && playbook.reserve_ratio < 1.0) {
        push(
            out,
            format!("{at}.reserve_ratio"),
            format!("is {}; write a share from 0 up to but not including 1, e.g. 0.2 for 20 %", playbook.reserve_ratio),
        );
    }
    if playbook.extra_concurrent > MAX_EXTRA_CONCURRENT {
        push(
            out,
            format!("{at}.extra_concurrent"),
            format!(
                "is {}; write 0 to {MAX_EXTRA_CONCURRENT} extra chats per agent at this level",
                playbook.extra_concurrent
            ),
        );
    }
    if !(playbook.standby_reserve >= 0.0 && playbook.standby_reserve <= 1.0) {
        push(
            out,
            format!("{at}.standby_reserve"),
            format!("is {}; write a share from 0 to 1, e.g. 0.25 for 25 %", playbook.standby_reserve),
        );
    }
}

/// Shortest `agents.retain_finished`: well past JetStream's 2-minute
/// duplicate window and the redeliveries of an unacknowledged message.
const MIN_RETAIN_FINISHED: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn check_agents_and_fatigue(config: &Config, out: &mut Vec<Problem>) {
    let agents = &config.agents;
    if !(1..=MAX_CONCURRENT).contains(&agents.max_concurrent) {
        push(
            out,
            "agents.max_concurrent",
            format!("is {}; write 1 to {MAX_CONCURRENT} concurrent chats per agent", agents.max_concurrent),
        );
    }
    if agents.retain_finished < MIN_RETAIN_FINISHED {
        push(
            out,
            "agents.retain_finished",
            format!(
                "is {}; keep finished inquiries at least 10m: a redelivered or republished inquiry is known as a \
                 duplicate only while its record is kept (default 24h)",
                humantime::format_duration(agents.retain_finished)
            ),
        );
    }
    if agents.timeouts_before_away == 0 {
        push(
            out,
            "agents.timeouts_before_away",
            "is 0; write how many missed offers in a row set an agent AWAY, at least 1",
        );
    }
    nonzero(
        out,
        "fatigue.max_continuous",
        config.fatigue.max_continuous,
        "the longest continuous service, e.g. \"45m\"",
    );
    nonzero(out, "fatigue.min_break", config.fatigue.min_break, "the shortest pause that resets it, e.g. \"10m\"");
}
