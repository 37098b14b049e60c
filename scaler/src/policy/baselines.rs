//! The policies minimoto's is measured against in the simulator, each modelled on its published
//! rules (and no better): the original watchdog, a fixed fleet, KEDA's SQS scaler under the
//! Kubernetes HPA, and AWS target tracking on backlog per instance.
//!
//! They see the same [`Observation`] as [`super::Ours`]; what differs is what the simulator feeds
//! them (the watchdog and target tracking get CloudWatch-aged figures, at their own period) and the
//! worker system around them (the watchdog's has a 630 s visibility timeout and no heartbeat).
//! Workers are listed in launch order, oldest first: rules that pick "the oldest" or "the newest"
//! rely on it.

use std::collections::VecDeque;

use minimoto_common::fleet::WorkerState;

use super::{Action, Decision, Observation, Policy, WorkerView};

/// Workers that still count as capacity: not leaving (asked to drain, draining, stopped).
fn present(o: &Observation) -> Vec<&WorkerView> {
    o.workers.iter().filter(|w| !w.leaving()).collect()
}

/// A registered worker silent past `timeout` (a liveness probe, a health check).
fn silent(w: &WorkerView, timeout: f64) -> bool {
    w.registered && w.silent_for > timeout
}

fn terminate(w: &WorkerView, reason: String) -> Action {
    Action::Terminate {
        worker: w.id.clone(),
        reason,
    }
}

fn launch(count: u32, reason: String) -> Option<Action> {
    (count > 0).then_some(Action::Launch { count, reason })
}

/// The original watchdog, rule for rule. Each run (the simulator runs it every 60 s on
/// CloudWatch figures 1–2 min old, worker CPU and health included):
/// 1. replace crashed workers: terminate every worker silent for `crashed_after`, launch one each;
/// 2. if no worker is left, launch one;
/// 3. else if messages are visible, launch one more;
/// 4. else if messages are in flight, do nothing;
/// 5. else, if no worker is above 5 % CPU, scale in to one by terminating all but the oldest.
///
/// Rule 5 on aged figures is how it kills busy workers: the queue looked empty a minute ago.
#[derive(Debug, Clone)]
pub struct Watchdog {
    pub max_workers: u32,
    /// Seconds without a sign of life after which the watchdog calls a worker crashed.
    pub crashed_after: f64,
}

impl Watchdog {
    /// The CPU share under which a worker counts as doing nothing.
    pub const IDLE_CPU: f64 = 0.05;

    pub fn new(max_workers: u32) -> Self {
        Self {
            max_workers,
            crashed_after: 60.0,
        }
    }
}

impl Policy for Watchdog {
    fn name(&self) -> &'static str {
        "watchdog"
    }

    fn decide(&mut self, o: &Observation) -> Decision {
        let mut actions = Vec::new();
        let (crashed, alive): (Vec<&WorkerView>, Vec<&WorkerView>) = present(o)
            .into_iter()
            .partition(|w| silent(w, self.crashed_after));
        for w in &crashed {
            actions.push(terminate(
                w,
                format!("crashed: silent {:.0} s", w.silent_for),
            ));
        }
        let room = self.max_workers.saturating_sub(alive.len() as u32);
        let replace = (crashed.len() as u32).min(room);
        actions.extend(launch(replace, format!("replace {replace} crashed")));
        let have = alive.len() as u32 + replace;
        let (target, why) = if have == 0 {
            actions.extend(launch(1, "no worker".into()));
            (1, "no worker: launch one".to_owned())
        } else if o.visible > 0 {
            let more = u32::from(have < self.max_workers);
            actions.extend(launch(more, format!("{} visible", o.visible)));
            (
                have + more,
                format!("{} visible: launch one more", o.visible),
            )
        } else if o.in_flight > 0 {
            (have, format!("{} in flight: wait", o.in_flight))
        } else if alive.iter().all(|w| w.cpu <= Self::IDLE_CPU) {
            for w in alive.iter().skip(1) {
                actions.push(terminate(
                    w,
                    "queue empty, all idle: scale in to one".into(),
                ));
            }
            (
                1,
                "queue empty, no worker above 5 % CPU: scale in to one".to_owned(),
            )
        } else {
            (
                have,
                "queue empty, a worker is above 5 % CPU: wait".to_owned(),
            )
        };
        Decision {
            target,
            actions,
            why,
        }
    }
}

/// A fleet of `n` workers whatever the queue: dead ones (silent past a 30 s health check, or
/// never registered within 300 s) are replaced. The cost and wait of not scaling at all.
#[derive(Debug, Clone)]
pub struct Fixed(pub u32);

impl Fixed {
    const HEALTH_TIMEOUT: f64 = 30.0;
    const BOOT_TIMEOUT: f64 = 300.0;
}

impl Policy for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn decide(&mut self, o: &Observation) -> Decision {
        let mut actions = Vec::new();
        let mut live = 0u32;
        for w in &o.workers {
            let dead = silent(w, Self::HEALTH_TIMEOUT)
                || (!w.registered && w.silent_for > Self::BOOT_TIMEOUT);
            if w.state == WorkerState::Stopped || dead {
                actions.push(terminate(w, "dead or stopped: replace".into()));
            } else if !w.leaving() {
                live += 1;
            }
        }
        actions.extend(launch(
            self.0.saturating_sub(live),
            format!("keep {} workers", self.0),
        ));
        Decision {
            target: self.0,
            actions,
            why: format!("fixed fleet of {}", self.0),
        }
    }
}

/// KEDA's `aws-sqs-queue` scaler driving a Deployment through the HPA (run every 15 s, the HPA's
/// sync period, on `GetQueueAttributes` read directly):
/// - wanted = ceil((visible + in flight) / `queue_length`), within `[0, max_replicas]`;
/// - 0 → 1 is KEDA's activation; from 1 the HPA steps up at most by max(4 pods, 100 %) per run,
///   ignores a change within its 10 % tolerance, and scales down only to the highest wanted of
///   its 300 s stabilisation window; to zero only after `cooldown` with an empty queue;
/// - a pod silent for 30 s fails its liveness probe and is replaced;
/// - scale-down deletes pods the ReplicaSet way: not yet ready first, then the newest. A deleted
///   pod gets SIGTERM and a 30 s grace period, shorter than most renders, so it is modelled as a
///   terminate that kills the job in hand.
#[derive(Debug, Clone)]
pub struct Keda {
    pub queue_length: f64,
    pub max_replicas: u32,
    /// Seconds of an empty queue before scaling to zero (KEDA's `cooldownPeriod`).
    pub cooldown: f64,
    /// The HPA's scale-down stabilisation window.
    pub stabilisation: f64,
    recent: VecDeque<(f64, u32)>,
    last_active: f64,
}

impl Keda {
    const LIVENESS_TIMEOUT: f64 = 30.0;
    const TOLERANCE: f64 = 0.1;

    pub fn new(queue_length: f64, max_replicas: u32) -> Self {
        Self {
            queue_length,
            max_replicas,
            cooldown: 300.0,
            stabilisation: 300.0,
            recent: VecDeque::new(),
            last_active: f64::NEG_INFINITY,
        }
    }
}

impl Policy for Keda {
    fn name(&self) -> &'static str {
        "keda"
    }

    fn decide(&mut self, o: &Observation) -> Decision {
        let mut actions = Vec::new();
        let (dead, pods): (Vec<&WorkerView>, Vec<&WorkerView>) = present(o)
            .into_iter()
            .partition(|w| silent(w, Self::LIVENESS_TIMEOUT));
        for w in &dead {
            actions.push(terminate(w, "liveness probe failed".into()));
        }
        let current = pods.len() as u32;
        let messages = (o.visible + o.in_flight) as f64;
        if messages > 0.0 {
            self.last_active = o.now;
        }
        let wanted = ((messages / self.queue_length).ceil() as u32).min(self.max_replicas);
        let stepped = if current == 0 {
            wanted.min(1)
        } else if (messages / (self.queue_length * f64::from(current)) - 1.0).abs()
            <= Self::TOLERANCE
        {
            current
        } else {
            wanted.min(current.saturating_mul(2).max(current + 4))
        };
        while self
            .recent
            .front()
            .is_some_and(|&(t, _)| t < o.now - self.stabilisation)
        {
            self.recent.pop_front();
        }
        self.recent.push_back((o.now, stepped));
        let peak = self.recent.iter().map(|&(_, r)| r).max().unwrap_or(0);
        let mut target = if stepped >= current {
            stepped
        } else {
            peak.min(current)
        };
        if target == 0 && current > 0 && o.now - self.last_active < self.cooldown {
            target = 1;
        }
        let why = format!(
            "ceil(({} visible + {} in flight) / {}) = {wanted} · {current} pods → {target}",
            o.visible, o.in_flight, self.queue_length
        );
        // Dead pods are not counted in `current`: reaching the target replaces them.
        if target > current {
            actions.extend(launch(target - current, why.clone()));
        } else {
            let mut doomed = pods.clone();
            // Not ready first, then the newest (launch order, so reversed).
            doomed.reverse();
            doomed.sort_by_key(|w| w.registered);
            for w in doomed.into_iter().take((current - target) as usize) {
                actions.push(terminate(w, format!("scale down to {target}")));
            }
        }
        Decision {
            target,
            actions,
            why,
        }
    }
}

/// AWS target tracking on backlog per instance, the plain version of AWS's guide (run every 60 s
/// on a CloudWatch metric 1–2 min old): metric = visible / instances, target = acceptable wait /
/// average job time (`target_backlog`, fixed when the policy is set up).
/// - desired = ceil(instances × metric / target) = ceil(visible / target), within `[0, max]`;
///   instances include launching ones (the group's capacity counts them);
/// - out at once; in at most once per `scale_in_cooldown` (300 s), by terminating instances (no
///   scale-in protection) in launch order, busy or not — the default termination policy has no
///   notion of busy, and with per-second billing it falls back to an arbitrary pick;
/// - health is EC2's: a crashed worker process on a running instance passes, so it stays.
///
/// Real target tracking is slower still (3 one-minute datapoints to scale out, 15 to scale in);
/// the model flatters it.
#[derive(Debug, Clone)]
pub struct TargetTracking {
    pub target_backlog: f64,
    pub max_instances: u32,
    pub scale_in_cooldown: f64,
    last_scale_in: f64,
}

impl TargetTracking {
    pub fn new(target_backlog: f64, max_instances: u32) -> Self {
        Self {
            target_backlog: target_backlog.max(f64::MIN_POSITIVE),
            max_instances,
            scale_in_cooldown: 300.0,
            last_scale_in: f64::NEG_INFINITY,
        }
    }
}

impl Policy for TargetTracking {
    fn name(&self) -> &'static str {
        "target-tracking"
    }

    fn decide(&mut self, o: &Observation) -> Decision {
        let instances = present(o);
        let have = instances.len() as u32;
        let desired =
            ((o.visible as f64 / self.target_backlog).ceil() as u32).min(self.max_instances);
        let why = format!(
            "{} visible / {have} instances vs target {:.2} per instance → {desired}",
            o.visible, self.target_backlog
        );
        let mut actions = Vec::new();
        if desired > have {
            actions.extend(launch(desired - have, why.clone()));
        } else if desired < have && o.now - self.last_scale_in >= self.scale_in_cooldown {
            self.last_scale_in = o.now;
            for w in instances.into_iter().take((have - desired) as usize) {
                actions.push(terminate(w, format!("scale in to {desired}")));
            }
        }
        Decision {
            target: desired,
            actions,
            why,
        }
    }
}

#[cfg(test)]
mod tests;
