//! Running workers as a process: their flags ([`WorkerArgs`]), the ffmpeg preflight, and the
//! consumers themselves ([`spawn`]). Used by the `minimoto-worker` binary ([`run`]) and by
//! `minimoto serve`, which runs workers beside the API.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use minimoto_runtime::{Backend, CommonArgs, Started};
use tokio::task::JoinHandle;

use crate::{
    Worker, WorkerConfig,
    config::Deadline,
    render::{EncoderSettings, encode::PRESETS},
};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Render workers in this process.
    #[arg(long, env = "MINIMOTO_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub workers: u32,
    /// Seconds a job may go without a heartbeat before another worker takes it over.
    #[arg(long, env = "MINIMOTO_VISIBILITY_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=43_200))]
    pub visibility_timeout_seconds: u64,
    /// Longest wait of one queue receive, in seconds (SQS long-polls at most 20 s per call).
    #[arg(long, env = "MINIMOTO_RECEIVE_WAIT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub receive_wait_seconds: u64,
    /// Longest one render attempt may take, in seconds, before it is stopped and retried ...
    #[arg(long, env = "MINIMOTO_RENDER_DEADLINE_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub render_deadline_seconds: u64,
    /// ... plus this many seconds per second of video.
    #[arg(long, env = "MINIMOTO_RENDER_DEADLINE_PER_VIDEO_SECOND", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub render_deadline_per_video_second: u64,
    /// libx264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow.
    #[arg(long, env = "MINIMOTO_X264_PRESET", default_value = "veryfast", value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    pub x264_preset: String,
    /// libx264 constant rate factor, 0–51 (lower: better quality, bigger files).
    #[arg(long, env = "MINIMOTO_X264_CRF", default_value_t = 23, value_parser = clap::value_parser!(u8).range(0..=51))]
    pub x264_crf: u8,
    /// The ffmpeg binary (default: next to this executable, else `ffmpeg` on PATH).
    #[arg(long, env = "MINIMOTO_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
}

impl WorkerArgs {
    pub fn ffmpeg_path(&self) -> PathBuf {
        crate::ffmpeg::resolve(self.ffmpeg.as_deref())
    }

    /// The startup check: ffmpeg runs and has libx264 (skipped with no workers to run).
    pub fn preflight(&self) -> anyhow::Result<()> {
        if self.workers > 0 {
            let version = crate::ffmpeg::check(&self.ffmpeg_path())?;
            tracing::info!(ffmpeg = %version, "ffmpeg found");
        }
        Ok(())
    }

    fn config(&self, common: &CommonArgs, scratch_dir: PathBuf) -> WorkerConfig {
        let visibility = Duration::from_secs(self.visibility_timeout_seconds);
        WorkerConfig {
            id: WorkerConfig::new_id(),
            poll_wait: Duration::from_secs(self.receive_wait_seconds),
            visibility,
            heartbeat_every: (visibility / 4).max(Duration::from_millis(500)),
            max_attempts: common.max_attempts,
            limits: common.limits.limits(),
            scratch_dir,
            deadline: Deadline {
                base: Duration::from_secs(self.render_deadline_seconds),
                per_video_second: Duration::from_secs(self.render_deadline_per_video_second),
            },
            encoder: EncoderSettings {
                ffmpeg: self.ffmpeg_path(),
                preset: self.x264_preset.clone(),
                crf: self.x264_crf,
            },
        }
    }
}

/// Starts `args.workers` consumers that stop (after their job in hand) when shutdown fires.
pub fn spawn(args: &WorkerArgs, common: &CommonArgs, started: &Started) -> Vec<JoinHandle<()>> {
    let Backend {
        jobs, queue, blobs, ..
    } = &started.backend;
    let scratch = started.scratch.path().join("jobs");
    (0..args.workers)
        .map(|_| {
            let worker = Worker {
                jobs: jobs.clone(),
                queue: queue.clone(),
                blobs: blobs.clone(),
                config: args.config(common, scratch.clone()),
            };
            let token = started.shutdown.clone();
            tokio::spawn(async move { worker.run(token).await })
        })
        .collect()
}

/// The `minimoto-worker` binary: consumers only, until SIGINT/SIGTERM.
pub async fn run(args: WorkerArgs, common: CommonArgs) -> anyhow::Result<()> {
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1 for a worker process");
    }
    let started = minimoto_runtime::start(&common, None, || args.preflight()).await?;
    let handles = spawn(&args, &common, &started);
    tracing::info!(workers = args.workers, backend = ?started.backend.kind, "workers running");
    for h in handles {
        let _ = h.await;
    }
    tracing::info!("stopped");
    Ok(())
}
