//! `minimoto serve`: the API and N render workers in one process.

use std::time::Duration;

use anyhow::Context;
use minimoto_api::AppState;

use crate::{backend::Backend, cli::ServeArgs};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let run = &args.run;
    // Only rendering needs ffmpeg: an API-only process (`--workers 0`) starts without it.
    if run.workers > 0 {
        let ffmpeg = minimoto_worker::ffmpeg::check()?;
        tracing::info!(%ffmpeg, "ffmpeg found");
    }

    let data = &run.data_dir;
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

    let backend = Backend::open(&run.backend, data, &public_url, run.max_attempts).await?;
    let scratch = crate::scratch::Scratch::claim(&data.join("scratch"))?;
    let state = AppState {
        jobs: backend.jobs.clone(),
        queue: backend.queue.clone(),
        blobs: backend.blobs.clone(),
        limits: run.limits.limits(),
        url_ttl: Duration::from_secs(args.url_ttl_seconds),
        local_files: backend.local_files.clone(),
        scratch_dir: scratch.path().join("uploads"),
        upload_stall: Duration::from_secs(args.upload_stall_seconds),
        decode_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
    };

    let shutdown = crate::signals::shutdown_on_signals();
    let workers = crate::workers::spawn(&backend, run, &scratch.path().join("jobs"), &shutdown);
    tracing::info!(
        %addr, %public_url, workers = run.workers, backend = ?run.backend.backend, data_dir = %data.display(),
        "minimoto is serving"
    );
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");

    let header_timeout = Duration::from_secs(args.header_timeout_seconds);
    crate::http::serve(
        listener,
        minimoto_api::router(state),
        header_timeout,
        shutdown.clone(),
    )
    .await;
    for w in workers {
        let _ = w.await;
    }
    tracing::info!("stopped");
    Ok(())
}
