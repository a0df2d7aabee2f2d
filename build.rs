//! Generates the protobuf and gRPC code from `proto/` with a vendored `protoc`,
//! so a fresh machine needs no system protobuf compiler, plus serde impls for
//! the JSON form of every message.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; tonic-prost-build reads PROTOC.
    unsafe { env::set_var("PROTOC", protoc) };
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("ticketrouter_descriptor.bin"))
        .compile_protos(&["proto/ticketrouter/v1/ticketrouter.proto"], &["proto"])?;
    // serde impls in the protobuf JSON mapping, with the proto field names
    // (snake_case) and enum value names, as the NATS contract specifies. Fields
    // at their default are written too: a consumer reading `"to": "NORMAL"` or
    // `"vip_tier": 0` should not have to know the protobuf defaults.
    let descriptors = std::fs::read(out_dir.join("ticketrouter_descriptor.bin"))?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .emit_fields()
        .ignore_unknown_fields()
        .build(&[".ticketrouter.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
