//! The `minimoto-scaler` command line: `run` (the control loop), `status`, `simulate`; and the
//! policy flags that `minimoto serve --autoscale` shares.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use minimoto_runtime::CommonArgs;

use crate::{
    control::Controller,
    fleet::{
        Fleet,
        local::{LocalFleet, WorkerCommand},
    },
    policy::Knobs,
};

#[derive(Debug, Parser)]
#[command(
    name = "minimoto-scaler",
    version,
    about = "Grows and shrinks the minimoto worker fleet from the job queue"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `run` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Observe, decide and act every interval until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Print queue depth, workers by state and the last decisions.
    Status(crate::status::StatusArgs),
    /// Compare scaling policies in a seeded simulation (virtual time; no backend involved).
    #[cfg(feature = "simulate")]
    Simulate(crate::simulate::SimulateArgs),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => args.run().await,
            Command::Status(args) => args.run().await,
            #[cfg(feature = "simulate")]
            Command::Simulate(args) => crate::simulate::run(args),
        }
    }
}

/// The policy's knobs as flags (also used by `minimoto serve --autoscale`).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Fewest workers to keep, even with nothing to do.
    #[arg(long, env = "MINIMOTO_MIN_WORKERS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub min_workers: u32,
    /// Most workers to run at once.
    #[arg(long, env = "MINIMOTO_MAX_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_workers: u32,
    /// The queue wait to aim for, in seconds.
    #[arg(long, env = "MINIMOTO_TARGET_WAIT_SECONDS", default_value_t = Knobs::default().target_wait)]
    pub target_wait_seconds: f64,
    /// Scale in only to the highest target of this many seconds.
    #[arg(long, env = "MINIMOTO_SCALE_IN_WINDOW_SECONDS", default_value_t = Knobs::default().scale_in_window)]
    pub scale_in_window_seconds: f64,
    /// Seconds a worker must be idle before it is drained.
    #[arg(long, env = "MINIMOTO_IDLE_SECONDS", default_value_t = Knobs::default().idle_before_removal)]
    pub idle_seconds: f64,
    /// A worker silent this many seconds is dead, and replaced.
    #[arg(long, env = "MINIMOTO_HEARTBEAT_TIMEOUT_SECONDS", default_value_t = Knobs::default().heartbeat_timeout)]
    pub heartbeat_timeout_seconds: f64,
    /// A launched worker that has not registered within this many seconds is given up
    /// (default: 60 for the local fleet, 300 for EC2).
    #[arg(long, env = "MINIMOTO_BOOT_TIMEOUT_SECONDS")]
    pub boot_timeout_seconds: Option<f64>,
    /// The job time to assume before any job finished, in seconds.
    #[arg(long, env = "MINIMOTO_DEFAULT_JOB_SECONDS", default_value_t = Knobs::default().default_job_seconds)]
    pub default_job_seconds: f64,
    /// The window the arrival rate and the mean job time are measured over, in seconds.
    #[arg(long, env = "MINIMOTO_RATE_WINDOW_SECONDS", default_value_t = Knobs::default().rate_window)]
    pub rate_window_seconds: f64,
    /// Seconds between decisions.
    #[arg(long, env = "MINIMOTO_SCALER_INTERVAL_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval_seconds: u64,
}

impl PolicyArgs {
    /// The knobs, checked (min ≤ max, positive times); the error names the flag.
    pub fn knobs(&self, default_boot_timeout: f64) -> crate::Result<Knobs> {
        let knobs = Knobs {
            target_wait: self.target_wait_seconds,
            min_workers: self.min_workers,
            max_workers: self.max_workers,
            scale_in_window: self.scale_in_window_seconds,
            idle_before_removal: self.idle_seconds,
            heartbeat_timeout: self.heartbeat_timeout_seconds,
            boot_timeout: self.boot_timeout_seconds.unwrap_or(default_boot_timeout),
            default_job_seconds: self.default_job_seconds,
            rate_window: self.rate_window_seconds,
            ..Knobs::default()
        };
        knobs.validate()?;
        Ok(knobs)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetKind {
    /// `minimoto-worker` processes on this machine.
    Local,
    /// EC2 instances from a launch template (builds with the `aws` feature).
    Ec2,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where workers run.
    #[arg(long, env = "MINIMOTO_FLEET", value_enum)]
    pub fleet: FleetKind,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Local fleet: the worker program (default: `minimoto-worker` next to this executable, else
    /// on PATH). It gets the scaler's backend settings in its environment.
    #[arg(long, env = "MINIMOTO_WORKER_PROGRAM")]
    pub worker_program: Option<PathBuf>,
    /// Local fleet: an argument for the worker program (repeatable).
    #[arg(long = "worker-arg", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    pub ec2: Ec2Args,
    /// Serve Prometheus metrics at `http://<address>/metrics` (off by default).
    #[cfg(feature = "prometheus")]
    #[arg(long, env = "MINIMOTO_SCALER_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The EC2 fleet's settings.
#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct Ec2Args {
    /// EC2 fleet: the launch template workers start from (default: `<stack>-worker`, which
    /// `minimoto setup --worker-ami …` creates).
    #[arg(long, env = "MINIMOTO_LAUNCH_TEMPLATE")]
    pub launch_template: Option<String>,
    /// EC2 fleet: launch Spot instances (one-time, terminated on interruption).
    #[arg(long, env = "MINIMOTO_SPOT")]
    pub spot: bool,
    /// EC2 fleet: the worker program on the instance.
    #[arg(long, env = "MINIMOTO_WORKER_COMMAND", default_value = crate::fleet::ec2::DEFAULT_WORKER_COMMAND)]
    pub worker_command: String,
}

/// Seconds the local fleet's workers get to finish their jobs when the scaler stops.
pub const LOCAL_GRACE: Duration = Duration::from_secs(120);

/// `minimoto-worker` next to this executable, else on PATH.
pub fn default_worker_program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<()> {
        let started = minimoto_runtime::start(&self.common, None, || Ok(())).await?;
        #[cfg(feature = "prometheus")]
        if let Some(listen) = self.metrics_listen {
            crate::metrics::serve(listen)?;
        }
        let (fleet, local): (Arc<dyn Fleet>, Option<Arc<LocalFleet>>) = match self.fleet {
            FleetKind::Local => {
                let fleet = Arc::new(LocalFleet::new(WorkerCommand {
                    program: self
                        .worker_program
                        .clone()
                        .unwrap_or_else(|| default_worker_program("minimoto-worker")),
                    args: self.worker_args.clone(),
                    env: self.common.to_env(),
                }));
                (fleet.clone(), Some(fleet))
            }
            FleetKind::Ec2 => (self.ec2_fleet().await?, None),
        };
        let default_boot = if local.is_some() { 60.0 } else { 300.0 };
        let knobs = self.policy.knobs(default_boot)?;
        fleet.check().await?;
        let backend = &started.backend;
        let controller = Controller::new(
            backend.queue.clone(),
            backend.registry.clone(),
            fleet.clone(),
            knobs.clone(),
        )?;
        tracing::info!(fleet = fleet.kind(), min = knobs.min_workers, max = knobs.max_workers, interval = ?self.policy.interval(), "scaler running");
        controller
            .run(self.policy.interval(), started.shutdown.clone())
            .await;
        if let Some(local) = local {
            tracing::info!("stopping the local fleet's workers");
            local.shutdown(LOCAL_GRACE).await;
        }
        tracing::info!("stopped");
        Ok(())
    }

    #[cfg(feature = "aws")]
    async fn ec2_fleet(&self) -> anyhow::Result<Arc<dyn Fleet>> {
        use crate::fleet::ec2::{Ec2Fleet, Ec2Settings};
        let aws = self.common.backend.aws.settings(self.common.max_attempts)?;
        let mut settings = Ec2Settings::new(aws);
        if let Some(name) = &self.ec2.launch_template {
            settings.launch_template = name.clone();
        }
        settings.spot = self.ec2.spot;
        settings.worker_command = vec![self.ec2.worker_command.clone()];
        // The job limits and attempts travel with the workers; the backend names are the fleet's.
        settings.extra_env = self
            .common
            .to_env()
            .into_iter()
            .filter(|(k, _)| k.starts_with("MINIMOTO_MAX_"))
            .collect();
        let config = minimoto_aws::load_sdk_config().await;
        Ok(Arc::new(Ec2Fleet::new(&config, settings)?))
    }

    #[cfg(not(feature = "aws"))]
    async fn ec2_fleet(&self) -> anyhow::Result<Arc<dyn Fleet>> {
        anyhow::bail!(
            "--fleet ec2: this binary was built without AWS; build it with `cargo build --release -p minimoto-scaler --features aws`"
        )
    }
}
