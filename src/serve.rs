//! `minimoto serve`: the API and render workers in one command — N workers in this process, or
//! with `--autoscale` a local fleet of worker processes that the scaler sizes from the queue.

use std::sync::Arc;

use minimoto_api::cli::{ApiArgs, Listener};
use minimoto_runtime::CommonArgs;
use minimoto_scaler::{
    cli::{LOCAL_GRACE, PolicyArgs},
    control::Controller,
    fleet::local::{LocalFleet, WorkerCommand},
};
use minimoto_worker::cli::WorkerArgs;

pub async fn serve(
    api: ApiArgs,
    worker: WorkerArgs,
    common: CommonArgs,
    autoscale: Option<PolicyArgs>,
) -> anyhow::Result<()> {
    let listener = Listener::bind(&api, &common).await?;
    // Only rendering needs ffmpeg: an API-only process (`--workers 0`) starts without it.
    let preflight = || match &autoscale {
        Some(_) => minimoto_worker::render::ffmpeg::check(&worker.ffmpeg_path())
            .map(|_| ())
            .map_err(anyhow::Error::from),
        None => worker.preflight(),
    };
    let started = minimoto_runtime::start(&common, Some(&listener.public_url), preflight).await?;
    match autoscale {
        None => {
            let workers = minimoto_worker::cli::spawn(&worker, &common, &started).await?;
            tracing::info!(workers = worker.workers, data_dir = %common.data_dir.display(), "minimoto is serving");
            let served = minimoto_api::cli::serve(listener, &api, &common, &started).await;
            workers.wait().await;
            served?;
        }
        Some(policy) => {
            let knobs = policy.knobs(60.0)?;
            let program = std::env::current_exe().map_err(|e| {
                anyhow::anyhow!("cannot find this executable to start workers: {e}")
            })?;
            let mut env = common.to_env();
            env.extend(worker.to_env());
            let fleet = Arc::new(LocalFleet::new(WorkerCommand {
                program,
                args: vec!["worker".into()],
                env,
            }));
            let backend = &started.backend;
            let controller = Controller::new(
                backend.queue.clone(),
                backend.registry.clone(),
                fleet.clone(),
                knobs.clone(),
            )?;
            let scaler = tokio::spawn(controller.run(policy.interval(), started.shutdown.clone()));
            tracing::info!(min_workers = knobs.min_workers, max_workers = knobs.max_workers, data_dir = %common.data_dir.display(), "minimoto is serving, with an autoscaled local fleet");
            let served = minimoto_api::cli::serve(listener, &api, &common, &started).await;
            let _ = scaler.await;
            tracing::info!("stopping the worker processes");
            fleet.shutdown(LOCAL_GRACE).await;
            served?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}
