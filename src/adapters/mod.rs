//! Thin adapters around the routing core: they convert, carry effects out and
//! count; they decide nothing.
//!
//! * [`engine`] — the task that owns the core; commands and queries reach it
//!   through an [`engine::EngineHandle`], effects leave through sinks.
//! * [`codec`] — inbound payloads to core values, with every input check.
//! * [`convert`] — core values to wire messages.
//! * [`grpc`] — the agent-desktop, handoff and ops gRPC server.
//! * [`nats`] — the inbound consumer and the outbound publisher.
//! * [`persistence`] — routing state in a JetStream key-value bucket, and the journal.
//! * [`metrics`] — Prometheus names, recorder, `/metrics` and the counting sink.
//! * [`serve`] — `ticket-router serve`: wiring and ordered shutdown.
//! * [`redact`] — ids and subjects as logs show them (long digit runs masked).

pub mod codec;
pub mod convert;
pub mod engine;
pub mod grpc;
pub mod metrics;
pub mod nats;
pub mod persistence;
pub mod redact;
pub mod serve;
pub mod watchdog;
