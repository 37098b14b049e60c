//! `minimoto setup` and `minimoto cleanup`: the AWS resources of a stack (binaries built with the
//! `aws` feature; others say how to get one).

use clap::Args;
use minimoto_runtime::backend::AwsArgs;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Attempts at a job before it is failed for good (sets the dead-letter threshold).
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

#[cfg(feature = "aws")]
impl AdminArgs {
    /// `setup`, or `cleanup` when `remove`: prints what was done to each resource.
    pub async fn run(&self, remove: bool) -> anyhow::Result<()> {
        use minimoto_aws::load_sdk_config;
        let settings = self.aws.settings(self.max_attempts)?;
        let config = load_sdk_config().await;
        let report = if remove {
            minimoto_aws_admin::cleanup(&config, &settings).await?
        } else {
            minimoto_aws_admin::setup(&config, &settings).await?
        };
        for line in report.lines {
            println!("{line}");
        }
        Ok(())
    }
}

#[cfg(not(feature = "aws"))]
impl AdminArgs {
    pub async fn run(&self, _remove: bool) -> anyhow::Result<()> {
        anyhow::bail!(
            "this minimoto was built without AWS support: build it with `--features aws` \
             (for example `cargo build --release --features aws`)"
        )
    }
}
