//! The one error type of `minimoto-common`: what a port or a domain rule can say went wrong.
//!
//! Callers branch on the variant: `Conflict` means "re-read and decide again" (a compare-and-set
//! lost a race), `Backend` means infrastructure trouble that is worth retrying later.

use std::fmt::Display;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional write lost: the record changed since it was read, or already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request or the stored data breaks a rule; the message says which.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A storage backend failed (I/O, database, network): usually worth a retry.
    #[error("{backend} backend failed: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
}

impl Error {
    pub fn backend(backend: &'static str, cause: impl Display) -> Self {
        Self::Backend {
            backend,
            message: cause.to_string(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::backend("filesystem", e)
    }
}
