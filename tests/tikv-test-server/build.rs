//! Generates the PD, TiKV and keyspace message types from the `.proto` files
//! that ship inside the tikv-client package this workspace locks, so the test
//! server speaks exactly the wire format of the client it tests.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=TIKV_CLIENT_PROTO_DIR");
    let proto_dir = match std::env::var_os("TIKV_CLIENT_PROTO_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => locate_package_protos(),
    };
    let include = proto_dir.join("include");
    let files = ["kvrpcpb.proto", "pdpb.proto", "keyspacepb.proto"].map(|f| proto_dir.join(f));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    prost_build::Config::new()
        .compile_protos(&files, &[proto_dir.as_path(), include.as_path()])
        .unwrap_or_else(|e| panic!("compiling tikv-client's protos in {}: {e}", proto_dir.display()));
}

/// `<cargo home>/registry/src/<index>/tikv-client-<locked version>/proto`.
fn locate_package_protos() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let lock_file = manifest_dir.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_file.display());
    let lock = std::fs::read_to_string(&lock_file).unwrap_or_else(|e| panic!("reading {}: {e}", lock_file.display()));
    let version = locked_version(&lock, "tikv-client").expect("Cargo.lock locks a tikv-client version");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registry = cargo_home.join("registry/src");
    let package = format!("tikv-client-{version}");
    let entries = std::fs::read_dir(&registry).unwrap_or_else(|e| panic!("reading {}: {e}", registry.display()));
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(&package).join("proto"))
        .find(|dir| dir.join("kvrpcpb.proto").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {package}/proto under {}; set TIKV_CLIENT_PROTO_DIR to the package's proto directory",
                registry.display()
            )
        })
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_owned());
        }
    }
    None
}
