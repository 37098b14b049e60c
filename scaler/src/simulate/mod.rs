//! `scaler simulate`: a seeded discrete-event simulation in virtual time that runs the very
//! [`Policy`] values the scaler runs (minimoto's and the baselines) against the same jobs, and
//! compares queue waits, cost and safety. docs/scaling.md describes the model and the results.
//!
//! - [`scenario`]: job classes (render times calibrated on real renders), arrivals, faults;
//! - [`world`]: the event engine (queue with visibility timeouts, workers, billing);
//! - [`metrics`]: a run's figures and their spread over seeds;
//! - `report` and `plot`: the table, the JSON and the SVG plots.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::policy::{
    Knobs, Ours, Policy,
    baselines::{Fixed, Keda, TargetTracking, Watchdog},
};

pub mod metrics;
mod plot;
mod report;
pub mod scenario;
pub mod world;

use metrics::{Aggregate, Summary};
use scenario::{Class, ScenarioName};
use world::{Outcome, System};

/// The policies of `scaler simulate --policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    /// minimoto's policy (`policy::Ours`) with the knobs given.
    Minimoto,
    /// The original watchdog, on CloudWatch figures, with a 630 s visibility timeout.
    Watchdog,
    /// A fixed fleet sized for the steady load (4 workers).
    Fixed,
    /// KEDA's SQS scaler (one message per pod) under the Kubernetes HPA.
    Keda,
    /// AWS target tracking on backlog per instance.
    TargetTracking,
    /// Every policy.
    All,
}

impl PolicyName {
    pub const EVERY: [PolicyName; 5] = [
        PolicyName::Minimoto,
        PolicyName::Watchdog,
        PolicyName::Fixed,
        PolicyName::Keda,
        PolicyName::TargetTracking,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Minimoto => "minimoto",
            PolicyName::Watchdog => "watchdog",
            PolicyName::Fixed => "fixed",
            PolicyName::Keda => "keda",
            PolicyName::TargetTracking => "target-tracking",
            PolicyName::All => "all",
        }
    }

    /// The policy, fresh (policies keep state between decisions).
    pub fn policy(self, knobs: &Knobs) -> Box<dyn Policy> {
        let max = knobs.max_workers;
        match self {
            PolicyName::Minimoto | PolicyName::All => Box::new(Ours::new(knobs.clone())),
            PolicyName::Watchdog => Box::new(Watchdog::new(max)),
            PolicyName::Fixed => Box::new(Fixed(FIXED_FLEET.min(max))),
            PolicyName::Keda => Box::new(Keda::new(1.0, max)),
            // Set up as AWS's guide says: acceptable wait / average job time.
            PolicyName::TargetTracking => Box::new(TargetTracking::new(
                knobs.target_wait / Class::mixed_mean_seconds(),
                max,
            )),
        }
    }

    /// The worker system the policy runs with. Every policy but the watchdog runs minimoto's
    /// workers (heartbeat-extended 60 s visibility, Spot hand-back); the watchdog runs the
    /// original system.
    pub fn system(self) -> System {
        let minimoto = System {
            tick: 15.0,
            metrics_age: None,
            aged_workers: false,
            visibility: 60.0,
            heartbeat_extends: true,
            spot_hand_back: true,
        };
        let cloudwatch = Some((60.0, 120.0));
        match self {
            PolicyName::Minimoto | PolicyName::Fixed | PolicyName::Keda | PolicyName::All => {
                minimoto
            }
            PolicyName::Watchdog => System {
                tick: 60.0,
                metrics_age: cloudwatch,
                aged_workers: true,
                visibility: 630.0,
                heartbeat_extends: false,
                spot_hand_back: false,
            },
            PolicyName::TargetTracking => System {
                tick: 60.0,
                metrics_age: cloudwatch,
                ..minimoto
            },
        }
    }
}

/// The fixed baseline's fleet: the steady load (3 busy) at 80 % utilisation.
const FIXED_FLEET: u32 = 4;

/// `scaler simulate`: compares scaling policies in a seeded simulation.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// A scenario to run (repeat it for several); every scenario when omitted.
    #[arg(long = "scenario", value_enum)]
    pub scenarios: Vec<ScenarioName>,
    /// A policy to run (repeat it for several); every policy when omitted.
    #[arg(long = "policy", value_enum)]
    pub policies: Vec<PolicyName>,
    /// Seeds per scenario and policy; figures are means over them.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// The first seed (seeds are seed-base, seed-base + 1, …).
    #[arg(long, default_value_t = 1)]
    pub seed_base: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write one SVG per scenario here: fleet size and queue depth over time (the first seed).
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
    /// minimoto's target queue wait, also the "within target" line of every policy.
    #[arg(long, default_value_t = Knobs::default().target_wait)]
    pub target_wait_seconds: f64,
    /// minimoto's minimum fleet.
    #[arg(long, default_value_t = Knobs::default().min_workers)]
    pub min_workers: u32,
    /// The largest fleet, for every policy (an account quota).
    #[arg(long, default_value_t = Knobs::default().max_workers)]
    pub max_workers: u32,
    /// minimoto's scale-in window.
    #[arg(long, default_value_t = Knobs::default().scale_in_window)]
    pub scale_in_window_seconds: f64,
    /// How long a worker must be idle before minimoto drains it.
    #[arg(long, default_value_t = Knobs::default().idle_before_removal)]
    pub idle_seconds: f64,
}

impl SimulateArgs {
    pub fn knobs(&self) -> Knobs {
        Knobs {
            target_wait: self.target_wait_seconds,
            min_workers: self.min_workers,
            max_workers: self.max_workers,
            scale_in_window: self.scale_in_window_seconds,
            idle_before_removal: self.idle_seconds,
            ..Knobs::default()
        }
    }
}

/// One run: `policy` on `scenario` drawn for `seed`.
pub fn run_one(scenario: ScenarioName, policy: PolicyName, seed: u64, knobs: &Knobs) -> Outcome {
    let drawn = scenario.build(seed);
    world::run(&drawn, policy.system(), policy.policy(knobs).as_mut(), seed)
}

/// One policy on one scenario over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub policy: PolicyName,
    pub mean: Aggregate,
    pub runs: Vec<Summary>,
    /// The first seed's outcome, for the plots.
    #[serde(skip)]
    pub first: Option<Outcome>,
}

/// Every policy on one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: ScenarioName,
    pub policies: Vec<PolicyResult>,
}

/// Runs every (scenario, policy) over `seeds` seeds from `seed_base`.
pub fn evaluate(
    scenarios: &[ScenarioName],
    policies: &[PolicyName],
    seeds: u64,
    seed_base: u64,
    knobs: &Knobs,
) -> Vec<ScenarioResult> {
    scenarios
        .iter()
        .map(|&scenario| ScenarioResult {
            scenario,
            policies: policies
                .iter()
                .map(|&policy| {
                    let outcomes: Vec<Outcome> = (seed_base..seed_base + seeds)
                        .map(|seed| run_one(scenario, policy, seed, knobs))
                        .collect();
                    let runs: Vec<Summary> = outcomes
                        .iter()
                        .map(|o| Summary::of(o, knobs.target_wait))
                        .collect();
                    PolicyResult {
                        policy,
                        mean: Aggregate::of(&runs),
                        runs,
                        first: outcomes.into_iter().next(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Expands `all` (or nothing) into every value.
fn expand<T: Copy + PartialEq>(given: &[T], all: T, every: &[T]) -> Vec<T> {
    if given.is_empty() || given.contains(&all) {
        every.to_vec()
    } else {
        let mut v = given.to_vec();
        v.dedup();
        v
    }
}

/// `scaler simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let knobs = args.knobs();
    knobs.validate()?;
    anyhow::ensure!(args.seeds > 0, "--seeds must be at least 1");
    let scenarios = expand(&args.scenarios, ScenarioName::All, &ScenarioName::EVERY);
    let policies = expand(&args.policies, PolicyName::All, &PolicyName::EVERY);
    let results = evaluate(&scenarios, &policies, args.seeds, args.seed_base, &knobs);
    if let Some(dir) = &args.plot_dir {
        plot::write_all(dir, &results)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", report::table(&results, &knobs, args.seeds));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
