//! The policy, table-tested: each row is a situation and the decision it must produce.

use minimoto_common::fleet::WorkerState::{self, *};

use super::*;

fn worker(id: &str, state: WorkerState) -> WorkerView {
    WorkerView {
        id: id.into(),
        state,
        registered: true,
        silent_for: 2.0,
        idle_for: 0.0,
        drain_requested: false,
        cpu: 0.0,
    }
}

fn idle(id: &str, for_seconds: f64) -> WorkerView {
    WorkerView {
        idle_for: for_seconds,
        ..worker(id, Idle)
    }
}

fn obs(visible: u64, workers: Vec<WorkerView>) -> Observation {
    Observation {
        now: 1000.0,
        visible,
        in_flight: workers.iter().filter(|w| w.state == Busy).count() as u64,
        workers,
        mean_job_seconds: Some(30.0),
        arrival_rate: 0.0,
    }
}

fn knobs(min: u32, max: u32) -> Knobs {
    Knobs {
        target_wait: 60.0,
        min_workers: min,
        max_workers: max,
        ..Knobs::default()
    }
}

/// (launch count, drained ids, terminated ids)
fn acts(d: &Decision) -> (u32, Vec<&str>, Vec<&str>) {
    (
        d.launched(),
        d.drained().collect(),
        d.terminated().collect(),
    )
}

#[test]
fn decisions_follow_the_table() {
    type Row = (
        &'static str,
        Observation,
        Knobs,
        u32,
        (u32, Vec<&'static str>, Vec<&'static str>),
        u32,
    );
    let rows: Vec<Row> = vec![
        (
            "an empty queue and no worker stays at zero",
            obs(0, vec![]),
            knobs(0, 10),
            0,
            (0, vec![], vec![]),
            0,
        ),
        (
            "the minimum is kept with nothing to do",
            obs(0, vec![]),
            knobs(2, 10),
            0,
            (2, vec![], vec![]),
            2,
        ),
        // 30 s jobs and a 60 s target wait: each worker clears 2 within the wait → ceil(50 / 2).
        (
            "a burst of 50 launches 25 at once, not one per run",
            obs(50, vec![]),
            knobs(0, 40),
            0,
            (25, vec![], vec![]),
            25,
        ),
        (
            "a burst is capped at the maximum",
            obs(50, vec![]),
            knobs(0, 10),
            0,
            (10, vec![], vec![]),
            10,
        ),
        (
            "busy workers are kept on top of the backlog",
            obs(4, vec![worker("a", Busy), worker("b", Busy)]),
            knobs(0, 10),
            0,
            (2, vec![], vec![]),
            4,
        ),
        (
            "booting workers count: no second launch while they boot",
            obs(4, vec![worker("a", Booting), worker("b", Booting)]),
            knobs(0, 10),
            0,
            (0, vec![], vec![]),
            2,
        ),
        (
            "a busy worker is never drained, however idle the queue",
            obs(0, vec![worker("a", Busy), idle("b", 600.0)]),
            knobs(0, 10),
            0,
            (0, vec!["b"], vec![]),
            1,
        ),
        (
            "scale-in waits for the window's peak",
            obs(
                0,
                vec![idle("a", 600.0), idle("b", 600.0), idle("c", 600.0)],
            ),
            knobs(0, 10),
            2,
            (0, vec!["a"], vec![]),
            0,
        ),
        (
            "workers idle for less than the idle time stay",
            obs(0, vec![idle("a", 10.0), idle("b", 59.0)]),
            knobs(0, 10),
            0,
            (0, vec![], vec![]),
            0,
        ),
        (
            "the longest idle goes first",
            obs(0, vec![idle("a", 70.0), idle("b", 300.0), idle("c", 100.0)]),
            knobs(1, 10),
            1,
            (0, vec!["b", "c"], vec![]),
            1,
        ),
        (
            "a silent worker is terminated and replaced in the same decision",
            obs(
                1,
                vec![WorkerView {
                    silent_for: 31.0,
                    ..worker("a", Busy)
                }],
            ),
            knobs(1, 10),
            0,
            (1, vec![], vec!["a"]),
            1,
        ),
        (
            "a launch that never registers is given up after the boot timeout",
            obs(
                1,
                vec![WorkerView {
                    registered: false,
                    silent_for: 301.0,
                    ..worker("a", Booting)
                }],
            ),
            knobs(0, 10),
            0,
            (1, vec![], vec!["a"]),
            1,
        ),
        (
            "a slow boot within its timeout is waited for",
            obs(
                1,
                vec![WorkerView {
                    registered: false,
                    silent_for: 200.0,
                    ..worker("a", Booting)
                }],
            ),
            knobs(0, 10),
            0,
            (0, vec![], vec![]),
            1,
        ),
        (
            "a stopped worker is terminated; a draining one is left to finish and not counted",
            obs(
                2,
                vec![
                    worker("a", Stopped),
                    worker("b", Draining),
                    worker("c", Busy),
                ],
            ),
            knobs(0, 10),
            0,
            (1, vec![], vec!["a"]),
            2,
        ),
        (
            "a worker already asked to drain is not asked twice",
            obs(
                0,
                vec![WorkerView {
                    drain_requested: true,
                    ..idle("a", 600.0)
                }],
            ),
            knobs(0, 10),
            0,
            (0, vec![], vec![]),
            0,
        ),
    ];
    for (what, o, k, peak, want, target) in rows {
        let d = decide(&o, &k, peak);
        assert_eq!(acts(&d), want, "{what}: {d:#?}");
        assert_eq!(d.target, target, "{what}: target");
        for a in &d.actions {
            let reason = match a {
                Action::Launch { reason, .. }
                | Action::Drain { reason, .. }
                | Action::Terminate { reason, .. } => reason,
            };
            assert!(!reason.is_empty(), "{what}: every act has a reason");
        }
    }
}

#[test]
fn the_arrival_rate_sets_a_floor() {
    // 0.2 jobs/s of 30 s jobs keep 6 workers busy; at 80 % that is ceil(7.5) = 8.
    let o = Observation {
        arrival_rate: 0.2,
        ..obs(0, vec![])
    };
    assert_eq!(decide(&o, &knobs(0, 20), 0).target, 8);
}

#[test]
fn long_jobs_get_one_worker_per_waiting_job() {
    // 300 s jobs against a 60 s wait: a worker clears at most one within the wait.
    let o = Observation {
        mean_job_seconds: Some(300.0),
        ..obs(5, vec![])
    };
    assert_eq!(decide(&o, &knobs(0, 20), 0).launched(), 5);
}

#[test]
fn before_any_job_finished_the_default_job_time_is_assumed() {
    let o = Observation {
        mean_job_seconds: None,
        ..obs(10, vec![])
    };
    let k = Knobs {
        default_job_seconds: 120.0,
        ..knobs(0, 20)
    };
    assert_eq!(decide(&o, &k, 0).launched(), 10);
}

#[test]
fn the_window_remembers_the_peak_and_forgets_it_after() {
    let k = Knobs {
        scale_in_window: 100.0,
        idle_before_removal: 0.0,
        ..knobs(0, 10)
    };
    let mut policy = Ours::new(k);
    let three_idle = |now: f64, visible: u64| Observation {
        now,
        ..obs(
            visible,
            vec![idle("a", 500.0), idle("b", 400.0), idle("c", 300.0)],
        )
    };
    // A backlog of 6 asks for 3; then the queue empties.
    assert_eq!(policy.decide(&three_idle(0.0, 6)).target, 3);
    let soon = policy.decide(&three_idle(50.0, 0));
    assert_eq!(soon.drained().count(), 0, "within the window: {soon:#?}");
    let later = policy.decide(&three_idle(151.0, 0));
    assert_eq!(
        later.drained().collect::<Vec<_>>(),
        ["a", "b", "c"],
        "past the window every idle worker goes: {later:#?}"
    );
}

#[test]
fn bad_knobs_name_the_setting() {
    let err = knobs(5, 3).validate().expect_err("min > max");
    assert!(err.to_string().contains("--min-workers (5)"), "{err}");
    assert!(err.to_string().contains("--max-workers (3)"), "{err}");
    let err = Knobs {
        target_wait: 0.0,
        ..knobs(0, 3)
    }
    .validate()
    .expect_err("zero wait");
    assert!(err.to_string().contains("--target-wait-seconds"), "{err}");
    knobs(0, 3).validate().expect("good knobs");
}
