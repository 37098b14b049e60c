//! The API's sweeper: runs [`Reclaimer`] at start (right after a crash is when there is most to
//! reclaim) and then every interval, until shutdown. The API owns it because the API's
//! submissions are what leave photos without a job.

use std::{sync::Arc, time::Duration};

use minimoto_common::{
    ports::{BlobStore, JobStore},
    reclaim::Reclaimer,
};
use tokio_util::sync::CancellationToken;

/// When and what the sweeper reclaims.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    /// Files no job owns are removed once older than this.
    pub grace: Duration,
    /// Time between sweeps.
    pub interval: Duration,
}

/// Sweeps until `shutdown`; a failed sweep is logged and tried again at the next interval.
pub async fn run(
    blobs: Arc<dyn BlobStore>,
    jobs: Arc<dyn JobStore>,
    sweep: Sweep,
    shutdown: CancellationToken,
) {
    let mut reclaimer = Reclaimer::new(blobs.as_ref(), jobs.as_ref(), sweep.grace);
    loop {
        match reclaimer.sweep().await {
            Ok(s) if s.orphans + s.debris > 0 => tracing::info!(
                orphans = s.orphans,
                objects = s.objects,
                debris = s.debris,
                "reclaimed files no job owns"
            ),
            Ok(_) => tracing::debug!("sweep found nothing to reclaim"),
            Err(e) => tracing::warn!(error = %e, "sweep failed; trying again later"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(sweep.interval) => {}
        }
    }
}
