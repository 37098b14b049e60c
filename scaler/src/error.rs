//! The scaler's one error type.

/// What went wrong while observing or acting on the fleet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message names it and what is allowed.
    #[error("{0}")]
    Config(String),
    /// The fleet could not launch, list or terminate workers.
    #[error("{fleet} fleet: {message}")]
    Fleet {
        fleet: &'static str,
        message: String,
    },
    /// The backend (queue or registry) could not be read or written.
    #[error(transparent)]
    Backend(#[from] minimoto_common::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn fleet(fleet: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Fleet {
            fleet,
            message: message.to_string(),
        }
    }
}
