//! Choosing and opening the storage backend: `local` (files + SQLite under the data dir, the
//! default) or `aws` (S3 + DynamoDB + SQS, in builds with the `aws` feature). AWS resource names
//! derive from one stack name; a binary built without AWS refuses `--backend aws` with how to
//! build it in. There is no silent fallback from `aws` to `local`.

use std::sync::Arc;

use clap::{Args, ValueEnum};
use minimoto_common::ports::{
    BlobStore, EventQueue, Expiry, JobQueue, JobStore, WorkerRegistry, receive_limit,
};
use minimoto_local::{
    blob::LocalBlobStore, db::Db, events::SqliteEvents, expiry::LocalExpiry, jobs::SqliteJobStore,
    queue::SqliteQueue, registry::SqliteRegistry, signing::UrlSigner,
};

use crate::args::CommonArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Files and SQLite under the data directory.
    Local,
    /// S3, DynamoDB and SQS (credentials and region from the standard AWS chain).
    Aws,
}

#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Where jobs, the queue and files live.
    #[arg(long, env = "MINIMOTO_BACKEND", value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl BackendArgs {
    pub(crate) fn to_env(&self) -> Vec<(&'static str, String)> {
        let kind = match self.backend {
            BackendKind::Local => "local",
            BackendKind::Aws => "aws",
        };
        let aws = &self.aws;
        let mut env = vec![
            ("MINIMOTO_BACKEND", kind.to_owned()),
            ("MINIMOTO_STACK", aws.stack.clone()),
        ];
        for (name, value) in [
            ("MINIMOTO_S3_BUCKET", &aws.s3_bucket),
            ("MINIMOTO_DYNAMODB_TABLE", &aws.dynamodb_table),
            ("MINIMOTO_SQS_QUEUE", &aws.sqs_queue),
            ("MINIMOTO_SQS_EVENTS_QUEUE", &aws.sqs_events_queue),
            (
                "MINIMOTO_DYNAMODB_WORKERS_TABLE",
                &aws.dynamodb_workers_table,
            ),
        ] {
            if let Some(value) = value {
                env.push((name, value.clone()));
            }
        }
        env
    }
}

/// The AWS resources, named after one stack (each name can be overridden).
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The stack: every AWS resource is named after it and tagged `minimoto:stack=<stack>`.
    #[arg(long, env = "MINIMOTO_STACK", default_value = "minimoto")]
    pub stack: String,
    /// S3 bucket for photos and videos (default: `<stack>-media`).
    #[arg(long, env = "MINIMOTO_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// DynamoDB table of jobs (default: `<stack>-jobs`).
    #[arg(long, env = "MINIMOTO_DYNAMODB_TABLE")]
    pub dynamodb_table: Option<String>,
    /// SQS queue of jobs (default: `<stack>-jobs`); its dead-letter queue is `<queue>-dlq`.
    #[arg(long, env = "MINIMOTO_SQS_QUEUE")]
    pub sqs_queue: Option<String>,
    /// SQS queue of ended jobs' events, read by consumers of a queue (default: `<stack>-events`).
    #[arg(long, env = "MINIMOTO_SQS_EVENTS_QUEUE")]
    pub sqs_events_queue: Option<String>,
    /// DynamoDB table of the worker registry (default: `<stack>-workers`).
    #[arg(long, env = "MINIMOTO_DYNAMODB_WORKERS_TABLE")]
    pub dynamodb_workers_table: Option<String>,
}

#[cfg(feature = "aws")]
impl AwsArgs {
    /// The resource names, checked before any call.
    pub fn settings(&self, max_attempts: u32) -> anyhow::Result<minimoto_aws::AwsSettings> {
        let pick = |given: &Option<String>, suffix: &str| match given {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => format!("{}-{suffix}", self.stack.trim()),
        };
        let settings = minimoto_aws::AwsSettings {
            stack: self.stack.trim().to_owned(),
            bucket: pick(&self.s3_bucket, "media"),
            table: pick(&self.dynamodb_table, "jobs"),
            queue: pick(&self.sqs_queue, "jobs"),
            events_queue: pick(&self.sqs_events_queue, "events"),
            workers_table: pick(&self.dynamodb_workers_table, "workers"),
            max_receives: receive_limit(max_attempts),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// The opened ports.
#[derive(Debug)]
pub struct Backend {
    pub kind: BackendKind,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// Where workers heartbeat and the scaler finds them.
    pub registry: Arc<dyn WorkerRegistry>,
    /// Set on the local backend: whoever serves HTTP also serves its signed downloads.
    pub local_files: Option<Arc<LocalBlobStore>>,
    /// Set where storage does not expire by itself (the local backend): the API's sweeper runs
    /// it. On AWS the bucket's lifecycle rules and the table's TTL expire.
    pub expiry: Option<Arc<dyn Expiry>>,
    /// The embedded backend's events queue (a table, nothing to connect to); on AWS
    /// [`Backend::events`] connects to SQS when asked.
    local_events: Option<Arc<SqliteEvents>>,
}

/// The embedded backend's database, in the data directory.
pub const DATABASE_FILE: &str = "minimoto.db";

/// The base of download links in a process that hands out none (a worker): the signer needs one.
const NO_PUBLIC_URL: &str = "http://127.0.0.1:8080";

impl Backend {
    pub async fn open(args: &CommonArgs, public_url: Option<&str>) -> anyhow::Result<Self> {
        match args.backend.backend {
            BackendKind::Local => {
                let data = &args.data_dir;
                let db = Db::open(&data.join(DATABASE_FILE))?;
                let secret = UrlSigner::load_or_create_secret(&data.join("url-signing.key"))?;
                let blobs = Arc::new(LocalBlobStore::new(
                    data.join("blobs"),
                    UrlSigner::new(secret, public_url.unwrap_or(NO_PUBLIC_URL)),
                ));
                let jobs = SqliteJobStore::new(db.clone());
                Ok(Self {
                    kind: BackendKind::Local,
                    expiry: Some(Arc::new(LocalExpiry::new(jobs.clone(), blobs.clone()))),
                    jobs: Arc::new(jobs),
                    queue: Arc::new(SqliteQueue::new(
                        db.clone(),
                        receive_limit(args.max_attempts),
                    )),
                    local_events: Some(Arc::new(SqliteEvents::new(db.clone()))),
                    registry: Arc::new(SqliteRegistry::new(db)),
                    blobs: blobs.clone(),
                    local_files: Some(blobs),
                })
            }
            BackendKind::Aws => Self::open_aws(args).await,
        }
    }

    /// The routes this backend serves itself: the embedded backend's signed downloads.
    #[cfg(feature = "http")]
    pub fn http_routes(&self) -> axum::Router {
        match &self.local_files {
            Some(store) => minimoto_local::files::router(store.clone()),
            None => axum::Router::new(),
        }
    }

    #[cfg(feature = "aws")]
    async fn open_aws(args: &CommonArgs) -> anyhow::Result<Self> {
        use anyhow::Context;
        use minimoto_aws::{
            blob::S3BlobStore, jobs::DynamoJobStore, load_sdk_config, queue::SqsQueue,
            registry::DynamoRegistry,
        };
        let settings = args.backend.aws.settings(args.max_attempts)?;
        let config = load_sdk_config().await;
        let jobs = DynamoJobStore::new(&config, &settings.table);
        jobs.check().await.context("checking the DynamoDB table")?;
        let registry = DynamoRegistry::new(&config, &settings.workers_table);
        registry
            .check()
            .await
            .context("checking the DynamoDB workers table")?;
        let queue = SqsQueue::connect(&config, &settings)
            .await
            .context("connecting to SQS")?;
        Ok(Self {
            kind: BackendKind::Aws,
            jobs: Arc::new(jobs),
            queue: Arc::new(queue),
            blobs: Arc::new(S3BlobStore::new(&config, &settings.bucket)),
            registry: Arc::new(registry),
            local_files: None,
            expiry: None,
            local_events: None,
        })
    }

    /// The events queue, for a process that publishes or reads it: the embedded one, or on AWS
    /// the stack's SQS events queue, which must exist (`minimoto setup` makes it).
    pub async fn events(&self, args: &CommonArgs) -> anyhow::Result<Arc<dyn EventQueue>> {
        if let Some(local) = &self.local_events {
            return Ok(local.clone());
        }
        Self::open_aws_events(args).await
    }

    #[cfg(feature = "aws")]
    async fn open_aws_events(args: &CommonArgs) -> anyhow::Result<Arc<dyn EventQueue>> {
        use anyhow::Context;
        let settings = args.backend.aws.settings(args.max_attempts)?;
        let config = minimoto_aws::load_sdk_config().await;
        let events = minimoto_aws::events::SqsEvents::connect(&config, &settings.events_queue)
            .await
            .context("connecting to the SQS events queue")?;
        Ok(Arc::new(events))
    }

    #[cfg(not(feature = "aws"))]
    async fn open_aws_events(_: &CommonArgs) -> anyhow::Result<Arc<dyn EventQueue>> {
        anyhow::bail!(
            "this binary was built without the AWS backend: build it with `--features aws`"
        )
    }

    #[cfg(not(feature = "aws"))]
    async fn open_aws(_: &CommonArgs) -> anyhow::Result<Self> {
        anyhow::bail!(
            "this binary was built without the AWS backend: build it with `--features aws` \
             (for example `cargo build --release --features aws`)"
        )
    }
}
