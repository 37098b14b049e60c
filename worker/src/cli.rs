//! Running workers as a process: their flags ([`WorkerArgs`]), the ffmpeg preflight, and the
//! consumers themselves ([`spawn`]). Used by the `minimoto-worker` binary ([`run`]) and by
//! `minimoto serve`, which runs workers beside the API.

use std::{path::PathBuf, time::Duration};

use chrono::Utc;
use clap::Args;
use minimoto_runtime::{Backend, CommonArgs, Started};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use minimoto_render::{EncoderSettings, encode::PRESETS};

use crate::{
    Worker, WorkerConfig,
    config::{Deadline, hostname},
    presence::{Identity, Presence, run_beats},
    spot::Metadata,
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
    /// libvpx-vp9 speed for WebM videos, 0–8 (real-time mode; higher: faster, bigger files).
    #[arg(long, env = "MINIMOTO_VP9_SPEED", default_value_t = 7, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub vp9_speed: u8,
    /// libvpx-vp9 constant quality for WebM videos, 0–63 (lower: better quality, bigger files).
    #[arg(long, env = "MINIMOTO_VP9_CRF", default_value_t = 33, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub vp9_crf: u8,
    /// The ffmpeg binary (default: next to this executable, else `ffmpeg` on PATH).
    #[arg(long, env = "MINIMOTO_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
    /// This worker's id in the registry (the scaler's fleets set it; default: made up at start).
    #[arg(long, env = "MINIMOTO_WORKER_ID", value_parser = parse_worker_id)]
    pub worker_id: Option<String>,
    /// Seconds between heartbeats to the worker registry.
    #[arg(long, env = "MINIMOTO_REGISTRY_HEARTBEAT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub registry_heartbeat_seconds: u64,
    /// Poll this EC2 Spot interruption notice URL every 5 s, and hand the job back on a notice
    /// (on EC2: `http://169.254.169.254/latest/meta-data/spot/instance-action`; off by default).
    #[arg(long, env = "MINIMOTO_SPOT_NOTICE_URL")]
    pub spot_notice_url: Option<String>,
    /// Drain and exit when the process that started this one is gone (the local fleet sets it, so
    /// no worker outlives a scaler killed with `kill -9`).
    #[arg(long, env = "MINIMOTO_EXIT_WITH_PARENT")]
    pub exit_with_parent: bool,
}

/// Worker ids go into tags, logs and leases: 1–64 letters, digits, `-`, `_` or `.`.
fn parse_worker_id(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}`: use 1–64 letters, digits, `-`, `_` or `.`"))
    }
}

impl WorkerArgs {
    /// These settings as the environment of a worker process with one consumer (what `serve
    /// --autoscale` starts): every flag but `--workers` and `--worker-id`, which the fleet sets.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("MINIMOTO_WORKERS", "1".to_owned()),
            (
                "MINIMOTO_VISIBILITY_TIMEOUT_SECONDS",
                self.visibility_timeout_seconds.to_string(),
            ),
            (
                "MINIMOTO_RECEIVE_WAIT_SECONDS",
                self.receive_wait_seconds.to_string(),
            ),
            (
                "MINIMOTO_RENDER_DEADLINE_SECONDS",
                self.render_deadline_seconds.to_string(),
            ),
            (
                "MINIMOTO_RENDER_DEADLINE_PER_VIDEO_SECOND",
                self.render_deadline_per_video_second.to_string(),
            ),
            ("MINIMOTO_X264_PRESET", self.x264_preset.clone()),
            ("MINIMOTO_X264_CRF", self.x264_crf.to_string()),
            ("MINIMOTO_VP9_SPEED", self.vp9_speed.to_string()),
            ("MINIMOTO_VP9_CRF", self.vp9_crf.to_string()),
            ("MINIMOTO_FFMPEG", self.ffmpeg_path().display().to_string()),
            (
                "MINIMOTO_REGISTRY_HEARTBEAT_SECONDS",
                self.registry_heartbeat_seconds.to_string(),
            ),
        ];
        if let Some(url) = &self.spot_notice_url {
            env.push(("MINIMOTO_SPOT_NOTICE_URL", url.clone()));
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    pub fn ffmpeg_path(&self) -> PathBuf {
        minimoto_render::ffmpeg::resolve(self.ffmpeg.as_deref())
    }

    /// The startup check: ffmpeg runs and has the encoders (skipped with no workers to run).
    pub fn preflight(&self) -> anyhow::Result<()> {
        if self.workers > 0 {
            let version = minimoto_render::ffmpeg::check(&self.ffmpeg_path())?;
            tracing::info!(ffmpeg = %version, "ffmpeg found");
        }
        Ok(())
    }

    fn config(&self, common: &CommonArgs, id: String, scratch_dir: PathBuf) -> WorkerConfig {
        let visibility = Duration::from_secs(self.visibility_timeout_seconds);
        WorkerConfig {
            id,
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
                vp9_speed: self.vp9_speed,
                vp9_crf: self.vp9_crf,
            },
        }
    }
}

/// A worker process's consumers, its heartbeats and its Spot watch.
#[derive(Debug)]
pub struct Running {
    pub id: String,
    consumers: Vec<JoinHandle<()>>,
    /// `None` in a process with no consumers (`serve --workers 0`): nothing to report.
    beats: Option<JoinHandle<()>>,
    spot: Option<JoinHandle<()>>,
    presence: Presence,
    done: CancellationToken,
}

impl Running {
    /// Waits for the consumers to stop (after their jobs in hand), then reports `stopped`.
    pub async fn wait(self) {
        for consumer in self.consumers {
            let _ = consumer.await;
        }
        self.presence.stopped();
        self.done.cancel();
        if let Some(beats) = self.beats {
            let _ = beats.await;
        }
        if let Some(spot) = self.spot {
            let _ = spot.await;
        }
    }
}

/// Starts `args.workers` consumers that stop (after their job in hand) when shutdown fires or the
/// scaler asks this worker to drain, and hand their jobs back on a Spot notice.
pub async fn spawn(
    args: &WorkerArgs,
    common: &CommonArgs,
    started: &Started,
) -> anyhow::Result<Running> {
    let Backend {
        jobs,
        queue,
        blobs,
        registry,
        ..
    } = &started.backend;
    let spot = args
        .spot_notice_url
        .as_deref()
        .map(Metadata::new)
        .transpose()?;
    let instance = match &spot {
        Some(metadata) => metadata.instance_id().await,
        None => None,
    };
    let id = args.worker_id.clone().unwrap_or_else(WorkerConfig::new_id);
    let presence = Presence::default();
    let stop = started.shutdown.child_token();
    let hand_back = CancellationToken::new();
    let done = CancellationToken::new();
    let scratch = started.scratch.path().join("jobs");
    let consumers = (0..args.workers)
        .map(|n| {
            // Leases name the consumer; the registry names the process.
            let consumer_id = if args.workers == 1 {
                id.clone()
            } else {
                format!("{id}.{n}")
            };
            let worker = Worker {
                presence: presence.clone(),
                hand_back: hand_back.clone(),
                ..Worker::new(
                    jobs.clone(),
                    queue.clone(),
                    blobs.clone(),
                    args.config(common, consumer_id, scratch.clone()),
                )
            };
            let token = stop.clone();
            tokio::spawn(async move { worker.run(token).await })
        })
        .collect();
    {
        // A signal makes the process leave like a drain does.
        let (presence, stop) = (presence.clone(), stop.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            presence.leaving();
        });
    }
    let who = Identity {
        id: id.clone(),
        host: hostname(),
        instance,
        started_at: Utc::now(),
    };
    let beats = (args.workers > 0).then(|| {
        tokio::spawn(run_beats(
            registry.clone(),
            presence.clone(),
            who,
            Duration::from_secs(args.registry_heartbeat_seconds),
            stop.clone(),
            done.clone(),
        ))
    });
    if args.exit_with_parent {
        tokio::spawn(drain_when_orphaned(stop.clone()));
    }
    let spot = spot.map(|metadata| {
        let (hand_back, stop, done) = (hand_back.clone(), stop.clone(), done.clone());
        tokio::spawn(async move {
            metadata
                .watch(crate::spot::POLL_EVERY, hand_back.clone(), done)
                .await;
            if hand_back.is_cancelled() {
                stop.cancel();
            }
        })
    });
    Ok(Running {
        id,
        consumers,
        beats,
        spot,
        presence,
        done,
    })
}

/// Fires `stop` once this process's parent is gone (it is then re-parented, so its parent id
/// changes).
async fn drain_when_orphaned(stop: CancellationToken) {
    let parent = nix::unistd::getppid();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if nix::unistd::getppid() != parent {
            tracing::warn!("the process that started this worker is gone; draining");
            stop.cancel();
            return;
        }
    }
}

/// The `minimoto-worker` binary: consumers only, until SIGINT/SIGTERM or a drain request.
pub async fn run(args: WorkerArgs, common: CommonArgs) -> anyhow::Result<()> {
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1 for a worker process");
    }
    let started = minimoto_runtime::start(&common, None, || args.preflight()).await?;
    let running = spawn(&args, &common, &started).await?;
    tracing::info!(worker = %running.id, workers = args.workers, backend = ?started.backend.kind, "workers running");
    running.wait().await;
    tracing::info!("stopped");
    Ok(())
}
