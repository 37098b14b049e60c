//! The command line: one binary, a subcommand per role.

use clap::{Args, Parser, Subcommand};
use minimoto_api::cli::ApiArgs;
use minimoto_runtime::CommonArgs;
use minimoto_scaler::cli::PolicyArgs;
use minimoto_worker::cli::WorkerArgs;

use crate::admin::{CleanupArgs, SetupArgs};

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
    Serve(Box<ServeArgs>),
    /// Run render workers only, no HTTP (the same as the `minimoto-worker` binary).
    Worker(WorkerOnlyArgs),
    /// Submit photos to a running server; optionally wait and download the video.
    Submit(crate::client::SubmitArgs),
    /// Show a job as JSON.
    Status(crate::client::JobArgs),
    /// Delete a job: cancels it if it has not ended, and deletes its photos and outputs.
    Delete(crate::client::JobArgs),
    /// Create the AWS resources of a stack (S3 bucket, DynamoDB table, SQS queue and dead-letter queue).
    Setup(SetupArgs),
    /// Delete the AWS resources tagged with a stack, with all their data (`--dry-run` lists them).
    Cleanup(CleanupArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Manage the API keys: `add --tenant <name>`, `list`, `revoke <id>`.
    Keys(crate::keys::KeysArgs),
    /// Print the events `serve --publish-events` published (one JSON line each) and delete them.
    Events(Box<crate::events::EventsArgs>),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Run workers as separate processes, as many as the queue needs (between --min-workers and
    /// --max-workers), instead of `--workers` consumers in this process.
    #[arg(long, env = "MINIMOTO_AUTOSCALE")]
    autoscale: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct WorkerOnlyArgs {
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    common: CommonArgs,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(a) => {
                let a = *a;
                let autoscale = a.autoscale.then_some(a.policy);
                crate::serve::serve(a.api, a.worker, a.common, autoscale).await
            }
            Command::Worker(a) => minimoto_worker::cli::run(a.worker, a.common).await,
            Command::Submit(args) => crate::client::submit(args).await,
            Command::Status(args) => crate::client::status(args).await,
            Command::Delete(args) => crate::client::delete(args).await,
            Command::Setup(args) => args.run().await,
            Command::Keys(args) => args.run(),
            Command::Events(args) => args.run().await,
            Command::Cleanup(args) => args.run().await,
            Command::Openapi => {
                println!("{}", minimoto_api::openapi().to_pretty_json()?);
                Ok(())
            }
        }
    }
}
