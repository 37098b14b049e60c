//! `minimoto serve`: the API and N render workers in one process.

use minimoto_api::cli::{ApiArgs, Listener};
use minimoto_runtime::CommonArgs;
use minimoto_worker::cli::WorkerArgs;

pub async fn serve(api: ApiArgs, worker: WorkerArgs, common: CommonArgs) -> anyhow::Result<()> {
    let listener = Listener::bind(&api).await?;
    // Only rendering needs ffmpeg: an API-only process (`--workers 0`) starts without it.
    let started =
        minimoto_runtime::start(&common, Some(&listener.public_url), || worker.preflight()).await?;
    let workers = minimoto_worker::cli::spawn(&worker, &common, &started);
    tracing::info!(
        workers = worker.workers,
        data_dir = %common.data_dir.display(),
        "minimoto is serving"
    );
    minimoto_api::cli::serve(listener, &api, &common, &started).await;
    for w in workers {
        let _ = w.await;
    }
    tracing::info!("stopped");
    Ok(())
}
