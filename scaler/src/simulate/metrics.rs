//! From one run's outcome to the figures compared side by side, and their means over seeds.

use serde::Serialize;

use super::{
    scenario::Class,
    world::{End, Outcome},
};

/// The on-demand price of one worker instance: an EC2 c7i.large (2 vCPU, like the machine the
/// renders were timed on), Linux, us-east-1, in dollars per hour.
pub const PRICE_PER_HOUR: f64 = 0.08925;

/// One run's figures (seconds unless named otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub jobs: u32,
    pub wait_p50: f64,
    pub wait_p95: f64,
    pub wait_p99: f64,
    /// p95 wait per class (small, medium, large, xlarge); `None` for a class with no job done.
    pub class_p95: [Option<f64>; 4],
    /// Share of finished jobs whose wait was within the target wait.
    pub within_target: f64,
    pub instance_seconds: f64,
    pub cost_per_job: f64,
    pub actions: u32,
    pub flaps: u32,
    pub busy_killed: u32,
    pub recovery_mean: Option<f64>,
    pub recovery_max: Option<f64>,
    pub dead_lettered: u32,
    /// Jobs neither done nor dead-lettered when the run stopped.
    pub lost: u32,
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

impl Summary {
    pub fn of(outcome: &Outcome, target_wait: f64) -> Self {
        let waits = |class: Option<Class>| {
            sorted(
                outcome
                    .jobs
                    .iter()
                    .filter(|(c, _)| class.is_none_or(|k| k == *c))
                    .filter_map(|(_, end)| match end {
                        End::Done { wait } => Some(*wait),
                        _ => None,
                    })
                    .collect(),
            )
        };
        let all = waits(None);
        let count = |want: fn(&End) -> bool| outcome.jobs.iter().filter(|(_, e)| want(e)).count();
        let done = all.len();
        let recoveries = &outcome.recoveries;
        Summary {
            jobs: outcome.jobs.len() as u32,
            wait_p50: percentile(&all, 50.0),
            wait_p95: percentile(&all, 95.0),
            wait_p99: percentile(&all, 99.0),
            class_p95: Class::ALL.map(|c| {
                let w = waits(Some(c));
                (!w.is_empty()).then(|| percentile(&w, 95.0))
            }),
            within_target: if done == 0 {
                0.0
            } else {
                all.iter().filter(|&&w| w <= target_wait).count() as f64 / done as f64
            },
            instance_seconds: outcome.instance_seconds,
            cost_per_job: outcome.instance_seconds / 3600.0 * PRICE_PER_HOUR / done.max(1) as f64,
            actions: outcome.actions,
            flaps: outcome.flaps,
            busy_killed: outcome.busy_killed,
            recovery_mean: (!recoveries.is_empty())
                .then(|| recoveries.iter().sum::<f64>() / recoveries.len() as f64),
            recovery_max: recoveries.iter().copied().reduce(f64::max),
            dead_lettered: count(|e| matches!(e, End::DeadLettered)) as u32,
            lost: count(|e| matches!(e, End::Lost)) as u32,
        }
    }
}

/// A figure over seeds: its mean and its range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` when no seed had the figure.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        Some(Spread {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One policy on one scenario over every seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub seeds: usize,
    pub wait_p50: Option<Spread>,
    pub wait_p95: Option<Spread>,
    pub wait_p99: Option<Spread>,
    pub class_p95: [Option<Spread>; 4],
    pub within_target: Option<Spread>,
    pub instance_seconds: Option<Spread>,
    pub cost_per_job: Option<Spread>,
    pub actions: Option<Spread>,
    pub flaps: Option<Spread>,
    pub busy_killed: Option<Spread>,
    /// The mean of the seeds' mean recovery times.
    pub recovery_mean: Option<Spread>,
    /// Over the seeds' worst recoveries: `max.max` is the worst of all.
    pub recovery_max: Option<Spread>,
    pub dead_lettered: Option<Spread>,
    /// Summed over seeds, not averaged: any lost job shows.
    pub lost: u32,
}

impl Aggregate {
    pub fn of(runs: &[Summary]) -> Self {
        let f = |get: fn(&Summary) -> f64| Spread::of(runs.iter().map(get));
        let o = |get: fn(&Summary) -> Option<f64>| Spread::of(runs.iter().filter_map(get));
        Aggregate {
            seeds: runs.len(),
            wait_p50: f(|s| s.wait_p50),
            wait_p95: f(|s| s.wait_p95),
            wait_p99: f(|s| s.wait_p99),
            class_p95: [0, 1, 2, 3].map(|i| Spread::of(runs.iter().filter_map(|s| s.class_p95[i]))),
            within_target: f(|s| s.within_target),
            instance_seconds: f(|s| s.instance_seconds),
            cost_per_job: f(|s| s.cost_per_job),
            actions: f(|s| f64::from(s.actions)),
            flaps: f(|s| f64::from(s.flaps)),
            busy_killed: f(|s| f64::from(s.busy_killed)),
            recovery_mean: o(|s| s.recovery_mean),
            recovery_max: o(|s| s.recovery_max),
            dead_lettered: f(|s| f64::from(s.dead_lettered)),
            lost: runs.iter().map(|s| s.lost).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn spreads_give_mean_and_range() {
        let s = Spread::of([1.0, 2.0, 6.0]).expect("values");
        assert_eq!((s.mean, s.min, s.max), (3.0, 1.0, 6.0));
        assert_eq!(Spread::of([]), None);
    }
}
