//! Retention: how long a job's files and its record outlive the job.
//!
//! The API stamps its [`Retention`] on each job at submit, so whichever process ends the job (a
//! worker, a `DELETE`) dates the expiry the same way: at the end, the job gets `expires_at` (its
//! photos and outputs are deleted then, and its outputs answer 410 Gone from that moment) and
//! `record_expires_at` (later: until then the job itself still answers, saying its files
//! expired; after it, 404). Storage that expires by itself does the deleting on AWS (the
//! bucket's lifecycle rules and the table's TTL, made by `minimoto setup`); on the embedded
//! backend an [`Expiry`](crate::ports::Expiry) sweep does.

use std::str::FromStr;

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
        Self::seconds(days * DAY)
    }

    /// Files kept `seconds`, the record [`RECORD_GRACE_DAYS`] more; `None` for 0.
    pub fn seconds(seconds: u64) -> Option<Self> {
        (seconds > 0).then(|| Self {
            files_seconds: seconds,
            record_seconds: seconds + RECORD_GRACE_DAYS * DAY,
        })
    }
}

const DAY: u64 = 86_400;

/// A retention as operators give it (`--retention-days`): days, fractions allowed (`0.25` is
/// six hours, for a service that keeps renders only briefly), 0 to [`Self::MAX_DAYS`], to the
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    seconds: u64,
}

impl RetentionDays {
    /// Ten years: longer is "kept until deleted", which is 0.
    pub const MAX_DAYS: u64 = 3650;

    /// The files' retention this stamps on jobs; `None` for 0 (kept until deleted).
    pub fn retention(self) -> Option<Retention> {
        Retention::seconds(self.seconds)
    }

    /// The whole days of a storage rule that counts in days (S3 lifecycle): rounded up, so a
    /// fraction never makes a shorter rule than asked.
    pub fn whole_days_up(self) -> u32 {
        u32::try_from(self.seconds.div_ceil(DAY)).unwrap_or(u32::MAX)
    }
}

impl FromStr for RetentionDays {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rule = format!("days from 0 to {} (fractions allowed)", Self::MAX_DAYS);
        let days: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number of {rule}"))?;
        if !(0.0..=Self::MAX_DAYS as f64).contains(&days) {
            return Err(format!("{s}: must be {rule}"));
        }
        // In range and finite, so the product fits.
        let exact = days * DAY as f64;
        if days > 0.0 && exact < 1.0 {
            return Err(format!(
                "{s} days is less than a second: give 0 to keep files until deleted, or at least 0.0000116 (1 s)"
            ));
        }
        Ok(Self {
            seconds: exact.round() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_to_the_second_with_fractions_and_bounds() {
        let days = |s: &str| s.parse::<RetentionDays>();
        assert_eq!(
            days("30").map(RetentionDays::retention),
            Ok(Retention::days(30))
        );
        assert_eq!(days("0").map(RetentionDays::retention), Ok(None));
        let quarter = days("0.25").expect("a quarter day");
        assert_eq!(quarter.retention().map(|r| r.files_seconds), Some(21_600));
        assert_eq!(
            quarter.retention().map(|r| r.record_seconds),
            Some(21_600 + RECORD_GRACE_DAYS * DAY)
        );
        assert_eq!(
            quarter.whole_days_up(),
            1,
            "a fraction never makes a shorter rule"
        );
        assert_eq!(days("3650").map(RetentionDays::whole_days_up), Ok(3650));
        assert_eq!(days("0.0000116").map(|d| d.seconds), Ok(1), "one second");
        for (bad, says) in [
            ("-1", "must be days from 0 to 3650"),
            ("3650.5", "must be days from 0 to 3650"),
            ("NaN", "must be days"),
            ("inf", "must be days"),
            ("ten", "is not a number"),
            ("0.000001", "less than a second"),
            ("0.0000115", "less than a second"),
        ] {
            let err = days(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
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
