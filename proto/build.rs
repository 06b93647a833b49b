//! Generates the `rustorium.v1` messages, the tonic client and server, and a
//! file descriptor set for gRPC reflection, all into `OUT_DIR`.
//!
//! Needs `protoc` (the `PROTOC` environment variable, else `protoc` on the
//! `PATH`); on Debian it is the `protobuf-compiler` package.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROTOS: &[&str] = &["rustorium/v1/store.proto"];
const INCLUDES: &[&str] = &["."];

fn main() {
    println!("cargo:rerun-if-env-changed=PROTOC");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    ensure_protoc();

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The `transport` feature of this crate turns on tonic's; without it the
    // generated client has no `connect` (tonic::transport does not exist).
    let transport = env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    let result = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(transport)
        .file_descriptor_set_path(out_dir.join("rustorium_descriptor.bin"))
        .compile_protos(PROTOS, INCLUDES);
    if let Err(error) = result {
        panic!("compiling {PROTOS:?} failed:\n{error}");
    }
}

/// Fails the build with the fix spelled out when protoc cannot run.
fn ensure_protoc() {
    let protoc = env::var_os("PROTOC").unwrap_or_else(|| "protoc".into());
    match Command::new(&protoc).arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`{} --version` failed ({}): {}\nrustorium-proto needs a working protoc: \
             on Debian/Ubuntu run `apt-get install -y protobuf-compiler`, \
             or set PROTOC to a protoc binary.",
            protoc.to_string_lossy(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
        ),
        Err(error) => panic!(
            "cannot run protoc (`{}`: {error}).\nrustorium-proto compiles \
             proto/rustorium/v1/store.proto with protoc: on Debian/Ubuntu run \
             `apt-get update && apt-get install -y protobuf-compiler`, \
             or set PROTOC to a protoc binary.",
            protoc.to_string_lossy(),
        ),
    }
}
