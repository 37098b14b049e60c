//! minimoto's policy. With W the target queue wait, S the mean job time and λ the arrival rate:
//!
//! ```text
//! per_worker = max(1, W / S)                      jobs one worker clears within W
//! backlog    = busy + ceil(visible / per_worker)  keep every busy worker, drain the queue within ~W
//! rate       = round(λ · S / utilisation)         steady-state floor (utilisation 0.8)
//! target     = clamp(max(backlog, rate, min), min, max)
//! ```
//!
//! The rate floor is rounded, not rounded up: a trickle (one job every few minutes) must not hold
//! a worker for the whole estimate window after the last job; the backlog term starts one for it.
//!
//! Out: launch `target − live` at once (booting workers count as live, so a slow boot is not
//! launched twice). In: only down to the highest target of the last `scale_in_window`, only
//! workers idle for `idle_before_removal`, longest idle first, and always by draining, never by
//! terminating a busy worker. Health: a worker silent for `heartbeat_timeout` (or a launch that has
//! not registered within `boot_timeout`) is terminated; its job comes back through its message's
//! visibility timeout, and the target replaces it on the same decision.

use std::collections::VecDeque;

use minimoto_common::fleet::WorkerState;
use serde::Serialize;

use super::{Action, Decision, Observation, Policy, WorkerView};
use crate::error::{Error, Result};

/// The policy's settings (seconds unless named otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knobs {
    /// The queue wait to aim for.
    pub target_wait: f64,
    pub min_workers: u32,
    pub max_workers: u32,
    /// Scale in only to the highest target seen over this window.
    pub scale_in_window: f64,
    /// A worker must be idle this long before it is drained.
    pub idle_before_removal: f64,
    /// A registered worker silent this long is dead.
    pub heartbeat_timeout: f64,
    /// A launched worker that has not registered within this time is dead.
    pub boot_timeout: f64,
    /// The busy share to plan for in steady state (0–1).
    pub utilisation: f64,
    /// The job time to assume before any job has finished.
    pub default_job_seconds: f64,
    /// The window the arrival rate and the mean job time are measured over.
    pub rate_window: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            target_wait: 60.0,
            min_workers: 0,
            max_workers: 20,
            scale_in_window: 240.0,
            idle_before_removal: 60.0,
            heartbeat_timeout: 30.0,
            boot_timeout: 300.0,
            utilisation: 0.8,
            default_job_seconds: 60.0,
            rate_window: 300.0,
        }
    }
}

impl Knobs {
    /// Refuses settings no fleet can follow, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.min_workers > self.max_workers {
            return bad(format!(
                "--min-workers ({}) is greater than --max-workers ({})",
                self.min_workers, self.max_workers
            ));
        }
        if self.max_workers == 0 {
            return bad("--max-workers must be at least 1".into());
        }
        for (name, value) in [
            ("--target-wait-seconds", self.target_wait),
            ("--heartbeat-timeout-seconds", self.heartbeat_timeout),
            ("--boot-timeout-seconds", self.boot_timeout),
            ("--default-job-seconds", self.default_job_seconds),
            ("--rate-window-seconds", self.rate_window),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(format!(
                    "{name} must be a positive number of seconds, not {value}"
                ));
            }
        }
        for (name, value) in [
            ("--scale-in-window-seconds", self.scale_in_window),
            ("--idle-seconds", self.idle_before_removal),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(format!("{name} must be 0 or more seconds, not {value}"));
            }
        }
        if !(self.utilisation > 0.0 && self.utilisation <= 1.0) {
            return bad(format!(
                "the planned utilisation must be in (0, 1], not {}",
                self.utilisation
            ));
        }
        Ok(())
    }
}

/// The policy with its memory: the targets of the scale-in window.
#[derive(Debug, Clone)]
pub struct Ours {
    pub knobs: Knobs,
    recent: VecDeque<(f64, u32)>,
}

impl Ours {
    pub fn new(knobs: Knobs) -> Self {
        Self {
            knobs,
            recent: VecDeque::new(),
        }
    }
}

impl Policy for Ours {
    fn name(&self) -> &'static str {
        "minimoto"
    }

    fn decide(&mut self, observation: &Observation) -> Decision {
        let window = self.knobs.scale_in_window;
        while self
            .recent
            .front()
            .is_some_and(|&(t, _)| t < observation.now - window)
        {
            self.recent.pop_front();
        }
        let peak = self.recent.iter().map(|&(_, t)| t).max().unwrap_or(0);
        let decision = decide(observation, &self.knobs, peak);
        self.recent.push_back((observation.now, decision.target));
        decision
    }
}

/// The target before stabilisation, from the live workers' busy count, with how it was reached.
fn raw_target(o: &Observation, k: &Knobs, busy: usize) -> (u32, String) {
    let job = o
        .mean_job_seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(k.default_job_seconds);
    let per_worker = (k.target_wait / job).max(1.0);
    let backlog = busy as f64 + (o.visible as f64 / per_worker).ceil();
    let rate = (o.arrival_rate.max(0.0) * job / k.utilisation).round();
    let wanted = backlog.max(rate).max(f64::from(k.min_workers));
    let target = wanted.min(f64::from(k.max_workers)) as u32;
    let why = format!(
        "visible {} in-flight {} busy {busy} · job {job:.0} s → {per_worker:.1} per worker within {:.0} s · backlog {backlog} · rate {:.3}/s → {rate} · min {} max {}",
        o.visible, o.in_flight, k.target_wait, o.arrival_rate, k.min_workers, k.max_workers
    );
    (target, why)
}

/// The decision, given the highest raw target of the scale-in window before this one (`peak`).
/// Pure: the same observation, knobs and peak always give the same decision.
pub fn decide(o: &Observation, k: &Knobs, peak: u32) -> Decision {
    let mut actions = Vec::new();
    let mut dead: Vec<&str> = Vec::new();
    for w in &o.workers {
        let reason = if w.state == WorkerState::Stopped {
            Some("stopped after draining".to_owned())
        } else if w.registered && w.silent_for > k.heartbeat_timeout {
            Some(format!(
                "no heartbeat for {:.0} s (timeout {:.0} s)",
                w.silent_for, k.heartbeat_timeout
            ))
        } else if !w.registered && w.silent_for > k.boot_timeout {
            Some(format!(
                "not registered {:.0} s after launch (boot timeout {:.0} s)",
                w.silent_for, k.boot_timeout
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            dead.push(&w.id);
            actions.push(Action::Terminate {
                worker: w.id.clone(),
                reason,
            });
        }
    }
    let live: Vec<&WorkerView> = o
        .workers
        .iter()
        .filter(|w| !w.leaving() && !dead.contains(&w.id.as_str()))
        .collect();
    let busy = live.iter().filter(|w| w.state == WorkerState::Busy).count();
    let (raw, why) = raw_target(o, k, busy);
    let floor = raw.max(peak.min(k.max_workers));
    let have = live.len() as u32;

    if raw > have {
        let count = raw - have;
        actions.push(Action::Launch {
            count,
            reason: format!("target {raw} > {have} live workers"),
        });
    } else if floor < have {
        let mut idle: Vec<&&WorkerView> = live
            .iter()
            .filter(|w| w.state == WorkerState::Idle && w.idle_for >= k.idle_before_removal)
            .collect();
        idle.sort_by(|a, b| b.idle_for.total_cmp(&a.idle_for).then(a.id.cmp(&b.id)));
        for w in idle.into_iter().take((have - floor) as usize) {
            actions.push(Action::Drain {
                worker: w.id.clone(),
                reason: format!(
                    "{have} live > {floor} (the highest target of the last {:.0} s); idle {:.0} s",
                    k.scale_in_window, w.idle_for
                ),
            });
        }
    }
    Decision {
        target: raw,
        actions,
        why,
    }
}

#[cfg(test)]
mod tests;
