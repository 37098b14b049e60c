//! The engine's semantics, one mechanism per test, with scripted or fixed fleets.

use super::*;
use crate::{
    policy::{Decision, baselines::Fixed},
    simulate::{
        PolicyName,
        scenario::{JobSpec, ScenarioName},
    },
};

/// Acts at given times, whatever it observes.
#[derive(Debug)]
struct Script(Vec<(f64, Action)>);

impl Policy for Script {
    fn name(&self) -> &'static str {
        "script"
    }

    fn decide(&mut self, o: &Observation) -> Decision {
        let (due, later) = self.0.drain(..).partition(|(t, _)| *t <= o.now);
        self.0 = later;
        Decision {
            actions: due.into_iter().map(|(_, a)| a).collect::<Vec<_>>(),
            ..Decision::default()
        }
    }
}

fn launch(at: f64, count: u32) -> (f64, Action) {
    (
        at,
        Action::Launch {
            count,
            reason: "test".into(),
        },
    )
}

fn drain(at: f64, worker: &str) -> (f64, Action) {
    (
        at,
        Action::Drain {
            worker: worker.into(),
            reason: "test".into(),
        },
    )
}

fn terminate(at: f64, worker: &str) -> (f64, Action) {
    (
        at,
        Action::Terminate {
            worker: worker.into(),
            reason: "test".into(),
        },
    )
}

fn job(at: f64, service: f64) -> JobSpec {
    JobSpec {
        at,
        class: Class::Large,
        service,
        poison: false,
    }
}

fn scenario(horizon: f64, jobs: Vec<JobSpec>, faults: Vec<Fault>) -> Scenario {
    Scenario {
        name: ScenarioName::Burst,
        horizon,
        jobs,
        faults,
        queue_lag: 0.0,
    }
}

fn minimoto() -> System {
    PolicyName::Minimoto.system()
}

fn watchdog_system() -> System {
    System {
        tick: 15.0,
        metrics_age: None,
        aged_workers: false,
        ..PolicyName::Watchdog.system()
    }
}

fn done(o: &Outcome) -> usize {
    o.jobs
        .iter()
        .filter(|(_, e)| matches!(e, End::Done { .. }))
        .count()
}

#[test]
fn billing_is_per_second_with_a_sixty_second_minimum() {
    let s = scenario(300.0, vec![], vec![]);
    let o = run(
        &s,
        minimoto(),
        &mut Script(vec![launch(0.0, 1), terminate(15.0, "w0")]),
        1,
    );
    assert_eq!(o.instance_seconds, 60.0);
    let o = run(
        &s,
        minimoto(),
        &mut Script(vec![launch(0.0, 1), terminate(150.0, "w0")]),
        1,
    );
    assert_eq!(o.instance_seconds, 150.0);
}

#[test]
fn a_drained_worker_finishes_its_job_and_stops() {
    let s = scenario(600.0, vec![job(100.0, 200.0)], vec![]);
    let o = run(
        &s,
        minimoto(),
        &mut Script(vec![launch(0.0, 1), drain(150.0, "w0")]),
        1,
    );
    assert_eq!(done(&o), 1);
    assert_eq!(o.busy_killed, 0);
    assert!(o.recoveries.is_empty());
}

#[test]
fn a_killed_busy_worker_is_counted_and_its_job_returns_within_sixty_seconds() {
    let s = scenario(900.0, vec![job(100.0, 200.0)], vec![]);
    let o = run(
        &s,
        minimoto(),
        &mut Script(vec![launch(0.0, 2), terminate(150.0, "w0")]),
        1,
    );
    assert_eq!(o.busy_killed, 1);
    assert_eq!(done(&o), 1);
    let r = o.recoveries[0];
    assert!(r > 0.0 && r <= 60.0, "recovery {r}");
}

#[test]
fn a_crashed_workers_job_waits_for_the_visibility_timeout() {
    let crash = vec![Fault::KillBusy {
        at: 150.0,
        share: 1.0,
    }];
    let s = scenario(1800.0, vec![job(100.0, 200.0)], crash);
    let ours = run(&s, minimoto(), &mut Fixed(2), 1);
    let theirs = run(&s, watchdog_system(), &mut Fixed(2), 1);
    assert_eq!((done(&ours), done(&theirs)), (1, 1));
    assert!(ours.recoveries[0] <= 60.0, "{:?}", ours.recoveries);
    // 630 s from the receive, 50 s of which had passed at the crash.
    let r = theirs.recoveries[0];
    assert!((570.0..=630.0).contains(&r), "{r}");
}

#[test]
fn a_poison_job_is_dead_lettered_after_three_attempts() {
    let poison = JobSpec {
        poison: true,
        ..job(100.0, 100.0)
    };
    let s = scenario(600.0, vec![poison, job(100.0, 50.0)], vec![]);
    let o = run(&s, minimoto(), &mut Fixed(2), 1);
    assert_eq!(o.jobs[0].1, End::DeadLettered);
    assert!(matches!(o.jobs[1].1, End::Done { .. }));
    assert_eq!(o.recoveries.len(), MAX_RECEIVES as usize - 1, "two retries");
}

#[test]
fn on_a_spot_notice_minimoto_hands_the_job_back_and_the_watchdog_waits() {
    let notice = vec![Fault::SpotNotice {
        at: 150.0,
        share: 1.0,
    }];
    let s = scenario(1800.0, vec![job(100.0, 200.0)], notice);
    let ours = run(&s, minimoto(), &mut Fixed(1), 1);
    let theirs = run(&s, watchdog_system(), &mut Fixed(1), 1);
    assert_eq!((done(&ours), done(&theirs)), (1, 1));
    // A replacement launched at the next decision boots in at most 90 s.
    assert!(ours.recoveries[0] <= 15.0 + 90.0, "{:?}", ours.recoveries);
    assert!(theirs.recoveries[0] >= 400.0, "{:?}", theirs.recoveries);
    assert_eq!(
        ours.busy_killed + theirs.busy_killed,
        0,
        "a reclaim is no kill"
    );
}

#[test]
fn a_scale_in_right_after_a_launch_is_a_flap() {
    let s = scenario(600.0, vec![], vec![]);
    let script = vec![launch(0.0, 2), drain(60.0, "w0"), launch(300.0, 1)];
    let o = run(&s, minimoto(), &mut Script(script), 1);
    assert_eq!(
        o.flaps, 1,
        "the drain 60 s after the launch; the launch 240 s after the drain is not"
    );
    assert_eq!(o.actions, 3);
}
