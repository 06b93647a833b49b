//! The one place store errors become gRPC statuses.

use crate::store::StoreError;
use crate::store::backend::BackendErrorKind;
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
            // The shard moved to another owner: the client retries (any node
            // forwards to the new one).
            StoreError::Fenced { .. } => Code::Unavailable,
            StoreError::Corrupt(_) => Code::DataLoss,
            // Other writers kept winning: the client may retry the request.
            StoreError::Backend(e) if e.kind == BackendErrorKind::Conflict => Code::Aborted,
            StoreError::Backend(e) if e.kind == BackendErrorKind::Retryable => Code::Unavailable,
            // The write may or may not have landed: read before retrying.
            StoreError::Backend(e) if e.kind == BackendErrorKind::Unknown => Code::Unknown,
            _ => Code::Internal,
        };
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::BackendError;

    #[test]
    fn backend_failures_map_by_what_the_client_can_do() {
        let status = |e: BackendError| Status::from(StoreError::Backend(e)).code();
        assert_eq!(status(BackendError::conflict("commit", "lost")), Code::Aborted);
        assert_eq!(status(BackendError::retryable("commit", "busy")), Code::Unavailable);
        assert_eq!(status(BackendError::unknown("commit", "?")), Code::Unknown);
        assert_eq!(status(BackendError::new("commit", "disk")), Code::Internal);
    }
}
