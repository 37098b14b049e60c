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
    /// Storage is full (no space left on a disk, a database or a quota): worth a retry only
    /// once an operator has made room, so callers wait longer than for [`Error::Backend`].
    #[error("{backend} is full: {message}")]
    StorageFull {
        backend: &'static str,
        message: String,
    },
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
        if is_storage_full(&e) {
            Self::StorageFull {
                backend: "filesystem",
                message: e.to_string(),
            }
        } else {
            Self::backend("filesystem", e)
        }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_storage_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
