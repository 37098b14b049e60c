//! `minimoto serve --autoscale`: the scaler runs a local fleet of worker processes in the
//! all-in-one command, sized from the queue (the settings are shortened so a test takes seconds).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{SMALL, helpers::*};

/// Short intervals: decide every second, drain after 2 s idle, forget peaks after 3 s and
/// arrivals after 5 s (so the arrival rate of the burst does not hold a worker for minutes).
const FAST: [&str; 17] = [
    "--autoscale",
    "--interval-seconds",
    "1",
    "--idle-seconds",
    "2",
    "--scale-in-window-seconds",
    "3",
    "--heartbeat-timeout-seconds",
    "5",
    "--registry-heartbeat-seconds",
    "1",
    "--visibility-timeout-seconds",
    "4",
    "--receive-wait-seconds",
    "1",
    "--rate-window-seconds",
    "5",
];

async fn wait_for(what: &str, app: &App, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < timeout,
            "{what}: not within {timeout:?}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 8 jobs at once against `--max-workers 3`: three worker processes, never more, every job
/// succeeds, and with the queue empty the fleet drains back to its minimum (0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_grows_to_the_maximum_and_returns_to_the_minimum() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut args = FAST.to_vec();
    args.extend(["--max-workers", "3", "--min-workers", "0"]);
    let app = App::spawn(&data, &args);
    assert!(
        children_of(app.pid()).is_empty(),
        "no worker before any job"
    );

    let images: Vec<_> = (0..3)
        .map(|i| (format!("{i}.jpg"), jpeg(640, 480, i)))
        .collect();
    let images: Vec<_> = images
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (status, job, _) = submit(&app, form(&images, Some(SMALL))).await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }

    let start = Instant::now();
    let mut most = 0;
    let mut pending = ids.clone();
    while !pending.is_empty() {
        most = most.max(children_of(app.pid()).len());
        let mut still = Vec::new();
        for id in pending {
            let (_, job) = get_json(&app.url(&format!("/v1/jobs/{id}"))).await;
            if finished(&job) {
                assert_eq!(job["status"], "succeeded", "{job}\nlog:\n{}", app.log());
            } else {
                still.push(id);
            }
        }
        pending = still;
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "jobs {pending:?} did not finish\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(most, 3, "the fleet grew to --max-workers and no further");

    wait_for(
        "the fleet back at its minimum",
        &app,
        Duration::from_secs(60),
        || children_of(app.pid()).is_empty(),
    )
    .await;
    let log = app.log();
    assert!(
        log.contains("the scaler asked this worker to drain"),
        "scale-in drained the workers: {log}"
    );
    for id in &ids {
        let succeeded = log
            .lines()
            .filter(|l| l.contains("job succeeded") && l.contains(id.as_str()))
            .count();
        assert_eq!(succeeded, 1, "job {id} rendered once");
    }
}

/// A worker process killed with `kill -9` mid-job is replaced, and its job finishes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_replaced_and_its_job_finishes_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut args = FAST.to_vec();
    args.extend(["--max-workers", "1", "--min-workers", "1"]);
    args.extend(["--x264-preset", "veryslow"]);
    let app = App::spawn(&data, &args);
    wait_for("the minimum worker", &app, Duration::from_secs(30), || {
        children_of(app.pid()).len() == 1
    })
    .await;
    let first = children_of(app.pid())[0];

    let images: Vec<_> = (0..4)
        .map(|i| (format!("{i}.jpg"), jpeg(1280, 720, i)))
        .collect();
    let images: Vec<_> = images
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let heavy = r#"{"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 3.0}"#;
    let (status, job, _) = submit(&app, form(&images, Some(heavy))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let running = poll_until(&app, &id, Duration::from_secs(60), |j| {
        j["stage"] == "rendering" && j["progress"].as_f64().unwrap_or(0.0) > 0.0 || finished(j)
    })
    .await;
    assert_eq!(running["status"], "running", "killed mid-render: {running}");
    let killed = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .expect("kill -9");
    assert!(killed.success());

    wait_for(
        "a replacement worker",
        &app,
        Duration::from_secs(30),
        || children_of(app.pid()).iter().any(|&pid| pid != first),
    )
    .await;
    let job: Value = poll_until(&app, &id, Duration::from_secs(240), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let log = app.log();
    let succeeded = log
        .lines()
        .filter(|l| l.contains("job succeeded") && l.contains(id.as_str()))
        .count();
    assert_eq!(succeeded, 1, "rendered to the end once");
    let db = rusqlite::Connection::open(data.join("minimoto.db")).expect("db");
    let record: String = db
        .query_row("SELECT record FROM jobs WHERE id = ?1", [&id], |r| r.get(0))
        .expect("record");
    let record: Value = serde_json::from_str(&record).expect("json");
    assert_eq!(
        record["attempts"], 2,
        "claimed before the kill and once after"
    );
}
