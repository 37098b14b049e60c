//! `minimoto setup` and `minimoto cleanup`: the AWS resources of a stack (binaries built with the
//! `aws` feature; others say how to get one).

use clap::Args;
use minimoto_runtime::backend::AwsArgs;

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Attempts at a job before it is failed for good; the dead-letter threshold is 5 receives more.
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Days after upload the bucket's lifecycle rule deletes a photo (under `inputs/`); videos
    /// and posters are kept.
    #[arg(long, env = "MINIMOTO_INPUT_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub input_retention_days: u32,
    /// Origins browsers may download from (CORS `GET`/`HEAD`): `*` or e.g. `https://app.example.com`;
    /// repeat the flag or separate with commas.
    #[arg(
        long = "cors-origin",
        env = "MINIMOTO_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// List what would be deleted (everything tagged with the stack) and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(feature = "aws")]
impl SetupArgs {
    /// Creates or updates the stack's resources; prints what was done to each and a summary.
    pub async fn run(&self) -> anyhow::Result<()> {
        let settings = self.aws.settings(self.max_attempts)?;
        let options = minimoto_aws_admin::BucketOptions {
            input_retention_days: self.input_retention_days,
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .collect(),
        };
        options.validate()?;
        let config = minimoto_aws::load_sdk_config().await;
        let report = minimoto_aws_admin::setup(&config, &settings, &options).await?;
        println!("{report}");
        Ok(())
    }
}

#[cfg(feature = "aws")]
impl CleanupArgs {
    /// Deletes (or with `--dry-run` lists) the resources tagged with the stack; prints each.
    pub async fn run(&self) -> anyhow::Result<()> {
        // The attempt count only shapes the queue setup creates; any valid one names the same resources.
        let settings = self.aws.settings(3)?;
        let config = minimoto_aws::load_sdk_config().await;
        let report = minimoto_aws_admin::cleanup(&config, &settings, self.dry_run).await?;
        println!("{report}");
        Ok(())
    }
}

#[cfg(not(feature = "aws"))]
fn without_aws() -> anyhow::Result<()> {
    anyhow::bail!(
        "this minimoto was built without AWS support: build it with `--features aws` \
         (for example `cargo build --release --features aws`)"
    )
}

#[cfg(not(feature = "aws"))]
impl SetupArgs {
    pub async fn run(&self) -> anyhow::Result<()> {
        without_aws()
    }
}

#[cfg(not(feature = "aws"))]
impl CleanupArgs {
    pub async fn run(&self) -> anyhow::Result<()> {
        without_aws()
    }
}
