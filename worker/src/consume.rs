//! The consume loop: long-poll → claim → render with a heartbeat → upload → succeed → ack.
//!
//! Delivery is at least once and any process may die at any line, so every step is safe to repeat:
//! the claim is a compare-and-set, outputs go to fixed keys under the job id (a re-run overwrites),
//! and the message is acked only after the job's final state is written.

use std::{panic::AssertUnwindSafe, path::PathBuf, sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures_util::FutureExt;
use minimoto_common::{
    ErrorCode,
    job::{Job, JobError, Outputs, Refusal, Stage, Thumbnail},
    layout,
    ports::{BlobStore, Delivery, JobQueue, JobStore, Update, update_job},
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::WorkerConfig,
    heartbeat::{Heartbeat, Progress},
    outcome::{ClassifyStorage, Failure, scratch_failure},
    presence::Presence,
};
use minimoto_render::{self as render, RenderInput};

#[derive(Debug, Clone)]
pub struct Worker {
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub config: WorkerConfig,
    /// What the process reports to the registry; shared by its consumers.
    pub presence: Presence,
    /// Fires when the machine is about to go (a Spot notice): the job in hand is stopped and handed
    /// back at once (its message visible again now, the attempt not counted) instead of finished.
    pub hand_back: CancellationToken,
}

/// What to do with a message once an attempt is over.
#[derive(Debug, PartialEq, Eq)]
enum Settle {
    /// Delete it: the job is final.
    Ack,
    /// Keep it, to be received again after this delay.
    RetryAfter(Duration),
    /// Touch nothing: another worker may hold the message now, and on SQS a stale receipt can
    /// delete a message someone else is working on. It comes back after its visibility timeout.
    Leave,
}

impl Worker {
    pub fn new(
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        blobs: Arc<dyn BlobStore>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            jobs,
            queue,
            blobs,
            config,
            presence: Presence::default(),
            hand_back: CancellationToken::new(),
        }
    }

    /// Consumes until `shutdown` fires; the job in hand is finished first (or handed back, once
    /// `hand_back` fired).
    pub async fn run(&self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.config.id, "worker started");
        self.presence.ready();
        let mut backoff = self.receive_backoff();
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.queue.receive(self.config.poll_wait, self.config.visibility) => r,
            };
            match received {
                Ok(Some(delivery)) => {
                    backoff = self.receive_backoff();
                    self.handle(delivery).await;
                }
                Ok(None) => backoff = self.receive_backoff(),
                Err(e) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(error = %e, ?delay, "queue receive failed; backing off");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!(worker = %self.config.id, "worker stopped");
    }

    fn receive_backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// One delivery, start to finish. Never panics and never returns an error: every outcome is
    /// written to the job and the message.
    pub async fn handle(&self, delivery: Delivery) {
        let job_id = delivery.job_id;
        let started = std::time::Instant::now();
        self.presence.job_started(job_id);
        let settle = match AssertUnwindSafe(self.attempt(&delivery))
            .catch_unwind()
            .await
        {
            Ok(settle) => settle,
            Err(panic) => {
                let what = panic_message(&panic);
                tracing::error!(%job_id, panic = %what, "job attempt panicked");
                self.fail(
                    job_id,
                    JobError::new(
                        ErrorCode::InternalError,
                        "the renderer hit an internal error",
                    ),
                )
                .await
                .unwrap_or(Settle::RetryAfter(self.config.visibility))
            }
        };
        self.presence.job_ended(
            job_id,
            started.elapsed().as_secs_f64(),
            settle == Settle::Ack,
        );
        let result = match settle {
            Settle::Ack => self.queue.ack(&delivery.receipt).await,
            Settle::RetryAfter(delay) => self.queue.extend(&delivery.receipt, delay).await,
            Settle::Leave => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(%job_id, error = %e, "could not settle the message; it will come back");
        }
        // A render frees hundreds of MB of frames and buffers; glibc would keep them resident
        // until the next one.
        tokio::task::spawn_blocking(minimoto_runtime::memory::release_free_memory);
    }

    async fn attempt(&self, delivery: &Delivery) -> Settle {
        let job_id = delivery.job_id;
        let worker = self.config.id.clone();
        // A live holder writes its lease every `heartbeat_every` (a quarter of the visibility), so a
        // lease older than half the visibility belongs to a worker that is gone or stuck.
        let ttl = chrono::Duration::from_std(self.config.visibility / 2)
            .unwrap_or(chrono::Duration::seconds(30));

        let claimed = update_job(self.jobs.as_ref(), job_id, |j| {
            j.claim(&worker, Utc::now(), ttl)
        })
        .await;
        let job = match claimed {
            Ok(Update::Done(job)) => job,
            Ok(Update::Refused(Refusal::Leased, _)) => {
                tracing::info!(%job_id, "job is held by a live worker; looking again later");
                return Settle::RetryAfter(self.config.visibility / 2);
            }
            Ok(Update::Refused(why, job)) => {
                tracing::info!(%job_id, status = job.status.as_str(), %why, "nothing to do; acking");
                // A deleted job's earlier attempt may have stored outputs after the delete.
                return self.settle_taken(&job).await;
            }
            // The API queues the id just before it writes the record, so a young message may
            // arrive first: try again shortly. A message whose record has not appeared within
            // `RECORD_GRACE` of the id's creation (the API died in between) is dropped.
            Err(minimoto_common::Error::NotFound(_)) if job_id.age() < RECORD_GRACE => {
                tracing::info!(%job_id, "no record for this job yet; retrying shortly");
                return Settle::RetryAfter(retry_delay(delivery.receive_count));
            }
            Err(minimoto_common::Error::NotFound(_)) => {
                tracing::warn!(%job_id, "message for an unknown job; dropping it");
                return Settle::Ack;
            }
            Err(e) => {
                tracing::warn!(%job_id, error = %e, "claim failed; will retry");
                return Settle::RetryAfter(retry_delay(delivery.receive_count));
            }
        };

        if job.attempts > self.config.max_attempts {
            tracing::warn!(%job_id, attempts = job.attempts, "attempts exhausted");
            let error = JobError::new(
                ErrorCode::AttemptsExhausted,
                format!(
                    "the job failed {} times and will not be retried",
                    self.config.max_attempts
                ),
            );
            return self
                .fail(job_id, error)
                .await
                .unwrap_or(Settle::RetryAfter(self.config.visibility));
        }

        tracing::info!(%job_id, attempt = job.attempts, "job claimed");
        let progress = Progress::new();
        let _heartbeat = Heartbeat::start(
            self.jobs.clone(),
            self.queue.clone(),
            job_id,
            delivery.receipt.clone(),
            worker.clone(),
            self.config.heartbeat_every,
            self.config.visibility,
            progress.clone(),
        );
        let started = std::time::Instant::now();
        let deadline = self
            .config
            .deadline
            .for_video(job.options.start_of(job.inputs.len()));
        let run = async {
            let run = self.run_job(&job, progress.clone());
            tokio::pin!(run);
            tokio::select! {
                outcome = &mut run => outcome,
                () = self.hand_back.cancelled() => {
                    progress.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    run.await
                }
            }
        };
        let outcome = match tokio::time::timeout(deadline, run).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // A hung decoder or encoder must not hold the job (and this worker) forever: stop
                // the render and let the attempt count against the job like any other failure.
                progress
                    .stop
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(Failure::retry(
                    ErrorCode::RenderTimeout,
                    format!("the attempt took longer than {deadline:?}"),
                ))
            }
        };
        match outcome {
            Ok(outputs) => {
                let frames = outputs.frames;
                match update_job(self.jobs.as_ref(), job_id, |j| {
                    j.succeed(&worker, outputs.clone(), Utc::now())
                })
                .await
                {
                    Ok(Update::Done(_)) => {
                        tracing::info!(%job_id, frames, seconds = started.elapsed().as_secs_f64(), "job succeeded");
                        metrics::histogram!("minimoto_render_seconds")
                            .record(started.elapsed().as_secs_f64());
                        metrics::counter!("minimoto_rendered_frames_total").increment(frames);
                        Settle::Ack
                    }
                    Ok(Update::Refused(why, current)) => {
                        tracing::info!(%job_id, %why, "job finished but was taken away meanwhile");
                        self.settle_taken(&current).await
                    }
                    Err(e) => {
                        tracing::warn!(%job_id, error = %e, "could not record success; will retry");
                        Settle::RetryAfter(retry_delay(delivery.receive_count))
                    }
                }
            }
            Err(Failure::Abort(error)) => {
                tracing::info!(%job_id, code = %error.code, message = %error.message, "job failed");
                self.fail(job_id, error)
                    .await
                    .unwrap_or(Settle::RetryAfter(self.config.visibility))
            }
            Err(Failure::Stopped) if self.hand_back.is_cancelled() => {
                // The machine is going: give the job back now, and make its message visible now.
                match update_job(self.jobs.as_ref(), job_id, |j| j.hand_back(&worker)).await {
                    Ok(Update::Done(_)) => {
                        tracing::info!(%job_id, "job handed back before the machine goes");
                        Settle::RetryAfter(Duration::ZERO)
                    }
                    _ => self.settle_stopped(job_id).await,
                }
            }
            Err(Failure::Stopped) => {
                // If the job is still ours (the message went to another worker), hand it over now.
                let _ = update_job(self.jobs.as_ref(), job_id, |j| j.release(&worker)).await;
                self.settle_stopped(job_id).await
            }
            Err(Failure::Retry { code, message }) => {
                tracing::warn!(%job_id, %code, %message, attempt = job.attempts, "attempt failed");
                if job.attempts >= self.config.max_attempts {
                    let error = JobError::new(code, final_message(code, job.attempts));
                    return self
                        .fail(job_id, error)
                        .await
                        .unwrap_or(Settle::RetryAfter(self.config.visibility));
                }
                match update_job(self.jobs.as_ref(), job_id, |j| j.release(&worker)).await {
                    // Cancelled or taken over meanwhile: not ours to retry.
                    Ok(Update::Refused(_, current)) => self.settle_taken(&current).await,
                    _ => Settle::RetryAfter(retry_delay_for(code, delivery.receive_count)),
                }
            }
        }
    }

    /// [`settle_taken`], after removing what this attempt stored for a job that was cancelled or
    /// deleted meanwhile: the client's `DELETE` removed the outputs it found, not those uploaded
    /// after it.
    async fn settle_taken(&self, current: &Job) -> Settle {
        if current.is_discarded() {
            let prefix = layout::outputs_of(current.id);
            match self.blobs.delete_prefix(&prefix).await {
                Ok(n) if n > 0 => {
                    tracing::info!(job_id = %current.id, files = n, "removed the outputs of a deleted job")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(job_id = %current.id, error = %e, "could not remove the outputs of a deleted job")
                }
            }
        }
        settle_taken(current)
    }

    async fn settle_stopped(&self, job_id: minimoto_common::JobId) -> Settle {
        match self.jobs.get(job_id).await {
            Ok(Some(current)) => self.settle_taken(&current).await,
            _ => Settle::Leave,
        }
    }

    /// Marks the job failed (under our lease) and acks; `None` when the write itself failed.
    async fn fail(&self, job_id: minimoto_common::JobId, error: JobError) -> Option<Settle> {
        let worker = &self.config.id;
        match update_job(self.jobs.as_ref(), job_id, |j| {
            j.fail(worker, error.clone(), Utc::now())
        })
        .await
        {
            Ok(Update::Done(_)) => Some(Settle::Ack),
            Ok(Update::Refused(_, current)) => Some(self.settle_taken(&current).await),
            Err(e) => {
                tracing::warn!(%job_id, error = %e, "could not record the failure; will retry");
                None
            }
        }
    }

    /// Download, render, upload. Outputs go to fixed keys, so a re-run overwrites.
    async fn run_job(&self, job: &Job, progress: Arc<Progress>) -> Result<Outputs, Failure> {
        let cfg = &self.config;
        tokio::fs::create_dir_all(&cfg.scratch_dir)
            .await
            .map_err(scratch_failure)?;
        let scratch = tempfile::Builder::new()
            .prefix(&format!("job-{}-", job.id))
            .tempdir_in(&cfg.scratch_dir)
            .map_err(scratch_failure)?;

        let mut photos = Vec::with_capacity(job.inputs.len());
        for (i, key) in job.inputs.iter().enumerate() {
            if progress.stopped() {
                return Err(Failure::Stopped);
            }
            let path = scratch.path().join(format!("in-{i:04}"));
            self.blobs
                .get_to_file(key, &path)
                .await
                .abort_if_missing(ErrorCode::InputMissing, || {
                    format!("photo {} of the job is no longer stored", i + 1)
                })?;
            photos.push(path);
            progress.set(Stage::Downloading, (i + 1) as f64 / job.inputs.len() as f64);
        }

        let audio = match &job.audio {
            Some(sound) => {
                let path = scratch.path().join("audio");
                self.blobs
                    .get_to_file(&sound.key, &path)
                    .await
                    .abort_if_missing(ErrorCode::InputMissing, || {
                        "the soundtrack of the job is no longer stored".to_owned()
                    })?;
                Some(path)
            }
            None => None,
        };

        progress.set(Stage::Rendering, 0.0);
        let out_dir: PathBuf = scratch.path().join("out");
        std::fs::create_dir_all(&out_dir).map_err(scratch_failure)?;
        let (spec, limits, encoder) =
            (job.options.clone(), cfg.limits.clone(), cfg.encoder.clone());
        let render_progress = progress.clone();
        let render_out = out_dir.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            let input = RenderInput {
                spec: &spec,
                photos: &photos,
                audio: audio.as_deref(),
                limits: &limits,
                out_dir: &render_out,
                encoder: &encoder,
            };
            let report = |f: f64| render_progress.set_fraction(f);
            render::render(&input, &report, &render_progress.stop)
        })
        .await;
        let rendered = match rendered {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if progress.stopped() => {
                tracing::info!(job_id = %job.id, error = %e, "render stopped");
                return Err(Failure::Stopped);
            }
            // The render classified its own failure: the photos or options (abort) or the
            // machine (retry).
            Ok(Err(e)) if e.is_bad_input() => return Err(Failure::abort(e.code(), e.to_string())),
            Ok(Err(e)) => return Err(Failure::retry(e.code(), e)),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => return Err(Failure::retry(ErrorCode::InternalError, join)),
        };

        progress.set(Stage::Uploading, 0.0);
        let spec = &job.options;
        let (video_key, poster_key) = (layout::video(job.id, spec.format), layout::poster(job.id));
        let size_bytes = self
            .blobs
            .put_file(&video_key, &rendered.video, spec.format.content_type())
            .await
            .retry_storage()?;
        minimoto_common::crash::point("output-video-stored");
        progress.set(Stage::Uploading, 0.9);
        let mut thumbnails = Vec::with_capacity(rendered.thumbnails.len());
        for t in &rendered.thumbnails {
            let key = layout::thumbnail(job.id, t.size);
            self.blobs
                .put_file(&key, &t.path, "image/jpeg")
                .await
                .retry_storage()?;
            thumbnails.push(Thumbnail {
                size: t.size,
                key,
                width: t.width,
                height: t.height,
            });
        }
        let preview_key = match (&rendered.preview, &spec.preview) {
            (Some(path), Some(p)) => {
                let key = layout::preview(job.id, p.format);
                self.blobs
                    .put_file(&key, path, p.format.content_type())
                    .await
                    .retry_storage()?;
                Some(key)
            }
            _ => None,
        };
        // The poster last: the crash tests treat it as "every output is stored".
        self.blobs
            .put_file(&poster_key, &rendered.poster, "image/jpeg")
            .await
            .retry_storage()?;
        minimoto_common::crash::point("output-stored");
        Ok(Outputs {
            video_key,
            poster_key,
            thumbnails,
            preview_key,
            duration_seconds: rendered.duration_seconds,
            width: rendered.width,
            height: rendered.height,
            frames: rendered.frames,
            size_bytes,
        })
    }
}

/// How long after an id is made its record may still be on its way (see the NotFound claim).
const RECORD_GRACE: Duration = Duration::from_secs(120);

/// The message of a job that was taken from us: ours to delete only if the job is final;
/// otherwise another worker holds it and its message.
fn settle_taken(current: &Job) -> Settle {
    if current.status.is_terminal() {
        Settle::Ack
    } else {
        Settle::Leave
    }
}

/// How long a failed attempt's message stays hidden: 2, 4, 8 … seconds, at most a minute.
fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(receive_count.min(6)).min(60))
}

/// [`retry_delay`], except for full storage: retrying in seconds would burn every attempt before
/// anyone could free space, so it waits 2, 8, then 15 minutes (with the default 3 attempts, about
/// 10 minutes pass before the job fails; with SQS's default 4 receives, 25).
fn retry_delay_for(code: ErrorCode, receive_count: u32) -> Duration {
    if code == ErrorCode::NoSpace {
        let minutes = 2u64.saturating_mul(4u64.saturating_pow(receive_count.saturating_sub(1)));
        Duration::from_secs(minutes.min(15) * 60)
    } else {
        retry_delay(receive_count)
    }
}

/// The error of a job whose attempts all failed with `code`.
fn final_message(code: ErrorCode, attempts: u32) -> String {
    if code == ErrorCode::NoSpace {
        format!(
            "the job failed {attempts} times because the worker's storage was full (no space left \
             on the disk); the operators must free space, then submit it again"
        )
    } else {
        format!(
            "the job failed {attempts} times ({code}); the operators can find the cause in the worker logs"
        )
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
        let code = ErrorCode::StorageFailed;
        assert_eq!(retry_delay_for(code, 3), retry_delay(3));
    }

    #[test]
    fn a_full_disk_waits_minutes_for_an_operator_and_says_why_it_failed() {
        let minutes: Vec<u64> = (1..=5)
            .map(|n| retry_delay_for(ErrorCode::NoSpace, n).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [2, 8, 15, 15, 15]);
        let m = final_message(ErrorCode::NoSpace, 3);
        assert!(m.contains("no space left"), "{m}");
        assert!(final_message(ErrorCode::EncoderFailed, 3).contains("encoder-failed"));
    }
}
