//! ticket-router: routes customer-service inquiries to skill groups and agents.
//!
//! # Layout
//!
//! * [`core`] — the pure, deterministic routing engine: commands in, effects out,
//!   time passed in. No I/O, no clock, no async.
//! * [`allocator`] — how the binary's allocator keeps freed memory.
//! * [`adapters`] — NATS, gRPC, metrics and the engine task around the core.
//! * [`cli`] — the subcommands of the binary.
//! * [`config`] — the TOML configuration file, environment overrides and
//!   `check-config` validation.
//! * [`loadgen`] — `ticket-router loadgen`: realistic traffic to a real NATS
//!   and simulated agents over gRPC, live status, and the benchmark mode.
//! * [`proto`] — code generated from `proto/ticketrouter/v1`.
//! * [`rng`] — the seeded random source of `simulate` and `loadgen`.
//! * [`simulate`] — `ticket-router simulate`: a promotion day replayed offline
//!   through the same core, with simulated agents, reported as a table and chart.

pub mod adapters;
pub mod allocator;
pub mod cli;
pub mod config;
pub mod core;
pub mod loadgen;
pub mod proto;
pub mod rng;
pub mod simulate;
