//! The API's sweeper: runs [`Reclaimer`] at start (right after a crash is when there is most to
//! reclaim) and then every interval, until shutdown, and with it the backend's [`Expiry`] where
//! it has one (retention on storage that does not expire by itself). The API owns it because the
//! API's submissions are what leave photos without a job, and it states the retention.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use minimoto_common::{
    ports::{BlobStore, Expiry, JobStore},
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
    expiry: Option<Arc<dyn Expiry>>,
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
        if let Some(expiry) = &expiry {
            match expiry.sweep(Utc::now()).await {
                Ok(e) if e.files + e.records > 0 => {
                    metrics::counter!("minimoto_expired_total", "what" => "files")
                        .increment(e.files);
                    metrics::counter!("minimoto_expired_total", "what" => "records")
                        .increment(e.records);
                    tracing::info!(
                        files = e.files,
                        records = e.records,
                        "deleted what retention expired"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed; trying again later"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(sweep.interval) => {}
        }
    }
}
