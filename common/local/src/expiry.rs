//! Retention on the embedded backend: deletes the files of expired jobs, and later their records
//! (see [`minimoto_common::retention`]). Crash-safe by order: the files go before the record says
//! so, so a sweep cut short deletes them again next time; deleting is idempotent.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use minimoto_common::{
    error::Result,
    ids::JobId,
    layout,
    ports::{BlobStore, Expiry, JobStore, Update, update_job},
    retention::Expired,
};

use crate::jobs::SqliteJobStore;

/// Jobs looked at per round of a sweep.
const BATCH: usize = 100;

/// The expiry sweep over one data directory's jobs and files.
#[derive(Debug, Clone)]
pub struct LocalExpiry {
    jobs: SqliteJobStore,
    blobs: Arc<dyn BlobStore>,
}

impl LocalExpiry {
    pub fn new(jobs: SqliteJobStore, blobs: Arc<dyn BlobStore>) -> Self {
        Self { jobs, blobs }
    }
}

#[async_trait]
impl Expiry for LocalExpiry {
    async fn sweep(&self, now: DateTime<Utc>) -> Result<Expired> {
        let mut expired = Expired::default();
        loop {
            let due = self.jobs.due_sweeps(now, BATCH).await?;
            let (round, before) = (due.len(), expired);
            for id in due {
                // One job that cannot be swept (a file that will not go) must not hold up the
                // rest: it is logged and tried again at the next sweep.
                match self.sweep_one(id, now).await {
                    Ok(Swept::Files) => expired.files += 1,
                    Ok(Swept::Record) => expired.records += 1,
                    Ok(Swept::Nothing) => {}
                    Err(e) => {
                        tracing::warn!(job_id = %id, error = %e, "cannot delete what retention expired; trying again at the next sweep");
                    }
                }
            }
            // A full round that changed nothing would find the same jobs again.
            if round < BATCH || expired == before {
                return Ok(expired);
            }
        }
    }
}

/// What the sweep did to one job.
enum Swept {
    Files,
    Record,
    Nothing,
}

impl LocalExpiry {
    async fn sweep_one(&self, id: JobId, now: DateTime<Utc>) -> Result<Swept> {
        let Some(job) = self.jobs.get(id).await? else {
            return Ok(Swept::Nothing);
        };
        if job.files_expired_at.is_some() {
            // Its files went in an earlier sweep: now the record, once it has expired too.
            if job.record_expired(now) && self.jobs.delete(id).await? {
                return Ok(Swept::Record);
            }
            return Ok(Swept::Nothing);
        }
        if !job.files_expired(now) {
            return Ok(Swept::Nothing);
        }
        for prefix in [layout::inputs_of(id), layout::outputs_of(id)] {
            self.blobs.delete_prefix(&prefix).await?;
        }
        Ok(
            match update_job(&self.jobs, id, |j| j.expire_files(now)).await? {
                Update::Done(_) => Swept::Files,
                Update::Refused(..) => Swept::Nothing,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use minimoto_common::{job::Job, retention::Retention, spec::RenderSpec};

    use super::*;
    use crate::{blob::LocalBlobStore, db::Db, signing::UrlSigner};

    #[tokio::test]
    async fn expired_files_go_first_and_the_record_after_its_grace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = SqliteJobStore::new(Db::open(&dir.path().join("m.db")).expect("db"));
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(
            dir.path().join("blobs"),
            UrlSigner::new(vec![1; 32], "http://127.0.0.1:1"),
        ));
        let expiry = LocalExpiry::new(jobs.clone(), blobs.clone());
        let t0 = Utc::now();
        let file = dir.path().join("f");
        std::fs::write(&file, b"bytes").expect("write");
        let mut ids = Vec::new();
        for retention in [Retention::days(1), None] {
            let id = JobId::new();
            let mut job = Job::new(id, RenderSpec::default(), Vec::new(), t0);
            job.retention = retention;
            job.cancel(t0).expect("end");
            jobs.create(&job).await.expect("create");
            for key in [layout::input(id, 0, "jpg"), layout::poster(id)] {
                blobs
                    .put_file(&key, &file, "image/jpeg")
                    .await
                    .expect("put");
            }
            ids.push(id);
        }
        let [kept, forever] = ids[..] else {
            unreachable!()
        };
        let files_of = |id: JobId| {
            let blobs = dir.path().join("blobs");
            [layout::inputs_of(id), layout::outputs_of(id)]
                .iter()
                .filter(|p| blobs.join(p).exists())
                .count()
        };
        assert_eq!(files_of(kept), 2);

        let day = Duration::days(1);
        assert_eq!(
            expiry
                .sweep(t0 + day - Duration::seconds(1))
                .await
                .expect("sweep"),
            Expired::default(),
            "nothing before the day is out"
        );
        assert_eq!(
            expiry.sweep(t0 + day).await.expect("sweep"),
            Expired {
                files: 1,
                records: 0
            }
        );
        assert_eq!(files_of(kept), 0, "its photos and outputs are gone");
        let job = jobs
            .get(kept)
            .await
            .expect("get")
            .expect("the record stays");
        assert_eq!(job.files_expired_at, Some(t0 + day));
        assert_eq!(
            expiry.sweep(t0 + day * 2).await.expect("sweep"),
            Expired::default(),
            "the files once"
        );
        assert_eq!(
            expiry.sweep(t0 + day * 31).await.expect("sweep"),
            Expired {
                files: 0,
                records: 1
            }
        );
        assert!(
            jobs.get(kept).await.expect("get").is_none(),
            "the record goes after its grace"
        );
        assert_eq!(
            files_of(forever),
            2,
            "a job kept until deleted keeps its files"
        );
        assert!(jobs.get(forever).await.expect("get").is_some());
    }
}
