//! How a job attempt ended, and what that means for its message: the worker's error type.
//!
//! *Abort* (the input is bad, or gone): the job is final, the message is acked.
//! *Retry* (infrastructure trouble): the lease is released and the message comes back after a
//! backoff, until the attempts run out.
//!
//! Each fallible step says which it is where it happens, as `.retry(code)?` or `.abort(code)?`
//! ([`Classify`]), or `.abort_if_missing(code, …)?` for a storage read ([`ClassifyStorage`]).
//! There is deliberately no blanket conversion from storage errors: a missing photo must not be
//! retried as if the network had failed.

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

/// Classifies any failure at its call site.
pub trait Classify<T> {
    /// Infrastructure trouble: try the job again later.
    fn retry(self, code: ErrorCode) -> Result<T, Failure>;
    /// The job can never succeed: fail it with `code` and the error as its message.
    fn abort(self, code: ErrorCode) -> Result<T, Failure>;
}

impl<T, E: Display> Classify<T> for Result<T, E> {
    fn retry(self, code: ErrorCode) -> Result<T, Failure> {
        self.map_err(|e| Failure::retry(code, e))
    }

    fn abort(self, code: ErrorCode) -> Result<T, Failure> {
        self.map_err(|e| Failure::abort(code, e.to_string()))
    }
}

/// Classifies a storage call: an object that is not there aborts the job, anything else is a
/// storage failure worth a retry.
pub trait ClassifyStorage<T> {
    fn abort_if_missing(
        self,
        code: ErrorCode,
        message: impl FnOnce() -> String,
    ) -> Result<T, Failure>;
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
            Err(e) => Err(Failure::retry(ErrorCode::StorageFailed, e)),
        }
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
}
