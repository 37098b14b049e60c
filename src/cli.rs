//! The command line: one binary, a subcommand per role.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use minimoto_common::limits::Limits;

#[derive(Debug, Parser)]
#[command(
    name = "minimoto",
    version,
    about = "Photos in, video out: a self-hostable photo-to-video service"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and render workers in one process (embedded backend unless `--backend aws`).
    Serve(ServeArgs),
    /// Run render workers only, no HTTP (a worker host of a deployment).
    Worker(RunArgs),
    /// Submit photos to a running server; optionally wait and download the video.
    Submit(crate::client::SubmitArgs),
    /// Show a job as JSON.
    Status(crate::client::StatusArgs),
    /// Create the AWS resources (S3 bucket, DynamoDB table, SQS queue and dead-letter queue).
    Setup(AwsCommandArgs),
    /// Delete the AWS resources that `setup` created, with all their data.
    Cleanup(AwsCommandArgs),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Args)]
pub struct AwsCommandArgs {
    #[command(flatten)]
    pub aws: crate::backend::AwsArgs,
    /// Attempts at a job before it is failed for good (sets the dead-letter threshold to one more).
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "MINIMOTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this server, for download links (default: http://<listen address>).
    #[arg(long, env = "MINIMOTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long download links stay valid, in seconds.
    #[arg(long, env = "MINIMOTO_URL_TTL_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub url_ttl_seconds: u64,
    /// Seconds a client may take to send a request's head before the connection is closed.
    #[arg(long, env = "MINIMOTO_HEADER_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_seconds: u64,
    /// Seconds an upload may send nothing before it is cut off (408).
    #[arg(long, env = "MINIMOTO_UPLOAD_STALL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_stall_seconds: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What the API and the workers share: where data lives and how jobs are run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the local backend keeps jobs, the queue, photos and videos; scratch space for both.
    #[arg(long, env = "MINIMOTO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub backend: crate::backend::BackendArgs,
    /// Render workers in this process.
    #[arg(long, env = "MINIMOTO_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub workers: u32,
    /// Seconds a job may go without a heartbeat before another worker takes it over.
    #[arg(long, env = "MINIMOTO_VISIBILITY_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=43_200))]
    pub visibility_timeout_seconds: u64,
    /// Attempts at a job before it is failed for good.
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Most photos in one job.
    #[arg(long, env = "MINIMOTO_MAX_IMAGES", default_value_t = Limits::default().max_images)]
    pub max_images: u32,
    /// Largest photo file, in bytes.
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_BYTES", default_value_t = Limits::default().max_image_bytes)]
    pub max_image_bytes: u64,
    /// Largest upload (all photos), in bytes.
    #[arg(long, env = "MINIMOTO_MAX_TOTAL_BYTES", default_value_t = Limits::default().max_total_bytes)]
    pub max_total_bytes: u64,
    /// Largest photo in pixels (width × height).
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_PIXELS", default_value_t = Limits::default().max_image_pixels)]
    pub max_image_pixels: u64,
    /// Longest video, in seconds.
    #[arg(long, env = "MINIMOTO_MAX_VIDEO_SECONDS", default_value_t = Limits::default().max_video_seconds)]
    pub max_video_seconds: f64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_images: self.max_images,
            max_image_bytes: self.max_image_bytes,
            max_total_bytes: self.max_total_bytes,
            max_image_pixels: self.max_image_pixels,
            max_video_seconds: self.max_video_seconds,
        }
    }
}

impl AwsCommandArgs {
    /// `setup`, or `cleanup` when `remove`: prints what was done to each resource.
    async fn run(&self, remove: bool) -> anyhow::Result<()> {
        use minimoto_common::aws::{load_sdk_config, setup};
        let settings = self.aws.settings(self.max_attempts)?;
        let config = load_sdk_config().await;
        let report = if remove {
            setup::cleanup(&config, &settings).await?
        } else {
            setup::setup(&config, &settings).await?
        };
        for line in report.lines {
            println!("{line}");
        }
        Ok(())
    }
}

impl RunArgs {
    pub fn visibility(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_seconds)
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => crate::serve::serve(args).await,
            Command::Worker(args) => crate::workers::run(args).await,
            Command::Submit(args) => crate::client::submit(args).await,
            Command::Status(args) => crate::client::status(args).await,
            Command::Setup(args) => args.run(false).await,
            Command::Cleanup(args) => args.run(true).await,
            Command::Openapi => {
                println!("{}", minimoto_api::openapi().to_pretty_json()?);
                Ok(())
            }
        }
    }
}
