//! `minimoto serve`: the API and N render workers in one process, on the embedded backend.

use std::time::Duration;

use anyhow::Context;
use minimoto_api::AppState;
use minimoto_worker::{Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::{backend::Backend, cli::ServeArgs};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ffmpeg = minimoto_worker::ffmpeg::check()?;
    tracing::info!(%ffmpeg, "ffmpeg found");

    let data = &args.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    let Backend {
        jobs,
        queue,
        blobs,
        local_files,
    } = Backend::open(&args.backend, data, &public_url, args.max_attempts).await?;
    let limits = args.limits.limits();

    let state = AppState {
        jobs: jobs.clone(),
        queue: queue.clone(),
        blobs: blobs.clone(),
        limits: limits.clone(),
        url_ttl: Duration::from_secs(args.url_ttl_seconds),
        local_files,
        scratch_dir: data.join("scratch/uploads"),
    };

    let shutdown = CancellationToken::new();
    let visibility = args.visibility();
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let worker = Worker {
            jobs: jobs.clone(),
            queue: queue.clone(),
            blobs: blobs.clone(),
            config: WorkerConfig {
                id: WorkerConfig::new_id(),
                poll_wait: Duration::from_secs(10),
                visibility,
                heartbeat_every: (visibility / 4).max(Duration::from_millis(500)),
                max_attempts: args.max_attempts,
                limits: limits.clone(),
                scratch_dir: data.join("scratch/jobs"),
            },
        };
        let token = shutdown.clone();
        workers.push(tokio::spawn(async move { worker.run(token).await }));
    }

    tracing::info!(
        %addr, %public_url, workers = args.workers, backend = ?args.backend.backend, data_dir = %data.display(),
        "minimoto is serving"
    );
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");

    let app = minimoto_api::router(state);
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "shutting down: finishing requests and jobs in hand (signal again to quit now)"
        );
        signal.cancel();
        wait_for_signal().await;
        tracing::warn!(
            "quitting now; jobs in hand will be picked up again after the visibility timeout"
        );
        std::process::exit(130);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    for w in workers {
        let _ = w.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
