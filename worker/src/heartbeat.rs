//! While a job runs: every few seconds extend the message's visibility and the job's lease, and
//! publish the stage and progress. A refused heartbeat (the job was cancelled, or another worker
//! took it over) raises the `stop` flag the renderer checks between frames. Between beats the job
//! is read every [`WATCH_EVERY`], so a cancelled render stops within seconds, not a beat.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use minimoto_common::{
    JobId,
    job::{Stage, Status},
    ports::{JobQueue, JobStore, Update, update_job},
};
use tokio::task::JoinHandle;

/// Progress shared between the render thread and the heartbeat task.
#[derive(Debug)]
pub struct Progress {
    stage: std::sync::Mutex<Stage>,
    /// f64 bits of 0.0–1.0.
    fraction: AtomicU64,
    pub stop: AtomicBool,
}

impl Progress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            stage: std::sync::Mutex::new(Stage::Downloading),
            fraction: AtomicU64::new(0f64.to_bits()),
            stop: AtomicBool::new(false),
        })
    }

    pub fn set(&self, stage: Stage, fraction: f64) {
        if let Ok(mut s) = self.stage.lock() {
            *s = stage;
        }
        self.fraction.store(fraction.to_bits(), Ordering::Relaxed);
    }

    pub fn set_fraction(&self, fraction: f64) {
        self.fraction.store(fraction.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> (Stage, f64) {
        let stage = self.stage.lock().map_or(Stage::Rendering, |s| *s);
        (stage, f64::from_bits(self.fraction.load(Ordering::Relaxed)))
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// How often the job is read between beats (a read is cheaper than a beat's conditional write):
/// the longest a cancelled render goes on.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Heartbeat {
    task: JoinHandle<()>,
}

impl Heartbeat {
    #[expect(
        clippy::too_many_arguments,
        reason = "the wiring of one task; a struct would only rename them"
    )]
    pub fn start(
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        job_id: JobId,
        receipt: String,
        worker: String,
        every: Duration,
        visibility: Duration,
        progress: Arc<Progress>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY.min(every));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; the claim just extended everything
            // A deadline, not the time since the last beat: a tick that wakes a little early must
            // not put the beat off by a whole watch period.
            let mut next_beat = tokio::time::Instant::now() + every;
            loop {
                tick.tick().await;
                if tokio::time::Instant::now() + Duration::from_millis(50) < next_beat {
                    match jobs.get(job_id).await {
                        Ok(Some(job))
                            if job.status == Status::Running
                                && job.lease.as_ref().is_some_and(|l| l.owner == worker) => {}
                        Ok(job) => {
                            let status = job.map_or("deleted", |j| j.status.as_str());
                            tracing::info!(%job_id, status, "job taken away; stopping");
                            progress.stop.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => tracing::debug!(%job_id, error = %e, "could not read the job"),
                    }
                    continue;
                }
                next_beat += every;
                let (stage, fraction) = progress.get();
                match update_job(jobs.as_ref(), job_id, |j| {
                    j.heartbeat(&worker, stage, fraction, Utc::now())
                })
                .await
                {
                    Ok(Update::Done(_)) => {}
                    Ok(Update::Refused(why, job)) => {
                        tracing::info!(%job_id, status = job.status.as_str(), %why, "job taken away; stopping");
                        progress.stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => tracing::warn!(%job_id, error = %e, "heartbeat failed; will retry"),
                }
                // The lease first, then the message, so that a redelivery (after the message's
                // visibility lapses) always finds the lease lapsed too, and can take the job over.
                match queue.extend(&receipt, visibility).await {
                    Ok(()) => {}
                    Err(minimoto_common::Error::NotFound(_)) => {
                        tracing::warn!(%job_id, "the message was delivered to another worker; stopping");
                        progress.stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%job_id, error = %e, "could not extend the message's visibility")
                    }
                }
            }
        });
        Self { task }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
