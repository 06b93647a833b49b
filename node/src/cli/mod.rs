//! The `rustorium` command-line client: the offline `smt` tool and the
//! commands that talk to a node. Each command verifies every proof it gets
//! before printing anything; a failed verification is exit code 3
//! ([`error::CliError::exit_code`]).
//!
//! - `client.rs`: connection flags, bearer token, deadlines, GetRoot, proof checks.
//! - `encoding.rs`: text / hex / field-element keys and values, roots, durations.
//! - `kv.rs`: `put`, `get`, `del`, `root`.
//! - `proofs.rs`: `proof`, `verify`.
//! - `watch.rs`: `watch`.
//! - `transfer.rs`: `import`, `export`.

pub mod client;
pub mod encoding;
pub mod error;
pub mod kv;
pub mod proofs;
pub mod smt;
pub mod transfer;
pub mod watch;
