//! # rustorium-node
//!
//! The parts of Rustorium that do I/O: the command-line client's offline
//! tools today; the storage engine, backends and server as they land.

pub mod cli;
pub mod cluster;
pub mod server;
pub mod store;
