//! Retention: how long a job's files and its record outlive the job.
//!
//! The API stamps its [`Retention`] on each job at submit, so whichever process ends the job (a
//! worker, a `DELETE`) dates the expiry the same way: at the end, the job gets `expires_at` (its
//! photos and outputs are deleted then, and its outputs answer 410 Gone from that moment) and
//! `record_expires_at` (later: until then the job itself still answers, saying its files
//! expired; after it, 404). Storage that expires by itself does the deleting on AWS (the
//! bucket's lifecycle rules and the table's TTL, made by `minimoto setup`); on the embedded
//! backend an [`Expiry`](crate::ports::Expiry) sweep does.

use serde::{Deserialize, Serialize};

/// Days the record of a job outlives its files by default: long enough for a client that polls
/// late to be told "expired" (410) rather than "no such job" (404).
pub const RECORD_GRACE_DAYS: u64 = 30;

/// How long after a job ends its files and its record are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Seconds the photos and outputs are kept after the job ends.
    pub files_seconds: u64,
    /// Seconds the record is kept after the job ends (no less than `files_seconds`).
    pub record_seconds: u64,
}

impl Retention {
    /// Files kept `days` days, the record [`RECORD_GRACE_DAYS`] more; `None` for 0 days (kept
    /// until deleted).
    pub fn days(days: u64) -> Option<Self> {
        (days > 0).then(|| Self {
            files_seconds: days * 86_400,
            record_seconds: (days + RECORD_GRACE_DAYS) * 86_400,
        })
    }
}

/// What one expiry sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Jobs whose photos and outputs were deleted.
    pub files: u64,
    /// Job records deleted.
    pub records: u64,
}
