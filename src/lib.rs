//! ticket-router: routes customer-service inquiries to skill groups and agents.
//!
//! # Layout
//!
//! * [`core`] — the pure, deterministic routing engine: commands in, effects out,
//!   time passed in. No I/O, no clock, no async.
//! * [`cli`] — the subcommands of the binary.
//! * [`config`] — the TOML configuration file, environment overrides and
//!   `check-config` validation.
//! * [`proto`] — code generated from `proto/ticketrouter/v1`.

pub mod cli;
pub mod config;
pub mod core;
pub mod proto;
