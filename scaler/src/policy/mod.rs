//! Scaling policies: from what the scaler observes to what it does, with a reason for each act.
//!
//! [`Observation`] is everything a policy may look at (read directly from the queue and the
//! registry, so nothing is minutes old); [`Decision`] is what it wants done. The scaler binary and
//! the simulator (`scaler simulate`) drive the same [`Policy`] values, so what the simulation
//! measures is the code that runs.
//!
//! - [`ours`]: minimoto's policy (backlog per worker with an in-flight term, an arrival-rate
//!   floor, scale-in stabilisation, never a busy worker).
//! - [`baselines`]: the policies it is compared with in the simulator (the original watchdog, a
//!   fixed fleet, a KEDA-like rule, AWS backlog-per-instance target tracking).

use minimoto_common::fleet::WorkerState;
use serde::Serialize;

pub mod baselines;
pub mod ours;

pub use ours::{Knobs, Ours};

/// One worker as a policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerView {
    pub id: String,
    /// `Booting` also for a member the fleet launched that has not registered yet.
    pub state: WorkerState,
    /// The worker has heartbeated at least once.
    pub registered: bool,
    /// Seconds since its last heartbeat (since its launch while it has not registered).
    pub silent_for: f64,
    /// Seconds it has been idle (0 unless idle).
    pub idle_for: f64,
    /// The scaler already asked it to drain.
    pub drain_requested: bool,
    /// CPU use in 0–1 as a machine metric would report it (only the watchdog baseline reads it).
    pub cpu: f64,
}

impl WorkerView {
    /// Leaving the fleet: asked to drain, draining or stopped. Such a worker is no capacity.
    pub fn leaving(&self) -> bool {
        self.drain_requested || matches!(self.state, WorkerState::Draining | WorkerState::Stopped)
    }
}

/// What the scaler sees at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Seconds on the caller's clock (wall time in the binary, virtual time in the simulator).
    pub now: f64,
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet acknowledged.
    pub in_flight: u64,
    pub workers: Vec<WorkerView>,
    /// Mean seconds per job over the recent window, once any job finished.
    pub mean_job_seconds: Option<f64>,
    /// Jobs arriving per second over the recent window.
    pub arrival_rate: f64,
}

impl Observation {
    pub fn count(&self, state: WorkerState) -> usize {
        self.workers
            .iter()
            .filter(|w| !w.leaving() && w.state == state)
            .count()
    }
}

/// One act, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub enum Action {
    /// Start `count` new workers.
    Launch { count: u32, reason: String },
    /// Ask a worker to stop receiving and finish the job in hand (scale-in, the safe way).
    Drain { worker: String, reason: String },
    /// Stop a worker's machine or process now: it stopped after draining, or it is dead.
    Terminate { worker: String, reason: String },
}

/// What a policy wants done at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Decision {
    /// The fleet size the policy aims for (live workers, not counting leaving ones).
    pub target: u32,
    pub actions: Vec<Action>,
    /// How the target was reached, for logs and `scaler status`.
    pub why: String,
}

impl Decision {
    pub fn launched(&self) -> u32 {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Launch { count, .. } => *count,
                _ => 0,
            })
            .sum()
    }

    pub fn drained(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match a {
            Action::Drain { worker, .. } => Some(worker.as_str()),
            _ => None,
        })
    }

    pub fn terminated(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match a {
            Action::Terminate { worker, .. } => Some(worker.as_str()),
            _ => None,
        })
    }
}

/// A policy: keeps what it must remember between decisions (a stabilisation window, a clock of
/// its own), and decides from an observation.
pub trait Policy: Send + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn decide(&mut self, observation: &Observation) -> Decision;
}
