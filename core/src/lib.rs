//! # rustorium-core
//!
//! The pure heart of Rustorium: the BN254 scalar field, Poseidon with
//! circomlib's parameters, the iden3 sparse Merkle tree with batched updates,
//! and its proofs with their one verification routine. `no_std` + `alloc`, no
//! I/O, no async, no global state; it builds for native targets and wasm32.
//!
//! ## Formulas (iden3 / circomlib, byte for byte)
//! - field: BN254 scalar field `r = 21888242871839275222246405745257275088548364400416034343698204186575808495617`;
//!   bytes are 32-byte little-endian, JSON is decimal, non-canonical input is an error.
//! - `leaf = Poseidon(key, value, 1)`, `middle = Poseidon(left, right)`, `empty = 0`.
//! - the path of a key is its bits, least significant first from the root; bit 1 goes right.
//! - a subtree holding one leaf is that leaf, placed at the shallowest level where its path is unique;
//!   a leaf sits at depth `<= max_levels - 1`.
//! - bytes mode: see [`bytes::bytes_to_field`].
//!
//! ## Features
//! - `std` (default): nothing changes but `std` error conveniences.
//! - `parallel`: batch updates hash disjoint subtrees on all cores (rayon).
//! - `serde`: serde forms of the JSON encodings.
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod bytes;
pub mod field;
pub mod poseidon;
pub mod proof;
pub mod tree;

pub use field::{FieldError, Fr};
pub use poseidon::{PoseidonCache, PoseidonError, hash2, hash3, poseidon};
