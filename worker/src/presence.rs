//! The worker process in the registry: what it is doing, told every few seconds, and the scaler's
//! answer (drain) acted on.
//!
//! One record per process: the consumers of the process share one [`Presence`], which is `busy`
//! while any of them holds a job. The beat loop ([`run_beats`]) writes the record every
//! `every`; when the registry answers that a drain was requested, it fires the process's stop
//! token (receive nothing more, finish the job in hand), exactly as SIGTERM does. A beat that
//! fails is logged and retried on the next tick: the registry going away must not stop rendering.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use minimoto_common::{
    JobId,
    fleet::{Beat, WorkerState},
    ports::WorkerRegistry,
};
use tokio_util::sync::CancellationToken;

/// Who this worker is, for every beat.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub host: String,
    pub instance: Option<String>,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Inner {
    ready: bool,
    leaving: bool,
    stopped: bool,
    jobs: Vec<JobId>,
    idle_since: Option<DateTime<Utc>>,
    jobs_done: u64,
    busy_seconds: f64,
}

/// What the process is doing now; cheap to clone, shared by its consumers.
#[derive(Debug, Clone)]
pub struct Presence {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                ready: false,
                leaving: false,
                stopped: false,
                jobs: Vec::new(),
                idle_since: None,
                jobs_done: 0,
                busy_seconds: 0.0,
            })),
        }
    }
}

impl Presence {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// The consumers are receiving: `booting → idle`.
    pub fn ready(&self) {
        self.with(|i| {
            if !i.ready {
                i.ready = true;
                i.idle_since = Some(Utc::now());
            }
        });
    }

    pub fn job_started(&self, job: JobId) {
        self.with(|i| i.jobs.push(job));
    }

    /// A job left this worker's hands; `finished` when it ended (succeeded or failed) here, so its
    /// time counts toward the scaler's job-time estimate.
    pub fn job_ended(&self, job: JobId, seconds: f64, finished: bool) {
        self.with(|i| {
            i.jobs.retain(|j| *j != job);
            if finished {
                i.jobs_done += 1;
                i.busy_seconds += seconds.max(0.0);
            }
            if i.jobs.is_empty() {
                i.idle_since = Some(Utc::now());
            }
        });
    }

    /// The process receives nothing more (a drain request, a signal, a Spot notice).
    pub fn leaving(&self) {
        self.with(|i| i.leaving = true);
    }

    /// Every consumer has stopped.
    pub fn stopped(&self) {
        self.with(|i| i.stopped = true);
    }

    pub fn state(&self) -> WorkerState {
        self.with(|i| state_of(i))
    }

    pub fn beat(&self, who: &Identity) -> Beat {
        self.with(|i| {
            let state = state_of(i);
            Beat {
                id: who.id.clone(),
                host: who.host.clone(),
                instance: who.instance.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
                state,
                job: i.jobs.first().copied(),
                started_at: who.started_at,
                idle_since: if state == WorkerState::Idle {
                    i.idle_since
                } else {
                    None
                },
                jobs_done: i.jobs_done,
                busy_seconds: i.busy_seconds,
                at: Utc::now(),
            }
        })
    }
}

fn state_of(i: &Inner) -> WorkerState {
    if i.stopped {
        WorkerState::Stopped
    } else if i.leaving {
        WorkerState::Draining
    } else if !i.ready {
        WorkerState::Booting
    } else if i.jobs.is_empty() {
        WorkerState::Idle
    } else {
        WorkerState::Busy
    }
}

/// Beats every `every` until `done` fires, then writes one last beat (normally `stopped`).
/// A drain request fires `stop`.
pub async fn run_beats(
    registry: Arc<dyn WorkerRegistry>,
    presence: Presence,
    who: Identity,
    every: Duration,
    stop: CancellationToken,
    done: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = ticks.tick() => {}
        }
        match registry.beat(&presence.beat(&who)).await {
            Ok(directive) if directive.drain && !stop.is_cancelled() => {
                tracing::info!(worker = %who.id, "the scaler asked this worker to drain");
                presence.leaving();
                stop.cancel();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(worker = %who.id, error = %e, "heartbeat to the registry failed")
            }
        }
    }
    if let Err(e) = registry.beat(&presence.beat(&who)).await {
        tracing::warn!(worker = %who.id, error = %e, "the last heartbeat to the registry failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_life_of_the_process() {
        let p = Presence::default();
        let who = Identity {
            id: "w-1".into(),
            host: "h".into(),
            instance: None,
            started_at: Utc::now(),
        };
        assert_eq!(p.state(), WorkerState::Booting);
        p.ready();
        assert_eq!(p.state(), WorkerState::Idle);
        assert!(p.beat(&who).idle_since.is_some());
        let (a, b) = (JobId::new(), JobId::new());
        p.job_started(a);
        p.job_started(b);
        let beat = p.beat(&who);
        assert_eq!(
            (beat.state, beat.job, beat.idle_since),
            (WorkerState::Busy, Some(a), None)
        );
        p.job_ended(a, 10.0, true);
        assert_eq!(
            p.state(),
            WorkerState::Busy,
            "one of two consumers still renders"
        );
        p.job_ended(b, 5.0, false);
        let beat = p.beat(&who);
        assert_eq!(beat.state, WorkerState::Idle);
        assert_eq!(
            (beat.jobs_done, beat.busy_seconds),
            (1, 10.0),
            "a handed-back job is not counted"
        );
        p.leaving();
        assert_eq!(p.state(), WorkerState::Draining);
        p.stopped();
        assert_eq!(p.state(), WorkerState::Stopped);
    }
}
