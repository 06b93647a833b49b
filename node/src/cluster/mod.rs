//! Multi-node concerns on top of the store: where shards live.

pub mod placement;
