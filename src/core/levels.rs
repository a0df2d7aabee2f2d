//! Load levels of one group: the arrival window, the raw level from the
//! thresholds, and the hysteresis that keeps a level from flapping.

use super::settings::LevelSettings;
use super::types::{Level, Millis};

/// Arrivals per one-second bucket over a sliding window.
#[derive(Clone, Debug)]
pub struct ArrivalWindow {
    buckets: Vec<u32>,
    /// The second (since epoch) that the newest bucket counts.
    head_sec: u64,
    total: u64,
}

impl ArrivalWindow {
    /// A window `seconds` long (at least one).
    pub fn new(seconds: u64) -> Self {
        ArrivalWindow { buckets: vec![0; seconds.max(1) as usize], head_sec: 0, total: 0 }
    }

    fn advance(&mut self, now: Millis) {
        let sec = now / 1000;
        if sec <= self.head_sec {
            return;
        }
        let len = self.buckets.len() as u64;
        let steps = (sec - self.head_sec).min(len);
        for i in 1..=steps {
            let slot = ((self.head_sec + i) % len) as usize;
            self.total -= u64::from(self.buckets[slot]);
            self.buckets[slot] = 0;
        }
        self.head_sec = sec;
    }

    /// Counts, at `now`, one arrival that happened `at` (no later than
    /// `now`): in the second it happened, or not at all if that fell out of
    /// the window. A backlog taken in after a restart or an outage counts
    /// when its customers came, not as a burst.
    pub fn record(&mut self, at: Millis, now: Millis) {
        self.advance(now);
        let sec = (at / 1000).min(self.head_sec);
        let len = self.buckets.len() as u64;
        if self.head_sec - sec >= len {
            return;
        }
        self.buckets[(sec % len) as usize] += 1;
        self.total += 1;
    }

    /// Arrivals per minute over the window ending at `now`.
    pub fn per_minute(&mut self, now: Millis) -> f64 {
        self.advance(now);
        self.total as f64 * 60.0 / self.buckets.len() as f64
    }
}

/// What a group looks like at one evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observation {
    pub arrivals_per_min: f64,
    pub queue_length: u32,
    pub oldest_wait_ms: u64,
    pub occupancy: f64,
}

/// The highest level whose thresholds `obs` meets, with the reason.
pub fn raw_level(settings: &LevelSettings, baseline_per_min: f64, obs: Observation) -> (Level, String) {
    for (level, t) in [(Level::Surge, &settings.surge), (Level::Peak, &settings.peak)] {
        let reason = if baseline_per_min > 0.0 && obs.arrivals_per_min >= t.arrival_ratio * baseline_per_min {
            Some(format!(
                "arrivals {:.0}/min >= {}x baseline {:.0}/min",
                obs.arrivals_per_min, t.arrival_ratio, baseline_per_min
            ))
        } else if obs.queue_length >= t.queue_length {
            Some(format!("queue {} >= {}", obs.queue_length, t.queue_length))
        } else if obs.oldest_wait_ms >= t.oldest_wait.as_millis() as u64 {
            Some(format!("oldest wait {}s >= {}s", obs.oldest_wait_ms / 1000, t.oldest_wait.as_secs()))
        } else if obs.occupancy >= t.occupancy {
            Some(format!("occupancy {:.2} >= {:.2}", obs.occupancy, t.occupancy))
        } else {
            None
        };
        if let Some(reason) = reason {
            return (level, reason);
        }
    }
    (Level::Normal, "below the PEAK thresholds".to_string())
}

/// Hysteresis: up at once, down only after the lower level held for `cooldown`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LevelTracker {
    level: Level,
    /// `at_most_since[l]`: start of the current run of raw levels `<= l`.
    at_most_since: [Option<Millis>; 3],
}

impl LevelTracker {
    /// The measured level (before overrides).
    pub fn level(&self) -> Level {
        self.level
    }

    /// Start of the current run of raw levels at or below each level.
    pub fn at_most_since(&self) -> [Option<Millis>; 3] {
        self.at_most_since
    }

    /// A tracker as recorded before a restart.
    pub fn restored(level: Level, at_most_since: [Option<Millis>; 3]) -> LevelTracker {
        LevelTracker { level, at_most_since }
    }

    /// Feeds one raw level; returns the new level when it changed.
    pub fn observe(&mut self, now: Millis, raw: Level, cooldown_ms: u64) -> Option<Level> {
        for level in Level::ALL {
            let slot = &mut self.at_most_since[level.index()];
            if raw <= level {
                slot.get_or_insert(now);
            } else {
                *slot = None;
            }
        }
        let next = if raw > self.level {
            raw
        } else {
            Level::ALL
                .into_iter()
                .take(self.level.index())
                .find(|l| self.at_most_since[l.index()].is_some_and(|since| now.saturating_sub(since) >= cooldown_ms))
                .unwrap_or(self.level)
        };
        (next != self.level).then(|| {
            self.level = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: u64 = 300_000;

    #[test]
    fn window_counts_recent_arrivals_only() {
        let mut w = ArrivalWindow::new(60);
        for i in 0..30 {
            w.record(1_000_000 + i * 1000, 1_000_000 + i * 1000);
        }
        assert_eq!(w.per_minute(1_029_000), 30.0);
        assert_eq!(w.per_minute(1_000_000 + 75_000), 14.0);
        assert_eq!(w.per_minute(1_000_000 + 200_000), 0.0);
    }

    #[test]
    fn a_backlog_counts_when_it_arrived_not_when_it_was_taken_in() {
        let mut w = ArrivalWindow::new(60);
        let now = 10_000_000;
        // Five minutes of 4 a minute, taken in at once after a restart.
        for i in 0..20 {
            w.record(now - 300_000 + i * 15_000, now);
        }
        assert_eq!(w.per_minute(now), 3.0, "only the last minute's: 45, 30 and 15 s ago");
        w.record(now + 500, now + 500);
        assert_eq!(w.per_minute(now + 500), 4.0);
        assert_eq!(w.per_minute(now + 16_000), 3.0, "the one from 45 s before left the window");
    }

    #[test]
    fn thresholds_pick_the_highest_level_met() {
        let s = LevelSettings::default();
        let obs = |arrivals, queue, wait_s: u64| Observation {
            arrivals_per_min: arrivals,
            queue_length: queue,
            oldest_wait_ms: wait_s * 1000,
            occupancy: 0.5,
        };
        assert_eq!(raw_level(&s, 10.0, obs(19.0, 19, 59)).0, Level::Normal);
        assert_eq!(raw_level(&s, 10.0, obs(20.0, 0, 0)).0, Level::Peak);
        assert_eq!(raw_level(&s, 10.0, obs(0.0, 20, 0)).0, Level::Peak);
        assert_eq!(raw_level(&s, 10.0, obs(0.0, 0, 60)).0, Level::Peak);
        assert_eq!(raw_level(&s, 10.0, obs(50.0, 0, 0)).0, Level::Surge);
        assert_eq!(raw_level(&s, 10.0, obs(0.0, 100, 0)).0, Level::Surge);
        let (level, reason) = raw_level(&s, 10.0, obs(0.0, 0, 180));
        assert_eq!(level, Level::Surge);
        assert!(reason.contains("oldest wait"), "{reason}");
    }

    #[test]
    fn a_level_never_steps_down_before_its_cooldown() {
        let mut t = LevelTracker::default();
        assert_eq!(t.observe(0, Level::Surge, COOLDOWN), Some(Level::Surge));
        assert_eq!(t.observe(1_000, Level::Normal, COOLDOWN), None);
        assert_eq!(t.observe(1_000 + COOLDOWN - 1, Level::Normal, COOLDOWN), None);
        assert_eq!(t.level(), Level::Surge);
        assert_eq!(t.observe(1_000 + COOLDOWN, Level::Normal, COOLDOWN), Some(Level::Normal));
    }

    #[test]
    fn a_relapse_restarts_the_cooldown_and_steps_down_only_as_far_as_held() {
        let mut t = LevelTracker::default();
        t.observe(0, Level::Surge, COOLDOWN);
        t.observe(1_000, Level::Normal, COOLDOWN);
        t.observe(100_000, Level::Peak, COOLDOWN); // NORMAL's run breaks, PEAK's goes on
        assert_eq!(t.observe(301_000, Level::Normal, COOLDOWN), Some(Level::Peak));
        // NORMAL's own run started at 301 s, so it needs until 601 s.
        assert_eq!(t.observe(600_999, Level::Normal, COOLDOWN), None);
        assert_eq!(t.observe(601_000, Level::Normal, COOLDOWN), Some(Level::Normal));
    }

    #[test]
    fn a_clock_stepped_back_does_not_skip_the_cooldown() {
        let mut t = LevelTracker::default();
        t.observe(100_000, Level::Surge, COOLDOWN);
        t.observe(100_000, Level::Normal, COOLDOWN);
        // Wall time stepped back by 10 s (NTP): still SURGE, the cooldown holds.
        assert_eq!(t.observe(90_000, Level::Normal, COOLDOWN), None);
        assert_eq!(t.level(), Level::Surge);
    }

    #[test]
    fn going_up_is_immediate() {
        let mut t = LevelTracker::default();
        assert_eq!(t.observe(0, Level::Peak, COOLDOWN), Some(Level::Peak));
        assert_eq!(t.observe(1, Level::Surge, COOLDOWN), Some(Level::Surge));
    }
}
