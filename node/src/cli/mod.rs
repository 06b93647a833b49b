//! The `rustorium` command-line client.

pub mod smt;
