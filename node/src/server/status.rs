//! The one place store errors become gRPC statuses.

use crate::store::StoreError;
use tonic::{Code, Status};

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        let code = match &error {
            StoreError::KeyTooLarge { .. }
            | StoreError::ValueTooLarge { .. }
            | StoreError::NotAFieldElement { .. }
            | StoreError::BatchTooLarge { .. }
            | StoreError::EmptyBatch => Code::InvalidArgument,
            StoreError::VersionNotRetained { .. } => Code::OutOfRange,
            StoreError::StorageFull { .. } => Code::ResourceExhausted,
            // The tree refuses keys that share max_levels - 1 path bits.
            StoreError::Tree(_) => Code::FailedPrecondition,
            StoreError::Closed => Code::Unavailable,
            StoreError::Corrupt(_) => Code::DataLoss,
            _ => Code::Internal,
        };
        Status::new(code, error.to_string())
    }
}
