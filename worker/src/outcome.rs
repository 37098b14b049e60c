//! How a job attempt ended, and what that means for its message: the worker's error type.
//!
//! *Abort* (the input is bad, or the job was cancelled): the job is final, the message is acked.
//! *Retry* (infrastructure trouble): the lease is released and the message comes back after a
//! backoff, until the attempts run out.

use minimoto_common::job::JobError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Retrying cannot help: fail the job with this error.
    #[error("{}: {}", .0.code, .0.message)]
    Abort(JobError),
    /// Worth another attempt: `code` and `message` say what went wrong, for the job if attempts run out.
    #[error("{code}: {message}")]
    Retry { code: &'static str, message: String },
    /// The job was cancelled, or its lease taken: stop quietly.
    #[error("the job was cancelled or taken over")]
    Stopped,
}

impl Failure {
    pub fn retry(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Retry {
            code,
            message: message.to_string(),
        }
    }
}

impl From<minimoto_common::Error> for Failure {
    fn from(e: minimoto_common::Error) -> Self {
        Self::retry("storage-failed", e)
    }
}
