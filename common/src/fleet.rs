//! The worker registry's records: what each worker process reports about itself, and what the
//! scaler asks of it.
//!
//! A worker is one `minimoto-worker` process (on EC2, one instance); it heartbeats its state every
//! few seconds. The scaler never kills a worker it did not first ask to drain, unless the worker
//! has been silent past the heartbeat timeout (then it counts as dead and is replaced).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::JobId;

/// Where a worker is in its life, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Started, not yet receiving (checking ffmpeg, opening the backend).
    Booting,
    /// Receiving, with no job in hand.
    Idle,
    /// Rendering a job.
    Busy,
    /// Asked to stop (by the scaler, a signal or a Spot notice): receives nothing more and
    /// finishes or hands back the job in hand.
    Draining,
    /// Exited after draining: safe to terminate.
    Stopped,
}

impl WorkerState {
    pub const ALL: [WorkerState; 5] = [
        Self::Booting,
        Self::Idle,
        Self::Busy,
        Self::Draining,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booting => "booting",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Draining => "draining",
            Self::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker writes on each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// The worker's id: given by whoever launched it (the fleet), else made up at start.
    pub id: String,
    /// The machine's host name.
    pub host: String,
    /// The EC2 instance id, when the worker runs on one.
    pub instance: Option<String>,
    /// The worker's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub state: WorkerState,
    /// The job in hand, if any.
    pub job: Option<JobId>,
    /// When the process started.
    pub started_at: DateTime<Utc>,
    /// When it last entered `idle` (for idle-time scale-in); `None` while it never was idle.
    pub idle_since: Option<DateTime<Utc>>,
    /// Jobs finished (succeeded or failed) since start, and their total render seconds: the
    /// scaler's estimate of a job's duration.
    pub jobs_done: u64,
    pub busy_seconds: f64,
    /// When this beat was written.
    pub at: DateTime<Utc>,
}

/// A worker as the registry holds it: its last beat and the scaler's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    #[serde(flatten)]
    pub beat: Beat,
    /// Set by the scaler: the worker is to drain and stop.
    pub drain_requested: bool,
}

impl WorkerRecord {
    /// Seconds since the last heartbeat.
    pub fn silent_for(&self, now: DateTime<Utc>) -> f64 {
        seconds_between(self.beat.at, now)
    }
}

/// What the registry answers a heartbeat with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directive {
    /// The scaler asked this worker to drain.
    pub drain: bool,
}

/// One decision of the scaler, kept for `scaler status` (the registry holds the last few).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub at: DateTime<Utc>,
    /// The decision as the scaler logged it (JSON: target, launch, drain, terminate, reasons).
    pub decision: serde_json::Value,
}

/// How many decisions the registry keeps.
pub const DECISIONS_KEPT: usize = 20;

/// `later − earlier` in seconds, never negative (clocks of two machines may disagree slightly).
pub fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    ((later - earlier).num_milliseconds() as f64 / 1000.0).max(0.0)
}
