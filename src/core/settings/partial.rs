//! The file form of `[levels]`: every key optional, filled from the defaults
//! of the level it belongs to.

use super::{duration_text, LevelSettings, LevelThresholds, Playbook};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdsFile {
    arrival_ratio: Option<f64>,
    queue_length: Option<u32>,
    #[serde(with = "duration_text::option")]
    oldest_wait: Option<Duration>,
    occupancy: Option<f64>,
}

impl ThresholdsFile {
    fn over(self, base: LevelThresholds) -> LevelThresholds {
        LevelThresholds {
            arrival_ratio: self.arrival_ratio.unwrap_or(base.arrival_ratio),
            queue_length: self.queue_length.unwrap_or(base.queue_length),
            oldest_wait: self.oldest_wait.unwrap_or(base.oldest_wait),
            occupancy: self.occupancy.unwrap_or(base.occupancy),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybookFile {
    reserve_ratio: Option<f64>,
    #[serde(with = "duration_text::option")]
    overflow_after: Option<Duration>,
    extra_concurrent: Option<u32>,
    deflect_low_pre_sales: Option<bool>,
    standby_reserve: Option<f64>,
    enforce_fatigue: Option<bool>,
}

impl PlaybookFile {
    fn over(self, base: Playbook) -> Playbook {
        Playbook {
            reserve_ratio: self.reserve_ratio.unwrap_or(base.reserve_ratio),
            overflow_after: self.overflow_after.unwrap_or(base.overflow_after),
            extra_concurrent: self.extra_concurrent.unwrap_or(base.extra_concurrent),
            deflect_low_pre_sales: self.deflect_low_pre_sales.unwrap_or(base.deflect_low_pre_sales),
            standby_reserve: self.standby_reserve.unwrap_or(base.standby_reserve),
            enforce_fatigue: self.enforce_fatigue.unwrap_or(base.enforce_fatigue),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LevelsFile {
    #[serde(with = "duration_text::option")]
    window: Option<Duration>,
    #[serde(with = "duration_text::option")]
    cooldown: Option<Duration>,
    peak: ThresholdsFile,
    surge: ThresholdsFile,
    normal_playbook: PlaybookFile,
    peak_playbook: PlaybookFile,
    surge_playbook: PlaybookFile,
}

impl From<LevelsFile> for LevelSettings {
    fn from(file: LevelsFile) -> LevelSettings {
        let d = LevelSettings::default();
        LevelSettings {
            window: file.window.unwrap_or(d.window),
            cooldown: file.cooldown.unwrap_or(d.cooldown),
            peak: file.peak.over(d.peak),
            surge: file.surge.over(d.surge),
            normal_playbook: file.normal_playbook.over(d.normal_playbook),
            peak_playbook: file.peak_playbook.over(d.peak_playbook),
            surge_playbook: file.surge_playbook.over(d.surge_playbook),
        }
    }
}
