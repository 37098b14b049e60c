//! How a job attempt ended, and what that means for its message: the worker's error type.
//!
//! *Abort* (the input is bad, or gone): the job is final, the message is acked.
//! *Retry* (infrastructure trouble): the lease is released and the message comes back after a
//! backoff, until the attempts run out.
//!
//! Each fallible step says which it is where it happens: `.abort_if_missing(code, …)?` for a
//! storage read and `.retry_storage()?` for a write ([`ClassifyStorage`]), `scratch_failure` for
//! the worker's own disk; full storage is `no-space` wherever it is hit. There is deliberately no
//! blanket conversion from storage errors: a missing photo must not be retried as if the network
//! had failed.

use std::fmt::Display;

use minimoto_common::{ErrorCode, job::JobError};

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Retrying cannot help: fail the job with this error.
    #[error("{}: {}", .0.code, .0.message)]
    Abort(JobError),
    /// Worth another attempt: `code` and `message` say what went wrong, for the job if attempts run out.
    #[error("{code}: {message}")]
    Retry { code: ErrorCode, message: String },
    /// The job was cancelled, or its lease taken: stop quietly.
    #[error("the job was cancelled or taken over")]
    Stopped,
}

impl Failure {
    pub fn retry(code: ErrorCode, message: impl Display) -> Self {
        Self::Retry {
            code,
            message: message.to_string(),
        }
    }

    pub fn abort(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Abort(JobError::new(code, message))
    }
}

/// Classifies a storage call: an object that is not there aborts the job, full storage is
/// `no-space` (retried after a long wait), anything else a storage failure worth a retry.
pub trait ClassifyStorage<T> {
    fn abort_if_missing(
        self,
        code: ErrorCode,
        message: impl FnOnce() -> String,
    ) -> Result<T, Failure>;

    /// A write: full storage is `no-space`, anything else `storage-failed`; both retried.
    fn retry_storage(self) -> Result<T, Failure>;
}

/// A retry for a storage failure: `no-space` when it says storage is full.
fn storage_retry(e: minimoto_common::Error) -> Failure {
    match e {
        minimoto_common::Error::StorageFull { .. } => Failure::retry(ErrorCode::NoSpace, e),
        e => Failure::retry(ErrorCode::StorageFailed, e),
    }
}

/// A failed write to the worker's scratch disk: `no-space` when the disk is full.
pub fn scratch_failure(e: std::io::Error) -> Failure {
    let code = if minimoto_common::error::is_storage_full(&e) {
        ErrorCode::NoSpace
    } else {
        ErrorCode::ScratchFailed
    };
    Failure::retry(code, e)
}

impl<T> ClassifyStorage<T> for minimoto_common::Result<T> {
    fn abort_if_missing(
        self,
        code: ErrorCode,
        message: impl FnOnce() -> String,
    ) -> Result<T, Failure> {
        match self {
            Ok(v) => Ok(v),
            Err(minimoto_common::Error::NotFound(_)) => Err(Failure::abort(code, message())),
            Err(e) => Err(storage_retry(e)),
        }
    }

    fn retry_storage(self) -> Result<T, Failure> {
        self.map_err(storage_retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_object_aborts_and_an_outage_retries() {
        let missing: minimoto_common::Result<()> = Err(minimoto_common::Error::NotFound(
            "inputs/x/0000.jpeg".into(),
        ));
        match missing.abort_if_missing(ErrorCode::InputMissing, || "photo 1 is gone".into()) {
            Err(Failure::Abort(e)) => {
                assert_eq!(e.code, ErrorCode::InputMissing);
                assert_eq!(e.message, "photo 1 is gone");
            }
            other => panic!("{other:?}"),
        }
        let outage: minimoto_common::Result<()> =
            Err(minimoto_common::Error::backend("s3", "connection reset"));
        match outage.abort_if_missing(ErrorCode::InputMissing, || unreachable!()) {
            Err(Failure::Retry { code, message }) => {
                assert_eq!(code, ErrorCode::StorageFailed);
                assert!(message.contains("connection reset"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn full_storage_is_no_space_wherever_it_is_hit() {
        let full: minimoto_common::Result<()> =
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull).into());
        match full.abort_if_missing(ErrorCode::InputMissing, || unreachable!()) {
            Err(Failure::Retry { code, .. }) => assert_eq!(code, ErrorCode::NoSpace),
            other => panic!("{other:?}"),
        }
        let full: minimoto_common::Result<()> = Err(minimoto_common::Error::StorageFull {
            backend: "sqlite",
            message: "database or disk is full".into(),
        });
        assert!(matches!(
            full.retry_storage(),
            Err(Failure::Retry {
                code: ErrorCode::NoSpace,
                ..
            })
        ));
        let down: minimoto_common::Result<()> = Err(minimoto_common::Error::backend("s3", "reset"));
        assert!(matches!(
            down.retry_storage(),
            Err(Failure::Retry {
                code: ErrorCode::StorageFailed,
                ..
            })
        ));
        match scratch_failure(std::io::ErrorKind::QuotaExceeded.into()) {
            Failure::Retry { code, .. } => assert_eq!(code, ErrorCode::NoSpace),
            other => panic!("{other:?}"),
        }
    }
}
