//! Integration tests: the real binary, a real nats-server and real clients.
//! One test binary, one module per area, so linking stays cheap.

mod bad_input;
mod check_config;
mod durability;
mod grpc;
mod lease;
mod loadgen;
mod ops_kit;
mod serve;
mod simulate;
mod state_store;
mod support;
