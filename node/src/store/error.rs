//! Errors of the embedded store.

use std::path::PathBuf;

/// Why a store operation failed. Bad input never changes stored data.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("key is {got} bytes, over the limit of {max}")]
    KeyTooLarge { got: usize, max: usize },
    #[error("value is {got} bytes, over the limit of {max}")]
    ValueTooLarge { got: usize, max: usize },
    #[error("field-mode {what} must be a 32-byte little-endian field element below r: {source}")]
    NotAFieldElement {
        what: &'static str,
        source: rustorium_core::FieldError,
    },
    #[error("batch has {got} ops, over the limit of {max}")]
    BatchTooLarge { got: usize, max: usize },
    #[error("empty batch")]
    EmptyBatch,
    #[error("version {requested} is not retained (retained: {oldest}..={latest})")]
    VersionNotRetained { requested: u64, oldest: u64, latest: u64 },
    #[error("the store would grow past max_size ({max_size} bytes; now {used}, batch adds about {adding})")]
    StorageFull { max_size: u64, used: u64, adding: u64 },
    #[error("tree: {0}")]
    Tree(String),
    #[error("wrong encryption key for {path}")]
    WrongEncryptionKey { path: PathBuf },
    #[error("{0}")]
    EncryptionKey(String),
    #[error("the database was created with {stored}, but the config says {configured}")]
    ConfigMismatch { stored: String, configured: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend: {0}")]
    Backend(#[from] super::backend::BackendError),
    #[error("the store is shut down")]
    Closed,
    /// Something that cannot happen did, after the request's writes were
    /// committed: they stand; only the answer is missing.
    #[error("internal error after the commit: {0}")]
    Internal(String),
    /// Another owner committed under a newer epoch: this writer lost the
    /// shard and must not write (the new owner has every write it made).
    #[error("fenced: this writer holds epoch {mine}, but version {version} was committed under epoch {current}")]
    Fenced { mine: u64, current: u64, version: u64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
