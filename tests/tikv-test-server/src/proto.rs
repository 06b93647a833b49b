//! Wire types generated from tikv-client's own `.proto` files (see build.rs).
//! One module per protobuf package, as prost's cross-package paths expect.
#![allow(clippy::all, clippy::pedantic, missing_debug_implementations, rustdoc::all)]

macro_rules! packages {
    ($($name:ident),* $(,)?) => {$(
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".rs"));
        }
    )*};
}

packages!(
    deadlock,
    disk_usage,
    encryptionpb,
    eraftpb,
    errorpb,
    keyspacepb,
    kvrpcpb,
    metapb,
    pdpb,
    raft_serverpb,
    replication_modepb,
    resource_manager,
    tracepb,
);
