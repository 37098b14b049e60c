//! `minimoto setup` and `minimoto cleanup`: the AWS resources of a stack (binaries built with the
//! `aws` feature; others say how to get one). The bucket, tables and queues are
//! `minimoto-aws-admin`'s; the workers' EC2 launch template and instances are
//! `minimoto_scaler::fleet::ec2::setup`'s (the one package compiling the EC2 SDK); both report
//! in one list.

use clap::Args;
use minimoto_runtime::backend::AwsArgs;

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Attempts at a job before it is failed for good; the dead-letter threshold is 5 receives more.
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Days after upload the bucket's lifecycle rule deletes a photo (under `inputs/`).
    #[arg(long, env = "MINIMOTO_INPUT_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub input_retention_days: u32,
    /// Days after it is written the bucket's lifecycle rule deletes an output (under
    /// `outputs/`), rounded up to whole days (S3 counts in days; a fraction such as 0.25 makes a
    /// 1-day rule); 0 keeps outputs until deleted. The API's `--retention-days` (the same
    /// variable) dates each job's `expires_at` by it, to the second.
    #[arg(long, env = "MINIMOTO_RETENTION_DAYS", default_value = "30")]
    pub retention_days: minimoto_common::retention::RetentionDays,
    /// Origins browsers may download from (CORS `GET`/`HEAD`): `*` or e.g. `https://app.example.com`;
    /// repeat the flag or separate with commas.
    #[arg(
        long = "cors-origin",
        env = "MINIMOTO_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub cors_origins: Vec<String>,
    #[command(flatten)]
    pub worker: WorkerTemplateArgs,
}

/// The EC2 launch template `<stack>-worker` the scaler launches workers from; setup creates it
/// only when given `--worker-ami`.
#[derive(Debug, Args)]
pub struct WorkerTemplateArgs {
    /// AMI of the worker machines (with `minimoto-worker` in /usr/local/bin and ffmpeg installed):
    /// creates or updates the launch template `<stack>-worker`. Without it setup skips the template.
    #[arg(
        long,
        env = "MINIMOTO_WORKER_AMI",
        requires = "worker_instance_profile"
    )]
    pub worker_ami: Option<String>,
    /// Instance type of the workers (x86_64 by default; an arm64 type needs an arm64 AMI).
    #[arg(
        long,
        env = "MINIMOTO_WORKER_INSTANCE_TYPE",
        default_value = "c6i.xlarge"
    )]
    pub worker_instance_type: String,
    /// Subnet the workers launch in (default: EC2's choice in the default VPC).
    #[arg(long, env = "MINIMOTO_WORKER_SUBNET")]
    pub worker_subnet: Option<String>,
    /// Security group ids of the workers (default: the VPC's default group); repeat the flag or
    /// separate with commas. Workers only make outbound calls.
    #[arg(
        long = "worker-security-group",
        env = "MINIMOTO_WORKER_SECURITY_GROUPS",
        value_delimiter = ','
    )]
    pub worker_security_groups: Vec<String>,
    /// Instance profile (name or ARN) of the workers; its role needs `iam/worker.json`.
    #[arg(long, env = "MINIMOTO_WORKER_INSTANCE_PROFILE")]
    pub worker_instance_profile: Option<String>,
    /// EC2 key pair for SSH to the workers (default: none).
    #[arg(long, env = "MINIMOTO_WORKER_KEY_NAME")]
    pub worker_key_name: Option<String>,
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
            output_retention_days: self.retention_days.whole_days_up(),
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .collect(),
        };
        options.validate()?;
        let template = self.worker.options();
        if let Some(template) = &template {
            template.validate()?;
        }
        let config = minimoto_aws::load_sdk_config().await;
        let mut report = minimoto_aws_admin::setup(&config, &settings, &options).await?;
        let name = minimoto_aws_admin::launch_template_name(&settings.stack);
        match &template {
            Some(template) => report.changes.push(minimoto_aws_admin::Change {
                kind: minimoto_aws_admin::Kind::LaunchTemplate,
                action: ensure_launch_template(&config, &settings.stack, template).await?,
                name,
            }),
            None => println!(
                "skipped the EC2 launch template {name} (the scaler's workers start from it): \
                 pass --worker-ami and --worker-instance-profile (and optionally \
                 --worker-instance-type, --worker-subnet, --worker-security-group, \
                 --worker-key-name) to create it"
            ),
        }
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
        // The workers' instances and template first: no worker outlives the stack's storage.
        let ec2 =
            minimoto_scaler::fleet::ec2::setup::cleanup(&config, &settings, self.dry_run).await?;
        let mut report = minimoto_aws_admin::cleanup(&config, &settings, self.dry_run).await?;
        report.changes.splice(0..0, ec2);
        println!("{report}");
        Ok(())
    }
}

#[cfg(feature = "aws")]
use minimoto_scaler::fleet::ec2::setup::{TemplateOptions, ensure_launch_template};

#[cfg(feature = "aws")]
impl WorkerTemplateArgs {
    /// The template's settings, when `--worker-ami` asks for one.
    fn options(&self) -> Option<TemplateOptions> {
        let ami = self.worker_ami.as_deref()?.trim();
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(TemplateOptions {
            image_id: ami.to_owned(),
            instance_type: self.worker_instance_type.trim().to_owned(),
            subnet: given(&self.worker_subnet),
            security_groups: self
                .worker_security_groups
                .iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect(),
            instance_profile: given(&self.worker_instance_profile).unwrap_or_default(),
            key_name: given(&self.worker_key_name),
        })
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
