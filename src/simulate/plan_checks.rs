//! A compiled plan against a router configuration: the groups it names that
//! the configuration lacks, and what its shifts mean under the fatigue rule.

use super::plan::{Plan, Problems, Step};
use crate::core::settings::FatigueSettings;
use crate::core::RoutingSettings;
use std::time::Duration;

impl Plan {
    /// Problems of this plan against a routing configuration: roster and
    /// override groups that the configuration does not have.
    pub fn check_against(&self, settings: &RoutingSettings) -> Problems {
        let known: Vec<&str> = settings.groups.iter().map(|g| g.id.as_str()).collect();
        let mut p = Problems::new();
        let mut unknown = |what: String, group: &str| {
            let line = format!("{what}: group `{group}` is not in the configuration (it has {})", known.join(", "));
            if !p.contains(&line) {
                p.push(line);
            }
        };
        for agent in &self.agents {
            let shift = agent.presence.agent.rsplit_once('-').map_or("", |(name, _)| name);
            for (group, _) in agent.presence.groups.iter().filter(|(g, _)| !known.contains(&g.as_str())) {
                unknown(format!("roster `{shift}`"), group);
            }
        }
        for pin in &self.pins {
            if let Some(group) = pin.group.as_deref().filter(|g| !known.contains(g)) {
                unknown("overrides".into(), group);
            }
        }
        p
    }

    /// Shifts whose agents work longer than `fatigue` allows without a break
    /// long enough to reset it: the router then stops offering them new work
    /// (where the level enforces fatigue), which a planner should know.
    pub fn fatigue_notes(&self, fatigue: &FatigueSettings) -> Vec<String> {
        let (max, min_break) = (fatigue.max_continuous.as_millis() as u64, fatigue.min_break.as_millis() as u64);
        let mut over: Vec<(&str, u64)> = Vec::new();
        for agent in &self.agents {
            let shift = agent.presence.agent.rsplit_once('-').map_or("", |(name, _)| name);
            if over.iter().any(|(s, _)| *s == shift) {
                continue;
            }
            let (mut longest, mut since) = (0, None);
            for (i, &(at, step)) in agent.steps.iter().enumerate() {
                match step {
                    Step::Available => {
                        // The router meets agents on shift at the window's start.
                        since = since.or(Some(at.max(self.start.at)));
                    }
                    Step::Break | Step::Leave => {
                        // A break the shift ends in ends the work too.
                        let back = match agent.steps.get(i + 1) {
                            Some(&(next, Step::Available)) => next,
                            _ => u64::MAX,
                        };
                        if step == Step::Leave || back.saturating_sub(at) >= min_break {
                            longest = longest.max(since.map_or(0, |s| at.min(self.end).saturating_sub(s)));
                            since = None;
                        }
                    }
                }
            }
            if longest > max {
                over.push((shift, longest));
            }
        }
        over.sort_by_key(|&(_, longest)| std::cmp::Reverse(longest));
        let Some(&(worst, longest)) = over.first() else { return Vec::new() };
        let round = |ms: u64| humantime::format_duration(Duration::from_secs(ms / 60_000 * 60));
        let others = match over.len() {
            1 => String::new(),
            n => format!(" (and {} other shift(s))", n - 1),
        };
        vec![format!(
            "shift `{worst}`{others} works up to {} without a break of at least {}: after {} the router stops \
             offering such agents new work (fatigue, where the level enforces it) until they take such a \
             break; give shifts breaks, e.g. breaks = {{ every = \"{}\", length = \"{}\" }}",
            round(longest),
            round(min_break),
            round(max),
            round(max),
            round(min_break),
        )]
    }
}
