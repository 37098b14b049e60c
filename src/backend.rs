//! Choosing and opening the storage backend: `local` (files + SQLite under the data dir, the
//! default) or `aws` (S3 + DynamoDB + SQS). A missing AWS setting is an error naming it — there
//! is no silent fallback from `aws` to `local`.

use std::{path::Path, sync::Arc};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use minimoto_common::{
    aws::{AwsSettings, blob::S3BlobStore, jobs::DynamoJobStore, load_sdk_config, queue::SqsQueue},
    local::{
        blob::LocalBlobStore, db::Db, jobs::SqliteJobStore, queue::SqliteQueue, signing::UrlSigner,
    },
    ports::{BlobStore, JobQueue, JobStore},
};

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

/// The AWS resource names (required with `--backend aws`, and by `setup` / `cleanup`).
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// S3 bucket for photos and videos.
    #[arg(long, env = "MINIMOTO_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// DynamoDB table of jobs.
    #[arg(long, env = "MINIMOTO_DYNAMODB_TABLE")]
    pub dynamodb_table: Option<String>,
    /// SQS queue of jobs (its dead-letter queue is `<name>-dlq`).
    #[arg(long, env = "MINIMOTO_SQS_QUEUE")]
    pub sqs_queue: Option<String>,
}

impl AwsArgs {
    pub fn settings(&self, max_attempts: u32) -> anyhow::Result<AwsSettings> {
        fn need(v: &Option<String>, flag: &str, env: &str) -> anyhow::Result<String> {
            match v {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
                _ => bail!("the AWS backend needs {flag} (or {env})"),
            }
        }
        let settings = AwsSettings {
            bucket: need(&self.s3_bucket, "--s3-bucket", "MINIMOTO_S3_BUCKET")?,
            table: need(
                &self.dynamodb_table,
                "--dynamodb-table",
                "MINIMOTO_DYNAMODB_TABLE",
            )?,
            queue: need(&self.sqs_queue, "--sqs-queue", "MINIMOTO_SQS_QUEUE")?,
            max_receives: minimoto_common::ports::receive_limit(max_attempts),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// The opened ports.
#[derive(Debug)]
pub struct Backend {
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// Set on the local backend: the API serves the signed downloads itself.
    pub local_files: Option<Arc<LocalBlobStore>>,
}

impl Backend {
    pub async fn open(
        args: &BackendArgs,
        data_dir: &Path,
        public_url: &str,
        max_attempts: u32,
    ) -> anyhow::Result<Self> {
        match args.backend {
            BackendKind::Local => {
                let db = Db::open(&data_dir.join("minimoto.db"))?;
                let secret = UrlSigner::load_or_create_secret(&data_dir.join("url-signing.key"))?;
                let blobs = Arc::new(LocalBlobStore::new(
                    data_dir.join("blobs"),
                    UrlSigner::new(secret, public_url),
                ));
                Ok(Self {
                    jobs: Arc::new(SqliteJobStore::new(db.clone())),
                    queue: Arc::new(SqliteQueue::new(
                        db,
                        minimoto_common::ports::receive_limit(max_attempts),
                    )),
                    blobs: blobs.clone(),
                    local_files: Some(blobs),
                })
            }
            BackendKind::Aws => {
                let settings = args.aws.settings(max_attempts)?;
                let config = load_sdk_config().await;
                let jobs = DynamoJobStore::new(&config, &settings.table);
                jobs.check().await.context("checking the DynamoDB table")?;
                let queue = SqsQueue::connect(&config, &settings)
                    .await
                    .context("connecting to SQS")?;
                let blobs = S3BlobStore::new(&config, &settings.bucket);
                Ok(Self {
                    jobs: Arc::new(jobs),
                    queue: Arc::new(queue),
                    blobs: Arc::new(blobs),
                    local_files: None,
                })
            }
        }
    }
}
