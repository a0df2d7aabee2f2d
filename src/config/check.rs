//! What `ticket-router check-config FILE` prints: one `FILE: path: message` line per
//! problem, or a one-line summary of a good file. Printing and the exit code are the
//! binary's job; this module only builds the text.

use super::{Config, EnvSource, Problem};
use std::fmt;
use std::path::{Path, PathBuf};

/// Loads and validates `path` with the overrides of `env`, returning every problem.
pub fn check_config(path: &Path, env: &impl EnvSource) -> Result<Config, Vec<Problem>> {
    Config::load(path, env).map_err(|errors| errors.problems)
}

/// The problems of one configuration file; displays as a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", Report::new(file, problems))]
pub struct ConfigErrors {
    /// The file that was loaded.
    pub file: PathBuf,
    /// Every problem found, section by section.
    pub problems: Vec<Problem>,
}

/// Displays problems as `FILE: path: message`, one per line.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    file: &'a Path,
    problems: &'a [Problem],
}

impl<'a> Report<'a> {
    /// A report of `problems` found in `file`.
    pub fn new(file: &'a Path, problems: &'a [Problem]) -> Report<'a> {
        Report { file, problems }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", self.file.display())?;
        }
        Ok(())
    }
}

impl Config {
    /// One line for `check-config` on success: the groups and the level thresholds.
    pub fn summary(&self) -> String {
        let groups: Vec<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        let level = |name: &str, t: &crate::core::settings::LevelThresholds| {
            format!(
                "{name} at {}x baseline, {} queued or {} wait",
                t.arrival_ratio,
                t.queue_length,
                humantime::format_duration(t.oldest_wait)
            )
        };
        format!(
            "ok: {} groups ({}); {}; {}; gRPC auth {}",
            groups.len(),
            groups.join(", "),
            level("PEAK", &self.levels.peak),
            level("SURGE", &self.levels.surge),
            self.grpc.auth.mode
        )
    }
}
