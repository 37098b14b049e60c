//! What arrives and what goes wrong: job classes with calibrated render times, arrival patterns
//! and faults. A scenario is drawn from its own seeded stream, so every policy faces the very same
//! jobs (the same arrivals, classes and service times) for a given seed.

use clap::ValueEnum;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A job's size: small is 5 photos of ~1 MB, medium 15 × ~2 MB, large 55 × ~2 MB, xlarge
/// 125 × ~2 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Small,
    Medium,
    Large,
    Xlarge,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Small, Class::Medium, Class::Large, Class::Xlarge];
    /// The mixed workload's weights: 4 small, 3 medium, 2 large, 1 xlarge in 10.
    const WEIGHTS: [u32; 4] = [4, 3, 2, 1];

    pub fn name(self) -> &'static str {
        match self {
            Class::Small => "small",
            Class::Medium => "medium",
            Class::Large => "large",
            Class::Xlarge => "xlarge",
        }
    }

    /// Mean render seconds: one real render of each class with `scripts/bench-classes` on a
    /// 2-core machine (docs/scaling.md has the runs and their conditions).
    pub fn mean_seconds(self) -> f64 {
        match self {
            Class::Small => 13.6,
            Class::Medium => 30.0,
            Class::Large => 126.8,
            Class::Xlarge => 332.2,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn mixed(rng: &mut ChaCha8Rng) -> Class {
        let mut pick = rng.random_range(0..Self::WEIGHTS.iter().sum::<u32>());
        for (class, weight) in Self::ALL.into_iter().zip(Self::WEIGHTS) {
            if pick < weight {
                return class;
            }
            pick -= weight;
        }
        Class::Xlarge
    }

    /// The mean job time of the mixed workload.
    pub fn mixed_mean_seconds() -> f64 {
        let total: u32 = Self::WEIGHTS.iter().sum();
        Self::ALL
            .into_iter()
            .zip(Self::WEIGHTS)
            .map(|(c, w)| c.mean_seconds() * f64::from(w))
            .sum::<f64>()
            / f64::from(total)
    }
}

/// Service times vary uniformly by this share around the class mean.
const JITTER: f64 = 0.15;

/// One job of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub at: f64,
    pub class: Class,
    /// Seconds of rendering it takes on one worker.
    pub service: f64,
    /// Crashes every worker that takes it.
    pub poison: bool,
}

/// Something that happens to the fleet at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// This share of the busy workers die at once (the process crashes, the machine stays up).
    KillBusy { at: f64, share: f64 },
    /// This share of the running workers get a Spot interruption notice; each is reclaimed 120 s
    /// later.
    SpotNotice { at: f64, share: f64 },
}

/// A scenario as drawn for one seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: ScenarioName,
    /// Arrivals stop here; the run goes on until every job is settled.
    pub horizon: f64,
    pub jobs: Vec<JobSpec>,
    pub faults: Vec<Fault>,
    /// Seconds by which policies that read the queue directly see its figures late.
    pub queue_lag: f64,
}

/// The scenarios of `scaler simulate --scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioName {
    /// 50 mixed jobs at once (20 small, 15 medium, 10 large, 5 xlarge).
    Burst,
    /// Poisson arrivals keeping about 3 workers busy, for 2 hours.
    Steady,
    /// 10 mixed jobs (4/3/2/1) every 10 minutes, for 2 hours.
    Periodic,
    /// A day compressed into 4 hours (1 hour → 10 minutes): a sine from 0.3 to 6 busy workers.
    Daily,
    /// One small job every 5 minutes on average, for 2 hours.
    Trickle,
    /// 10 xlarge jobs at once.
    Xlarge,
    /// Steady load; 30 % of the busy workers crash at 30 minutes.
    Crash,
    /// Steady load; Spot notices for 30 % of the workers at 30 and 60 minutes.
    Spot,
    /// Steady load with one job that crashes every worker that takes it.
    Poison,
    /// Periodic bursts; the queue figures a policy reads are 90 s old.
    StaleMetrics,
    /// Every scenario.
    All,
}

impl ScenarioName {
    pub const EVERY: [ScenarioName; 10] = [
        ScenarioName::Burst,
        ScenarioName::Steady,
        ScenarioName::Periodic,
        ScenarioName::Daily,
        ScenarioName::Trickle,
        ScenarioName::Xlarge,
        ScenarioName::Crash,
        ScenarioName::Spot,
        ScenarioName::Poison,
        ScenarioName::StaleMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioName::Burst => "burst",
            ScenarioName::Steady => "steady",
            ScenarioName::Periodic => "periodic",
            ScenarioName::Daily => "daily",
            ScenarioName::Trickle => "trickle",
            ScenarioName::Xlarge => "xlarge",
            ScenarioName::Crash => "crash",
            ScenarioName::Spot => "spot",
            ScenarioName::Poison => "poison",
            ScenarioName::StaleMetrics => "stale-metrics",
            ScenarioName::All => "all",
        }
    }

    /// A burst: the scenarios the acceptance's wait check is about.
    pub fn is_burst(self) -> bool {
        matches!(
            self,
            ScenarioName::Burst | ScenarioName::Periodic | ScenarioName::Xlarge
        )
    }

    /// Draws the scenario for `seed`.
    pub fn build(self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce7_a410);
        let (horizon, mut jobs, faults, queue_lag) = match self {
            ScenarioName::Burst => (HOUR, burst(&mut rng, WARM_UP, 50), vec![], 0.0),
            ScenarioName::Steady => (2.0 * HOUR, steady(&mut rng, 2.0 * HOUR), vec![], 0.0),
            ScenarioName::Periodic => (2.0 * HOUR, periodic(&mut rng), vec![], 0.0),
            ScenarioName::Daily => (4.0 * HOUR, daily(&mut rng), vec![], 0.0),
            ScenarioName::Trickle => (2.0 * HOUR, trickle(&mut rng), vec![], 0.0),
            ScenarioName::Xlarge => (
                HOUR,
                (0..10)
                    .map(|_| job(&mut rng, WARM_UP, Class::Xlarge))
                    .collect(),
                vec![],
                0.0,
            ),
            ScenarioName::Crash => (
                2.0 * HOUR,
                steady(&mut rng, 2.0 * HOUR),
                vec![Fault::KillBusy {
                    at: 1800.0,
                    share: 0.3,
                }],
                0.0,
            ),
            ScenarioName::Spot => (
                2.0 * HOUR,
                steady(&mut rng, 2.0 * HOUR),
                [1800.0, 3600.0]
                    .map(|at| Fault::SpotNotice { at, share: 0.3 })
                    .to_vec(),
                0.0,
            ),
            ScenarioName::Poison => {
                let mut jobs = steady(&mut rng, 2.0 * HOUR);
                jobs.push(JobSpec {
                    poison: true,
                    ..job(&mut rng, 1200.0, Class::Medium)
                });
                (2.0 * HOUR, jobs, vec![], 0.0)
            }
            ScenarioName::StaleMetrics => (2.0 * HOUR, periodic(&mut rng), vec![], 90.0),
            ScenarioName::All => (0.0, vec![], vec![], 0.0),
        };
        jobs.sort_by(|a, b| a.at.total_cmp(&b.at));
        Scenario {
            name: self,
            horizon,
            jobs,
            faults,
            queue_lag,
        }
    }
}

const HOUR: f64 = 3600.0;
/// Arrivals start after this: every policy settles into its idle fleet first (the watchdog keeps
/// one worker, minimoto none).
const WARM_UP: f64 = 300.0;
/// The steady load, in workers kept busy.
const STEADY_BUSY: f64 = 3.0;

fn job(rng: &mut ChaCha8Rng, at: f64, class: Class) -> JobSpec {
    JobSpec {
        at,
        class,
        service: class.mean_seconds() * rng.random_range(1.0 - JITTER..=1.0 + JITTER),
        poison: false,
    }
}

/// `n` jobs at `at` in the exact 4/3/2/1 mix, shuffled.
fn burst(rng: &mut ChaCha8Rng, at: f64, n: usize) -> Vec<JobSpec> {
    let total: u32 = Class::WEIGHTS.iter().sum();
    let mut classes: Vec<Class> = Class::ALL
        .into_iter()
        .zip(Class::WEIGHTS)
        .flat_map(|(c, w)| std::iter::repeat_n(c, n * w as usize / total as usize))
        .collect();
    classes.shuffle(rng);
    classes.into_iter().map(|c| job(rng, at, c)).collect()
}

/// Exponential gaps of mean `1 / rate`.
fn gap(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln() / rate
}

/// Poisson arrivals of mixed jobs at `rate(t)` (at most `peak`), by thinning.
fn poisson(
    rng: &mut ChaCha8Rng,
    until: f64,
    peak: f64,
    rate: impl Fn(f64) -> f64,
    class: impl Fn(&mut ChaCha8Rng) -> Class,
) -> Vec<JobSpec> {
    let mut jobs = Vec::new();
    let mut t = WARM_UP;
    loop {
        t += gap(rng, peak);
        if t >= until {
            return jobs;
        }
        if rng.random::<f64>() * peak <= rate(t) {
            let c = class(rng);
            jobs.push(job(rng, t, c));
        }
    }
}

fn steady(rng: &mut ChaCha8Rng, until: f64) -> Vec<JobSpec> {
    let rate = STEADY_BUSY / Class::mixed_mean_seconds();
    poisson(rng, until, rate, |_| rate, Class::mixed)
}

fn periodic(rng: &mut ChaCha8Rng) -> Vec<JobSpec> {
    (0..12)
        .flat_map(|i| burst(rng, WARM_UP + 600.0 * f64::from(i), 10))
        .collect()
}

fn daily(rng: &mut ChaCha8Rng) -> Vec<JobSpec> {
    let day = 4.0 * HOUR;
    let (low, high) = (0.3, 6.0);
    let per_busy = 1.0 / Class::mixed_mean_seconds();
    // Night at the start and the end, noon in the middle.
    let rate = move |t: f64| {
        let phase = (1.0 - (std::f64::consts::TAU * t / day).cos()) / 2.0;
        (low + (high - low) * phase) * per_busy
    };
    poisson(rng, day, high * per_busy, rate, Class::mixed)
}

fn trickle(rng: &mut ChaCha8Rng) -> Vec<JobSpec> {
    poisson(
        rng,
        2.0 * HOUR,
        1.0 / 300.0,
        |_| 1.0 / 300.0,
        |_| Class::Small,
    )
}
