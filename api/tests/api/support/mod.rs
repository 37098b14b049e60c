//! The API in-process: [`minimoto_api::build`] over the embedded adapters in a temp dir, served on
//! a loopback port by the same server loop the binaries use, with the webhook deliverer beside it,
//! so HTTP contract tests need no process.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::{path::PathBuf, sync::Arc, time::Duration};

use minimoto_api::{ApiConfig, Ports};
use minimoto_common::{
    JobId,
    job::{Job, Outputs, Refusal},
    layout,
    limits::Limits,
    ports::{BlobStore, JobQueue, JobStore, Update, receive_limit, update_job},
    spec::Format,
};
use minimoto_local::{
    blob::LocalBlobStore, db::Db, events::SqliteEvents, jobs::SqliteJobStore, queue::SqliteQueue,
    signing::UrlSigner,
};
use tokio_util::sync::CancellationToken;

pub struct TestApi {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// The embedded events queue, which the deliverer publishes on when `publish_events` is set.
    pub events: Arc<SqliteEvents>,
    shutdown: CancellationToken,
}

/// The embedded adapters under `dir`, as `minimoto serve` opens them.
pub fn local_ports(dir: &std::path::Path, base: &str) -> Ports {
    let db = Db::open(&dir.join("minimoto.db")).expect("db");
    let files = Arc::new(LocalBlobStore::new(
        dir.join("blobs"),
        UrlSigner::new(vec![7; 32], base),
    ));
    Ports {
        jobs: Arc::new(SqliteJobStore::new(db.clone())),
        queue: Arc::new(SqliteQueue::new(db, receive_limit(3))),
        blobs: files.clone(),
        backend_routes: minimoto_local::files::router(files),
    }
}

impl TestApi {
    pub async fn start(limits: Limits) -> Self {
        Self::start_with(limits, |p| p).await
    }

    /// Starts with the ports `wrap` makes of the embedded ones (to inject faults).
    pub async fn start_with(limits: Limits, wrap: impl FnOnce(Ports) -> Ports) -> Self {
        Self::start_tuned(limits, |_| {}, wrap).await
    }

    /// Starts with settings `tune` changes (timeouts, caps) and the ports `wrap` makes.
    pub async fn start_tuned(
        limits: Limits,
        tune: impl FnOnce(&mut ApiConfig),
        wrap: impl FnOnce(Ports) -> Ports,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let ports = wrap(local_ports(dir.path(), &base));
        let (jobs, queue, blobs) = (ports.jobs.clone(), ports.queue.clone(), ports.blobs.clone());
        let mut config = ApiConfig {
            limits,
            url_ttl: Duration::from_secs(600),
            scratch_dir: dir.path().join("scratch"),
            upload_stall: Duration::from_secs(10),
            upload_min_rate: 1024,
            max_uploads: 8,
            min_free_bytes: 0,
            decode_slots: 2,
            decode_memory: 64 << 20,
            request_timeout: Duration::from_secs(30),
            keys: None,
            webhooks: minimoto_api::webhooks::Settings::default(),
            retention: minimoto_common::retention::Retention::days(30),
            publish_events: false,
        };
        tune(&mut config);
        let events = Arc::new(SqliteEvents::new(
            Db::open(&dir.path().join("minimoto.db")).expect("db"),
        ));
        let shutdown = CancellationToken::new();
        let deliverer = minimoto_api::webhooks::Deliverer::new(
            jobs.clone(),
            blobs.clone(),
            config.keys.clone(),
            config.url_ttl,
            config.webhooks,
        )
        .expect("the webhook client")
        .with_events(
            config
                .publish_events
                .then(|| events.clone() as Arc<dyn minimoto_common::ports::EventQueue>),
        );
        tokio::spawn(deliverer.run(shutdown.clone()));
        tokio::spawn(minimoto_api::server::serve(
            listener,
            minimoto_api::build(config, ports),
            Duration::from_secs(10),
            shutdown.clone(),
        ));
        Self {
            base,
            dir,
            jobs,
            queue,
            blobs,
            events,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client that shows redirects instead of following them (the output routes answer 302).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Job `id` taken by a worker and ended by `end` (the worker's `succeed` or `fail`), as a worker
/// process does through the store.
pub async fn end_as_worker(
    api: &TestApi,
    id: &str,
    end: impl Fn(&mut Job) -> Result<(), Refusal> + Sync,
) {
    let id: JobId = id.parse().expect("job id");
    let now = chrono::Utc::now();
    for step in 0..2 {
        let updated = update_job(api.jobs.as_ref(), id, |job| {
            if step == 0 {
                job.claim("worker-1", now, chrono::Duration::seconds(60))
            } else {
                end(job)
            }
        })
        .await
        .expect("update");
        assert!(
            matches!(updated, Update::Done(_)),
            "step {step}: {updated:?}"
        );
    }
}

/// Job `id` rendered by a worker: its video and poster stored (stand-ins), then succeeded.
pub async fn succeed_as_worker(api: &TestApi, id: &str) {
    let job: JobId = id.parse().expect("job id");
    let file = api.data().join(format!("output-{id}"));
    std::fs::write(&file, b"not really a video").expect("write");
    let (video, poster) = (layout::video(job, Format::Mp4), layout::poster(job));
    for (key, kind) in [(&video, "video/mp4"), (&poster, "image/jpeg")] {
        api.blobs.put_file(key, &file, kind).await.expect("put");
    }
    end_as_worker(api, id, |j| {
        j.succeed(
            "worker-1",
            Outputs {
                video_key: video.clone(),
                poster_key: poster.clone(),
                thumbnails: Vec::new(),
                preview_key: None,
                duration_seconds: 3.0,
                width: 1280,
                height: 720,
                frames: 90,
                size_bytes: 18,
            },
            chrono::Utc::now(),
        )
    })
    .await;
}
