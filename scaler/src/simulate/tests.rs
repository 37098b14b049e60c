//! The simulation as a whole: reproducible per seed, no job ever lost, and the acceptance checks
//! of minimoto's policy against the watchdog.

use super::{world::End, *};

fn knobs() -> Knobs {
    Knobs::default()
}

#[test]
fn the_same_seed_gives_the_same_results() {
    for scenario in [ScenarioName::Burst, ScenarioName::Crash, ScenarioName::Spot] {
        for policy in PolicyName::EVERY {
            let a = run_one(scenario, policy, 7, &knobs());
            let b = run_one(scenario, policy, 7, &knobs());
            assert_eq!(a, b, "{scenario:?} {policy:?}");
        }
    }
    let other = run_one(ScenarioName::Steady, PolicyName::Minimoto, 8, &knobs());
    let seven = run_one(ScenarioName::Steady, PolicyName::Minimoto, 7, &knobs());
    assert_ne!(other.jobs, seven.jobs, "another seed, other jobs");
}

#[test]
fn every_job_ends_done_or_dead_lettered_for_every_policy_and_scenario() {
    for scenario in ScenarioName::EVERY {
        for policy in PolicyName::EVERY {
            for seed in 1..=2 {
                let o = run_one(scenario, policy, seed, &knobs());
                let what = format!("{scenario:?} {policy:?} seed {seed}");
                let lost = o.jobs.iter().filter(|(_, e)| *e == End::Lost).count();
                assert_eq!(lost, 0, "{what}");
                let specs = scenario.build(seed).jobs;
                for (spec, (_, end)) in specs.iter().zip(&o.jobs) {
                    if spec.poison {
                        assert_eq!(*end, End::DeadLettered, "{what}: the poison job");
                    } else if policy == PolicyName::Minimoto {
                        // Baselines that kill busy workers can dead-letter a good job; ours not.
                        assert!(matches!(end, End::Done { .. }), "{what}: {end:?}");
                    }
                }
            }
        }
    }
}

/// ACCEPTANCE on 3 seeds (10 in docs/scaling.md, from the example in release): minimoto against
/// the watchdog.
const ACCEPTANCE_SEEDS: u64 = 3;

fn against_watchdog(scenario: ScenarioName) -> (Aggregate, Aggregate) {
    let results = evaluate(
        &[scenario],
        &[PolicyName::Minimoto, PolicyName::Watchdog],
        ACCEPTANCE_SEEDS,
        1,
        &knobs(),
    );
    let mean = |i: usize| results[0].policies[i].mean.clone();
    (mean(0), mean(1))
}

fn p95(a: &Aggregate) -> f64 {
    a.wait_p95.map_or(f64::NAN, |s| s.mean)
}

#[test]
fn acceptance_bursts_wait_at_most_a_third_of_the_watchdogs_p95() {
    for scenario in ScenarioName::EVERY.into_iter().filter(|s| s.is_burst()) {
        let (ours, theirs) = against_watchdog(scenario);
        assert!(
            p95(&ours) <= p95(&theirs) / 3.0,
            "{scenario:?}: p95 {:.0} s against the watchdog's {:.0} s",
            p95(&ours),
            p95(&theirs)
        );
    }
}

#[test]
fn acceptance_steady_load_costs_no_more_than_the_watchdog() {
    let (ours, theirs) = against_watchdog(ScenarioName::Steady);
    let cost = |a: &Aggregate| a.instance_seconds.map_or(f64::NAN, |s| s.mean);
    assert!(
        cost(&ours) <= cost(&theirs),
        "instance-seconds {:.0} against {:.0}",
        cost(&ours),
        cost(&theirs)
    );
}

#[test]
fn acceptance_no_busy_worker_killed_no_job_lost_crashes_recovered_within_150_s() {
    for scenario in ScenarioName::EVERY {
        let (ours, _) = against_watchdog(scenario);
        let killed = ours.busy_killed.map_or(0.0, |s| s.max);
        assert_eq!(killed, 0.0, "{scenario:?}: busy workers killed");
        assert_eq!(ours.lost, 0, "{scenario:?}: jobs lost");
        let worst = ours.recovery_max.map_or(0.0, |s| s.max);
        assert!(
            worst <= 150.0,
            "{scenario:?}: crash recovery up to {worst:.0} s"
        );
    }
}
