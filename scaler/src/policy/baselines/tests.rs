//! Each baseline's rules, one situation per test.

use minimoto_common::fleet::WorkerState::{self, *};

use super::*;

fn worker(id: &str, state: WorkerState, cpu: f64) -> WorkerView {
    WorkerView {
        id: id.into(),
        state,
        registered: state != Booting,
        silent_for: 2.0,
        idle_for: 0.0,
        drain_requested: false,
        cpu,
    }
}

fn busy(id: &str) -> WorkerView {
    worker(id, Busy, 0.95)
}

fn idle(id: &str) -> WorkerView {
    worker(id, Idle, 0.02)
}

fn dead(id: &str) -> WorkerView {
    WorkerView {
        silent_for: 200.0,
        ..worker(id, Busy, 0.0)
    }
}

fn obs(now: f64, visible: u64, in_flight: u64, workers: Vec<WorkerView>) -> Observation {
    Observation {
        now,
        visible,
        in_flight,
        workers,
        mean_job_seconds: Some(30.0),
        arrival_rate: 0.0,
    }
}

/// (launch count, terminated ids); baselines never drain.
fn acts(d: &Decision) -> (u32, Vec<&str>) {
    assert_eq!(d.drained().count(), 0, "{d:#?}");
    (d.launched(), d.terminated().collect())
}

#[test]
fn watchdog_launches_one_when_there_is_no_worker() {
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 0, vec![]));
    assert_eq!(acts(&d), (1, vec![]));
}

#[test]
fn watchdog_adds_only_one_per_run_however_long_the_queue() {
    let d = Watchdog::new(10).decide(&obs(0.0, 50, 0, vec![busy("a")]));
    assert_eq!(acts(&d), (1, vec![]));
    let full: Vec<_> = (0..10).map(|i| busy(&i.to_string())).collect();
    let d = Watchdog::new(10).decide(&obs(0.0, 50, 0, full));
    assert_eq!(acts(&d), (0, vec![]), "the maximum holds");
}

#[test]
fn watchdog_waits_while_messages_are_in_flight() {
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 2, vec![busy("a"), idle("b")]));
    assert_eq!(acts(&d), (0, vec![]));
}

#[test]
fn watchdog_scales_in_to_one_by_terminating_when_cpu_is_low() {
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 0, vec![idle("a"), idle("b"), idle("c")]));
    assert_eq!(acts(&d), (0, vec!["b", "c"]), "the oldest stays");
}

#[test]
fn watchdog_keeps_the_fleet_while_a_worker_is_above_five_percent() {
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 0, vec![idle("a"), busy("b")]));
    assert_eq!(acts(&d), (0, vec![]));
}

#[test]
fn watchdog_kills_a_busy_worker_that_its_stale_cpu_figure_shows_idle() {
    // The worker took a job after the lagged CPU reading: the watchdog cannot know.
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 0, vec![idle("a"), worker("b", Busy, 0.01)]));
    assert_eq!(acts(&d), (0, vec!["b"]));
}

#[test]
fn watchdog_replaces_crashed_workers() {
    let d = Watchdog::new(10).decide(&obs(0.0, 0, 1, vec![dead("a"), busy("b")]));
    assert_eq!(acts(&d), (1, vec!["a"]));
    // With visible messages it also adds its one more.
    let d = Watchdog::new(10).decide(&obs(0.0, 3, 0, vec![dead("a")]));
    assert_eq!(acts(&d), (2, vec!["a"]));
}

#[test]
fn fixed_keeps_n_and_replaces_the_dead() {
    assert_eq!(acts(&Fixed(3).decide(&obs(0.0, 0, 0, vec![]))), (3, vec![]));
    let d = Fixed(2).decide(&obs(0.0, 9, 0, vec![dead("a"), busy("b")]));
    assert_eq!(acts(&d), (1, vec!["a"]));
    let d = Fixed(2).decide(&obs(0.0, 0, 0, vec![idle("a"), idle("b")]));
    assert_eq!(acts(&d), (0, vec![]), "never scales in");
}

#[test]
fn keda_activates_from_zero_with_one_pod() {
    let d = Keda::new(1.0, 20).decide(&obs(0.0, 10, 0, vec![]));
    assert_eq!(acts(&d), (1, vec![]));
}

#[test]
fn keda_counts_in_flight_and_steps_up_by_the_hpa_rate() {
    // ceil((12 + 2) / 1) = 14, but one run adds at most max(4, 100 %): 2 → 6.
    let d = Keda::new(1.0, 20).decide(&obs(0.0, 12, 2, vec![busy("a"), busy("b")]));
    assert_eq!(acts(&d), (4, vec![]));
    // queueLength 5: ceil(14 / 5) = 3.
    let d = Keda::new(5.0, 20).decide(&obs(0.0, 12, 2, vec![busy("a"), busy("b")]));
    assert_eq!(acts(&d), (1, vec![]));
}

#[test]
fn keda_ignores_changes_within_its_tolerance() {
    let pods: Vec<_> = (0..10).map(|i| busy(&i.to_string())).collect();
    let d = Keda::new(1.0, 20).decide(&obs(0.0, 0, 9, pods));
    assert_eq!(acts(&d), (0, vec![]), "9 / 10 is within 10 %");
}

#[test]
fn keda_scales_down_to_the_window_peak_deleting_the_newest_busy_or_not() {
    let mut keda = Keda::new(1.0, 20);
    let three = || vec![busy("a"), busy("b"), busy("c")];
    assert_eq!(acts(&keda.decide(&obs(0.0, 0, 3, three()))), (0, vec![]));
    // One message left 100 s later: the window still holds 3.
    assert_eq!(acts(&keda.decide(&obs(100.0, 0, 1, three()))), (0, vec![]));
    // After the window: down to 1, the two newest go although busy.
    let d = keda.decide(&obs(400.0, 0, 1, three()));
    assert_eq!(acts(&d), (0, vec!["c", "b"]));
}

#[test]
fn keda_deletes_pods_not_yet_ready_first() {
    let mut keda = Keda::new(1.0, 20);
    let pods = vec![busy("a"), worker("b", Booting, 0.0), busy("c")];
    let d = keda.decide(&obs(0.0, 0, 2, pods));
    assert_eq!(acts(&d), (0, vec!["b"]));
}

#[test]
fn keda_goes_to_zero_only_after_its_cooldown() {
    let mut keda = Keda::new(1.0, 20);
    keda.stabilisation = 0.0;
    assert_eq!(
        acts(&keda.decide(&obs(0.0, 0, 1, vec![busy("a")]))),
        (0, vec![])
    );
    assert_eq!(
        acts(&keda.decide(&obs(100.0, 0, 0, vec![idle("a")]))),
        (0, vec![])
    );
    assert_eq!(
        acts(&keda.decide(&obs(301.0, 0, 0, vec![idle("a")]))),
        (0, vec!["a"])
    );
}

#[test]
fn keda_replaces_a_pod_that_fails_its_liveness_probe() {
    let d = Keda::new(1.0, 20).decide(&obs(0.0, 0, 2, vec![dead("a"), busy("b")]));
    assert_eq!(acts(&d), (1, vec!["a"]));
}

#[test]
fn target_tracking_scales_out_on_backlog_per_instance_ignoring_in_flight() {
    // 60 s acceptable wait / 30 s jobs = 2 per instance: 10 visible → 5.
    let d = TargetTracking::new(2.0, 20).decide(&obs(0.0, 10, 4, vec![busy("a")]));
    assert_eq!(acts(&d), (4, vec![]));
}

#[test]
fn target_tracking_terminates_busy_instances_on_scale_in_once_per_cooldown() {
    let mut tt = TargetTracking::new(2.0, 20);
    let d = tt.decide(&obs(0.0, 0, 2, vec![busy("a"), busy("b"), idle("c")]));
    assert_eq!(
        acts(&d),
        (0, vec!["a", "b", "c"]),
        "in flight is not its metric"
    );
    let d = tt.decide(&obs(200.0, 0, 1, vec![busy("d")]));
    assert_eq!(acts(&d), (0, vec![]), "within the 300 s cooldown");
    let d = tt.decide(&obs(300.0, 0, 1, vec![busy("d")]));
    assert_eq!(acts(&d), (0, vec!["d"]));
}

#[test]
fn target_tracking_keeps_a_crashed_instance() {
    let d = TargetTracking::new(2.0, 20).decide(&obs(0.0, 2, 0, vec![dead("a")]));
    assert_eq!(
        acts(&d),
        (0, vec![]),
        "EC2's health check passes a dead process"
    );
}
