//! The local adapters' one error type: what SQLite or the file system said, kept apart from the
//! port's [`minimoto_common::Error`] only until it leaves this crate.

/// A failure inside a database call; becomes the port's error at the crate's edge.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A port-level outcome decided inside the call (a lost compare-and-set, a missing row).
    #[error(transparent)]
    Port(#[from] minimoto_common::Error),
}

impl From<DbError> for minimoto_common::Error {
    fn from(e: DbError) -> Self {
        match e {
            // SQLITE_FULL: the disk (or the database's size limit) is full.
            DbError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                Self::StorageFull {
                    backend: "sqlite",
                    message: e.to_string(),
                }
            }
            DbError::Sqlite(e) => Self::backend("sqlite", e),
            DbError::Io(e) => e.into(),
            DbError::Port(e) => e,
        }
    }
}
