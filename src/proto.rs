//! Protobuf messages and gRPC services generated from `proto/ticketrouter/v1`.

#![allow(missing_docs, clippy::all)]

tonic::include_proto!("ticketrouter.v1");
include!(concat!(env!("OUT_DIR"), "/ticketrouter.v1.serde.rs"));

/// Encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ticketrouter_descriptor");
