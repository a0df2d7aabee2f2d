//! `ticket-router simulate`: replays a promotion day offline through the same
//! routing core the service runs, with simulated customers and agents and no
//! NATS, so a team can try a changed configuration on last year's Double 11
//! before this year's.
//!
//! It must not decide anything about routing: every offer, deflection, level
//! and staffing number comes from [`crate::core::Router`], driven by the same
//! commands the service sends. It reads files and returns text; printing and
//! exit codes belong to `crate::cli`.
//!
//! # Layout
//!
//! * [`scenario`] — the TOML scenario format (serde, unknown keys refused).
//! * [`clock`] — start instants and clock times such as `"+1 20:00"`.
//! * [`plan`] — a scenario checked and turned into timed events; `plan_checks`
//!   — a plan against a configuration.
//! * [`traffic`] — the arrival curve, mixes and handle times; draws inquiries.
//! * [`recorded`] — inquiries replayed from a JSONL recording.
//! * [`engine`] — the discrete-event loop around the core.
//! * [`stats`], [`report`], [`chart`] — what was measured, as a table and an SVG.
//! * `rng` — a tiny seeded random source.

pub mod chart;
pub mod clock;
pub mod engine;
pub mod plan;
mod plan_checks;
pub mod recorded;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod traffic;

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod tests;

pub use engine::{check, run, Outcome};

/// Why a simulation cannot run. Every message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The scenario file cannot be read or parsed; the text names the file, key and line.
    #[error("{0}")]
    Scenario(String),
    /// The scenario parsed but has bad values: every problem, each `key.path: message`.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The recording cannot be read or has no usable inquiry in the window.
    #[error("{0}")]
    Recording(String),
    /// The scenario does not fit the routing configuration (e.g. unknown groups).
    #[error("{}", .0.join("\n"))]
    Configuration(Vec<String>),
}
pub use plan::{compile, Plan};
pub use scenario::Scenario;
