//! The event engine: one policy, one scenario, one seed, in virtual seconds.
//!
//! The queue has SQS semantics: a received message is invisible until it is deleted (the job
//! finished) or its visibility timeout passes, after which it is visible again; a message received
//! more than [`MAX_RECEIVES`] times goes to the dead-letter queue. Workers boot in 30–90 s,
//! receive at once when idle (long polling), heartbeat every [`HEARTBEAT`] s, and die by a crash,
//! a kill (a busy worker terminated) or a Spot reclaim. A dead worker stays registered and goes
//! silent; its machine bills until someone terminates it.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, VecDeque},
};

use minimoto_common::fleet::WorkerState;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::scenario::{Class, Fault, Scenario};
use crate::{
    estimate::{Estimator, Totals},
    policy::{Action, Observation, Policy, WorkerView},
};

/// Receives before a message is dead-lettered (the job had this many attempts).
pub const MAX_RECEIVES: u32 = 3;
/// Seconds between a live worker's heartbeats (each also extends its message's visibility).
pub const HEARTBEAT: f64 = 10.0;
/// Seconds between a Spot notice and the reclaim.
const SPOT_NOTICE: f64 = 120.0;
/// Seconds an instance takes to boot: uniform in this range.
const BOOT: (f64, f64) = (30.0, 90.0);
/// Seconds of the estimator's window (arrival rate and mean job time).
const ESTIMATE_WINDOW: f64 = 300.0;
/// Seconds between two samples of the fleet and the queue, for plots.
const SAMPLE_EVERY: f64 = 30.0;
/// A run stops this long after the horizon even with jobs unsettled (those are lost).
const OVERTIME: f64 = 6.0 * 3600.0;
/// A share of a poison job's render after which the worker crashes.
const POISON_AT: f64 = 0.3;
/// Scale-in within this many seconds of a launch (or a launch this soon after a scale-in) is a
/// flap.
pub const FLAP_WINDOW: f64 = 120.0;

/// The worker and queue system a policy runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct System {
    /// Seconds between two decisions.
    pub tick: f64,
    /// The age range of the figures the policy sees (CloudWatch); `None`: read directly, late
    /// only by the scenario's lag.
    pub metrics_age: Option<(f64, f64)>,
    /// Worker health and CPU come through the same aged metrics.
    pub aged_workers: bool,
    /// Seconds a received message stays invisible.
    pub visibility: f64,
    /// Each heartbeat extends the visibility of the message in hand (else it is set once).
    pub heartbeat_extends: bool,
    /// On a Spot notice the worker hands its job back at once and drains (else it ignores it).
    pub spot_hand_back: bool,
}

/// One fleet and queue sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: f64,
    /// Instances up (booting, live, stopped or dead but not terminated).
    pub fleet: u32,
    pub visible: u64,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum End {
    /// Seconds from arrival to the start of the render that finished it.
    Done {
        wait: f64,
    },
    DeadLettered,
    /// Still queued or in flight when the run stopped.
    Lost,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub jobs: Vec<(Class, End)>,
    /// Per-second billing with a 60 s minimum per instance.
    pub instance_seconds: f64,
    pub actions: u32,
    pub flaps: u32,
    pub busy_killed: u32,
    /// Seconds from a worker's death (or a job handed back) until the job runs again.
    pub recoveries: Vec<f64>,
    pub series: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Booting,
    Idle,
    Busy,
    /// Handed its job back on a Spot notice; waits for the reclaim.
    Draining,
    Stopped,
    /// Dead, reporting what it was when it died.
    Dead(WorkerState),
}

#[derive(Debug)]
struct Worker {
    id: String,
    launched: f64,
    ready: Option<f64>,
    died: Option<f64>,
    gone: Option<f64>,
    phase: Phase,
    /// Phase changes, for views of the past (aged metrics).
    history: Vec<(f64, Phase)>,
    idle_since: f64,
    drain_requested: bool,
    /// The job in hand, the attempt's token and its start.
    job: Option<(usize, u64, f64)>,
    token: u64,
    jobs_done: u64,
    busy_seconds: f64,
}

impl Worker {
    fn set(&mut self, now: f64, phase: Phase) {
        self.phase = phase;
        self.history.push((now, phase));
        if phase == Phase::Idle {
            self.idle_since = now;
        }
    }

    fn alive(&self) -> bool {
        self.gone.is_none() && !matches!(self.phase, Phase::Dead(_))
    }

    /// The last heartbeat at or before `t` (a heartbeat every [`HEARTBEAT`] s from registration).
    fn last_beat(&self, t: f64) -> f64 {
        let ready = self.ready.unwrap_or(self.launched);
        let t = self.died.map_or(t, |d| d.min(t));
        ready + ((t - ready) / HEARTBEAT).floor().max(0.0) * HEARTBEAT
    }

    /// The worker as seen at `seen` (≤ now), reported at `now`.
    fn view(&self, now: f64, seen: f64) -> WorkerView {
        let at = self.history.partition_point(|&(t, _)| t <= seen);
        let Some(&(_, phase)) = at.checked_sub(1).and_then(|i| self.history.get(i)) else {
            // Launched after the figures were taken: listed by the fleet, with no data yet.
            return WorkerView {
                id: self.id.clone(),
                state: WorkerState::Booting,
                registered: false,
                silent_for: now - self.launched,
                idle_for: 0.0,
                drain_requested: self.drain_requested,
                cpu: 0.0,
            };
        };
        let registered = self.ready.is_some_and(|r| r <= seen);
        let (state, cpu) = match phase {
            Phase::Booting => (WorkerState::Booting, 0.5),
            Phase::Idle => (WorkerState::Idle, 0.02),
            Phase::Busy if self.drain_requested => (WorkerState::Draining, 0.95),
            Phase::Busy => (WorkerState::Busy, 0.95),
            Phase::Draining => (WorkerState::Draining, 0.02),
            Phase::Stopped => (WorkerState::Stopped, 0.0),
            Phase::Dead(state) => (state, 0.0),
        };
        WorkerView {
            id: self.id.clone(),
            state,
            registered,
            silent_for: if registered {
                seen - self.last_beat(seen)
            } else {
                seen - self.launched
            },
            idle_for: if phase == Phase::Idle {
                seen - self.idle_since
            } else {
                0.0
            },
            drain_requested: self.drain_requested,
            cpu,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotYet,
    Visible,
    InFlight,
    Settled,
}

#[derive(Debug)]
struct Job {
    status: Status,
    end: End,
    receives: u32,
    receipt: u64,
    /// The worker holding the current receipt.
    holder: Option<usize>,
    /// When its last attempt was cut short, until it runs again.
    interrupted: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Arrive(usize),
    Booted(usize),
    Finish { worker: usize, token: u64 },
    Crash { worker: usize, token: u64 },
    Expire { job: usize, receipt: u64 },
    Reclaim(usize),
    Fault(usize),
    Tick,
    Sample,
}

#[derive(Debug)]
struct Scheduled {
    at: f64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest first, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

/// One run's state.
#[derive(Debug)]
struct World<'a> {
    scenario: &'a Scenario,
    system: System,
    now: f64,
    seq: u64,
    events: BinaryHeap<Scheduled>,
    jobs: Vec<Job>,
    visible: VecDeque<usize>,
    in_flight: u64,
    settled: usize,
    workers: Vec<Worker>,
    /// (at, visible, in flight) after every change, for aged figures.
    queue_history: Vec<(f64, u64, u64)>,
    boot_rng: ChaCha8Rng,
    lag_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    totals: Totals,
    estimator: Estimator,
    last_launch: f64,
    last_scale_in: f64,
    actions: u32,
    flaps: u32,
    busy_killed: u32,
    recoveries: Vec<f64>,
    series: Vec<Sample>,
}

/// Runs `policy` on `scenario` with the worker `system`; `seed` draws boots, metric ages and
/// fault victims (the jobs come with the scenario).
pub fn run(scenario: &Scenario, system: System, policy: &mut dyn Policy, seed: u64) -> Outcome {
    let stream = |k: u64| ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9).wrapping_add(k));
    let mut w = World {
        scenario,
        system,
        now: 0.0,
        seq: 0,
        events: BinaryHeap::new(),
        jobs: Vec::new(),
        visible: VecDeque::new(),
        in_flight: 0,
        settled: 0,
        workers: Vec::new(),
        queue_history: vec![(0.0, 0, 0)],
        boot_rng: stream(1),
        lag_rng: stream(2),
        fault_rng: stream(3),
        totals: Totals::default(),
        estimator: Estimator::new(ESTIMATE_WINDOW),
        last_launch: f64::NEG_INFINITY,
        last_scale_in: f64::NEG_INFINITY,
        actions: 0,
        flaps: 0,
        busy_killed: 0,
        recoveries: Vec::new(),
        series: Vec::new(),
    };
    for (i, spec) in scenario.jobs.iter().enumerate() {
        w.jobs.push(Job {
            status: Status::NotYet,
            end: End::Lost,
            receives: 0,
            receipt: 0,
            holder: None,
            interrupted: None,
        });
        w.at(spec.at, Event::Arrive(i));
    }
    for (i, fault) in scenario.faults.iter().enumerate() {
        let (Fault::KillBusy { at, .. } | Fault::SpotNotice { at, .. }) = *fault;
        w.at(at, Event::Fault(i));
    }
    w.at(0.0, Event::Tick);
    w.at(0.0, Event::Sample);
    let stop = scenario.horizon + OVERTIME;
    while let Some(Scheduled { at, event, .. }) = w.events.pop() {
        if at > stop {
            break;
        }
        w.now = at;
        w.handle(event, policy);
        w.dispatch();
        w.record_queue();
        if w.now >= scenario.horizon && w.settled == w.jobs.len() {
            break;
        }
    }
    w.outcome()
}

impl World<'_> {
    fn at(&mut self, at: f64, event: Event) {
        self.seq += 1;
        self.events.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    fn handle(&mut self, event: Event, policy: &mut dyn Policy) {
        match event {
            Event::Arrive(job) => {
                self.jobs[job].status = Status::Visible;
                self.visible.push_back(job);
            }
            Event::Booted(i) => {
                let now = self.now;
                let w = &mut self.workers[i];
                if w.gone.is_none() {
                    w.ready = Some(now);
                    let phase = if w.drain_requested {
                        Phase::Stopped
                    } else {
                        Phase::Idle
                    };
                    w.set(now, phase);
                }
            }
            Event::Finish { worker, token } => self.finish(worker, token),
            Event::Crash { worker, token } => {
                let w = &self.workers[worker];
                if w.alive() && w.job.is_some_and(|(_, t, _)| t == token) {
                    self.die(worker);
                }
            }
            Event::Expire { job, receipt } => {
                let j = &mut self.jobs[job];
                if j.status == Status::InFlight && j.receipt == receipt {
                    self.make_visible(job);
                }
            }
            Event::Reclaim(i) => {
                if self.workers[i].gone.is_none() {
                    self.interrupt(i);
                    self.workers[i].gone = Some(self.now);
                }
            }
            Event::Fault(i) => self.fault(self.scenario.faults[i]),
            Event::Tick => {
                self.tick(policy);
                self.at(self.now + self.system.tick, Event::Tick);
            }
            Event::Sample => {
                self.series.push(Sample {
                    at: self.now,
                    fleet: self.workers.iter().filter(|w| w.gone.is_none()).count() as u32,
                    visible: self.visible.len() as u64,
                });
                self.at(self.now + SAMPLE_EVERY, Event::Sample);
            }
        }
    }

    /// Idle workers receive visible messages, oldest worker first.
    fn dispatch(&mut self) {
        while !self.visible.is_empty() {
            let Some(i) = self
                .workers
                .iter()
                .position(|w| w.alive() && w.phase == Phase::Idle && !w.drain_requested)
            else {
                return;
            };
            let Some(job) = self.visible.pop_front() else {
                return;
            };
            let j = &mut self.jobs[job];
            j.receives += 1;
            if j.receives > MAX_RECEIVES {
                j.status = Status::Settled;
                j.end = End::DeadLettered;
                self.settled += 1;
                continue;
            }
            j.status = Status::InFlight;
            j.receipt += 1;
            j.holder = Some(i);
            let receipt = j.receipt;
            if let Some(t) = j.interrupted.take() {
                self.recoveries.push(self.now - t);
            }
            self.in_flight += 1;
            let spec = &self.scenario.jobs[job];
            let (service, poison) = (spec.service, spec.poison);
            let now = self.now;
            let w = &mut self.workers[i];
            w.token += 1;
            let token = w.token;
            w.job = Some((job, token, now));
            w.set(now, Phase::Busy);
            if poison {
                self.at(now + service * POISON_AT, Event::Crash { worker: i, token });
            } else {
                self.at(now + service, Event::Finish { worker: i, token });
            }
            if !self.system.heartbeat_extends {
                self.at(now + self.system.visibility, Event::Expire { job, receipt });
            }
        }
    }

    fn finish(&mut self, worker: usize, token: u64) {
        let now = self.now;
        let w = &mut self.workers[worker];
        let Some((job, t, started)) = w.job else {
            return;
        };
        if t != token || !w.alive() {
            return;
        }
        w.job = None;
        w.jobs_done += 1;
        w.busy_seconds += now - started;
        let phase = if w.drain_requested {
            Phase::Stopped
        } else {
            Phase::Idle
        };
        w.set(now, phase);
        let at = self.scenario.jobs[job].at;
        let j = &mut self.jobs[job];
        match j.status {
            Status::Settled | Status::NotYet => return,
            Status::Visible => self.visible.retain(|&q| q != job),
            Status::InFlight => self.in_flight -= 1,
        }
        // Outputs are idempotent: whichever attempt finishes first completes the job.
        j.status = Status::Settled;
        j.end = End::Done { wait: started - at };
        j.holder = None;
        j.interrupted = None;
        self.settled += 1;
    }

    fn make_visible(&mut self, job: usize) {
        let j = &mut self.jobs[job];
        j.status = Status::Visible;
        j.holder = None;
        self.in_flight -= 1;
        // An old message: SQS tends to hand it out among the first.
        self.visible.push_front(job);
    }

    /// The worker's attempt ends unfinished: its message comes back when its visibility runs
    /// out (from the last heartbeat's extension, or the receive).
    fn interrupt(&mut self, worker: usize) {
        let now = self.now;
        let w = &mut self.workers[worker];
        let Some((job, _, started)) = w.job.take() else {
            return;
        };
        let last_beat = w.last_beat(now);
        let j = &mut self.jobs[job];
        if j.status != Status::InFlight || j.holder != Some(worker) {
            return;
        }
        j.interrupted = Some(now);
        if self.system.heartbeat_extends {
            let receipt = j.receipt;
            let expiry = started.max(last_beat) + self.system.visibility;
            self.at(expiry, Event::Expire { job, receipt });
        }
    }

    fn die(&mut self, worker: usize) {
        self.interrupt(worker);
        let now = self.now;
        let w = &mut self.workers[worker];
        let was = match w.phase {
            Phase::Booting => WorkerState::Booting,
            Phase::Idle => WorkerState::Idle,
            Phase::Busy => WorkerState::Busy,
            Phase::Draining => WorkerState::Draining,
            Phase::Stopped | Phase::Dead(_) => return,
        };
        w.died = Some(now);
        w.set(now, Phase::Dead(was));
    }

    fn fault(&mut self, fault: Fault) {
        let (share, busy_only) = match fault {
            Fault::KillBusy { share, .. } => (share, true),
            Fault::SpotNotice { share, .. } => (share, false),
        };
        let mut victims: Vec<usize> = (0..self.workers.len())
            .filter(|&i| {
                let w = &self.workers[i];
                w.alive() && (!busy_only || w.phase == Phase::Busy)
            })
            .collect();
        if victims.is_empty() {
            return;
        }
        victims.shuffle(&mut self.fault_rng);
        let n = ((victims.len() as f64 * share).round() as usize).max(1);
        for &i in &victims[..n] {
            match fault {
                Fault::KillBusy { .. } => self.die(i),
                Fault::SpotNotice { .. } => {
                    self.at(self.now + SPOT_NOTICE, Event::Reclaim(i));
                    if self.system.spot_hand_back {
                        self.hand_back(i);
                    }
                }
            }
        }
    }

    /// A Spot notice on a minimoto worker: the job in hand is visible again now, and the worker
    /// drains until the reclaim.
    fn hand_back(&mut self, worker: usize) {
        let now = self.now;
        let w = &mut self.workers[worker];
        w.drain_requested = true;
        let job = w.job.take();
        if w.phase != Phase::Booting {
            w.set(now, Phase::Draining);
        }
        if let Some((job, _, _)) = job
            && self.jobs[job].status == Status::InFlight
            && self.jobs[job].holder == Some(worker)
        {
            self.jobs[job].interrupted = Some(now);
            self.jobs[job].receipt += 1;
            self.make_visible(job);
        }
    }

    fn record_queue(&mut self) {
        let now = (self.now, self.visible.len() as u64, self.in_flight);
        if self
            .queue_history
            .last()
            .is_none_or(|&(_, v, f)| (v, f) != (now.1, now.2))
        {
            self.queue_history.push(now);
        }
    }

    /// The queue figures as they were at `t`.
    fn queue_at(&self, t: f64) -> (u64, u64) {
        let i = self.queue_history.partition_point(|&(at, _, _)| at <= t);
        i.checked_sub(1)
            .and_then(|i| self.queue_history.get(i))
            .map_or((0, 0), |&(_, v, f)| (v, f))
    }

    fn observe(&mut self) -> Observation {
        let age = match self.system.metrics_age {
            Some((lo, hi)) => self.lag_rng.random_range(lo..=hi),
            None => self.scenario.queue_lag,
        };
        let (visible, in_flight) = self.queue_at(self.now - age);
        let seen = if self.system.aged_workers {
            self.now - age
        } else {
            self.now
        };
        let workers: Vec<WorkerView> = self
            .workers
            .iter()
            .filter(|w| w.gone.is_none())
            .map(|w| w.view(self.now, seen))
            .collect();
        self.totals.update(
            self.workers
                .iter()
                .filter(|w| w.alive())
                .map(|w| (w.id.as_str(), w.jobs_done, w.busy_seconds)),
        );
        let estimate = self
            .estimator
            .observe(self.now, visible + in_flight, &self.totals);
        Observation {
            now: self.now,
            visible,
            in_flight,
            workers,
            mean_job_seconds: estimate.mean_job_seconds,
            arrival_rate: estimate.arrival_rate,
        }
    }

    fn tick(&mut self, policy: &mut dyn Policy) {
        let observation = self.observe();
        let decision = policy.decide(&observation);
        let (mut launched, mut scaled_in) = (false, false);
        for action in &decision.actions {
            self.actions += 1;
            match action {
                Action::Launch { count, .. } => {
                    launched = true;
                    for _ in 0..*count {
                        self.launch();
                    }
                }
                Action::Drain { worker, .. } => {
                    if let Some(i) = self.find(worker) {
                        scaled_in |= self.workers[i].alive();
                        self.drain(i);
                    }
                }
                Action::Terminate { worker, .. } => {
                    if let Some(i) = self.find(worker) {
                        let w = &self.workers[i];
                        scaled_in |= w.alive() && w.phase != Phase::Stopped;
                        self.terminate(i);
                    }
                }
            }
        }
        if launched {
            self.flaps += u32::from(self.now - self.last_scale_in < FLAP_WINDOW);
            self.last_launch = self.now;
        }
        if scaled_in {
            self.flaps += u32::from(self.now - self.last_launch < FLAP_WINDOW);
            self.last_scale_in = self.now;
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.workers
            .iter()
            .position(|w| w.gone.is_none() && w.id == id)
    }

    fn launch(&mut self) {
        let i = self.workers.len();
        let boot = self.boot_rng.random_range(BOOT.0..=BOOT.1);
        self.workers.push(Worker {
            id: format!("w{i}"),
            launched: self.now,
            ready: None,
            died: None,
            gone: None,
            phase: Phase::Booting,
            history: vec![(self.now, Phase::Booting)],
            idle_since: self.now,
            drain_requested: false,
            job: None,
            token: 0,
            jobs_done: 0,
            busy_seconds: 0.0,
        });
        self.at(self.now + boot, Event::Booted(i));
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        let w = &mut self.workers[i];
        if !w.alive() {
            return;
        }
        w.drain_requested = true;
        if w.phase == Phase::Idle {
            w.set(now, Phase::Stopped);
        }
    }

    fn terminate(&mut self, i: usize) {
        let w = &self.workers[i];
        if w.alive() && w.job.is_some() {
            self.busy_killed += 1;
        }
        self.interrupt(i);
        self.workers[i].gone = Some(self.now);
    }

    fn outcome(self) -> Outcome {
        let end = self.now.max(self.scenario.horizon);
        let instance_seconds = self
            .workers
            .iter()
            .map(|w| (w.gone.unwrap_or(end) - w.launched).max(60.0))
            .sum();
        Outcome {
            jobs: self
                .scenario
                .jobs
                .iter()
                .zip(&self.jobs)
                .map(|(spec, j)| (spec.class, j.end))
                .collect(),
            instance_seconds,
            actions: self.actions,
            flaps: self.flaps,
            busy_killed: self.busy_killed,
            recoveries: self.recoveries,
            series: self.series,
        }
    }
}

#[cfg(test)]
mod tests;
