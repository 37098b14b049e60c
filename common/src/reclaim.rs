//! Reclaiming what crashes leave in storage: files no job owns.
//!
//! A submission stores its photos before its record exists (see the API's `submit`), so a
//! process killed in between leaves photos that no job owns; a blob store that writes by rename
//! leaves a temporary file when killed mid-write. [`Reclaimer::sweep`] removes both, once they
//! are older than a grace period that no live submission or write lasts:
//! - every folder under [`layout::INPUTS`] and [`layout::OUTPUTS`] whose job id is older than
//!   the grace and has no record (ids are UUIDv7, so the folder name says when it was made);
//! - the store's debris ([`BlobStore::remove_debris`]) older than the grace.
//!
//! So an orphan lives at most `grace + interval` (the sweep's period). Folders are listed in id
//! order, which is creation order: a sweep stops at the first id younger than the grace, and the
//! next one starts after the last id it settled.

use std::time::Duration;

use crate::{
    error::Result,
    ids::JobId,
    layout,
    ports::{BlobStore, JobStore},
};

/// Folders listed per page.
const PAGE: usize = 500;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Job folders (photos or outputs) that no job record owned.
    pub orphans: u64,
    /// Objects inside them.
    pub objects: u64,
    /// Temporary files of interrupted writes.
    pub debris: u64,
}

/// Sweeps one store against one job store; keeps where it got to between sweeps.
#[derive(Debug)]
pub struct Reclaimer<'a> {
    blobs: &'a dyn BlobStore,
    jobs: &'a dyn JobStore,
    grace: Duration,
    /// Per prefix, the last folder settled (every folder up to it is owned or gone).
    settled: [Option<String>; 2],
}

impl<'a> Reclaimer<'a> {
    pub fn new(blobs: &'a dyn BlobStore, jobs: &'a dyn JobStore, grace: Duration) -> Self {
        Self {
            blobs,
            jobs,
            grace,
            settled: [None, None],
        }
    }

    pub async fn sweep(&mut self) -> Result<Swept> {
        let mut swept = Swept {
            debris: self.blobs.remove_debris(self.grace).await?,
            ..Swept::default()
        };
        for (i, prefix) in [layout::INPUTS, layout::OUTPUTS].into_iter().enumerate() {
            'pages: loop {
                let page = self
                    .blobs
                    .folders(prefix, self.settled[i].as_deref(), PAGE)
                    .await?;
                for name in &page {
                    // A folder that is not a job id is not ours to judge.
                    if let Ok(id) = name.parse::<JobId>() {
                        if id.age() < self.grace {
                            break 'pages;
                        }
                        if self.jobs.get(id).await?.is_none() {
                            swept.objects += self
                                .blobs
                                .delete_prefix(&format!("{prefix}{name}/"))
                                .await?;
                            swept.orphans += 1;
                        }
                    }
                    self.settled[i] = Some(name.clone());
                }
                if page.len() < PAGE {
                    break;
                }
            }
        }
        Ok(swept)
    }
}
