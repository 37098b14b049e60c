//! Render workers in this process: spawned beside the API by `serve`, or alone by `worker`.

use std::time::Duration;

use anyhow::Context;
use minimoto_worker::{Worker, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{backend::Backend, cli::RunArgs};

/// Starts `args.workers` consumers that stop (after their job in hand) when `shutdown` fires.
pub fn spawn(
    backend: &Backend,
    args: &RunArgs,
    scratch: &std::path::Path,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let visibility = args.visibility();
    (0..args.workers)
        .map(|_| {
            let worker = Worker {
                jobs: backend.jobs.clone(),
                queue: backend.queue.clone(),
                blobs: backend.blobs.clone(),
                config: WorkerConfig {
                    id: WorkerConfig::new_id(),
                    poll_wait: Duration::from_secs(10),
                    visibility,
                    heartbeat_every: (visibility / 4).max(Duration::from_millis(500)),
                    max_attempts: args.max_attempts,
                    limits: args.limits.limits(),
                    scratch_dir: scratch.to_owned(),
                },
            };
            let token = shutdown.clone();
            tokio::spawn(async move { worker.run(token).await })
        })
        .collect()
}

/// `minimoto worker`: consumers only, until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let ffmpeg = minimoto_worker::ffmpeg::check()?;
    tracing::info!(%ffmpeg, "ffmpeg found");
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1 for `minimoto worker`");
    }
    let data = &args.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    // Workers hand out no download links; the local store still needs a base for its signer.
    let backend = Backend::open(
        &args.backend,
        data,
        "http://127.0.0.1:8080",
        args.max_attempts,
    )
    .await?;
    let scratch = crate::scratch::Scratch::claim(&data.join("scratch"))?;
    let shutdown = crate::signals::shutdown_on_signals();
    let handles = spawn(&backend, &args, &scratch.path().join("jobs"), &shutdown);
    tracing::info!(workers = args.workers, backend = ?args.backend.backend, "workers running");
    for h in handles {
        let _ = h.await;
    }
    tracing::info!("stopped");
    Ok(())
}
