//! The consume loop's promises, on the embedded adapters with faults injected in the blob store:
//! a panic fails one job (not the worker), infrastructure errors are retried with the lease
//! released until the attempts run out, bad input fails at once, and finished jobs are not redone.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use minimoto_common::{
    ErrorCode, JobId,
    job::{Job, Status},
    layout,
    limits::Limits,
    ports::{BlobStore, JobQueue, JobStore, SignedUrl, Update, update_job},
    spec::RenderSpec,
};
use minimoto_local::{
    blob::LocalBlobStore, db::Db, jobs::SqliteJobStore, queue::SqliteQueue, signing::UrlSigner,
};
use minimoto_worker::{Worker, WorkerConfig, config::Deadline, render::EncoderSettings};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Panic,
    Unavailable,
}

/// A local blob store whose downloads can be made to panic or fail.
#[derive(Debug)]
struct Faulty {
    inner: LocalBlobStore,
    fault: Fault,
}

#[async_trait]
impl BlobStore for Faulty {
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> minimoto_common::Result<u64> {
        self.inner.put_file(key, path, content_type).await
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> minimoto_common::Result<u64> {
        match self.fault {
            Fault::None => self.inner.get_to_file(key, path).await,
            Fault::Panic => panic!("injected panic while downloading {key}"),
            Fault::Unavailable => Err(minimoto_common::Error::backend("test", "injected outage")),
        }
    }
    async fn size(&self, key: &str) -> minimoto_common::Result<Option<u64>> {
        self.inner.size(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> minimoto_common::Result<u64> {
        self.inner.delete_prefix(prefix).await
    }
    async fn folders(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> minimoto_common::Result<Vec<String>> {
        self.inner.folders(prefix, start_after, limit).await
    }
    async fn remove_debris(&self, older_than: Duration) -> minimoto_common::Result<u64> {
        self.inner.remove_debris(older_than).await
    }
    async fn url(&self, key: &str, ttl: Duration) -> minimoto_common::Result<SignedUrl> {
        self.inner.url(key, ttl).await
    }
    async fn ready(&self) -> minimoto_common::Result<()> {
        self.inner.ready().await
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    jobs: Arc<SqliteJobStore>,
    queue: Arc<SqliteQueue>,
    worker: Worker,
}

const MAX_ATTEMPTS: u32 = 2;

fn rig(fault: Fault) -> Rig {
    rig_with(fault, |_| {})
}

/// A rig whose worker settings `tune` adjusts.
fn rig_with(fault: Fault, tune: impl FnOnce(&mut WorkerConfig)) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("db.sqlite")).expect("db");
    let jobs = Arc::new(SqliteJobStore::new(db.clone()));
    let queue = Arc::new(SqliteQueue::new(
        db,
        minimoto_common::ports::receive_limit(MAX_ATTEMPTS),
    ));
    let inner = LocalBlobStore::new(
        dir.path().join("blobs"),
        UrlSigner::new(vec![1; 32], "http://x"),
    );
    let mut config = WorkerConfig {
        id: "test-worker".into(),
        poll_wait: Duration::from_millis(100),
        visibility: Duration::from_secs(5),
        heartbeat_every: Duration::from_secs(1),
        max_attempts: MAX_ATTEMPTS,
        limits: Limits::default(),
        scratch_dir: dir.path().join("scratch"),
        deadline: Deadline::default(),
        encoder: EncoderSettings::new(minimoto_worker::render::ffmpeg::resolve(None)),
    };
    tune(&mut config);
    let worker = Worker::new(
        jobs.clone(),
        queue.clone(),
        Arc::new(Faulty { inner, fault }),
        config,
    );
    Rig {
        _dir: dir,
        jobs,
        queue,
        worker,
    }
}

impl Rig {
    /// Stores `photo` bytes as the job's one input and writes the job record (not queued).
    async fn write_job(&self, id: JobId, photo: &[u8]) {
        let src = self._dir.path().join(format!("{id}.src"));
        std::fs::write(&src, photo).expect("write photo");
        let key = layout::input(id, 0, "jpeg");
        self.worker
            .blobs
            .put_file(&key, &src, "image/jpeg")
            .await
            .expect("put");
        let spec = RenderSpec {
            width: 64,
            height: 48,
            fps: 12,
            seconds_per_image: 1.0,
            ..RenderSpec::default()
        };
        self.jobs
            .create(&Job::new(id, spec, vec![key], Utc::now()))
            .await
            .expect("create");
    }

    /// As the API does it: the id is queued, then the record written.
    async fn submit(&self, photo: &[u8]) -> JobId {
        let id = JobId::new();
        self.queue.send(id).await.expect("send");
        self.write_job(id, photo).await;
        id
    }

    /// Receives the next delivery, ignoring visibility delays (messages are made visible at once).
    async fn handle_next(&self) -> bool {
        match self
            .queue
            .receive(Duration::from_millis(200), Duration::from_secs(5))
            .await
            .expect("receive")
        {
            Some(d) => {
                self.worker.handle(d.clone()).await;
                // Skip the retry backoff: make the message visible again now, if it is still there.
                let _ = self.queue.extend(&d.receipt, Duration::ZERO).await;
                true
            }
            None => false,
        }
    }

    async fn job(&self, id: JobId) -> Job {
        self.jobs.get(id).await.expect("get").expect("exists")
    }
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(80, 60, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

#[tokio::test]
async fn a_good_job_succeeds_and_its_message_is_acked() {
    let rig = rig(Fault::None);
    let id = rig.submit(&jpeg()).await;
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!(job.status, Status::Succeeded, "{job:?}");
    let out = job.outputs.expect("outputs");
    assert_eq!((out.frames, out.width, out.height), (12, 64, 48));
    assert_eq!(
        rig.queue.depth().await.expect("depth").in_flight,
        0,
        "acked"
    );
    assert!(!rig.handle_next().await, "nothing left to do");
}

#[tokio::test]
async fn a_panic_fails_that_job_only() {
    let rig = rig(Fault::Panic);
    let id = rig.submit(&jpeg()).await;
    assert!(
        rig.handle_next().await,
        "handle returns even though the attempt panicked"
    );
    let job = rig.job(id).await;
    assert_eq!(job.status, Status::Failed);
    assert_eq!(
        job.error.as_ref().map(|e| e.code.as_str()),
        Some("internal-error")
    );
    assert!(
        !job.error.expect("error").message.contains("injected"),
        "no internals leak to the user"
    );
    let depth = rig.queue.depth().await.expect("depth");
    assert_eq!(
        (depth.visible, depth.in_flight),
        (0, 0),
        "the message is acked, not retried"
    );
}

#[tokio::test]
async fn outages_are_retried_then_fail_when_attempts_run_out() {
    let rig = rig(Fault::Unavailable);
    let id = rig.submit(&jpeg()).await;
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!(
        (job.status, job.attempts),
        (Status::Running, 1),
        "first failure is retried"
    );
    assert!(
        job.lease.is_none(),
        "the lease is released so the retry need not wait for it to lapse"
    );
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!(
        (job.status, job.attempts),
        (Status::Failed, MAX_ATTEMPTS),
        "{job:?}"
    );
    assert_eq!(job.error.map(|e| e.code), Some(ErrorCode::StorageFailed));
    assert!(!rig.handle_next().await, "the message is gone");
}

#[tokio::test]
async fn bad_input_fails_at_once() {
    let rig = rig(Fault::None);
    let mut broken = jpeg();
    broken.truncate(broken.len() / 2);
    let id = rig.submit(&broken).await;
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!((job.status, job.attempts), (Status::Failed, 1));
    let error = job.error.expect("error");
    assert_eq!(error.code, ErrorCode::ImageCorrupt);
    assert!(error.message.starts_with("photo 1"), "{}", error.message);
}

#[tokio::test]
async fn a_photo_gone_from_storage_fails_at_once_as_input_missing() {
    let rig = rig(Fault::None);
    let id = rig.submit(&jpeg()).await;
    let removed = rig
        .worker
        .blobs
        .delete_prefix(&layout::inputs_of(id))
        .await
        .expect("delete");
    assert_eq!(removed, 1);
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!((job.status, job.attempts), (Status::Failed, 1), "{job:?}");
    let error = job.error.expect("error");
    assert_eq!(error.code, ErrorCode::InputMissing);
    assert!(error.message.contains("photo 1"), "{}", error.message);
    assert!(
        !rig.handle_next().await,
        "the message is acked, not retried"
    );
}

#[tokio::test]
async fn an_attempt_past_its_deadline_is_stopped_and_retried_until_attempts_run_out() {
    let rig = rig_with(Fault::None, |c| {
        c.deadline = Deadline {
            base: Duration::from_millis(1),
            per_video_second: Duration::ZERO,
        }
    });
    let id = rig.submit(&jpeg()).await;
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!((job.status, job.attempts), (Status::Running, 1), "{job:?}");
    assert!(
        job.lease.is_none(),
        "the timed-out attempt released its lease"
    );
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!((job.status, job.attempts), (Status::Failed, MAX_ATTEMPTS));
    assert_eq!(job.error.map(|e| e.code), Some(ErrorCode::RenderTimeout));
    assert!(job.outputs.is_none());
}

#[tokio::test]
async fn finished_or_cancelled_jobs_are_not_redone() {
    let rig = rig(Fault::None);
    let id = rig.submit(&jpeg()).await;
    let cancelled = update_job(rig.jobs.as_ref(), id, |j| j.cancel(Utc::now()))
        .await
        .expect("cancel");
    assert!(matches!(cancelled, Update::Done(_)));
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!(
        (job.status, job.attempts),
        (Status::Cancelled, 0),
        "a cancelled job is not claimed"
    );
    assert!(!rig.handle_next().await, "and its message is acked");

    // A duplicate delivery of a job that already succeeded does no work.
    let id = rig.submit(&jpeg()).await;
    assert!(rig.handle_next().await);
    rig.queue.send(id).await.expect("duplicate send");
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!((job.status, job.attempts), (Status::Succeeded, 1));
}

#[tokio::test]
async fn a_job_past_its_attempts_is_failed_on_delivery() {
    let rig = rig(Fault::None);
    let id = rig.submit(&jpeg()).await;
    // Crashed workers: the message was received MAX_ATTEMPTS times and never settled.
    for _ in 0..MAX_ATTEMPTS {
        let d = rig
            .queue
            .receive(Duration::from_millis(200), Duration::ZERO)
            .await
            .expect("rx")
            .expect("msg");
        let ttl = chrono::Duration::seconds(5);
        update_job(rig.jobs.as_ref(), id, |j| {
            // Each crashed worker claimed a minute after the previous one and never came back.
            let at = Utc::now()
                - chrono::Duration::seconds(60 * i64::from(MAX_ATTEMPTS + 1 - d.receive_count));
            j.claim(&format!("crashed-{}", d.receive_count), at, ttl)
        })
        .await
        .expect("claim");
    }
    assert!(rig.handle_next().await);
    let job = rig.job(id).await;
    assert_eq!(job.status, Status::Failed, "{job:?}");
    assert_eq!(
        job.error.map(|e| e.code),
        Some(ErrorCode::AttemptsExhausted)
    );
    assert_eq!(rig.queue.depth().await.expect("depth").in_flight, 0);
}

#[tokio::test]
async fn a_message_that_outruns_its_record_is_retried_then_dropped() {
    let rig = rig(Fault::None);
    // The API sends the message just before it writes the record.
    let id = JobId::new();
    rig.queue.send(id).await.expect("send");
    assert!(rig.handle_next().await);
    assert_eq!(
        rig.queue.depth().await.expect("depth").visible,
        1,
        "kept for another try"
    );
    rig.write_job(id, &jpeg()).await;
    assert!(rig.handle_next().await);
    assert_eq!(rig.job(id).await.status, Status::Succeeded);

    // A record that never came (its id is ten minutes old): the message is dropped.
    let made = std::time::SystemTime::now() - Duration::from_secs(600);
    let secs = made
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, 0));
    let ghost: JobId = old.to_string().parse().expect("job id");
    rig.queue.send(ghost).await.expect("send");
    assert!(rig.handle_next().await);
    assert!(
        !rig.handle_next().await,
        "the message for a job that never existed is gone"
    );
    let depth = rig.queue.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 0, 0));
}

/// A Spot notice while a job is in hand: the job is handed back at once — its lease dropped, the
/// attempt not counted, its message visible again now rather than after its visibility timeout —
/// and the next worker finishes it.
#[tokio::test]
async fn a_spot_notice_hands_the_job_back_at_once() {
    let rig = rig(Fault::None);
    let id = rig.submit(&jpeg()).await;
    rig.worker.hand_back.cancel();
    let delivery = rig
        .queue
        .receive(Duration::from_millis(200), Duration::from_secs(600))
        .await
        .expect("receive")
        .expect("a delivery");
    rig.worker.handle(delivery).await;
    let job = rig.job(id).await;
    assert_eq!(job.status, Status::Running, "{job:?}");
    assert!(job.lease.is_none(), "the lease is given up: {job:?}");
    assert_eq!(
        job.attempts, 0,
        "a handed-back attempt does not count: {job:?}"
    );

    let again = rig
        .queue
        .receive(Duration::from_millis(200), Duration::from_secs(600))
        .await
        .expect("receive")
        .expect("the message is visible again at once, not after 600 s");
    assert_eq!(again.job_id, id);
    let next = Worker::new(
        rig.jobs.clone(),
        rig.queue.clone(),
        rig.worker.blobs.clone(),
        rig.worker.config.clone(),
    );
    next.handle(again).await;
    let job = rig.job(id).await;
    assert_eq!(job.status, Status::Succeeded, "{job:?}");
    assert_eq!(job.attempts, 1);
}
